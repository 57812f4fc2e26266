"""Certificate operations: device certificates (issued by the local CA or registered) and CAs.

The rules follow the AWS IoT API reference and developer guide: a certificate must be
deactivated before deletion and must have no thing attached (policies too, unless forceDelete);
a REVOKED certificate can never change status again; a CA is registered in DEFAULT mode with a
verification certificate whose common name is the region's registration code, or in SNI_ONLY
mode without one, and its device certificates inherit that mode.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import secrets
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from cryptography import x509

from iot_tui.iotcore.x509 import (
    CertificateInfo,
    CertificateValidationError,
    certificate_id,
    check_supported_key,
    describe,
    load_certificate,
    verification_certificate_matches,
    verify_issued_by,
)
from iot_tui.local.http.errors import (
    ApiError,
    already_exists,
    delete_conflict,
    found,
    invalid_request,
    not_found,
)
from iot_tui.local.http.ops import Params, RequestContext, operation
from iot_tui.local.store.certificates import (
    CACertificateRecord,
    CertificateRecord,
    PageRequest,
    Position,
)

DEFAULT_PAGE_SIZE = 25  # "The results are paginated with a default page size of 25."
MAX_CA_CERTIFICATES_PER_SUBJECT = 10
# PENDING_TRANSFER and PENDING_ACTIVATION are set by IoT itself, never by a caller.
INTERNAL_STATUSES = frozenset({"PENDING_TRANSFER", "PENDING_ACTIVATION"})


# ---------------------------------------------------------------------------- errors


def _state_error(message: str) -> ApiError:
    return ApiError("CertificateStateException", message)


def _validation_error(message: str) -> ApiError:
    return ApiError("CertificateValidationException", message)


def _already_registered(existing: CertificateRecord | CACertificateRecord) -> ApiError:
    return already_exists(
        "The certificate is already provisioned or registered",
        resource_id=existing.certificate_id,
        resource_arn=existing.arn,
    )


# ---------------------------------------------------------------------------- lookups


def _certificate(ctx: RequestContext, cert_id: str) -> CertificateRecord:
    """The region's certificate, or ResourceNotFoundException."""
    return found(ctx.store.certificate(ctx.region, cert_id), f"The certificate {cert_id} does not exist.")


def _ca(ctx: RequestContext, cert_id: str) -> CACertificateRecord:
    """The region's CA certificate, or ResourceNotFoundException."""
    return found(ctx.store.ca_certificate(ctx.region, cert_id), f"The CA certificate {cert_id} does not exist.")


# ---------------------------------------------------------------------------- helpers


def _moment(ctx: RequestContext) -> datetime:
    """The request's clock as an aware datetime, so issued certificates start 'now' in tests too."""
    return datetime.fromtimestamp(ctx.now(), UTC)


def _generation_id() -> str:
    return str(uuid.uuid4())


def _parse(pem: str, what: str) -> x509.Certificate:
    try:
        return load_certificate(pem)
    except CertificateValidationError as exc:
        raise _validation_error(f"The {what} is not valid: {exc}") from None


def _check_device_key(cert: x509.Certificate) -> None:
    """Device certificates must use a key algorithm AWS IoT supports."""
    try:
        check_supported_key(cert.public_key())
    except CertificateValidationError as exc:
        raise _validation_error(f"The certificate is not valid: {exc}") from None


def _new_version(ctx: RequestContext, info: CertificateInfo, arn_kind: str) -> dict[str, Any]:
    """The record fields a device certificate and a CA share when first stored: version 1, now."""
    now = ctx.now()
    return {
        "region": ctx.region,
        "certificate_id": info.certificate_id,
        "arn": ctx.arn(f"{arn_kind}/{info.certificate_id}"),
        "owned_by": ctx.account_id,
        "created": now,
        "modified": now,
        "customer_version": 1,
        "generation_id": _generation_id(),
        "not_before": info.not_before.timestamp(),
        "not_after": info.not_after.timestamp(),
    }


