"""The parsed form of an AWS IoT SQL statement.

Small frozen dataclasses, so the rules builder can inspect a statement (which fields it reads,
which functions it calls) and tests can compare parses; the compiler turns them into closures.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = [
    "ArrayLiteral",
    "Binary",
    "Call",
    "Case",
    "Cast",
    "Field",
    "Index",
    "Literal",
    "Member",
    "Node",
    "ObjectLiteral",
    "Select",
    "SelectItem",
    "Star",
    "Subquery",
    "Unary",
]


@dataclass(frozen=True)
class Literal:
    """A number, string, true/false or null written in the statement."""

    value: Any


@dataclass(frozen=True)
class Star:
    """``*``: the whole payload (raw bytes when it is not JSON)."""


@dataclass(frozen=True)
class Field:
    """A top-level payload field: ``temperature``."""

    name: str


@dataclass(frozen=True)
class Member:
    """``base.name``."""

    base: Node
    name: str


@dataclass(frozen=True)
class Index:
    """``base[index]``."""

    base: Node
    index: Node


@dataclass(frozen=True)
class Unary:
    """``-x`` or ``NOT x`` (op is ``-`` or ``NOT``)."""

    op: str
    operand: Node


@dataclass(frozen=True)
class Binary:
    """Arithmetic, comparison, ``AND``, ``OR`` and ``IN``; ``op`` as written, keywords upper-cased."""

    op: str
    left: Node
    right: Node


@dataclass(frozen=True)
class Case:
    """``CASE [operand] WHEN .. THEN .. [ELSE ..] END``; operand None for the searched form."""

    operand: Node | None
    whens: tuple[tuple[Node, Node], ...]
    default: Node | None


@dataclass(frozen=True)
class Call:
    """A function call; ``name`` in lower case (function names are case-insensitive)."""

    name: str
    args: tuple[Node, ...]


@dataclass(frozen=True)
class Cast:
    """``cast(operand AS type_name)``; ``type_name`` in lower case."""

    operand: Node
    type_name: str


@dataclass(frozen=True)
class ArrayLiteral:
    """``[a, b, ...]``."""

    items: tuple[Node, ...]


@dataclass(frozen=True)
class ObjectLiteral:
    """``{'key': value, ...}``."""

    pairs: tuple[tuple[str, Node], ...]


@dataclass(frozen=True)
class Subquery:
    """A nested object query: ``(SELECT .. FROM source [WHERE ..])`` over an array in the payload."""

    select: Select
    source: Node
    where: Node | None


Node = (
    Literal
    | Star
    | Field
    | Member
    | Index
    | Unary
    | Binary
    | Case
    | Call
    | Cast
    | ArrayLiteral
    | ObjectLiteral
    | Subquery
)


@dataclass(frozen=True)
class SelectItem:
    """One SELECT item; ``alias`` is the ``AS`` name (dotted for a nested key), None when there is none."""

    expr: Node
    alias: str | None = None


@dataclass(frozen=True)
class Select:
    """The SELECT clause; ``value`` for ``SELECT VALUE expr`` (a payload that is not an object)."""

    items: tuple[SelectItem, ...]
    value: bool = False
