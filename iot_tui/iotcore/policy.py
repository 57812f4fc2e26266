"""AWS IoT Core policies: parse, validate and evaluate, as the broker must.

Pure logic, standard library only. Sources: the developer guide pages "AWS IoT
Core policies", "AWS IoT Core policy actions", "AWS IoT Core action resources",
"AWS IoT Core policy variables" (basic, thing and X.509 certificate variables)
and the IAM pages on condition operators and policy variables, whose
conventions AWS IoT policies follow.

Evaluation in short:
- a statement applies when its Action (or NotAction) matches the action, its
  Resource (or NotResource) matches the resource ARN and its Condition holds;
- any applicable Deny wins (EXPLICIT_DENY); else any applicable Allow wins
  (ALLOWED); else IMPLICIT_DENY;
- actions match case-insensitively, resources case-sensitively; both take the
  wildcards ``*`` and ``?``; MQTT's ``+`` and ``#`` are literal characters;
- ``${...}`` policy variables are substituted (Version 2012-10-17 only, as in
  IAM) before matching; the substituted value is literal text, never a
  wildcard. A variable that cannot be resolved (no thing attached, attribute
  missing, certificate field absent or holding a wildcard character) makes
  that resource entry match nothing, so an Allow built on it does not apply
  (the guide: "this variable won't be resolved and will result in an access
  denied error") and neither does a Deny.
"""

from __future__ import annotations

import functools
import ipaddress
import json
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

__all__ = [
    "MAX_POLICY_CHARS",
    "VERSION_2008",
    "VERSION_2012",
    "AuthContext",
    "Decision",
    "MalformedPolicyError",
    "Policy",
    "Statement",
    "StatementRef",
    "client_arn",
    "evaluate",
    "parse_policy",
    "policy_size",
    "thing_arn",
    "topic_arn",
    "topicfilter_arn",
]

MAX_POLICY_CHARS = 2048
VERSION_2012 = "2012-10-17"
VERSION_2008 = "2008-10-17"
_MALFORMED = "Policy document is malformed"

DecisionKind = Literal["ALLOWED", "EXPLICIT_DENY", "IMPLICIT_DENY"]


class MalformedPolicyError(ValueError):
    """A document AWS IoT would refuse with MalformedPolicyException (HTTP 400)."""

    def __init__(self, detail: str) -> None:
        self.detail = detail
        super().__init__(f"{_MALFORMED}: {detail}")


# ---------------------------------------------------------------------------- ARNs


def _arn(partition: str, region: str, account: str, kind: str, name: str) -> str:
    return f"arn:{partition}:iot:{region}:{account}:{kind}/{name}"


def client_arn(region: str, account: str, client_id: str, *, partition: str = "aws") -> str:
    """Resource for ``iot:Connect``."""
    return _arn(partition, region, account, "client", client_id)


def topic_arn(region: str, account: str, topic: str, *, partition: str = "aws") -> str:
    """Resource for ``iot:Publish``, ``iot:Receive``, ``iot:RetainPublish``."""
    return _arn(partition, region, account, "topic", topic)


def topicfilter_arn(region: str, account: str, topic_filter: str, *, partition: str = "aws") -> str:
    """Resource for ``iot:Subscribe``."""
    return _arn(partition, region, account, "topicfilter", topic_filter)


def thing_arn(
    region: str,
    account: str,
    thing_name: str,
    shadow_name: str | None = None,
    *,
    partition: str = "aws",
) -> str:
    """Resource for the shadow actions: ``thing/<thing>`` or ``thing/<thing>/<shadow>``."""
    name = thing_name if shadow_name is None else f"{thing_name}/{shadow_name}"
    return _arn(partition, region, account, "thing", name)


# ------------------------------------------------------------------------- context