def _device_record(
    ctx: RequestContext,
    pem: str,
    status: str,
    *,
    ca_certificate_id: str | None = None,
    mode: str = "DEFAULT",
) -> CertificateRecord:
    return CertificateRecord(
        **_new_version(ctx, describe(pem), "cert"),
        status=status,
        pem=pem,
        ca_certificate_id=ca_certificate_id,
        mode=mode,
    )


def _register(ctx: RequestContext, record: CertificateRecord) -> dict:
    """Store a registered certificate; AWS refuses the same certificate twice in a region."""
    existing = ctx.store.certificate(ctx.region, record.certificate_id)
    if existing is not None:
        raise _already_registered(existing)
    ctx.store.insert_certificate(record)
    return {"certificateArn": record.arn, "certificateId": record.certificate_id}


def _store_issued(ctx: RequestContext, p: Params, cert_pem: str) -> dict:
    """Store a certificate the local CA just issued (INACTIVE unless setAsActive)."""
    status = "ACTIVE" if p.get("setAsActive") else "INACTIVE"
    record = _device_record(ctx, cert_pem, status)
    ctx.store.insert_certificate(record)
    return {
        "certificateArn": record.arn,
        "certificateId": record.certificate_id,
        "certificatePem": cert_pem,
    }


def _registration_status(p: Params, default: str) -> str:
    """`setAsActive` (deprecated) wins; else `status`, never an internal one."""
    if p.get("setAsActive"):
        return "ACTIVE"
    status = p.get("status", default)
    if status in INTERNAL_STATUSES:
        raise invalid_request(f"The status {status} cannot be set by a caller.")
    return status


def _encode_marker(position: Position) -> str:
    created, seq = position
    return base64.b64encode(f"{created!r}:{seq}".encode()).decode()


def _decode_marker(marker: str | None) -> Position | None:
    if marker is None:
        return None
    try:
        created, seq = base64.b64decode(marker, validate=True).decode().split(":")
        return float(created), int(seq)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise invalid_request(f"The marker {marker} is not valid.") from None


def _list_page(
    ctx: RequestContext,
    p: Params,
    query: Callable[..., tuple[list[Any], bool]],
    summarize: Callable[[Any], dict[str, Any]],
    **filters: Any,
) -> dict[str, Any]:
    """A List* answer: one page (newest first unless ascendingOrder, 25 unless pageSize), and
    a marker only when more certificates follow."""
    page = PageRequest(
        ascending=p.get("ascendingOrder", False),
        limit=p.get("pageSize", DEFAULT_PAGE_SIZE),
        after=_decode_marker(p.get("marker")),
    )
    records, more = query(ctx.region, page, **filters)
    result: dict[str, Any] = {"certificates": [summarize(r) for r in records]}
    if more and records:
        result["nextMarker"] = _encode_marker((records[-1].created, records[-1].seq))
    return result


def _summary(record: CertificateRecord | CACertificateRecord) -> dict:
    """A List* row: a CA's is just this, a device certificate's adds its mode."""
    return {
        "certificateArn": record.arn,
        "certificateId": record.certificate_id,
        "status": record.status,
        "creationDate": record.created,
    }


def _certificate_summary(record: CertificateRecord) -> dict:
    return {**_summary(record), "certificateMode": record.mode}


def _description(record: CertificateRecord | CACertificateRecord, **extra: Any) -> dict:
    """The fields DescribeCertificate and DescribeCACertificate share, then `extra`."""
    return {
        "certificateArn": record.arn,
        "certificateId": record.certificate_id,
        "status": record.status,
        "certificatePem": record.pem,
        "ownedBy": record.owned_by,
        "creationDate": record.created,
        "lastModifiedDate": record.modified,
        "customerVersion": record.customer_version,
        "generationId": record.generation_id,
        "validity": {"notBefore": record.not_before, "notAfter": record.not_after},
        "certificateMode": record.mode,
        **extra,
    }


