"""AWS IoT SQL functions (the "Functions" page of the AWS IoT SQL reference).

Each function takes already evaluated arguments and answers UNDEFINED for arguments it cannot
use, as AWS does ("Functions called with invalid arguments ... return Undefined"). Functions that
read the message's metadata take the evaluation ``Scope`` first. Names are case-insensitive
(the reference writes ``Round`` and ``isNull``), so the table is keyed in lower case.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import math
from collections.abc import Callable
from dataclasses import dataclass
from decimal import ROUND_DOWN, Context, Decimal
from typing import Any, Final

from .context import Scope
from .values import (
    UNDEFINED,
    is_number,
    load_json,
    mod,
    normalize,
    to_decimal,
    to_int,
    to_string,
)

__all__ = ["CASTS", "FUNCTIONS", "SQL_VERSION", "Function"]

SQL_VERSION: Final = "2016-03-23"


@dataclass(frozen=True)
class Function:
    """A SQL function: its implementation and how many arguments it accepts."""

    impl: Callable[..., Any]
    min_args: int
    max_args: int
    needs_scope: bool = False


FUNCTIONS: dict[str, Function] = {}


def _register(name: str, min_args: int, max_args: int | None = None, *, scope: bool = False) -> Callable[..., Any]:
    def decorate(impl: Callable[..., Any]) -> Callable[..., Any]:
        FUNCTIONS[name.lower()] = Function(impl, min_args, min_args if max_args is None else max_args, scope)
        return impl

    return decorate


# ------------------------------------------------------------------------------ metadata


@_register("topic", 0, 1, scope=True)
def _topic(s: Scope, *n: Any) -> Any:
    if not n:
        return s.topic
    index = to_int(n[0])
    if type(index) is not int:
        return UNDEFINED
    levels = s.levels()
    return levels[index - 1] if 1 <= index <= len(levels) else UNDEFINED


@_register("clientid", 0, scope=True)
def _clientid(s: Scope) -> Any:
    return "n/a" if s.ctx.client_id is None else s.ctx.client_id


@_register("principal", 0, scope=True)
def _principal(s: Scope) -> Any:
    return UNDEFINED if s.ctx.principal is None else s.ctx.principal


@_register("accountid", 0, scope=True)
def _accountid(s: Scope) -> Any:
    return UNDEFINED if s.ctx.account_id is None else s.ctx.account_id


@_register("traceid", 0, scope=True)
def _traceid(s: Scope) -> Any:
    trace_id = s.ctx.trace()
    return UNDEFINED if trace_id is None else trace_id


@_register("timestamp", 0, scope=True)
def _timestamp(s: Scope) -> Any:
    return s.now()


@_register("newuuid", 0, scope=True)
def _newuuid(s: Scope) -> Any:
    return s.ctx.newuuid()


@_register("sql_version", 0)
def _sql_version() -> Any:
    return SQL_VERSION


@_register("get_thing_shadow", 2, 3, scope=True)
def _get_thing_shadow(s: Scope, thing: Any, *rest: Any) -> Any:
    """``get_thing_shadow(thing, [shadowName,] roleArn)``: the shadow from the injected getter."""
    getter = s.ctx.get_thing_shadow
    if getter is None or any(type(v) is not str for v in (thing, *rest)):
        return UNDEFINED
    shadow_name = rest[0] if len(rest) == 2 else None
    document = getter(thing, rest[-1], shadow_name)
    return UNDEFINED if document is None else document


# -------------------------------------------------------------------------------- numeric


def _numeric(fn: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """Wrap a one-number function: strings convert to Decimal, everything else is Undefined."""

    def apply(value: Any) -> Any:
        number = to_decimal(value)
        if number is UNDEFINED:
            return UNDEFINED
        return fn(number)

    return apply


def _double(fn: Callable[[float], float]) -> Callable[[Any], Any]:
    """Functions AWS computes in double precision; domain errors are Undefined."""

    def apply(x: Any) -> Any:
        try:
            return normalize(fn(float(x)))
        except (ValueError, OverflowError):
            return UNDEFINED

    return _numeric(apply)


def _round_half_up(x: float) -> int:
    """round(): halves go away from zero (``round(1.5) = 2``, ``round(-1.5) = -2``)."""
    return int(math.copysign(math.floor(abs(x) + 0.5), x))


FUNCTIONS.update(
    {
        "abs": Function(_numeric(abs), 1, 1),
        "ceil": Function(_numeric(math.ceil), 1, 1),
        "floor": Function(_numeric(math.floor), 1, 1),
        "round": Function(_numeric(_round_half_up), 1, 1),
        "sign": Function(_numeric(lambda x: (x > 0) - (x < 0)), 1, 1),
        "sqrt": Function(_double(math.sqrt), 1, 1),
        "exp": Function(_double(math.exp), 1, 1),
        "ln": Function(_double(math.log), 1, 1),
        "log": Function(_double(math.log10), 1, 1),
        "sin": Function(_double(math.sin), 1, 1),
        "cos": Function(_double(math.cos), 1, 1),
        "tan": Function(_double(math.tan), 1, 1),
        "asin": Function(_double(math.asin), 1, 1),
        "acos": Function(_double(math.acos), 1, 1),
        "atan": Function(_double(math.atan), 1, 1),
        "sinh": Function(_double(math.sinh), 1, 1),
        "cosh": Function(_double(math.cosh), 1, 1),
        "tanh": Function(_double(math.tanh), 1, 1),
        "mod": Function(mod, 2, 2),
        "remainder": Function(mod, 2, 2),
    }
)


@_register("power", 2)
def _power(base: Any, exponent: Any) -> Any:
    x, y = to_decimal(base), to_decimal(exponent)
    if x is UNDEFINED or y is UNDEFINED:
        return UNDEFINED
    try:
        return normalize(math.pow(float(x), float(y)))
    except (ValueError, OverflowError):
        return UNDEFINED


@_register("atan2", 2)
def _atan2(y: Any, x: Any) -> Any:
    a, b = to_decimal(y), to_decimal(x)
    if a is UNDEFINED or b is UNDEFINED:
        return UNDEFINED
    return normalize(math.atan2(float(a), float(b)))


@_register("nanvl", 2)
def _nanvl(value: Any, fallback: Any) -> Any:
    """The fallback for Undefined and Null (this evaluator never produces a NaN Decimal)."""
    return fallback if value is UNDEFINED or value is None else value


# Digits enough for any double (up to 1e308) with AWS's 34 decimal places.
_WIDE: Final = Context(prec=400)


@_register("trunc", 2)
def _trunc(value: Any, places: Any) -> Any:
    number, digits = to_decimal(value), to_int(places)
    if number is UNDEFINED or type(digits) is not int:
        return UNDEFINED
    if type(number) is int:
        return number
    # In decimal, not binary: ``trunc(0.29, 2)`` is 0.29, where 0.29 * 100 is 28.999...
    places = Decimal(1).scaleb(-max(0, min(digits, 34)))
    return normalize(float(Decimal(repr(number)).quantize(places, ROUND_DOWN, _WIDE)))


def _bitwise(op: Callable[[int, int], int]) -> Callable[[Any, Any], Any]:
    def apply(left: Any, right: Any) -> Any:
        a, b = to_int(left), to_int(right)
        if type(a) is not int or type(b) is not int:
            return UNDEFINED
        return op(a, b)

    return apply


FUNCTIONS.update(
    {
        "bitand": Function(_bitwise(lambda a, b: a & b), 2, 2),
        "bitor": Function(_bitwise(lambda a, b: a | b), 2, 2),
        "bitxor": Function(_bitwise(lambda a, b: a ^ b), 2, 2),
        "bitnot": Function(lambda v: ~v if type(v := to_int(v)) is int else UNDEFINED, 1, 1),
    }
)


# --------------------------------------------------------------------------------- string


def _text(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a function of strings: arguments go through the standard String conversion first."""

    def apply(*args: Any) -> Any:
        texts = [to_string(a) for a in args]
        if UNDEFINED in texts:
            return UNDEFINED
        return fn(*texts)

    return apply