@dataclass(slots=True)
class AuthContext:
    """Who is asking: the facts policy variables and condition keys resolve from.

    Build one per connection. Thing fields count only when ``is_attached`` is
    true (the certificate is attached to that thing). Certificate name fields
    map an attribute name as AWS spells it in variables (``CommonName``,
    ``Organization``, ``DNSName``...) to its values in certificate order.
    ``condition_keys`` carries any other condition key (``iot:ConnectAttributes``,
    ``aws:CurrentTime``...) as a list of strings.
    """

    region: str
    account_id: str
    client_id: str | None = None
    thing_name: str | None = None
    thing_type_name: str | None = None
    thing_attributes: Mapping[str, str] = field(default_factory=dict)
    is_attached: bool = False
    certificate_id: str | None = None
    certificate_subject: Mapping[str, Sequence[str]] = field(default_factory=dict)
    certificate_issuer: Mapping[str, Sequence[str]] = field(default_factory=dict)
    certificate_subject_alt_names: Mapping[str, Sequence[str]] = field(default_factory=dict)
    certificate_issuer_alt_names: Mapping[str, Sequence[str]] = field(default_factory=dict)
    certificate_serial_number: str | None = None
    source_ip: str | None = None
    domain_name: str | None = None
    condition_keys: Mapping[str, Sequence[str]] = field(default_factory=dict)

    def client_arn(self, client_id: str | None = None) -> str:
        return client_arn(self.region, self.account_id, client_id or self.client_id or "")

    def topic_arn(self, topic: str) -> str:
        return topic_arn(self.region, self.account_id, topic)

    def topicfilter_arn(self, topic_filter: str) -> str:
        return topicfilter_arn(self.region, self.account_id, topic_filter)

    def thing_arn(self, thing_name: str, shadow_name: str | None = None) -> str:
        return thing_arn(self.region, self.account_id, thing_name, shadow_name)


# Certificate limits ("X.509 Certificate policy variable limitations").
_CERT_MAX_ITEMS = 5
_CERT_MAX_CHARS = 1024
_CERT_WILDCARDS = frozenset("*$+?#")
_CERT_ESCAPE = re.compile(r'([,"\\=<>;+])')


def _lookup(mapping: Mapping[str, Sequence[str]], name: str) -> list[str] | None:
    """Case-insensitive attribute lookup, limited to AWS's five array items."""
    folded = name.casefold()
    for key, values in mapping.items():
        if key.casefold() == folded:
            if isinstance(values, str):
                return [values]
            return list(values)[:_CERT_MAX_ITEMS] or None
    return None


def _cert_values(ctx: AuthContext, path: str) -> list[str] | None:
    """Values for ``Subject.CommonName``, ``Issuer.AlternativeName.DNSName``, ``SerialNumber``."""
    folded = path.casefold()
    if folded == "serialnumber":
        serial = ctx.certificate_serial_number
        return [serial] if serial else None
    side, _, attr = path.partition(".")
    side = side.casefold()
    alt = attr.casefold().startswith("alternativename.")
    if alt:
        attr = attr[len("AlternativeName.") :]
    if side == "subject":
        source = ctx.certificate_subject_alt_names if alt else ctx.certificate_subject
    elif side == "issuer":
        source = ctx.certificate_issuer_alt_names if alt else ctx.certificate_issuer
    else:
        return None
    return _lookup(source, attr) if attr else None


def _available_cert_keys(ctx: AuthContext) -> list[str]:
    """``iot:Certificate.AvailableKeys``: names of certificate keys that hold values."""
    keys: list[str] = []
    for side, names, alts in (
        ("Subject", ctx.certificate_subject, ctx.certificate_subject_alt_names),
        ("Issuer", ctx.certificate_issuer, ctx.certificate_issuer_alt_names),
    ):
        keys += [f"iot:Certificate.{side}.{k}" for k, v in names.items() if v]
        keys += [f"iot:Certificate.{side}.AlternativeName.{k}" for k, v in alts.items() if v]
    if ctx.certificate_serial_number:
        keys.append("iot:Certificate.SerialNumber")
    return keys


