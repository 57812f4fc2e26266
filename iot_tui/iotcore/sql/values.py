"""AWS IoT SQL values: the Undefined sentinel, the standard conversions and the operator tables.

Values are plain Python: ``int`` (Int), ``float`` (Decimal), ``bool``, ``str``, ``list``, ``dict``,
``None`` (Null) and ``UNDEFINED``. Every function here follows the tables on the AWS IoT SQL
reference pages "Data types" and "Operators"; none of them raises on any value, because a rule
that meets an odd payload yields Undefined on AWS rather than failing.

SQL version 2016-03-23 processes whole-number Decimals as Ints (``10.0`` is ``10``), so decoded
payloads and arithmetic results go through ``normalize``.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any, Final

__all__ = [
    "UNDEFINED",
    "add",
    "compare",
    "div",
    "eq",
    "is_number",
    "load_json",
    "mod",
    "mul",
    "ne",
    "neg",
    "normalize",
    "same",
    "sub",
    "to_bool",
    "to_decimal",
    "to_int",
    "to_string",
]


class _Undefined:
    """The SQL ``Undefined``: a missing field, or a function given arguments it cannot use."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "Undefined"

    def __bool__(self) -> bool:
        return False


UNDEFINED: Final = _Undefined()

# Floats inside this range are exact integers; outside it an Int would pretend to a precision it lacks.
_EXACT: Final = 2.0**53
# AWS converts strings matching this pattern (and only those) to Decimal.
_DECIMAL_RE: Final = re.compile(r"-?\d+(?:\.\d+)?(?:[eE]-?\d+)?\Z", re.ASCII)


def is_number(value: Any) -> bool:
    """Int or Decimal; ``bool`` is a subclass of ``int`` in Python but not a number in AWS IoT SQL."""
    t = type(value)
    return t is int or t is float


def normalize(value: float) -> Any:
    """A Decimal result as SQL V2 keeps it: whole numbers become Int, NaN and infinities Undefined."""
    if type(value) is not float:
        return value
    if not math.isfinite(value):
        return UNDEFINED
    if value.is_integer() and -_EXACT <= value <= _EXACT:
        return int(value)
    return value


def _parse_float(text: str) -> Any:
    value = float(text)
    if not math.isfinite(value):  # beyond a double: refuse rather than emit Infinity
        raise ValueError(f"number out of range: {text[:40]}")
    if value.is_integer() and -_EXACT <= value <= _EXACT:
        return int(value)
    return value


def _reject_constant(text: str) -> Any:
    raise ValueError(f"not JSON: {text}")


# One decoder for every payload: ``json.loads`` with hooks would build a new one per call.
_DECODER: Final = json.JSONDecoder(parse_float=_parse_float, parse_constant=_reject_constant)


def load_json(payload: bytes) -> Any:
    """Decode a UTF-8 JSON payload; UNDEFINED when it is not one (a binary payload)."""
    try:
        return _DECODER.decode(payload.decode("utf-8"))
    except (ValueError, RecursionError):  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        return UNDEFINED


# ----------------------------------------------------------------------------- conversions


def to_decimal(value: Any) -> Any:
    """The "To Decimal" conversion used by arithmetic and ordering (Int stays Int, Null is not a number)."""
    t = type(value)
    if t is int or t is float:
        return value
    if t is str and _DECIMAL_RE.match(value):
        try:
            number = float(value) if "." in value or "e" in value or "E" in value else int(value)
        except ValueError:  # more digits than Python converts to int
            return UNDEFINED
        return number if type(number) is int or math.isfinite(number) else UNDEFINED
    return UNDEFINED


def to_int(value: Any) -> Any:
    """Int argument of a function (topic(n), substring): Decimals and numeric strings round down."""
    number = to_decimal(value)
    if type(number) is float:
        if not math.isfinite(number):
            return UNDEFINED
        return math.floor(number)
    return number


def _format_decimal(value: float) -> str:
    text = repr(value)
    return text.upper() if "e" in text else text


def to_string(value: Any) -> Any:
    """The "To String" conversion: JSON for arrays and objects, Undefined for Null and Undefined."""
    t = type(value)
    if t is str:
        return value
    if t is bool:
        return "true" if value else "false"
    if t is int:
        return str(value)
    if t is float:
        return _format_decimal(value)
    if t is list or t is dict:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return UNDEFINED