FUNCTIONS.update(
    {
        "lower": Function(_text(str.lower), 1, 1),
        "upper": Function(_text(str.upper), 1, 1),
        "trim": Function(_text(str.strip), 1, 1),
        "ltrim": Function(_text(lambda s: s.lstrip(" \t")), 1, 1),
        "rtrim": Function(_text(lambda s: s.rstrip(" \t")), 1, 1),
        "length": Function(_text(len), 1, 1),
        "numbytes": Function(_text(lambda s: len(s.encode("utf-8", "surrogatepass"))), 1, 1),
        "indexof": Function(_text(str.find), 2, 2),
        "startswith": Function(_text(str.startswith), 2, 2),
        "endswith": Function(_text(str.endswith), 2, 2),
        "replace": Function(_text(lambda s, old, new: s.replace(old, new)), 3, 3),
    }
)

# AWS also offers md2, which hashlib does not.
for _algorithm in ("md5", "sha1", "sha224", "sha256", "sha384", "sha512"):
    FUNCTIONS[_algorithm] = Function(
        _text(lambda s, a=_algorithm: hashlib.new(a, s.encode("utf-8", "surrogatepass")).hexdigest()), 1, 1
    )


@_register("substring", 2, 3)
def _substring(value: Any, start: Any, *end: Any) -> Any:
    text = to_string(value)
    first = to_int(start)
    if text is UNDEFINED or type(first) is not int:
        return UNDEFINED
    size = len(text)
    first = min(max(first, 0), size)
    if not end:
        return text[first:]
    last = to_int(end[0])
    if type(last) is not int:
        return UNDEFINED
    last = min(max(last, 0), size)
    return text[first:last] if first < last else ""