def _split_index(path: str) -> tuple[str, int | None, bool]:
    """``Subject.Country.1`` -> (``Subject.Country``, 1, False); ``.List`` -> (.., None, True)."""
    head, dot, tail = path.rpartition(".")
    if dot and tail.isdigit():
        return head, int(tail), False
    if dot and tail.casefold() == "list":
        return head, None, True
    return path, None, False


_THING_ATTR = re.compile(r"iot:connection\.thing\.attributes\[(.*)\]", re.IGNORECASE | re.DOTALL)
_CERT_PREFIX = "iot:certificate."


def _resolve_key(ctx: AuthContext, key: str) -> list[str] | None:
    """Values of a condition key / policy variable name; None when absent.

    Single-valued keys give a one-item list; ``.List`` certificate keys and
    ``iot:Certificate.AvailableKeys`` may give several.
    """
    folded = key.casefold()
    simple = _SIMPLE_KEYS.get(folded)
    if simple is not None:
        value = simple(ctx)
        return [value] if value else None
    attr = _THING_ATTR.fullmatch(key)
    if attr is not None:
        if not ctx.is_attached or not ctx.thing_name:
            return None
        value = ctx.thing_attributes.get(attr.group(1))
        return [value] if value is not None else None
    if folded == "iot:certificate.availablekeys":
        return _available_cert_keys(ctx) or None
    if folded.startswith(_CERT_PREFIX):
        path, index, as_list = _split_index(key[len(_CERT_PREFIX) :])
        values = _cert_values(ctx, path)
        if values is None:
            return None
        if as_list:
            return values
        i = index or 0
        return [values[i]] if i < len(values) else None
    for extra_key, values in ctx.condition_keys.items():
        if extra_key.casefold() == folded:
            return [values] if isinstance(values, str) else (list(values) or None)
    return None


def _attached(ctx: AuthContext, value: str | None) -> str | None:
    return value if ctx.is_attached and ctx.thing_name else None


_SIMPLE_KEYS: dict[str, Callable[[AuthContext], str | None]] = {
    "iot:clientid": lambda c: c.client_id,
    "iot:domainname": lambda c: c.domain_name,
    "aws:sourceip": lambda c: c.source_ip,
    "iot:connection.thing.thingname": lambda c: _attached(c, c.thing_name),
    "iot:connection.thing.thingtypename": lambda c: _attached(c, c.thing_type_name),
    "iot:connection.thing.isattached": lambda c: "true" if c.is_attached else "false",
}


def _resolve_variable(ctx: AuthContext, name: str) -> str | None:
    """Text to substitute for ``${name}``, or None if AWS would leave it unresolved.

    Multi-valued keys (``.List``, AvailableKeys) never substitute. Certificate
    values holding a wildcard character or longer than 1024 characters are left
    unresolved, and special characters are backslash-escaped, as the guide says.
    """
    if _split_index(name)[2]:
        return None
    values = _resolve_key(ctx, name)
    if values is None or len(values) != 1 or name.casefold() == "iot:certificate.availablekeys":
        return None
    value = values[0]
    if name.casefold().startswith(_CERT_PREFIX):
        if len(value) > _CERT_MAX_CHARS or not _CERT_WILDCARDS.isdisjoint(value):
            return None
        value = _CERT_ESCAPE.sub(r"\\\1", value)
    return value


# ----------------------------------------------------------------------- templates

_VARIABLE = re.compile(r"\$\{([^}]*)\}")
_ESCAPES = {"*": "*", "?": "?", "$": "$"}
# A template is a tuple of parts: ("glob", text) keeps * and ? as wildcards,
# ("lit", text) is literal, ("var", name) is a policy variable.
Part = tuple[str, str]