def to_bool(value: Any) -> Any:
    """Operand of AND, OR, NOT and WHERE: Booleans, or the strings "true"/"false" in any case."""
    if type(value) is bool:
        return value
    if type(value) is str:
        lowered = value.lower()
        if lowered == "true":
            return True
        if lowered == "false":
            return False
    return UNDEFINED


# -------------------------------------------------------------------------------- equality


def same(left: Any, right: Any) -> bool:
    """Deep equality with AWS's types: Int equals Decimal by value, a Boolean never equals a number.

    Iterative, so a deeply nested payload cannot exhaust the stack.
    """
    pending = [(left, right)]
    while pending:
        a, b = pending.pop()
        ta, tb = type(a), type(b)
        if (ta is int or ta is float) and (tb is int or tb is float):
            if a != b:
                return False
        elif ta is not tb:
            return False
        elif ta is list:
            if len(a) != len(b):
                return False
            pending.extend(zip(a, b, strict=True))
        elif ta is dict:
            if a.keys() != b.keys():
                return False
            pending.extend((v, b[k]) for k, v in a.items())
        elif a != b:
            return False
    return True


def eq(left: Any, right: Any) -> Any:
    """``=``: Undefined if either side is Undefined, False for mismatched types."""
    if left is UNDEFINED or right is UNDEFINED:
        return UNDEFINED
    return same(left, right)


def ne(left: Any, right: Any) -> Any:
    """``<>`` and ``!=``: Undefined if either side is Undefined, True for mismatched types."""
    if left is UNDEFINED or right is UNDEFINED:
        return UNDEFINED
    return not same(left, right)


def compare(left: Any, right: Any) -> Any:
    """Operands of ``< <= > >=`` as two numbers, or UNDEFINED unless both convert to Decimal."""
    lt, rt = type(left), type(right)
    if (lt is int or lt is float) and (rt is int or rt is float):
        return left, right
    a = to_decimal(left)
    b = to_decimal(right)
    if a is UNDEFINED or b is UNDEFINED:
        return UNDEFINED
    return a, b


# ------------------------------------------------------------------------------ arithmetic


def add(left: Any, right: Any) -> Any:
    """``+``: Int + Int is Int, numbers add as Decimal, and a String on either side concatenates."""
    lt, rt = type(left), type(right)
    if lt is int and rt is int:
        return left + right
    if lt is str or rt is str:
        a = to_string(left)
        b = to_string(right)
        if a is UNDEFINED or b is UNDEFINED:
            return UNDEFINED
        return a + b
    if (lt is int or lt is float) and (rt is int or rt is float):
        return normalize(left + right)
    return UNDEFINED


def _operands(left: Any, right: Any) -> Any:
    a = to_decimal(left)
    b = to_decimal(right)
    if a is UNDEFINED or b is UNDEFINED:
        return UNDEFINED
    return a, b


def sub(left: Any, right: Any) -> Any:
    """``-``: numbers, or strings that convert to Decimal."""
    if type(left) is int and type(right) is int:
        return left - right
    pair = _operands(left, right)
    if pair is UNDEFINED:
        return UNDEFINED
    return normalize(pair[0] - pair[1])


def mul(left: Any, right: Any) -> Any:
    """``*``: numbers, or strings that convert to Decimal."""
    if type(left) is int and type(right) is int:
        return left * right
    pair = _operands(left, right)
    if pair is UNDEFINED:
        return UNDEFINED
    return normalize(pair[0] * pair[1])


def div(left: Any, right: Any) -> Any:
    """``/``: Int / Int truncates toward zero as AWS's Java engine does; division by zero is Undefined."""
    pair = _operands(left, right)
    if pair is UNDEFINED:
        return UNDEFINED
    a, b = pair
    if b == 0:
        return UNDEFINED
    if type(a) is int and type(b) is int and type(left) is int and type(right) is int:
        quotient = abs(a) // abs(b)
        return quotient if (a < 0) == (b < 0) else -quotient
    return normalize(a / b)


def mod(left: Any, right: Any) -> Any:
    """``%`` and mod(): the remainder takes the sign of the dividend (Java's ``%``)."""
    pair = _operands(left, right)
    if pair is UNDEFINED:
        return UNDEFINED
    a, b = pair
    if b == 0:
        return UNDEFINED
    if type(a) is int and type(b) is int:
        remainder = abs(a) % abs(b)
        return remainder if a >= 0 else -remainder
    return normalize(math.fmod(a, b))


def neg(value: Any) -> Any:
    """Unary ``-``."""
    number = to_decimal(value)
    if number is UNDEFINED:
        return UNDEFINED
    return -number