def _pad(left: bool) -> Callable[[Any, Any], Any]:
    def apply(value: Any, count: Any) -> Any:
        text, n = to_string(value), to_int(count)
        if text is UNDEFINED or type(n) is not int:
            return UNDEFINED
        spaces = " " * min(max(n, 0), 1000)
        return spaces + text if left else text + spaces

    return apply


FUNCTIONS["lpad"] = Function(_pad(True), 2, 2)
FUNCTIONS["rpad"] = Function(_pad(False), 2, 2)


@_register("chr", 1)
def _chr(code: Any) -> Any:
    n = to_int(code)
    return chr(n) if type(n) is int and 0 <= n < 128 else UNDEFINED


@_register("concat", 0, 1_000_000)
def _concat(*args: Any) -> Any:
    """Arrays if any argument is an Array, else the String conversions joined."""
    if not args:
        return UNDEFINED
    if len(args) == 1:
        return args[0]
    if any(type(a) is list for a in args):
        if UNDEFINED in args:
            return UNDEFINED
        joined: list[Any] = []
        for a in args:
            if type(a) is list:
                joined.extend(a)
            else:
                joined.append(a)
        return joined
    texts = [to_string(a) for a in args]
    return UNDEFINED if UNDEFINED in texts else "".join(texts)


# ------------------------------------------------------------------------ types, collections


@_register("isnull", 1)
def _isnull(value: Any) -> Any:
    return value is None


@_register("isundefined", 1)
def _isundefined(value: Any) -> Any:
    return value is UNDEFINED


@_register("get", 2)
def _get(collection: Any, key: Any) -> Any:
    t = type(collection)
    if t is dict:
        return collection.get(key, UNDEFINED) if type(key) is str else UNDEFINED
    if t is list or t is str:
        index = to_int(key)
        if type(index) is int and 0 <= index < len(collection):
            return collection[index]
    return UNDEFINED


@_register("decode", 2)
def _decode(value: Any, scheme: Any) -> Any:
    """base64 only; a decoded JSON document is addressable, other text is a String, bad input Null."""
    if type(scheme) is not str or scheme.lower() != "base64" or type(value) is not str:
        return UNDEFINED
    try:
        raw = base64.b64decode(value, validate=True)
        text = raw.decode("utf-8")
    except (binascii.Error, ValueError):
        return None
    document = load_json(raw)
    return text if document is UNDEFINED else document


@_register("encode", 2)
def _encode(value: Any, scheme: Any) -> Any:
    """``encode(value, 'base64')``; the compiler passes the raw payload bytes for ``*``."""
    if type(scheme) is not str or scheme.lower() != "base64":
        return UNDEFINED
    if type(value) is bytes:
        return base64.b64encode(value).decode("ascii")
    text = to_string(value)
    if text is UNDEFINED:
        return UNDEFINED
    return base64.b64encode(text.encode("utf-8", "surrogatepass")).decode("ascii")


# ----------------------------------------------------------------------------------- cast


def _cast_int(value: Any) -> Any:
    if type(value) is bool:
        return int(value)
    return to_int(value)


def _cast_decimal(value: Any) -> Any:
    if type(value) is bool:
        return int(value)
    number = to_decimal(value)
    return normalize(number) if type(number) is float else number


def _cast_bool(value: Any) -> Any:
    if is_number(value):
        return value != 0
    if type(value) is bool:
        return value
    if type(value) is str and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return UNDEFINED


# The type names ``cast(x AS <type>)`` accepts in SQL version 2016-03-23.
CASTS: Final[dict[str, Callable[[Any], Any]]] = {
    "string": to_string,
    "nvarchar": to_string,
    "text": to_string,
    "ntext": to_string,
    "varchar": to_string,
    "int": _cast_int,
    "integer": _cast_int,
    "double": _cast_decimal,
    "decimal": _cast_decimal,
    "bool": _cast_bool,
    "boolean": _cast_bool,
}