def _parse_template(text: str, variables: bool) -> tuple[Part, ...]:
    """Split a Resource or condition value into glob text, literals and variables."""
    if not variables or "${" not in text:
        return (("glob", text),)
    parts: list[Part] = []
    pos = 0
    for m in _VARIABLE.finditer(text):
        if m.start() > pos:
            parts.append(("glob", text[pos : m.start()]))
        name = m.group(1).strip()
        if name in _ESCAPES:
            parts.append(("lit", _ESCAPES[name]))
        else:
            parts.append(("var", name))
        pos = m.end()
    if pos < len(text):
        parts.append(("glob", text[pos:]))
    return tuple(parts)


def _has_vars(parts: tuple[Part, ...]) -> bool:
    return any(kind == "var" for kind, _ in parts)


def _glob_source(text: str) -> str:
    """Regex source for IAM globbing: ``*`` any run, ``?`` one character."""
    out = []
    for chunk in re.split(r"([*?])", text):
        if chunk == "*":
            out.append(".*")
        elif chunk == "?":
            out.append(".")
        elif chunk:
            out.append(re.escape(chunk))
    return "".join(out)


@functools.lru_cache(maxsize=4096)
def _compile(source: str, ignore_case: bool) -> re.Pattern[str]:
    flags = re.DOTALL | (re.IGNORECASE if ignore_case else 0)
    return re.compile(source, flags)


def _render(parts: tuple[Part, ...], ctx: AuthContext | None, as_glob: bool) -> str | None:
    """Regex source (as_glob) or plain text of a template; None if a variable is unresolved."""
    out = []
    for kind, text in parts:
        if kind == "var":
            value = _resolve_variable(ctx, text) if ctx is not None else None
            if value is None:
                return None
            out.append(re.escape(value) if as_glob else value)
        elif kind == "lit" or not as_glob:
            out.append(re.escape(text) if as_glob else text)
        else:
            out.append(_glob_source(text))
    return "".join(out)


class _Pattern:
    """One Resource entry (or glob condition value), compiled once when it can be."""

    __slots__ = ("any", "exact", "fixed", "parts")

    def __init__(self, text: str, variables: bool) -> None:
        self.parts = _parse_template(text, variables)
        self.any = self.parts == (("glob", "*"),)
        self.exact: str | None = None
        self.fixed: re.Pattern[str] | None = None
        if not _has_vars(self.parts):
            if all(kind == "lit" or ("*" not in t and "?" not in t) for kind, t in self.parts):
                self.exact = "".join(t for _, t in self.parts)
            else:
                self.fixed = _compile(_render(self.parts, None, True) or "", False)

    def matches(self, value: str, ctx: AuthContext) -> bool:
        if self.any:
            return True
        if self.exact is not None:
            return value == self.exact
        if self.fixed is not None:
            return self.fixed.fullmatch(value) is not None
        source = _render(self.parts, ctx, True)
        return source is not None and _compile(source, False).fullmatch(value) is not None


class _ActionMatcher:
    """Action names, case-insensitive with ``*`` and ``?``: a set plus one regex."""

    __slots__ = ("any", "exact", "regex")

    def __init__(self, actions: Iterable[str]) -> None:
        exact: set[str] = set()
        globs: list[str] = []
        for action in actions:
            if "*" in action or "?" in action:
                globs.append(_glob_source(action))
            else:
                exact.add(action.casefold())
        self.any = ".*" in globs
        self.exact = frozenset(exact)
        self.regex = _compile("|".join(globs), True) if globs else None

    def matches(self, action: str) -> bool:
        if self.any or action.casefold() in self.exact:
            return True
        return self.regex is not None and self.regex.fullmatch(action) is not None


# ---------------------------------------------------------------------- conditions

_NEGATED = {
    "StringNotEquals",
    "StringNotEqualsIgnoreCase",
    "StringNotLike",
    "NumericNotEquals",
    "DateNotEquals",
    "NotIpAddress",
    "ArnNotEquals",
    "ArnNotLike",
}
_GLOB_OPS = {"StringLike", "StringNotLike", "ArnEquals", "ArnNotEquals", "ArnLike", "ArnNotLike"}


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _date(text: str) -> datetime | None:
    """ISO 8601 or epoch seconds, as IAM's Date operators accept."""
    number = _number(text)
    if number is not None:
        return datetime.fromtimestamp(number, UTC)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _ip_in(address: str, network: str) -> bool:
    try:
        return ipaddress.ip_address(address) in ipaddress.ip_network(network, strict=False)
    except ValueError:
        return False


