"""``jax.jit`` for functions compiled once and called a few dozen times (an optimiser's
objective, a Hessian at the estimate), where XLA's compilation costs more than all calls.

On the CPU, XLA's default pipeline spends most of a second on a model's value, gradient
and Hessian; with its classic loop emitters and without LLVM's optimisation passes
(``xla_cpu_use_fusion_emitters=False``, ``xla_backend_optimization_level=0``, options of
this one compilation, not of the session) it compiles in about a third of that time, and
each call runs about a third slower: a fit of a two-epoch SFS model, ~1 s of compilation
against ~30 calls of 1 ms, gains the difference. The arithmetic is the same IEEE float64
(no fast-math; only the order in which LLVM emits it). Elsewhere (other platforms, or a
jaxlib that does not know the options) this is ``jax.jit``.
"""

from __future__ import annotations

from typing import Any

QUICK_CPU_OPTIONS = {"xla_cpu_use_fusion_emitters": False, "xla_backend_optimization_level": 0}
"""XLA options of the compilations made by :func:`quick_jit` on the CPU."""


def quick_jit(fn: Any) -> Any:
    """``fn`` compiled on first call per argument shape with :data:`QUICK_CPU_OPTIONS`
    (CPU), else as ``jax.jit(fn)`` would."""
    import jax

    jitted = jax.jit(fn)
    compiled: dict[Any, Any] = {}

    def call(*args: Any) -> Any:
        key = (
            jax.tree_util.tree_structure(args),
            tuple(
                (getattr(a, "shape", None), str(getattr(a, "dtype", type(a))))
                for a in jax.tree_util.tree_leaves(args)
            ),
        )
        if key not in compiled:
            compiled[key] = _compile(jitted, args)
        return compiled[key](*args)

    return call


def _compile(jitted: Any, args: tuple[Any, ...]) -> Any:
    import jax

    lowered = jitted.lower(*args)
    if jax.default_backend() != "cpu":
        return lowered.compile()
    try:
        return lowered.compile(compiler_options=QUICK_CPU_OPTIONS)
    except Exception as error:  # a jaxlib without these options: its defaults
        if "compile option" not in str(error):
            raise
        return lowered.compile()