def _ca_for_device(
    ctx: RequestContext, cert: x509.Certificate, ca_pem: str | None
) -> CACertificateRecord:
    """The registered CA that signed `cert`: the one given, or found by the issuer's name."""
    if ca_pem is not None:
        ca_id = certificate_id(_parse(ca_pem, "CA certificate"))
        ca = ctx.store.ca_certificate(ctx.region, ca_id)
        if ca is None:
            raise _validation_error(f"The CA certificate {ca_id} is not registered.")
        if not verify_issued_by(cert, ca.pem):
            raise _validation_error("The certificate is not signed by the given CA certificate.")
        return ca
    issuer = cert.issuer.rfc4514_string()
    signers = [
        ca for ca in ctx.store.ca_certificates_by_subject(ctx.region, issuer)
        if verify_issued_by(cert, ca.pem)
    ]
    if not signers:
        raise _validation_error(
            "The certificate is not signed by a CA certificate registered in this region."
        )
    if len(signers) > 1:
        raise ApiError(
            "CertificateConflictException",
            "More than one registered CA certificate has the subject and public key that signed "
            "this certificate; give caCertificatePem.",
        )
    return signers[0]


# ---------------------------------------------------------------------------- device certificates


@operation("iot", "CreateKeysAndCertificate")
async def create_keys_and_certificate(ctx: RequestContext, p: Params) -> dict:
    """A new RSA 2048 key pair and a certificate for it from the local CA."""
    # RSA key generation takes tens of milliseconds: keep it off the event loop.
    cert_pem, private_pem, public_pem = await asyncio.to_thread(
        ctx.core.ca.issue_keys_and_certificate, _moment(ctx)
    )
    return {
        **_store_issued(ctx, p, cert_pem),
        "keyPair": {"PublicKey": public_pem, "PrivateKey": private_pem},
    }


@operation("iot", "CreateCertificateFromCsr")
def create_certificate_from_csr(ctx: RequestContext, p: Params) -> dict:
    """The local CA certifies the CSR's key; the device keeps its private key."""
    try:
        cert_pem = ctx.core.ca.sign_csr(p["certificateSigningRequest"], _moment(ctx))
    except CertificateValidationError as exc:
        raise invalid_request(f"The certificate signing request is not valid: {exc}") from None
    return _store_issued(ctx, p, cert_pem)


@operation("iot", "RegisterCertificateWithoutCA")
def register_certificate_without_ca(ctx: RequestContext, p: Params) -> dict:
    """Any certificate, self-signed or from an unregistered CA, in SNI_ONLY mode."""
    pem = p["certificatePem"]
    cert = _parse(pem, "certificate")
    _check_device_key(cert)
    status = _registration_status(p, "ACTIVE")
    return _register(ctx, _device_record(ctx, pem, status, mode="SNI_ONLY"))


@operation("iot", "RegisterCertificate")
def register_certificate(ctx: RequestContext, p: Params) -> dict:
    """A certificate signed by a CA registered in this region, in that CA's mode."""
    pem = p["certificatePem"]
    cert = _parse(pem, "certificate")
    _check_device_key(cert)
    ca = _ca_for_device(ctx, cert, p.get("caCertificatePem"))
    if ca.status != "ACTIVE":
        raise _state_error(f"The CA certificate {ca.certificate_id} is not ACTIVE.")
    status = _registration_status(p, "INACTIVE")
    record = _device_record(ctx, pem, status, ca_certificate_id=ca.certificate_id, mode=ca.mode)
    return _register(ctx, record)


@operation("iot", "DescribeCertificate")
def describe_certificate(ctx: RequestContext, p: Params) -> dict:
    record = _certificate(ctx, p["certificateId"])
    return {
        "certificateDescription": _description(
            record,
            caCertificateId=record.ca_certificate_id,
            # AWS answers an empty transferData for a certificate never transferred.
            transferData={},
        )
    }