def _compare(op: str, actual: str, expected: str) -> bool | None:
    """Positive form of ``op`` on one pair; None if the values do not parse."""
    if op.startswith("String") and "IgnoreCase" in op:
        return actual.casefold() == expected.casefold()
    if op.startswith("String") or op == "BinaryEquals":
        return actual == expected
    if op == "Bool":
        return actual.casefold() == expected.casefold()
    if op.startswith(("Numeric", "Date")):
        parse = _number if op.startswith("Numeric") else _date
        a, e = parse(actual), parse(expected)
        if a is None or e is None:
            return None
        relation = op.removeprefix("Numeric").removeprefix("Date")
        return _RELATIONS[relation](a, e)
    if op in ("IpAddress", "NotIpAddress"):
        return _ip_in(actual, expected)
    return None


_RELATIONS: dict[str, Callable[[float | datetime, float | datetime], bool]] = {
    "Equals": lambda a, e: a == e,
    "NotEquals": lambda a, e: a == e,  # negation applied by the caller
    "LessThan": lambda a, e: a < e,  # type: ignore[operator]
    "LessThanEquals": lambda a, e: a <= e,  # type: ignore[operator]
    "GreaterThan": lambda a, e: a > e,  # type: ignore[operator]
    "GreaterThanEquals": lambda a, e: a >= e,  # type: ignore[operator]
}

_OPERATORS = (
    {f"String{x}" for x in ("Equals", "NotEquals", "EqualsIgnoreCase", "NotEqualsIgnoreCase")}
    | {"StringLike", "StringNotLike", "Bool", "BinaryEquals", "IpAddress", "NotIpAddress"}
    | {f"{kind}{rel}" for kind in ("Numeric", "Date") for rel in _RELATIONS}
    | {"ArnEquals", "ArnNotEquals", "ArnLike", "ArnNotLike"}
)
_OPERATOR_NAMES = {name.casefold(): name for name in _OPERATORS}


@dataclass(frozen=True, slots=True)
class _Condition:
    """One (operator, key, values) test of a Condition block."""

    operator: str  # as written, for display
    base: str  # canonical base operator, or "Null"
    quantifier: str | None  # "ForAllValues" | "ForAnyValue" | None
    if_exists: bool
    key: str
    values: tuple[_Pattern, ...]

    def holds(self, ctx: AuthContext) -> bool:
        actual = _resolve_key(ctx, self.key)
        if self.base == "Null":
            return any(
                (actual is None) == (v.parts[0][1].casefold() == "true") for v in self.values
            )
        if not actual:
            if self.if_exists or self.quantifier == "ForAllValues":
                return True
            if self.quantifier == "ForAnyValue":
                return False
            return self.base in _NEGATED
        verdicts = (self._one(a, ctx) for a in actual)
        return all(verdicts) if self.quantifier == "ForAllValues" else any(verdicts)

    def _one(self, actual: str, ctx: AuthContext) -> bool:
        hit = any(self._positive(actual, v, ctx) for v in self.values)
        return not hit if self.base in _NEGATED else hit

    def _positive(self, actual: str, pattern: _Pattern, ctx: AuthContext) -> bool:
        if self.base in _GLOB_OPS:
            return pattern.matches(actual, ctx)
        expected = _render(pattern.parts, ctx, False)
        if expected is None:
            return False
        return bool(_compare(self.base, actual, expected))


