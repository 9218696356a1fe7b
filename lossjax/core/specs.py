"""Registry specs: ``name`` or ``name:key=value[,key=value]``, shared by every registry.

Every registry in lossjax (losses, activations, optimisers, init schemes, gradient
estimators, datasets) is a ``dict[str, Entry]`` whose entries carry at least ``name`` and
``description``. Entries with numeric parameters (``"huber:delta=0.5"``,
``"leaky_relu:slope=0.1"``) are made by a factory whose parameters are declared as
:class:`~lossjax.core.params.Param`; :func:`lookup` parses a spec, validates its parameters
through those declarations and returns the entry named in canonical form, so
``lookup(...).name`` round-trips.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple, TypeVar

from lossjax.core.params import Param

T = TypeVar("T")


class Factory(NamedTuple):
    """Makes a registry entry from its declared numeric parameters."""

    make: Callable[..., Any]
    params: tuple[Param, ...]


def format_number(v: float) -> str:
    """A float without a trailing ``.0`` (``100.0`` → ``"100"``, ``0.5`` → ``"0.5"``)."""
    v = float(v)
    return str(int(v)) if v.is_integer() and abs(v) < 1e15 else repr(v)


def parse_params(spec: str, kind: str, name: str, text: str, declared: Sequence[Param]) -> dict[str, float]:
    """Parses ``key=value[,key=value]`` for registry entry ``name`` (a ``kind``: "loss", "activation").

    Raises:
      ValueError: a malformed item, an unknown key, a value that is not a number or is out of
        its declared range; the message names the bad item and lists the allowed parameters.
    """
    allowed = {p.name: p for p in declared}
    params: dict[str, float] = {}
    for item in text.split(","):
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ValueError(
                f"bad parameter {item!r} in spec {spec!r}: expected {key or 'key'}=value; "
                f"{kind} {name!r} accepts {sorted(allowed) or 'no parameters'}"
            )
        if key not in allowed:
            raise ValueError(
                f"unknown parameter {key!r} for {kind} {name!r} in spec {spec!r}; "
                f"allowed parameters: {sorted(allowed) or 'none'}"
            )
        try:
            number = float(value)
        except ValueError:
            raise ValueError(f"parameter {key!r} in spec {spec!r} must be a number, got {value!r}") from None
        params[key] = allowed[key].check(number, where=f"{kind} {name!r}: parameter {key!r} in spec {spec!r}")
    return params


def canonical_name(name: str, params: Mapping[str, float]) -> str:
    """``name`` followed by the parameters as given: ``"huber:delta=0.5"``."""
    if not params:
        return name
    return name + ":" + ",".join(f"{k}={format_number(v)}" for k, v in params.items())


def lookup(kind: str, spec: Any, entries: Mapping[str, T], factories: Mapping[str, Factory] | None = None) -> T:
    """The entry named by ``spec`` (``name`` or ``name:key=value,...``), named in canonical form.

    ``factories`` maps the names of parametrised entries to their :class:`Factory`; the entry
    is made with the declared defaults overridden by the spec's parameters.
    """
    factories = factories or {}
    if not isinstance(spec, str):
        raise ValueError(f"{kind} spec must be a string, got {spec!r}")
    name, colon, text = spec.strip().partition(":")
    name = name.strip()
    if name not in entries:
        raise ValueError(f"unknown {kind} {name!r} in spec {spec!r}; allowed: {sorted(entries)}")
    declared = factories[name].params if name in factories else ()
    params = parse_params(spec, kind, name, text, declared) if colon else {}
    if name in factories:
        entry = factories[name].make(**{**{p.name: p.default for p in declared}, **params})
    else:
        entry = entries[name]
    return entry._replace(name=canonical_name(name, params))
