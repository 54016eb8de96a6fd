"""ptdcore computes in float64 and never changes JAX's global configuration.

JAX's float64 mode is the user's choice (contract section 11). ptdcore checks it where
a model or an SVGD run is made or called and, when it is off, raises
:class:`Float64Required` giving the one line that turns it on. (The ``reference``
backend's numpy entry point computes inside its own ``jax.enable_x64`` scope; the
``ptdcore`` command line, being its own process, turns the mode on at its start.)
"""

from __future__ import annotations

from .errors import PtdcoreError

ENABLE_LINE = 'jax.config.update("jax_enable_x64", True)'


class Float64Required(PtdcoreError, RuntimeError):
    """JAX's float64 mode is off: ptdcore's results would be silently truncated."""


def float64_enabled() -> bool:
    """Whether JAX creates float64 arrays here (global flag or an ``enable_x64`` scope)."""
    import jax
    import numpy as np

    return jax.dtypes.canonicalize_dtype(np.float64) == np.float64


def require_float64(what: str) -> None:
    """Raise :class:`Float64Required` naming ``what`` when float64 is off."""
    if not float64_enabled():
        raise Float64Required(
            f"{what} computes in float64, and JAX's float64 mode is off (JAX would truncate "
            "to float32). Enable it once at the start of your program:\n\n"
            f"    import jax; {ENABLE_LINE}\n\n"
            "(or set the environment variable JAX_ENABLE_X64=1). ptdcore never changes "
            "JAX's configuration itself."
        )