def _parse_operator(name: str) -> tuple[str, str | None, bool]:
    """``ForAnyValue:StringLikeIfExists`` -> ("StringLike", "ForAnyValue", True)."""
    quantifier = None
    rest = name
    prefix, colon, tail = name.partition(":")
    if colon:
        folded = prefix.casefold()
        if folded == "forallvalues":
            quantifier = "ForAllValues"
        elif folded == "foranyvalue":
            quantifier = "ForAnyValue"
        else:
            raise MalformedPolicyError(f"Invalid Condition operator {name!r}")
        rest = tail
    if rest.casefold() == "null":
        if quantifier:
            raise MalformedPolicyError(f"Invalid Condition operator {name!r}")
        return "Null", None, False
    if_exists = rest.casefold().endswith("ifexists")
    if if_exists:
        rest = rest[: -len("IfExists")]
    base = _OPERATOR_NAMES.get(rest.casefold())
    if base is None:
        raise MalformedPolicyError(f"Invalid Condition operator {name!r}")
    return base, quantifier, if_exists


def _condition_values(raw: object, where: str) -> list[str]:
    """Condition values: a string, number or boolean, or a non-empty list of them."""
    items = raw if isinstance(raw, list) else [raw]
    if not items:
        raise MalformedPolicyError(f"{where} must have at least one value")
    out = []
    for item in items:
        if isinstance(item, bool):
            out.append("true" if item else "false")
        elif isinstance(item, (str, int, float)):
            out.append(item if isinstance(item, str) else json.dumps(item))
        else:
            raise MalformedPolicyError(f"{where} values must be strings, numbers or booleans")
    return out


def _parse_conditions(raw: object, variables: bool) -> tuple[_Condition, ...]:
    if not isinstance(raw, dict):
        raise MalformedPolicyError("Condition must be a JSON object")
    conditions = []
    for op_name, block in raw.items():
        base, quantifier, if_exists = _parse_operator(op_name)
        if not isinstance(block, dict) or not block:
            raise MalformedPolicyError(f"Condition operator {op_name!r} needs an object of keys")
        for key, raw_values in block.items():
            values = _condition_values(raw_values, f"Condition {op_name} {key!r}")
            if base == "Null" and any(v.casefold() not in ("true", "false") for v in values):
                raise MalformedPolicyError(f"Null condition on {key!r} takes true or false")
            patterns = tuple(_Pattern(v, variables) for v in values)
            conditions.append(_Condition(op_name, base, quantifier, if_exists, key, patterns))
    return tuple(conditions)


# ------------------------------------------------------------------------ policies


@dataclass(frozen=True, slots=True, kw_only=True)
class Statement:
    """One parsed statement; the compiled matchers stay private."""

    index: int
    effect: Literal["Allow", "Deny"]
    actions: tuple[str, ...]
    resources: tuple[str, ...]
    not_action: bool = False
    not_resource: bool = False
    sid: str | None = None
    has_condition: bool = False
    _action: _ActionMatcher = field(repr=False, compare=False)
    _resources: tuple[_Pattern, ...] = field(repr=False, compare=False)
    _conditions: tuple[_Condition, ...] = field(repr=False, compare=False, default=())

    def applies(self, action: str, resource: str, ctx: AuthContext) -> bool:
        """Does this statement cover (action, resource) for this context?"""
        if self._action.matches(action) == self.not_action:
            return False
        hit = any(p.matches(resource, ctx) for p in self._resources)
        if hit == self.not_resource:
            return False
        return all(c.holds(ctx) for c in self._conditions)


@dataclass(frozen=True, slots=True)
class Policy:
    """A parsed policy document; parse once, evaluate many times."""

    version: str | None
    statements: tuple[Statement, ...]
    document: str = field(repr=False, default="")
    id: str | None = None


def policy_size(document: str) -> int:
    """Characters AWS counts toward the 2048 limit: everything but whitespace."""
    return sum(len(chunk) for chunk in document.split())


def _reject_duplicates(pairs: list[tuple[str, object]]) -> dict[str, object]:
    out: dict[str, object] = {}
    for key, value in pairs:
        if key in out:
            raise MalformedPolicyError(f"Duplicate key {key!r}")
        out[key] = value
    return out


