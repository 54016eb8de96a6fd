"""The immutable, hashable, serialisable model structure every backend receives."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Protocol

import numpy as np

from .errors import ModelError
from .validation import validate_structure

FORMAT_NAME = "ptdcore.structure"
FORMAT_VERSION = 1
_ARRAY_FIELDS = {
    "alpha": np.float64,
    "src": np.int64,
    "dst": np.int64,
    "constant": np.float64,
    "coef_ptr": np.int64,
    "coef_index": np.int64,
    "coef_value": np.float64,
}

_REQUIRED_FIELDS = ("format", "version", "nr_states", "nr_params", "discrete", *_ARRAY_FIELDS)
_JSON_FIELDS = (*_REQUIRED_FIELDS, "rewards", "states", "output", "epochs", "content_hash")


def _field_array(data: dict[str, Any], name: str, dtype: type) -> np.ndarray:
    """``data[name]`` as a flat array of ``dtype``, or a ModelError naming the field."""
    value = data[name]
    try:
        arr = np.array(value, dtype=dtype)
    except (TypeError, ValueError, OverflowError):
        raise ModelError(
            f"field {name!r} must be a list of numbers, got {str(value)[:60]}"
        ) from None
    if arr.ndim != 1 and name != "rewards":
        raise ModelError(f"field {name!r} must be a flat list, got shape {arr.shape}")
    if dtype is np.int64 and not np.array_equal(arr, np.array(value, dtype=float)):
        raise ModelError(f"field {name!r} must hold whole numbers")
    return arr


def _from_fields(fields: dict[str, Any]) -> Structure:
    return Structure(**fields)


def _frozen(values: Any, dtype: type) -> np.ndarray:
    arr = np.array(values, dtype=dtype, copy=True).reshape(-1)
    arr.setflags(write=False)
    return arr


def _reward_matrix_field(output: Any) -> bool:
    """The JSON field "output" of older files: "reward_moments" marks a reward matrix; the
    density, cdf and sf are chosen at each call now (``model.cdf``), so they describe
    the same model."""
    if output == "reward_moments":
        return True
    if output in ("density", "cdf", "sf"):
        return False
    raise ModelError(
        f"field 'output' must be 'reward_moments' (or, in older files, 'density', 'cdf' or "
        f"'sf'), got {output!r}"
    )


@dataclass(frozen=True, eq=False)
class Structure:
    """A phase-type model as arrays: states, alpha, edges linear in theta, rewards.

    Edge ``e`` goes from ``src[e]`` to ``dst[e]`` (``-1`` is absorption) with
    weight ``constant[e] + sum(coef_value[k] * theta[coef_index[k]])`` over
    ``k`` in ``coef_ptr[e]:coef_ptr[e + 1]``.

    Equality and hashing use :attr:`content_hash`, which covers everything
    that affects results (not the state labels).

    Construction validates the model (:func:`ptdcore.validation.validate_structure`)
    and raises ``ValueError`` naming the state or edge at fault.
    """

    nr_states: int
    nr_params: int
    discrete: bool
    alpha: np.ndarray
    src: np.ndarray
    dst: np.ndarray
    constant: np.ndarray
    coef_ptr: np.ndarray
    coef_index: np.ndarray
    coef_value: np.ndarray
    rewards: np.ndarray | None = None
    states: tuple[tuple[int, ...], ...] | np.ndarray | None = field(default=None, repr=False)
    """State labels (not part of the content hash): a tuple of int tuples, or an (N, d)
    read-only integer array for graphs built with :meth:`ptdcore.Graph.from_frontier`."""
    reward_matrix: bool = False
    """``rewards`` is an (nr_states, m) matrix whose columns' means and cross moments the
    model evaluates (no times); see :meth:`with_reward_matrix`."""
    epochs: int = 1
    """Epochs (piecewise-constant parameters in time): a parameter row is theta_0 ..
    theta_{E-1} (:attr:`base_params` values each) followed by the E - 1 break times,
    so ``nr_params = E * base_params + E - 1``. See :meth:`with_epochs`."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "nr_states", int(self.nr_states))
        object.__setattr__(self, "nr_params", int(self.nr_params))
        object.__setattr__(self, "discrete", bool(self.discrete))
        object.__setattr__(self, "epochs", int(self.epochs))
        object.__setattr__(self, "reward_matrix", bool(self.reward_matrix))
        for name, dtype in _ARRAY_FIELDS.items():
            object.__setattr__(self, name, _frozen(getattr(self, name), dtype))
        if self.rewards is not None:
            object.__setattr__(self, "rewards", _frozen(self.rewards, np.float64))
        if isinstance(self.states, np.ndarray):  # (N, d) integers (Graph.from_frontier)
            labels = np.array(self.states, copy=True)
            if labels.ndim != 2 or not np.issubdtype(labels.dtype, np.integer):
                raise ModelError(f"states must be an (N, d) integer array, got {labels.dtype} "
                                 f"of shape {labels.shape}")  # fmt: skip
            labels.setflags(write=False)
            object.__setattr__(self, "states", labels)
        elif self.states is not None:
            object.__setattr__(self, "states", tuple(tuple(int(x) for x in s) for s in self.states))
        # The one validation path: every Structure, however it was made (Graph,
        # from_dict/from_json, the CLI, a backend's caller), is checked here.
        validate_structure(self)

    @property
    def nr_edges(self) -> int:
        """Number of edges, exits included."""
        return int(self.src.shape[0])

    @cached_property
    def content_hash(self) -> str:
        """Stable SHA-256 of the numerical content (hex)."""
        return self._hash("reward_moments" if self.reward_matrix else "density")

    def _hash(self, output: str) -> str:
        """The content hash; ``output`` as older versions wrote it into the hash (a file
        saved with output "cdf" or "sf" carries that hash)."""
        h = hashlib.sha256()
        h.update(f"{FORMAT_NAME}/{FORMAT_VERSION}/{self.nr_states}/{self.nr_params}/".encode())
        h.update(b"discrete" if self.discrete else b"continuous")
        if output != "density":  # (absent for the density: older hashes stay valid)
            h.update(f"output={output}".encode())
        if self.epochs != 1:
            h.update(f"epochs={self.epochs}".encode())
        for name in _ARRAY_FIELDS:
            arr = np.ascontiguousarray(getattr(self, name))
            h.update(name.encode())
            h.update(arr.astype(arr.dtype.newbyteorder("<"), copy=False).tobytes())
        if self.rewards is not None:
            h.update(b"rewards")
            h.update(self.rewards.astype("<f8", copy=False).tobytes())
        return h.hexdigest()

    def __hash__(self) -> int:
        return hash(self.content_hash)

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle by the fields: unpickling runs the constructor (validation, read-only
        arrays) again."""
        fields = {name: getattr(self, name) for name in self.__dataclass_fields__}
        return (_from_fields, (fields,))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Structure):
            return NotImplemented
        return self.content_hash == other.content_hash

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (floats round-trip exactly through ``repr``)."""
        out: dict[str, Any] = {
            "format": FORMAT_NAME,
            "version": FORMAT_VERSION,
            "nr_states": self.nr_states,
            "nr_params": self.nr_params,
            "discrete": self.discrete,
        }
        for name in _ARRAY_FIELDS:
            out[name] = getattr(self, name).tolist()
        out["rewards"] = None if self.rewards is None else self.rewards.tolist()
        if isinstance(self.states, np.ndarray):
            out["states"] = self.states.tolist()
        else:
            out["states"] = None if self.states is None else [list(s) for s in self.states]
        if self.reward_matrix:  # (the field older versions read)
            out["output"] = "reward_moments"
        if self.epochs != 1:
            out["epochs"] = self.epochs
        out["content_hash"] = self.content_hash
        return out

    def to_json(self) -> str:
        """Serialise to a versioned JSON string."""
        return json.dumps(self.to_dict())

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Structure:
        """Inverse of :meth:`to_dict`; checks the format name, the version and every field.

        Raises :class:`~ptdcore.ModelError` naming the field that is missing, unknown or
        of the wrong type or shape.
        """
        if not isinstance(data, dict):
            raise ModelError(
                f"a ptdcore model must be a JSON object (a dict), got {type(data).__name__}"
            )
        if data.get("format") != FORMAT_NAME:
            raise ModelError(
                f"not a ptdcore structure: field 'format' is {data.get('format')!r}, "
                f"expected {FORMAT_NAME!r}"
            )
        if data.get("version") != FORMAT_VERSION:
            raise ModelError(
                f"unsupported structure version {data.get('version')!r} "
                f"(this ptdcore reads version {FORMAT_VERSION})"
            )
        unknown = sorted(set(data) - set(_JSON_FIELDS))
        missing = [name for name in _REQUIRED_FIELDS if name not in data]
        if missing or unknown:
            parts = [f"lacks the field {name!r}" for name in missing]
            parts += [f"has an unknown field {name!r}" for name in unknown]
            raise ModelError(
                "the model JSON " + "; ".join(parts) + f" (fields: {', '.join(_JSON_FIELDS)})"
            )
        for name in ("nr_states", "nr_params", "epochs"):
            value = data.get(name, 1)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ModelError(f"field {name!r} must be a whole number, got {value!r}")
        if not isinstance(data["discrete"], bool):
            raise ModelError(f"field 'discrete' must be true or false, got {data['discrete']!r}")
        arrays = {}
        for name, dtype in _ARRAY_FIELDS.items():
            arrays[name] = _field_array(data, name, dtype)
        rewards = None if data.get("rewards") is None else _field_array(data, "rewards", float)
        states = data.get("states")
        try:
            labels = None if states is None else [tuple(int(x) for x in s) for s in states]
        except (TypeError, ValueError):
            raise ModelError("field 'states' must be a list of lists of integers") from None
        structure = cls(
            nr_states=data["nr_states"],
            nr_params=data["nr_params"],
            discrete=data["discrete"],
            **arrays,
            rewards=rewards,
            states=labels,
            reward_matrix=_reward_matrix_field(data.get("output", "density")),
            epochs=data.get("epochs", 1),
        )
        expected = data.get("content_hash")
        if expected is not None and expected != structure._hash(data.get("output", "density")):
            raise ModelError("structure JSON is corrupt: its content hash does not match")
        return structure

    @classmethod
    def from_json(cls, text: str) -> Structure:
        """Inverse of :meth:`to_json`; a :class:`~ptdcore.ModelError` if ``text`` is not
        valid JSON or not a valid model (naming the field)."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ModelError(f"not valid JSON: {exc}") from None
        return cls.from_dict(data)

    @property
    def reward_columns(self) -> int:
        """``m``: reward columns (1 for a reward vector, 0 without rewards)."""
        return 0 if self.rewards is None else self.rewards.size // self.nr_states

    @property
    def base_params(self) -> int:
        """Parameters of one epoch (``nr_params`` for a time-homogeneous structure)."""
        return (self.nr_params - self.epochs + 1) // self.epochs

    def with_epochs(self, epochs: int) -> Structure:
        """The same chain with ``epochs`` epochs: its rows are ``epochs`` parameter vectors
        and then the ``epochs - 1`` break times (epoch 0 covers ``[0, b_0)``, epoch e
        ``[b_{e-1}, b_e)``, the last is open-ended)."""
        import dataclasses

        if self.epochs != 1:
            raise ModelError(f"the structure already has {self.epochs} epochs")
        if isinstance(epochs, bool) or int(epochs) != epochs or epochs < 1:
            raise ModelError(f"epochs must be a whole number >= 1, got {epochs!r}")
        E = int(epochs)
        return dataclasses.replace(self, nr_params=E * self.nr_params + E - 1, epochs=E)

    def with_reward_matrix(self, rewards: Any) -> Structure:
        """The same chain with the reward matrix ``rewards`` (nr_states, m), evaluating the
        means and cross moments of its columns (:attr:`reward_matrix`)."""
        import dataclasses

        r = np.asarray(rewards, dtype=np.float64)
        if r.ndim != 2 or r.shape[0] != self.nr_states or r.shape[1] < 1:
            raise ModelError(
                f"rewards must have shape (nr_states, m) = ({self.nr_states}, m), m >= 1; "
                f"got shape {r.shape}"
            )
        return dataclasses.replace(self, rewards=r, reward_matrix=True)

    def coefficient_matrix(self) -> np.ndarray:
        """Dense (nr_edges, base_params) coefficients (for small models and tests)."""
        dense = np.zeros((self.nr_edges, self.base_params))
        rows = np.repeat(np.arange(self.nr_edges), np.diff(self.coef_ptr))
        np.add.at(dense, (rows, self.coef_index), self.coef_value)
        return dense

    def weights(self, theta: np.ndarray) -> np.ndarray:
        """Edge weights at one theta (base_params,): (nr_edges,)."""
        return self.constant + self.coefficient_matrix() @ np.asarray(theta, dtype=np.float64)


class HasStructure(Protocol):
    """Anything with a ``structure()`` method, such as :class:`ptdcore.Graph`."""

    def structure(self) -> Structure: ...


def as_structure(model: HasStructure | Structure) -> Structure:
    """The :class:`Structure` of ``model`` (a Structure, or a Graph's ``structure()``)."""
    if isinstance(model, Structure):
        return model
    method = getattr(model, "structure", None)
    structure = method() if callable(method) else None
    if not isinstance(structure, Structure):
        raise TypeError(f"expected a ptdcore.Graph or Structure, got {type(model).__name__}")
    return structure
