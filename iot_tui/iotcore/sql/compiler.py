"""Compile ``nodes`` into Python closures, once per rule.

Every publish that matches a rule's topic runs its WHERE and SELECT, so evaluation must not walk
a tree: each node becomes a closure ``(doc, scope) -> value`` and the common shapes (a field
path, a comparison with a constant) get closures of their own.
"""

from __future__ import annotations

import json
import operator
from collections.abc import Callable
from typing import Any, Final

from .context import Scope
from .functions import CASTS, FUNCTIONS, Function
from .nodes import (
    ArrayLiteral,
    Binary,
    Call,
    Case,
    Cast,
    Field,
    Index,
    Literal,
    Member,
    Node,
    ObjectLiteral,
    Select,
    Star,
    Subquery,
    Unary,
)
from .values import UNDEFINED, add, compare, div, eq, mod, mul, ne, neg, same, sub, to_bool, to_decimal, to_int

__all__ = ["MAX_DEPTH", "Evaluator", "Selector", "TooDeep", "compile_expr", "compile_select", "output_key"]

Evaluator = Callable[[Any, Scope], Any]
"""A compiled expression: ``(decoded payload, scope) -> value``."""

Selector = Callable[[Any, Scope], "dict[str, Any] | bytes"]
"""A compiled SELECT clause: the message the rule's actions send."""

MAX_DEPTH: Final = 100
"""Deeper expressions are refused: evaluation recurses once per level (AND and OR chains count once)."""


class TooDeep(Exception):
    """An expression nested deeper than MAX_DEPTH."""


# What an operator or function meets on odd values (overflow, a payload too deep to serialize):
# on AWS the result is Undefined, never a failed rule.
_VALUE_ERRORS: Final = (ArithmeticError, ValueError, RecursionError)