def _reject_constant(name: str) -> object:
    raise MalformedPolicyError(f"Invalid JSON value {name}")


def _load(document: str) -> dict[str, object]:
    if not isinstance(document, str):
        raise MalformedPolicyError("Policy document must be a string")
    size = policy_size(document)
    if size == 0:
        raise MalformedPolicyError("Policy document is empty")
    if size > MAX_POLICY_CHARS:
        raise MalformedPolicyError(
            f"Policy document is {size} characters excluding whitespace; "
            f"the maximum is {MAX_POLICY_CHARS}"
        )
    try:
        data = json.loads(
            document, object_pairs_hook=_reject_duplicates, parse_constant=_reject_constant
        )
    except json.JSONDecodeError as exc:
        raise MalformedPolicyError(f"Invalid JSON: {exc.msg} at line {exc.lineno}") from None
    if not isinstance(data, dict):
        raise MalformedPolicyError("Policy document must be a JSON object")
    return data


def _string_list(raw: object, name: str) -> tuple[str, ...]:
    items = raw if isinstance(raw, list) else [raw]
    if not items:
        raise MalformedPolicyError(f"{name} must not be an empty list")
    if not all(isinstance(item, str) for item in items):
        raise MalformedPolicyError(f"{name} must be a string or a list of strings")
    return tuple(items)  # type: ignore[arg-type]


_ACTION_NAME = re.compile(r"\*|[A-Za-z0-9-]+:[A-Za-z0-9_*?-]+")


def _check_actions(actions: tuple[str, ...]) -> None:
    for action in actions:
        if not _ACTION_NAME.fullmatch(action):
            raise MalformedPolicyError(
                f"Invalid action {action!r}: use '*' or '<service>:<action>', e.g. 'iot:Publish'"
            )


def _check_resources(resources: tuple[str, ...]) -> None:
    bad = [r for r in resources if r != "*" and not r.startswith("arn:")]
    if bad:
        raise MalformedPolicyError(f"The following resources are invalid : {', '.join(bad)}")


_STATEMENT_KEYS = {"Sid", "Effect", "Action", "NotAction", "Resource", "NotResource", "Condition"}


def _pick(raw: dict[str, object], name: str, index: int) -> tuple[tuple[str, ...], bool]:
    """Exactly one of ``name`` and ``Not<name>``; returns (values, negated)."""
    has, has_not = name in raw, f"Not{name}" in raw
    if has and has_not:
        raise MalformedPolicyError(f"Statement {index} has both {name} and Not{name}")
    if not (has or has_not):
        raise MalformedPolicyError(f"Statement {index} is missing {name}")
    key = name if has else f"Not{name}"
    return _string_list(raw[key], f"Statement {index} {key}"), has_not


def _parse_statement(raw: object, index: int, variables: bool) -> Statement:
    if not isinstance(raw, dict):
        raise MalformedPolicyError(f"Statement {index} must be a JSON object")
    unknown = sorted(set(raw) - _STATEMENT_KEYS)
    if unknown:
        hint = " (AWS IoT policies take no Principal)" if "Principal" in unknown else ""
        raise MalformedPolicyError(f"Statement {index} has unsupported field {unknown[0]!r}{hint}")
    effect = raw.get("Effect")
    if effect not in ("Allow", "Deny"):
        detail = "is missing Effect" if effect is None else f"has invalid Effect {effect!r}"
        raise MalformedPolicyError(f"Statement {index} {detail}; use 'Allow' or 'Deny'")
    sid = raw.get("Sid")
    if sid is not None and not isinstance(sid, str):
        raise MalformedPolicyError(f"Statement {index} Sid must be a string")
    actions, not_action = _pick(raw, "Action", index)
    _check_actions(actions)
    resources, not_resource = _pick(raw, "Resource", index)
    _check_resources(resources)
    conditions = _parse_conditions(raw["Condition"], variables) if "Condition" in raw else ()
    return Statement(
        index=index,
        effect=effect,
        actions=actions,
        resources=resources,
        not_action=not_action,
        not_resource=not_resource,
        sid=sid,
        has_condition=bool(conditions),
        _action=_ActionMatcher(actions),
        _resources=tuple(_Pattern(r, variables) for r in resources),
        _conditions=conditions,
    )


