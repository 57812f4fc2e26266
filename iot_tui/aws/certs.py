"""Device certificates: create or register one, save its files, attach it, change its status, delete it.

Plain functions over a boto3 `iot` client, for the certificate wizard and for scripts. AWS errors
are botocore's ClientError untouched; local input problems (a bad thing name, an unreadable or
non-PEM file) are ValueError subclasses raised before anything is created.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from iot_tui.aws import device_files
from iot_tui.aws.device_files import DeviceFiles
from iot_tui.aws.registry import pages
from iot_tui.iotcore import x509

if TYPE_CHECKING:
    from iot_tui.aws.target import Target

STATUSES = ("ACTIVE", "INACTIVE", "REVOKED")
REVOKE_WARNING = ("A revoked certificate can never be activated again: devices using it are refused for "
                  "good. Deactivate it instead if you may need it later.")
# DetachThingPrincipal is asynchronous on AWS: DeleteCertificate may see the thing for a few seconds.
DELETE_ATTEMPTS = 6
DELETE_RETRY_SECONDS = 2.0


class CertificateFileError(ValueError):
    """A PEM file the user picked cannot be used; the message names the file and the reason."""


class ConfirmationRequired(ValueError):
    """The certificate serves things outside the sample fleet: deleting needs its id typed back."""

    def __init__(self, certificate_id: str, things: list[str]):
        self.certificate_id = certificate_id
        self.things = things
        super().__init__(f"certificate {certificate_id[:12]}... is attached to things outside the sample fleet "
                         f"({', '.join(things)}); type the certificate id to confirm deleting it")


@dataclass(frozen=True)
class Step:
    """One thing the wizard did, as it shows it: the operation and what came of it."""

    operation: str
    detail: str


StepListener = Callable[[Step], None]


@dataclass
class CertificateResult:
    """A certificate ready for a device: registered, saved, attached to its thing."""

    certificate_id: str
    certificate_arn: str
    thing: str
    files: DeviceFiles
    policy_name: str | None = None
    steps: list[Step] = field(default_factory=list)


@dataclass(frozen=True)
class OwnCertificate:
    """A certificate and its private key made outside AWS, to register without a CA."""

    certificate_pem: str
    private_key_pem: str

    @property
    def certificate_id(self) -> str:
        return x509.certificate_id(self.certificate_pem)

    @property
    def public_key_pem(self) -> str:
        return x509.public_key_pem(x509.load_certificate(self.certificate_pem).public_key())


@dataclass
class CertificateDetails:
    certificate_id: str
    arn: str
    status: str
    created: datetime | None
    modified: datetime | None
    not_before: datetime | None
    not_after: datetime | None
    mode: str | None
    things: list[str]
    policies: list[str]


@dataclass
class DeleteResult:
    certificate_id: str
    steps: list[Step] = field(default_factory=list)
    removed_files: list[Path] = field(default_factory=list)


class _Recorder:
    """Keeps the steps and tells a listener as each one ends, so a UI can show progress live."""

    def __init__(self, listener: StepListener | None):
        self.steps: list[Step] = []
        self.listener = listener

    def __call__(self, operation: str, detail: str) -> None:
        step = Step(operation, detail)
        self.steps.append(step)
        if self.listener is not None:
            self.listener(step)


def _code(error: ClientError) -> str:
    return error.response["Error"]["Code"]


# -- making certificates --


def create_and_attach(iot: Any, thing: str, target: Target, files_root: Path, policy_name: str | None = None,
                      on_step: StepListener | None = None) -> CertificateResult:
    """CreateKeysAndCertificate (active), save the files, AttachThingPrincipal, optionally AttachPolicy.

    The thing (and policy) are looked up first: AWS hands out the private key once, so nothing is
    created for a request that would fail half-way.
    """
    device_files.check_thing_name(thing)
    ca = device_files.target_ca(target)
    _preflight(iot, thing, policy_name)
    record = _Recorder(on_step)
    made = iot.create_keys_and_certificate(setAsActive=True)
    cert_id, arn = made["certificateId"], made["certificateArn"]
    record("CreateKeysAndCertificate", f"certificate {cert_id} is ACTIVE; AWS will not show its private key again")
    try:
        files = device_files.save_device_files(files_root, thing, cert_id, made["certificatePem"],
                                               made["keyPair"]["PrivateKey"], made["keyPair"]["PublicKey"], ca)
    except OSError:
        # The key exists nowhere else: a certificate nobody can use is removed rather than left active.
        iot.update_certificate(certificateId=cert_id, newStatus="INACTIVE")
        iot.delete_certificate(certificateId=cert_id)
        raise
    record("SaveFiles", f"saved to {files.folder} (private key 0600)")
    return _attach(iot, record, cert_id, arn, thing, files, policy_name)


def generate_certificate(thing: str, key_kind: str = "rsa2048", days: int = 365,
                         now: datetime | None = None) -> OwnCertificate:
    """A key pair and a self-signed certificate made here, with no OpenSSL binary; CN is the thing name."""
    key = x509.generate_key(key_kind)
    return OwnCertificate(x509.self_signed_certificate(key, device_files.check_thing_name(thing), days, now),
                          x509.private_key_pem(key))


def _read(path: Path, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as error:
        raise CertificateFileError(f"cannot read the {what} file {path}: {error.strerror}") from None


def load_certificate_files(cert_path: Path, key_path: Path) -> OwnCertificate:
    """Existing PEM files, checked the way AWS would: one certificate, its unencrypted key, a key AWS accepts."""
    cert_bytes, key_bytes = _read(cert_path, "certificate"), _read(key_path, "private key")
    try:
        cert = x509.load_certificate(cert_bytes)
    except x509.CertificateValidationError as error:
        raise CertificateFileError(f"{cert_path}: {error}") from None
    try:
        key = x509.load_private_key(key_bytes)
    except x509.CertificateValidationError as error:
        raise CertificateFileError(f"{key_path}: {error}") from None
    try:
        x509.check_supported_key(cert.public_key())
    except x509.CertificateValidationError as error:
        raise CertificateFileError(f"{cert_path}: {error}") from None
    if not x509.key_matches_certificate(key, cert):
        raise CertificateFileError(f"{key_path} is not the private key of {cert_path}")
    return OwnCertificate(x509.certificate_pem(cert), x509.private_key_pem(key))


def register_own(iot: Any, thing: str, target: Target, files_root: Path, *, pem: OwnCertificate | None = None,
                 generate: bool = False, key_kind: str = "rsa2048", policy_name: str | None = None,
                 on_step: StepListener | None = None) -> CertificateResult:
    """RegisterCertificateWithoutCA (ACTIVE) for given PEMs or a certificate generated here, then attach.

    The files are saved first (the id is the SHA-256 of the DER, known before AWS answers), so
    nothing is left in AWS without its key; a failed registration removes the files it wrote.
    """
    if (pem is None) == (not generate):
        raise ValueError("give exactly one of pem= (existing files) and generate=True")
    device_files.check_thing_name(thing)
    ca = device_files.target_ca(target)
    _preflight(iot, thing, policy_name)
    record = _Recorder(on_step)
    if pem is None:
        pem = generate_certificate(thing, key_kind)
        record("GenerateCertificate", f"new {key_kind} key and self-signed certificate, CN={thing}")
    cert_id = pem.certificate_id
    existed = device_files.find_device_files(files_root, thing, cert_id) is not None
    files = device_files.save_device_files(files_root, thing, cert_id, pem.certificate_pem, pem.private_key_pem,
                                           pem.public_key_pem, ca)
    record("SaveFiles", f"saved to {files.folder} (private key 0600)")
    try:
        made = iot.register_certificate_without_ca(certificatePem=pem.certificate_pem, status="ACTIVE")
    except ClientError:
        if not existed:  # the same certificate registered before keeps its files
            device_files.remove_device_files(files_root, thing, cert_id)
        raise
    record("RegisterCertificateWithoutCA", f"certificate {made['certificateId']} is ACTIVE (no CA registered)")
    return _attach(iot, record, made["certificateId"], made["certificateArn"], thing, files, policy_name)


def _preflight(iot: Any, thing: str, policy_name: str | None) -> None:
    iot.describe_thing(thingName=thing)
    if policy_name:
        iot.get_policy(policyName=policy_name)


def _attach(iot: Any, record: _Recorder, cert_id: str, arn: str, thing: str, files: DeviceFiles,
            policy_name: str | None) -> CertificateResult:
    iot.attach_thing_principal(thingName=thing, principal=arn)
    record("AttachThingPrincipal", f"{thing} may now connect with this certificate")
    if policy_name:
        iot.attach_policy(policyName=policy_name, target=arn)
        record("AttachPolicy", f"{policy_name} now decides what this certificate may do")
    return CertificateResult(cert_id, arn, thing, files, policy_name, record.steps)


# -- existing certificates --


def certificate_arn(iot: Any, certificate: str) -> str:
    """An ARN as given, or the ARN of a certificate id."""
    if certificate.startswith("arn:"):
        return certificate
    return iot.describe_certificate(certificateId=certificate)["certificateDescription"]["certificateArn"]


def attach_policy(iot: Any, certificate: str, policy_name: str) -> None:
    """Attach a policy to a certificate (id or ARN); a certificate with no policy may do nothing."""
    iot.attach_policy(policyName=policy_name, target=certificate_arn(iot, certificate))


def detach_policy(iot: Any, certificate: str, policy_name: str) -> None:
    iot.detach_policy(policyName=policy_name, target=certificate_arn(iot, certificate))


def set_status(iot: Any, certificate_id: str, status: str) -> None:
    """ACTIVE, INACTIVE, or REVOKED (final: see REVOKE_WARNING); other statuses are AWS's own."""
    if status not in STATUSES:
        raise ValueError(f"status must be one of {', '.join(STATUSES)}, not {status!r}")
    iot.update_certificate(certificateId=certificate_id, newStatus=status)


