"""Declared parameters: one validation layer for every user-given value.

A :class:`Param` declares a value once: its name, type, default, range, allowed choices and one
line of meaning. :meth:`Param.check` validates a value and returns it normalised (an ``int``
for integers, a ``float`` for reals); :meth:`Param.describe` gives the line that ``lossjax list
-v`` prints. The sweep schema (:mod:`lossjax.config`), the datasets' parameters
(:mod:`lossjax.data`) and the loss and activation parameters (``"huber:delta=0.5"``, through
:mod:`lossjax.core.specs`) are all declared with it, so a value is checked, and an error worded,
in one place. Pure Python: no JAX, no numpy.

Every error is a ``ValueError`` of one line naming the parameter, what it must be, and what it
got: ``parameter 'n_train' must be >= 1, got 0``.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import operator
from collections.abc import Sequence
from typing import Any

#: Marks a parameter without a default (it must be given).
REQUIRED: Any = type("Required", (), {"__repr__": lambda self: "required"})()

_TYPE_WORDS = {int: "an integer", float: "a real number", bool: "true or false", str: "a string"}


@dataclasses.dataclass(frozen=True)
class Param:
    """One declared value.

    Attributes:
      name: the key as the user writes it.
      type: ``int``, ``float``, ``bool`` or ``str``.
      doc: one line of meaning.
      default: the value when omitted (:data:`REQUIRED`: must be given).
      minimum: inclusive lower bound (numbers).
      above: exclusive lower bound (numbers), e.g. ``0`` for "> 0".
      maximum: inclusive upper bound (numbers).
      below: exclusive upper bound (numbers).
      choices: the allowed values (strings), or ``None`` for any.
      nullable: ``None`` is allowed (it means "not given" to the code that reads it).
    """

    name: str
    type: type
    doc: str
    default: Any = REQUIRED
    minimum: float | None = None
    above: float | None = None
    maximum: float | None = None
    below: float | None = None
    choices: Sequence[str] | None = None
    nullable: bool = False

    def check(self, value: Any, where: str | None = None) -> Any:
        """Returns ``value`` validated and normalised; raises a one-line ``ValueError``."""
        label = where or f"parameter {self.name!r}"
        if value is None:
            if self.nullable:
                return None
            raise ValueError(f"{label} must be {self.describe_type()}, got None")
        if self.type is bool:
            if not isinstance(value, bool):
                raise ValueError(f"{label} must be true or false, got {type(value).__name__} {value!r}")
            return value
        if self.type is str:
            if not isinstance(value, str):
                raise ValueError(f"{label} must be a string, got {type(value).__name__} {value!r}")
            if self.choices is not None and value not in self.choices:
                raise ValueError(f"{label}: unknown value {value!r}; allowed: {', '.join(self.choices)}")
            return value
        if isinstance(value, bool):
            raise ValueError(f"{label} must be {self.describe_type()}, got bool {value!r}")
        if self.type is int:
            try:
                value = operator.index(value)
            except TypeError:
                raise ValueError(f"{label} must be an integer, got {type(value).__name__} {value!r}") from None
        else:
            if not isinstance(value, numbers.Real):
                raise ValueError(f"{label} must be a real number, got {type(value).__name__} {value!r}")
            value = float(value)
            if not math.isfinite(value):
                raise ValueError(f"{label} must be finite, got {value}")
        if self.minimum is not None and value < self.minimum:
            raise ValueError(f"{label} must be >= {_num(self.minimum)}, got {value}")
        if self.above is not None and not value > self.above:
            raise ValueError(f"{label} must be > {_num(self.above)}, got {value}")
        if self.maximum is not None and value > self.maximum:
            raise ValueError(f"{label} must be <= {_num(self.maximum)}, got {value}")
        if self.below is not None and not value < self.below:
            raise ValueError(f"{label} must be < {_num(self.below)}, got {value}")
        return value

    def describe_type(self) -> str:
        """What a valid value is, in words: ``"an integer >= 1"``, ``"one of sgd, adam"``."""
        if self.type is str and self.choices is not None:
            return "one of " + ", ".join(self.choices)
        words = [_TYPE_WORDS[self.type]]
        for op, bound in ((">=", self.minimum), (">", self.above), ("<=", self.maximum), ("<", self.below)):
            if bound is not None:
                words.append(f"{op} {_num(bound)}")
        text = " ".join(words)
        return text + " or none" if self.nullable else text

    def describe(self) -> str:
        """One line for ``lossjax list -v``: meaning, type and range, default."""
        default = "required" if self.default is REQUIRED else f"default {self.default!r}"
        return f"{self.doc} ({self.describe_type()}; {default})"


def _num(v: float) -> str:
    """A bound as written in a message: ``1``, ``0.5``; a large power of 2 or 10 as ``2**32``."""
    if float(v).is_integer() and abs(v) >= 2**16:
        n = abs(int(v))
        for base in (2, 10):
            k = round(math.log(n, base))
            if base**k == n:
                return f"{'-' if v < 0 else ''}{base}**{k}"
    v = float(v)
    return str(int(v)) if v.is_integer() and abs(v) < 1e15 else repr(v)


def check_all(params: Sequence[Param], values: dict[str, Any], owner: str) -> dict[str, Any]:
    """Validates ``values`` against ``params``, filling defaults; names ``owner`` in errors.

    Raises ``ValueError`` for an unknown key (listing the allowed ones), a missing required one,
    or a bad value.
    """
    known = {p.name: p for p in params}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ValueError(
            f"unknown parameter(s) {', '.join(map(repr, unknown))} for {owner}; "
            f"allowed: {', '.join(known) or '(none)'}"
        )
    out = {}
    for p in params:
        if p.name in values:
            out[p.name] = p.check(values[p.name])
        elif p.default is REQUIRED:
            raise ValueError(f"{owner} needs parameter {p.name!r} ({p.describe_type()})")
        else:
            out[p.name] = p.default
    return out
