"""Backend discovery (pluggy + entry points), listing and selection.

Discovery is lazy and cached: entry points in the ``ptdcore`` group are read the
first time a backend is listed or requested. Each entry point is loaded on its
own, so a plugin that fails to import gives a ``RuntimeWarning`` naming it and
never breaks ``import ptdcore``. Plugins named in ``PTDCORE_DISABLED_PLUGINS``
(comma-separated entry-point names) are skipped.

Order and duplicates: entry points are loaded sorted with ptdcore's own
distribution first, then the others by distribution and entry-point name. When
two plugins provide a backend of the same name, the first in that order wins
(so a built-in cannot be replaced by accident) and a ``RuntimeWarning`` says
which one was kept.

Selection (:func:`get_backend`): the ``name`` argument, else the
``PTDCORE_BACKEND`` environment variable, else the available *built-in* backend (one
shipped with ptdcore) with the highest ``priority`` (the fastest). A third-party backend
is used only when named: one that declares a higher priority than the built-in default
does not take over, and a ``RuntimeWarning`` says so once; only when no built-in backend
can run is a third-party one the default, with a warning naming it.

A plugin can fail in any way, ``sys.exit`` included: every exception but
``KeyboardInterrupt`` raised while loading or asking a plugin becomes a warning naming
the plugin.
"""

from __future__ import annotations

import os
import threading
import warnings
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import TYPE_CHECKING, Any

from .backend import Backend, Capabilities

if TYPE_CHECKING:
    from importlib import metadata

ENTRY_POINT_GROUP = "ptdcore"
ENV_BACKEND = "PTDCORE_BACKEND"
ENV_DISABLED = "PTDCORE_DISABLED_PLUGINS"
_OWN_DISTRIBUTION = "ptdcore"


@dataclass(frozen=True)
class BackendInfo:
    """What discovery found about one backend."""

    name: str
    available: bool
    reason: str
    capabilities: Capabilities
    description: str
    priority: int
    plugin: str
    backend_class: type[Backend]
    builtin: bool = False
    """Shipped with ptdcore (registered by ptdcore's own distribution)."""


def _reraise_interrupt(exc: BaseException) -> None:
    """Plugins may raise anything (``SystemExit`` too); only an interrupt goes through."""
    if isinstance(exc, KeyboardInterrupt):
        raise exc


def _entry_points() -> list[metadata.EntryPoint]:
    """The ``ptdcore`` entry points, own distribution first (patched in tests)."""
    from importlib import metadata  # here, not at import: ~30 ms that listing alone needs

    eps = list(metadata.entry_points(group=ENTRY_POINT_GROUP))

    def key(ep: metadata.EntryPoint) -> tuple[int, str, str]:
        dist = ep.dist.name if ep.dist is not None else ""
        return (0 if dist == _OWN_DISTRIBUTION else 1, dist, ep.name)

    return sorted(eps, key=key)


def _load_plugins() -> list[tuple[str, Any, bool]]:
    """(plugin name, module, built-in) for each entry point that imports."""
    disabled = {s.strip() for s in os.environ.get(ENV_DISABLED, "").split(",") if s.strip()}
    plugins = []
    for ep in _entry_points():
        if ep.name in disabled:
            continue
        builtin = ep.dist is not None and ep.dist.name == _OWN_DISTRIBUTION
        try:
            plugins.append((ep.name, ep.load(), builtin))
        except BaseException as exc:  # a broken plugin must never break (or end) ptdcore
            _reraise_interrupt(exc)
            warnings.warn(
                f"ptdcore plugin {ep.name!r} ({ep.value}) failed to load and is skipped: "
                f"{type(exc).__name__}: {exc}",
                RuntimeWarning,
                stacklevel=3,
            )
    return plugins


def _collect(plugins: list[tuple[str, Any, bool]]) -> dict[str, BackendInfo]:
    import pluggy

    from . import hookspecs

    manager = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    manager.add_hookspecs(hookspecs)
    order = {}
    builtins = {name for name, _, builtin in plugins if builtin}
    for plugin_name, module, _ in plugins:
        try:
            manager.register(module, name=plugin_name)
            manager.check_pending()
        except BaseException as exc:
            _reraise_interrupt(exc)
            if manager.is_registered(module):
                manager.unregister(module)
            warnings.warn(
                f"ptdcore plugin {plugin_name!r} is not a valid plugin and is skipped: "
                f"{type(exc).__name__}: {exc}",
                RuntimeWarning,
                stacklevel=3,
            )
            continue
        order[plugin_name] = len(order)
    impls = sorted(
        manager.hook.ptdcore_register_backends.get_hookimpls(),
        key=lambda impl: order.get(impl.plugin_name, len(order)),
    )
    found: dict[str, BackendInfo] = {}
    for impl in impls:
        plugin_name = impl.plugin_name
        try:
            classes = impl.function()
        except BaseException as exc:
            _reraise_interrupt(exc)
            warnings.warn(
                f"ptdcore plugin {plugin_name!r} failed to register backends and is skipped: "
                f"{type(exc).__name__}: {exc}",
                RuntimeWarning,
                stacklevel=3,
            )
            continue
        if classes is None:
            continue
        if not isinstance(classes, (list, tuple)):
            warnings.warn(
                f"ptdcore plugin {plugin_name!r}: ptdcore_register_backends returned "
                f"{classes!r}, not a list of ptdcore.Backend classes; skipped",
                RuntimeWarning,
                stacklevel=3,
            )
            continue
        for cls in classes:
            if not (isinstance(cls, type) and issubclass(cls, Backend)) or not cls.name:
                warnings.warn(
                    f"ptdcore plugin {plugin_name!r} registered {cls!r}, which is not a named "
                    "ptdcore.Backend subclass; skipped",
                    RuntimeWarning,
                    stacklevel=3,
                )
                continue
            if cls.name in found:
                warnings.warn(
                    f"backend {cls.name!r} is provided by plugins {found[cls.name].plugin!r} "
                    f"and {plugin_name!r}; using the one from {found[cls.name].plugin!r}",
                    RuntimeWarning,
                    stacklevel=3,
                )
                continue
            found[cls.name] = _describe(cls, plugin_name, plugin_name in builtins)
    return found