_ARITHMETIC: Final[dict[str, Callable[[Any, Any], Any]]] = {"+": add, "-": sub, "*": mul, "/": div, "%": mod}
_ORDER: Final[dict[str, Callable[[Any, Any], bool]]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


def _path(node: Node) -> list[str] | None:
    """``a.b.c`` as ["a", "b", "c"]; None when the node is not a plain field path."""
    names: list[str] = []
    while isinstance(node, Member):
        names.append(node.name)
        node = node.base
    if not isinstance(node, Field):
        return None
    names.append(node.name)
    names.reverse()
    return names


def _compile_path(names: list[str]) -> Evaluator:
    if len(names) == 1:
        name = names[0]

        def field(doc: Any, s: Scope) -> Any:
            return doc.get(name, UNDEFINED) if type(doc) is dict else UNDEFINED

        return field

    def path(doc: Any, s: Scope) -> Any:
        value = doc
        for name in names:
            if type(value) is not dict:
                return UNDEFINED
            value = value.get(name, UNDEFINED)
        return value

    return path


def _compile_member(base: Evaluator, name: str) -> Evaluator:
    def member(doc: Any, s: Scope) -> Any:
        value = base(doc, s)
        return value.get(name, UNDEFINED) if type(value) is dict else UNDEFINED

    return member


def _compile_index(base: Evaluator, index: Evaluator) -> Evaluator:
    def item(doc: Any, s: Scope) -> Any:
        value = base(doc, s)
        key = index(doc, s)
        if type(value) is list:
            position = key if type(key) is int else to_int(key)
            if type(position) is int and 0 <= position < len(value):
                return value[position]
        elif type(value) is dict and type(key) is str:
            return value.get(key, UNDEFINED)
        return UNDEFINED

    return item


def _compile_order(op: str, left: Evaluator, right: Evaluator, right_node: Node) -> Evaluator:
    compare_op = _ORDER[op]
    if isinstance(right_node, Literal) and type(right_node.value) in (int, float):
        constant = right_node.value

        def against_constant(doc: Any, s: Scope) -> Any:
            value = left(doc, s)
            if type(value) is not int and type(value) is not float:
                value = to_decimal(value)
                if value is UNDEFINED:
                    return UNDEFINED
            return compare_op(value, constant)

        return against_constant

    def order(doc: Any, s: Scope) -> Any:
        pair = compare(left(doc, s), right(doc, s))
        if pair is UNDEFINED:
            return UNDEFINED
        return compare_op(pair[0], pair[1])

    return order


def _operands_of(node: Binary) -> list[Node]:
    """``a OR b OR c`` as [a, b, c]: a long chain compiles flat, not one level per operator."""
    operands: list[Node] = []
    pending: list[Node] = [node]
    while pending:
        current = pending.pop()
        if isinstance(current, Binary) and current.op == node.op:
            pending += (current.right, current.left)
        else:
            operands.append(current)
    return operands


def _compile_logic(node: Binary, depth: int) -> Evaluator:
    """AND / OR over Booleans and "true"/"false" strings; with a non-Boolean operand, three-valued.

    AWS's tables give Boolean results for Boolean-like operands and Undefined when neither is;
    for one of each we follow SQL's three-valued logic, so ``missing = 1 OR ok`` is true when
    ``ok`` is, and ``missing = 1 AND false`` is false.
    """
    operands = [compile_expr(operand, depth + 1) for operand in _operands_of(node)]
    decisive = node.op == "OR"  # the operand value that settles the result on its own

    def logic(doc: Any, s: Scope) -> Any:
        undefined = False
        for operand in operands:
            value = operand(doc, s)
            if type(value) is not bool:
                value = to_bool(value)
            if value is decisive:
                return decisive
            if value is UNDEFINED:
                undefined = True
        return UNDEFINED if undefined else not decisive

    return logic


def _compile_binary(node: Binary, depth: int) -> Evaluator:
    op = node.op
    if op in ("AND", "OR"):
        return _compile_logic(node, depth)
    left = compile_expr(node.left, depth + 1)
    right = compile_expr(node.right, depth + 1)
    if op in _ORDER:
        return _compile_order(op, left, right, node.right)
    if op == "IN":

        def contained(doc: Any, s: Scope) -> Any:
            needle, haystack = left(doc, s), right(doc, s)
            if needle is UNDEFINED or type(haystack) is not list:
                return UNDEFINED
            return any(same(needle, item) for item in haystack)

        return contained
    fn = eq if op == "=" else ne if op == "<>" else _ARITHMETIC[op]

    def binary(doc: Any, s: Scope) -> Any:
        try:
            return fn(left(doc, s), right(doc, s))
        except _VALUE_ERRORS:  # an Int too large for a Decimal, a document too deep for JSON
            return UNDEFINED

    return binary


def _compile_unary(node: Unary, depth: int) -> Evaluator:
    operand = compile_expr(node.operand, depth + 1)
    if node.op == "NOT":

        def negation(doc: Any, s: Scope) -> Any:
            value = to_bool(operand(doc, s))
            return UNDEFINED if value is UNDEFINED else not value

        return negation

    return lambda doc, s: neg(operand(doc, s))


def _compile_case(node: Case, depth: int) -> Evaluator:
    whens = [(compile_expr(c, depth + 1), compile_expr(r, depth + 1)) for c, r in node.whens]
    default = compile_expr(node.default, depth + 1) if node.default is not None else None
    if node.operand is None:

        def searched(doc: Any, s: Scope) -> Any:
            for condition, result in whens:
                if to_bool(condition(doc, s)) is True:
                    return result(doc, s)
            return UNDEFINED if default is None else default(doc, s)

        return searched

    subject = compile_expr(node.operand, depth + 1)

    def simple(doc: Any, s: Scope) -> Any:
        value = subject(doc, s)
        if value is UNDEFINED:
            return UNDEFINED
        for candidate, result in whens:
            if eq(value, candidate(doc, s)) is True:
                return result(doc, s)
        return UNDEFINED if default is None else default(doc, s)

    return simple


def _raw_payload(doc: Any, s: Scope) -> Any:
    return s.payload


def _compile_call(node: Call, depth: int) -> Evaluator:
    function: Function = FUNCTIONS[node.name]
    if not function.min_args <= len(node.args) <= function.max_args:
        # AWS: "Functions called with ... the wrong number of arguments return Undefined".
        return lambda doc, s: UNDEFINED
    args = [
        _raw_payload if node.name == "encode" and i == 0 and isinstance(a, Star) else compile_expr(a, depth + 1)
        for i, a in enumerate(node.args)
    ]
    impl = function.impl
    if function.needs_scope:
        if not args:
            return lambda doc, s: impl(s)
        if len(args) == 1:
            only_arg = args[0]
            return lambda doc, s: impl(s, only_arg(doc, s))

        def contextual(doc: Any, s: Scope) -> Any:
            return impl(s, *[a(doc, s) for a in args])

        return contextual
    if len(args) == 1:
        only = args[0]

        def unary_call(doc: Any, s: Scope) -> Any:
            try:
                return impl(only(doc, s))
            except _VALUE_ERRORS:
                return UNDEFINED

        return unary_call

    def call(doc: Any, s: Scope) -> Any:
        try:
            return impl(*[a(doc, s) for a in args])
        except _VALUE_ERRORS:
            return UNDEFINED

    return call


def _compile_array(node: ArrayLiteral, depth: int) -> Evaluator:
    items = [compile_expr(i, depth + 1) for i in node.items]

    def array(doc: Any, s: Scope) -> Any:
        return [v for item in items if (v := item(doc, s)) is not UNDEFINED]

    return array


def _compile_object(node: ObjectLiteral, depth: int) -> Evaluator:
    pairs = [(key, compile_expr(value, depth + 1)) for key, value in node.pairs]

    def obj(doc: Any, s: Scope) -> Any:
        return {key: v for key, value in pairs if (v := value(doc, s)) is not UNDEFINED}

    return obj


def compile_expr(node: Node, depth: int = 0) -> Evaluator:
    """The closure that evaluates ``node``; raises TooDeep past MAX_DEPTH levels."""
    if depth > MAX_DEPTH:
        raise TooDeep
    if isinstance(node, Literal):
        constant = node.value
        return lambda doc, s: constant
    names = _path(node)
    if names is not None:
        return _compile_path(names)
    if isinstance(node, Member):
        return _compile_member(compile_expr(node.base, depth + 1), node.name)
    if isinstance(node, Index):
        return _compile_index(compile_expr(node.base, depth + 1), compile_expr(node.index, depth + 1))
    if isinstance(node, Binary):
        return _compile_binary(node, depth)
    if isinstance(node, Unary):
        return _compile_unary(node, depth)
    if isinstance(node, Call):
        return _compile_call(node, depth)
    if isinstance(node, Cast):
        operand = compile_expr(node.operand, depth + 1)
        convert = CASTS[node.type_name]

        def cast(doc: Any, s: Scope) -> Any:
            try:
                return convert(operand(doc, s))
            except _VALUE_ERRORS:
                return UNDEFINED

        return cast
    if isinstance(node, Case):
        return _compile_case(node, depth)
    if isinstance(node, ArrayLiteral):
        return _compile_array(node, depth)
    if isinstance(node, ObjectLiteral):
        return _compile_object(node, depth)
    if isinstance(node, Subquery):
        return _compile_subquery(node, depth)
    # Star outside encode(): the decoded payload (Undefined for a binary one).
    return lambda doc, s: doc


def output_key(expr: Node, alias: str | None, position: int) -> str:
    """The key a SELECT item gets: its alias, else the field or function name, else ``_<position>``."""
    if alias is not None:
        return alias
    if isinstance(expr, Field | Member):
        return expr.name
    if isinstance(expr, Call):
        return expr.name
    return f"_{position}"


def _is_whole_star(select: Select) -> bool:
    return len(select.items) == 1 and isinstance(select.items[0].expr, Star) and select.items[0].alias is None


def _set_nested(out: dict[str, Any], path: list[str], value: Any) -> None:
    """``AS a.b``: put ``value`` at out["a"]["b"], copying objects on the way (they may be the payload's)."""
    node = out
    for name in path[:-1]:
        child = node.get(name)
        child = dict(child) if type(child) is dict else {}
        node[name] = child
        node = child
    node[path[-1]] = value


def _compile_projection(select: Select, depth: int) -> Evaluator:
    """SELECT's value for one document: the VALUE expression's value, or the object of its items."""
    if select.value:
        return compile_expr(select.items[0].expr, depth + 1)
    if _is_whole_star(select):
        return lambda doc, s: doc
    plan: list[tuple[str | None, Evaluator]] = [
        (
            None if isinstance(item.expr, Star) and item.alias is None else output_key(item.expr, item.alias, i),
            compile_expr(item.expr, depth + 1),
        )
        for i, item in enumerate(select.items, start=1)
    ]

    def select_items(doc: Any, s: Scope) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, expr in plan:
            if key is None:
                if type(doc) is dict:
                    out.update(doc)
                continue
            result = expr(doc, s)
            if result is UNDEFINED:
                continue
            if "." in key:
                _set_nested(out, key.split("."), result)
            else:
                out[key] = result
        return out

    return select_items


def _compile_subquery(node: Subquery, depth: int) -> Evaluator:
    """``(SELECT .. FROM array [WHERE ..])``: the projection of each element WHERE lets through."""
    project = _compile_projection(node.select, depth)
    source = compile_expr(node.source, depth + 1)
    where = None if node.where is None else compile_expr(node.where, depth + 1)

    def subquery(doc: Any, s: Scope) -> Any:
        elements = source(doc, s)
        if type(elements) is not list:
            if type(elements) is not dict:
                return UNDEFINED
            elements = [elements]
        out = []
        for element in elements:
            if where is not None:
                verdict = where(element, s)
                if verdict is not True and to_bool(verdict) is not True:
                    continue
            result = project(element, s)
            if result is not UNDEFINED:
                out.append(result)
        return out

    return subquery


def _whole_payload(doc: Any, s: Scope) -> dict[str, Any] | bytes:
    """``SELECT *``: the decoded object, or the payload untouched when it is not a JSON object."""
    return doc if type(doc) is dict else s.payload


def compile_select(select: Select) -> Selector:
    """The closure that builds the outgoing message from the SELECT clause."""
    if _is_whole_star(select):
        return _whole_payload
    project = _compile_projection(select, 0)
    if not select.value:
        return project

    def value(doc: Any, s: Scope) -> dict[str, Any] | bytes:
        result = project(doc, s)
        if type(result) is dict:
            return result
        # "Undefined is converted to an empty string when serialized by itself."
        return b"" if result is UNDEFINED else json.dumps(result, separators=(",", ":")).encode()

    return value
