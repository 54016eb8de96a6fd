"""Hook specifications of ptdcore plugins.

A plugin is a module named by an entry point in the ``ptdcore`` group::

    # pyproject.toml of the plugin's distribution
    [project.entry-points.ptdcore]
    mine = "my_plugin"

that implements one or more of the hooks below with ``@ptdcore.hookimpl``.
ptdcore's own backends are registered the same way.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from .backend import Backend

PROJECT_NAME = "ptdcore"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)

__all__ = ["hookimpl", "hookspec", "ptdcore_register_backends"]


@hookspec
def ptdcore_register_backends() -> list[type[Backend]]:  # type: ignore[empty-body]
    """Return the backend classes this plugin provides.

    Called once per discovery (the first time a backend is listed or requested,
    and again after :func:`ptdcore.refresh_backends`). Each class is a subclass of
    :class:`ptdcore.Backend` with a unique ``name``. Classes whose ``available()``
    reports False are still listed by :func:`ptdcore.backend_info`, with the reason.

    .. versionadded:: 0.1
    """