def parse_policy(document: str) -> Policy:
    """Parse and validate a policy document; MalformedPolicyError if AWS would refuse it.

    Policy variables are honoured only with Version 2012-10-17; with 2008-10-17
    or no Version, IAM (and so AWS IoT) treats ``${...}`` as literal text.
    """
    data = _load(document)
    unknown = sorted(set(data) - {"Version", "Statement", "Id"})
    if unknown:
        raise MalformedPolicyError(f"Unsupported top-level field {unknown[0]!r}")
    version = data.get("Version")
    if version is not None and version not in (VERSION_2012, VERSION_2008):
        raise MalformedPolicyError(
            f"Invalid Version {version!r}; use {VERSION_2012!r} or {VERSION_2008!r}"
        )
    policy_id = data.get("Id")
    if policy_id is not None and not isinstance(policy_id, str):
        raise MalformedPolicyError("Id must be a string")
    if "Statement" not in data:
        raise MalformedPolicyError("Policy document is missing Statement")
    raw = data["Statement"]
    items = raw if isinstance(raw, list) else [raw]
    if not items:
        raise MalformedPolicyError("Statement must not be an empty list")
    variables = version == VERSION_2012
    statements = tuple(_parse_statement(item, i, variables) for i, item in enumerate(items))
    return Policy(version, statements, document, policy_id)  # type: ignore[arg-type]


# ---------------------------------------------------------------------- evaluation


@dataclass(frozen=True, slots=True)
class StatementRef:
    """Which statement decided, for display ("policy X, statement #i")."""

    policy_name: str
    statement_index: int
    effect: Literal["Allow", "Deny"]
    sid: str | None = None


@dataclass(frozen=True, slots=True)
class Decision:
    """Outcome of ``evaluate``: the verdict and the policies behind it."""

    allowed: bool
    decision: DecisionKind
    action: str
    resource: str
    allowing: list[str] = field(default_factory=list)
    denying: list[str] = field(default_factory=list)
    deciding: StatementRef | None = None


def evaluate(
    policies: Sequence[tuple[str, Policy]],
    action: str,
    resource_arn: str,
    ctx: AuthContext,
) -> Decision:
    """Decide ``action`` on ``resource_arn`` under the named policies.

    Explicit Deny overrides Allow; without an Allow the answer is an implicit
    deny. ``allowing``/``denying`` name each policy with an applicable Allow /
    Deny statement once, in the order given; ``deciding`` is the first
    applicable Deny (or, if none, the first applicable Allow).
    """
    allowing: list[str] = []
    denying: list[str] = []
    first_allow: StatementRef | None = None
    first_deny: StatementRef | None = None
    for name, policy in policies:
        for st in policy.statements:
            if not st.applies(action, resource_arn, ctx):
                continue
            ref = StatementRef(name, st.index, st.effect, st.sid)
            if st.effect == "Deny":
                if name not in denying:
                    denying.append(name)
                first_deny = first_deny or ref
            else:
                if name not in allowing:
                    allowing.append(name)
                first_allow = first_allow or ref
    if first_deny is not None:
        kind: DecisionKind = "EXPLICIT_DENY"
    elif first_allow is not None:
        kind = "ALLOWED"
    else:
        kind = "IMPLICIT_DENY"
    return Decision(
        allowed=kind == "ALLOWED",
        decision=kind,
        action=action,
        resource=resource_arn,
        allowing=allowing,
        denying=denying,
        deciding=first_deny or first_allow,
    )