def _describe(cls: type[Backend], plugin: str, builtin: bool) -> BackendInfo:
    try:
        ok, reason = cls.available()
    except BaseException as exc:
        _reraise_interrupt(exc)
        ok, reason = False, f"availability check failed: {type(exc).__name__}: {exc}"
    return BackendInfo(
        name=cls.name,
        available=bool(ok),
        reason="" if ok else str(reason),
        capabilities=cls.capabilities,
        description=cls.description,
        priority=cls.priority,
        plugin=plugin,
        backend_class=cls,
        builtin=builtin,
    )


_lock = threading.Lock()


@lru_cache(maxsize=1)
def _discover() -> dict[str, BackendInfo]:
    return _collect(_load_plugins())


def _registry() -> dict[str, BackendInfo]:
    with _lock:
        return _discover()


def refresh_backends() -> None:
    """Forget discovered backends; the next call discovers again (new plugins, tests)."""
    with _lock:
        _discover.cache_clear()
        _instance.cache_clear()
        _warned.clear()


def backend_info() -> list[BackendInfo]:
    """Every discovered backend, available or not (with the reason), best first."""
    return sorted(_registry().values(), key=lambda i: (-i.priority, i.name))


def list_backends() -> list[str]:
    """Names of the backends that can run here, best first."""
    return [i.name for i in backend_info() if i.available]


@cache
def _instance(name: str) -> Backend:
    return _registry()[name].backend_class()


def default_backend_name() -> str:
    """The backend used when none is named: the fastest available built-in backend.

    A third-party backend that declares a higher priority is not chosen (a warning says so,
    once per discovery); with no built-in backend available, the fastest third-party one
    is chosen, with a warning naming it."""
    infos = [i for i in backend_info() if i.available]
    if not infos:
        raise ValueError(_unavailable_message("<default>", "no backend named"))
    builtins = [i for i in infos if i.builtin]
    chosen = builtins[0] if builtins else infos[0]
    if not builtins:
        _warn_once(
            f"no built-in ptdcore backend can run here; using the third-party backend "
            f"{chosen.name!r} from plugin {chosen.plugin!r} as the default"
        )
    for info in infos:
        if not info.builtin and info.priority > chosen.priority and info is not chosen:
            _warn_once(
                f"backend {info.name!r} from the third-party plugin {info.plugin!r} declares "
                f"priority {info.priority}, above the default {chosen.name!r}; a third-party "
                f"backend is used only when named (backend={info.name!r} or "
                f"{ENV_BACKEND}={info.name})"
            )
    return chosen.name


_warned: set[str] = set()


def _warn_once(message: str) -> None:
    with _lock:
        if message in _warned:
            return
        _warned.add(message)
    warnings.warn(message, RuntimeWarning, stacklevel=4)


def _unavailable_message(requested: str, origin: str) -> str:
    infos = backend_info()
    lines = [f"backend {requested!r} ({origin}) cannot be used."]
    lines.append("Available: " + (", ".join(i.name for i in infos if i.available) or "none"))
    for info in infos:
        if not info.available:
            lines.append(f"  {info.name}: unavailable ({info.reason})")
    return "\n".join(lines)


def get_backend(name: str | Backend | type[Backend] | None = None) -> Backend:
    """The backend to use.

    Parameters
    ----------
    name
        A backend name, instance or class; None means ``PTDCORE_BACKEND`` if set,
        else the available backend with the highest priority.

    Raises
    ------
    ValueError
        Unknown or unavailable name; the message lists what can run and why the
        others cannot.
    """
    if isinstance(name, Backend):
        return name
    if isinstance(name, type) and issubclass(name, Backend):
        ok, reason = name.available()
        if not ok:
            raise ValueError(f"backend {name.name!r} is unavailable: {reason}")
        return name()
    origin = "backend= argument"
    if name is None:
        name = os.environ.get(ENV_BACKEND) or None
        origin = f"{ENV_BACKEND} environment variable"
    if name is None:
        return _instance(default_backend_name())
    registry = _registry()
    if name not in registry:
        known = ", ".join(sorted(registry)) or "none"
        raise ValueError(
            f"unknown backend {name!r} ({origin}); discovered backends: {known}.\n"
            + _unavailable_message(name, origin).split("\n", 1)[1]
        )
    if not registry[name].available:
        raise ValueError(_unavailable_message(name, origin))
    return _instance(name)