@operation("iot", "ListCertificates")
def list_certificates(ctx: RequestContext, p: Params) -> dict:
    return _list_page(ctx, p, ctx.store.list_certificates, _certificate_summary)


@operation("iot", "ListCertificatesByCA")
def list_certificates_by_ca(ctx: RequestContext, p: Params) -> dict:
    """An unknown CA lists nothing: the operation has no ResourceNotFoundException."""
    return _list_page(
        ctx, p, ctx.store.list_certificates, _certificate_summary,
        ca_certificate_id=p["caCertificateId"],
    )


@operation("iot", "UpdateCertificate")
def update_certificate(ctx: RequestContext, p: Params) -> None:
    """Idempotent; a REVOKED certificate keeps that status for ever."""
    cert_id, new_status = p["certificateId"], p["newStatus"]
    record = _certificate(ctx, cert_id)
    if new_status in INTERNAL_STATUSES:
        raise invalid_request(f"The status {new_status} cannot be set by a caller.")
    if new_status == record.status:
        return
    if record.status == "REVOKED":
        raise _state_error(
            f"The certificate {cert_id} is REVOKED; a revoked certificate's status cannot change."
        )
    if record.status in INTERNAL_STATUSES:
        raise _state_error(f"The certificate {cert_id} is {record.status} and cannot be updated.")
    ctx.store.update_certificate_status(
        ctx.region, cert_id, new_status, ctx.now(), _generation_id()
    )


@operation("iot", "DeleteCertificate")
def delete_certificate(ctx: RequestContext, p: Params) -> None:
    """Not ACTIVE, no thing attached, and no policy attached unless forceDelete."""
    cert_id = p["certificateId"]
    record = _certificate(ctx, cert_id)
    if record.status == "ACTIVE":
        raise _state_error("Certificate must be deactivated before deletion.")
    attached = ctx.store.principal_attachment_counts(ctx.region, record.arn)
    if attached.things:
        raise delete_conflict(f"Things must be detached before deletion (arn: {record.arn})")
    if attached.policies and not p.get("forceDelete"):
        raise delete_conflict(
            f"Certificate policies must be detached before deletion (arn: {record.arn})"
        )
    with ctx.store.transaction():
        # forceDelete: AWS removes the policy attachments with the certificate.
        ctx.store.detach_all_policies(ctx.region, record.arn)
        ctx.store.delete_certificate(ctx.region, cert_id)


# ---------------------------------------------------------------------------- CA certificates


@operation("iot", "GetRegistrationCode")
def get_registration_code(ctx: RequestContext, p: Params) -> dict:
    """One code per region, created on first use and the same ever after."""
    code = ctx.store.get_or_create_registration_code(ctx.region, secrets.token_hex(32))
    return {"registrationCode": code}


@operation("iot", "DeleteRegistrationCode")
def delete_registration_code(ctx: RequestContext, p: Params) -> None:
    """The next GetRegistrationCode makes a new code; verification certificates must follow."""
    if not ctx.store.delete_registration_code(ctx.region):
        raise not_found("There is no registration code to delete.")