def attached_policies(iot: Any, arn: str) -> list[str]:
    return [p["policyName"] for p in pages(iot.list_attached_policies, "policies", token_name="marker", target=arn)]


def attached_things(iot: Any, arn: str) -> list[str]:
    return list(pages(iot.list_principal_things, "things", principal=arn))


def describe_with_attachments(iot: Any, certificate_id: str) -> CertificateDetails:
    """Status, dates, things and policies of one certificate, for the details pane."""
    cert = iot.describe_certificate(certificateId=certificate_id)["certificateDescription"]
    validity = cert.get("validity") or {}
    arn = cert["certificateArn"]
    return CertificateDetails(cert["certificateId"], arn, cert["status"], cert.get("creationDate"),
                              cert.get("lastModifiedDate"), validity.get("notBefore"), validity.get("notAfter"),
                              cert.get("certificateMode"), attached_things(iot, arn), attached_policies(iot, arn))


def safe_delete(iot: Any, certificate_id: str, sample_things: Iterable[str] = frozenset(),
                confirm_id: str | None = None, files_root: Path | None = None,
                on_step: StepListener | None = None,
                sleep: Callable[[float], None] = time.sleep) -> DeleteResult:
    """Detach from things and policies, deactivate, delete; with `files_root`, remove its device files too.

    Refuses (ConfirmationRequired, before any change) a certificate attached to a thing outside
    `sample_things` unless `confirm_id` repeats the certificate id.
    """
    cert = iot.describe_certificate(certificateId=certificate_id)["certificateDescription"]
    arn, status = cert["certificateArn"], cert["status"]
    things = attached_things(iot, arn)
    outside = sorted(set(things) - set(sample_things))
    if outside and confirm_id != certificate_id:
        raise ConfirmationRequired(certificate_id, outside)
    record = _Recorder(on_step)
    for thing in things:
        iot.detach_thing_principal(thingName=thing, principal=arn)
        record("DetachThingPrincipal", f"detached from {thing}")
    for policy in attached_policies(iot, arn):
        iot.detach_policy(policyName=policy, target=arn)
        record("DetachPolicy", f"detached {policy}")
    if status == "ACTIVE":
        iot.update_certificate(certificateId=certificate_id, newStatus="INACTIVE")
        record("UpdateCertificate", "INACTIVE: devices using it are refused from now on")
    for attempt in range(DELETE_ATTEMPTS):
        try:
            iot.delete_certificate(certificateId=certificate_id)
            break
        except ClientError as error:
            if _code(error) != "DeleteConflictException" or attempt == DELETE_ATTEMPTS - 1:
                raise
            sleep(DELETE_RETRY_SECONDS)
    record("DeleteCertificate", f"certificate {certificate_id} deleted")
    removed = []
    for files in device_files.list_device_folders(files_root) if files_root is not None else []:
        if files.certificate_id == certificate_id:
            device_files.remove_device_files(files.folder.parent, files.thing, certificate_id)
            removed.append(files.folder)
            record("RemoveFiles", f"removed its files from {files.folder}")
    return DeleteResult(certificate_id, record.steps, removed)
