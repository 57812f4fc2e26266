"""Who a connection is, and what its IoT policies let it do, decided once per resource.

The policies come from the store (attached to the certificate, then its things' groups) and are
evaluated with `iotcore.policy`, the evaluator TestAuthorization uses. Decisions are cached per
connection; the policies are re-read after `REFRESH_SECONDS` so a detached or edited policy
takes effect on live connections too, as on AWS (within minutes there).
"""

from __future__ import annotations

import functools
import logging
import time
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.x509.oid import NameOID

from iot_tui.iotcore.policy import AuthContext, MalformedPolicyError, Policy, evaluate, parse_policy
from iot_tui.local.store import Store

log = logging.getLogger("iot_tui.local.broker")

REFRESH_SECONDS = 5.0

# Connections sharing a policy share its parsed form (parsing compiles patterns; it is not cheap).
_parse = functools.lru_cache(maxsize=1024)(parse_policy)

CONNECT = "iot:Connect"
PUBLISH = "iot:Publish"
RECEIVE = "iot:Receive"
RETAIN_PUBLISH = "iot:RetainPublish"
SUBSCRIBE = "iot:Subscribe"

# Certificate name attributes as the policy variables spell them.
_NAME_FIELDS = {
    NameOID.COMMON_NAME: "CommonName",
    NameOID.ORGANIZATION_NAME: "Organization",
    NameOID.ORGANIZATIONAL_UNIT_NAME: "OrganizationalUnit",
    NameOID.COUNTRY_NAME: "Country",
    NameOID.LOCALITY_NAME: "Locality",
    NameOID.STATE_OR_PROVINCE_NAME: "StateOrProvinceName",
    NameOID.SERIAL_NUMBER: "SerialNumber",
    NameOID.TITLE: "Title",
    NameOID.SURNAME: "Surname",
    NameOID.GIVEN_NAME: "GivenName",
    NameOID.INITIALS: "Initials",
    NameOID.PSEUDONYM: "Pseudonym",
    NameOID.GENERATION_QUALIFIER: "GenerationQualifier",
    NameOID.DN_QUALIFIER: "DistinguishedNameQualifier",
}


def _name_fields(name: x509.Name) -> dict[str, list[str]]:
    fields: dict[str, list[str]] = {}
    for attribute in name:
        key = _NAME_FIELDS.get(attribute.oid)
        if key is not None:
            fields.setdefault(key, []).append(str(attribute.value))
    return fields


@dataclass(frozen=True)
class Principal:
    """The identity behind a connection: a device certificate or (WebSocket) an access key."""

    region: str
    account_id: str
    principal_id: str  # certificate id, or the access key id
    arn: str | None  # certificate ARN: policies attach to it
    certificate_der: bytes | None = None


@dataclass
class Authorizer:
    """One connection's policy decisions, cached by (action, resource ARN)."""

    store: Store
    principal: Principal
    client_id: str = ""
    # Access-key principals (WebSocket) act with the local IAM identity, which may do anything.
    allow_all: bool = False
    context: AuthContext = field(init=False)
    _policies: list[tuple[str, Policy]] = field(init=False, default_factory=list)
    _cache: dict[tuple[str, str], bool] = field(init=False, default_factory=dict)
    _loaded: float = field(init=False, default=0.0)

    def __post_init__(self) -> None:
        self.context = AuthContext(self.principal.region, self.principal.account_id)

    def bind(self, client_id: str) -> None:
        """Fix the client id (CONNECT) and the thing the connection acts as."""
        self.client_id = client_id
        self._reload()

    def _reload(self) -> None:
        principal = self.principal
        self._cache.clear()
        self._loaded = time.monotonic()
        if self.allow_all or principal.arn is None:
            return
        thing = self.store.connection_thing(principal.region, principal.arn, self.client_id)
        context = AuthContext(
            principal.region, principal.account_id, client_id=self.client_id,
            thing_name=thing.name if thing else None,
            thing_type_name=thing.thing_type if thing else None,
            thing_attributes=thing.attributes if thing else {},
            is_attached=thing is not None,
            certificate_id=principal.principal_id,
        )
        if principal.certificate_der is not None:
            cert = x509.load_der_x509_certificate(principal.certificate_der)
            context.certificate_subject = _name_fields(cert.subject)
            context.certificate_issuer = _name_fields(cert.issuer)
            context.certificate_serial_number = str(cert.serial_number)
        self.context = context
        policies = []
        for name, document in self.store.effective_policies_for_certificate(principal.region, principal.arn):
            try:
                policies.append((name, _parse(document)))
            except MalformedPolicyError as error:  # stored documents were validated; be safe
                log.warning("policy %s is not usable: %s", name, error)
        self._policies = policies

    def allowed(self, action: str, resource: str) -> bool:
        """Is `action` on the resource (a client id, topic or topic filter) allowed?"""
        if self.allow_all:
            return True
        if time.monotonic() - self._loaded > REFRESH_SECONDS:
            self._reload()
        key = (action, resource)
        decision = self._cache.get(key)
        if decision is None:
            context = self.context
            if action == CONNECT:
                arn = context.client_arn(resource)
            elif action == SUBSCRIBE:
                arn = context.topicfilter_arn(resource)
            else:
                arn = context.topic_arn(resource)
            decision = evaluate(self._policies, action, arn, context).allowed
            if len(self._cache) > 4096:  # a client walking many topics does not grow it forever
                self._cache.clear()
            self._cache[key] = decision
        return decision


def active_certificates(store: Store, ids: set[tuple[str, str]]) -> set[tuple[str, str]]:
    """Which (region, certificate id) pairs are still registered and ACTIVE."""
    wanted = list(ids)
    active: set[tuple[str, str]] = set()
    for start in range(0, len(wanted), 400):
        chunk = wanted[start:start + 400]
        rows = store.db.execute(
            "SELECT region, certificate_id FROM certificates WHERE status = 'ACTIVE' AND certificate_id IN "
            f"({','.join('?' * len(chunk))})",
            [cert_id for _, cert_id in chunk],
        )
        active.update((row[0], row[1]) for row in rows)
    return active & ids