@operation("iot", "RegisterCACertificate")
def register_ca_certificate(ctx: RequestContext, p: Params) -> dict:
    """DEFAULT mode proves possession of the CA key by a verification certificate; SNI_ONLY not."""
    pem, verification_pem = p["caCertificate"], p.get("verificationCertificate")
    mode = p.get("certificateMode", "DEFAULT")
    if mode == "DEFAULT" and verification_pem is None:
        raise invalid_request(
            "verificationCertificate is required when certificateMode is DEFAULT."
        )
    if mode == "SNI_ONLY" and verification_pem is not None:
        raise invalid_request(
            "verificationCertificate must be empty when certificateMode is SNI_ONLY."
        )
    cert = _parse(pem, "CA certificate")
    info = describe(cert)
    if not info.is_ca:
        raise _validation_error(
            "The CA certificate does not have the basicConstraints extension as true."
        )
    if verification_pem is not None:
        verification = _parse(verification_pem, "verification certificate")
        code = ctx.store.registration_code(ctx.region)
        if code is None or not verification_certificate_matches(verification, code):
            raise ApiError(
                "RegistrationCodeValidationException",
                "The verification certificate's common name is not the registration code.",
            )
        if not verify_issued_by(verification, cert):
            raise _validation_error(
                "The verification certificate is not signed by the CA certificate."
            )
    existing = ctx.store.ca_certificate(ctx.region, info.certificate_id)
    if existing is not None:
        raise _already_registered(existing)
    same_subject = ctx.store.ca_certificates_by_subject(ctx.region, info.subject)
    if len(same_subject) >= MAX_CA_CERTIFICATES_PER_SUBJECT:
        raise ApiError(
            "LimitExceededException",
            f"At most {MAX_CA_CERTIFICATES_PER_SUBJECT} CA certificates can share the subject "
            f"{info.subject}.",
        )
    record = CACertificateRecord(
        **_new_version(ctx, info, "cacert"),
        status="ACTIVE" if p.get("setAsActive") else "INACTIVE",
        pem=pem,
        subject=info.subject,
        mode=mode,
        auto_registration="ENABLE" if p.get("allowAutoRegistration") else "DISABLE",
        registration_config=p.get("registrationConfig"),
        tags=p.get("tags", []),
    )
    ctx.store.insert_ca_certificate(record)
    return {"certificateArn": record.arn, "certificateId": record.certificate_id}


@operation("iot", "DescribeCACertificate")
def describe_ca_certificate(ctx: RequestContext, p: Params) -> dict:
    record = _ca(ctx, p["certificateId"])
    return {
        "certificateDescription": _description(
            record, autoRegistrationStatus=record.auto_registration
        ),
        "registrationConfig": record.registration_config,
    }


@operation("iot", "ListCACertificates")
def list_ca_certificates(ctx: RequestContext, p: Params) -> dict:
    return _list_page(
        ctx, p, ctx.store.list_ca_certificates, _summary, template_name=p.get("templateName")
    )


@operation("iot", "UpdateCACertificate")
def update_ca_certificate(ctx: RequestContext, p: Params) -> None:
    """Status, auto-registration and the provisioning template (registrationConfig)."""
    cert_id = p["certificateId"]
    record = _ca(ctx, cert_id)
    config = record.registration_config
    if p.get("removeAutoRegistration"):
        if "registrationConfig" in p:
            raise invalid_request(
                "registrationConfig and removeAutoRegistration cannot both be set."
            )
        config = None
    elif "registrationConfig" in p:
        config = p["registrationConfig"]
    ctx.store.update_ca_certificate(
        ctx.region,
        cert_id,
        status=p.get("newStatus", record.status),
        auto_registration=p.get("newAutoRegistrationStatus", record.auto_registration),
        registration_config=config,
        now=ctx.now(),
        generation_id=_generation_id(),
    )


@operation("iot", "DeleteCACertificate")
def delete_ca_certificate(ctx: RequestContext, p: Params) -> None:
    """Only an INACTIVE CA with no device certificate registered under it can go.

    The operation's only modelled refusal is CertificateStateException, so certificates still
    registered with the CA are refused with it too.
    """
    cert_id = p["certificateId"]
    record = _ca(ctx, cert_id)
    if record.status == "ACTIVE":
        raise _state_error("The CA certificate must be deactivated before deletion.")
    registered = ctx.store.count_certificates_by_ca(ctx.region, cert_id)
    if registered:
        raise _state_error(
            f"The CA certificate has {registered} device certificate(s) registered with it; "
            "delete them first."
        )
    ctx.store.delete_ca_certificate(ctx.region, cert_id)
