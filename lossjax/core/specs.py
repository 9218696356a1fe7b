"""Registry specs shared by the loss and activation registries.

A spec names a registry entry and, optionally, numeric parameters: ``"huber"``,
``"huber:delta=0.5"``, ``"leaky_relu:slope=0.1"``. :func:`parse_params` reads the part after the
colon; :func:`canonical_name` writes a spec back in the form ``get_*`` round-trips.
"""

from __future__ import annotations

import math
from collections.abc import Mapping


def format_number(v: float) -> str:
    """A float without a trailing ``.0`` (``100.0`` → ``"100"``, ``0.5`` → ``"0.5"``)."""
    v = float(v)
    return str(int(v)) if v.is_integer() and abs(v) < 1e15 else repr(v)


def parse_params(spec: str, kind: str, name: str, text: str, allowed: Mapping[str, float]) -> dict[str, float]:
    """Parses ``key=value[,key=value]`` for registry entry ``name`` (a ``kind``: "loss", "activation").

    Raises:
      ValueError: a malformed item, an unknown key, a value that is not a finite number; the
        message names the bad item and lists the allowed parameters.
    """
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
            params[key] = float(value)
        except ValueError:
            raise ValueError(f"parameter {key!r} in spec {spec!r} must be a number, got {value!r}") from None
        if not math.isfinite(params[key]):
            raise ValueError(f"parameter {key!r} in spec {spec!r} must be finite, got {value!r}")
    return params


def canonical_name(name: str, params: Mapping[str, float]) -> str:
    """``name`` followed by the parameters as given: ``"huber:delta=0.5"``."""
    if not params:
        return name
    return name + ":" + ",".join(f"{k}={format_number(v)}" for k, v in params.items())
