"""Certificate operations of the local core through real boto3 and the AWS CLI, as AWS answers."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import ssl
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from iot_tui.core_defaults import LOCAL_ACCESS_KEY_ID, LOCAL_SECRET_ACCESS_KEY
from iot_tui.iotcore.x509 import (
    DEVICE_CERT_NOT_AFTER,
    generate_key,
    key_matches_certificate,
    load_private_key,
    make_csr,
    self_signed_certificate,
    sign_certificate,
)
from iot_tui.local.store.base import StoreBase
from iot_tui.local.store.certificates import AttachmentCounts, CertificateQueries
from tests.conftest import NO_RETRY, client, error_code, http_status

ACCOUNT = "000000000000"
MISSING_ID = "0" * 64


# ---------------------------------------------------------------------------- helpers
# EC keys keep the test-side certificates fast; RSA is exercised by the core's own issuing.


def _der_id(pem: str) -> str:
    der = x509.load_pem_x509_certificate(pem.encode()).public_bytes(serialization.Encoding.DER)
    return hashlib.sha256(der).hexdigest()


def _self_signed(cn: str = "device") -> str:
    return self_signed_certificate(generate_key("ec-p256"), cn, days=30)


class _CA:
    """A CA of our own, as a customer would bring to RegisterCACertificate."""

    def __init__(self, cn: str = "Customer Root CA", key=None):
        self.key = key or generate_key("ec-p256")
        self.pem = self_signed_certificate(self.key, cn, days=3650, is_ca=True)

    def issue(self, cn: str = "device") -> str:
        return sign_certificate(self.pem, self.key, generate_key("ec-p256"), cn, days=365)

    def register(self, iot, **kwargs) -> dict:
        """Register in DEFAULT mode with a proof of possession, active unless told otherwise."""
        code = iot.get_registration_code()["registrationCode"]
        kwargs.setdefault("setAsActive", True)
        return iot.register_ca_certificate(
            caCertificate=self.pem, verificationCertificate=self.issue(code), **kwargs
        )


def _mutual_tls_peer(ca, cert_pem: str, key_pem: str, tmp_path: Path) -> bytes:
    """A TLS handshake in memory, as the broker will do it: the server requires a client
    certificate from the local CA. Returns the DER the server saw."""
    cert_file, key_file = tmp_path / "device.crt", tmp_path / "device.key"
    cert_file.write_text(cert_pem)
    key_file.write_text(key_pem)
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(ca.server_cert_path, ca.server_key_path)
    server_ctx.verify_mode = ssl.CERT_REQUIRED
    server_ctx.load_verify_locations(cadata=ca.ca_cert_pem)
    client_ctx = ssl.create_default_context(cadata=ca.ca_cert_pem)
    client_ctx.load_cert_chain(cert_file, key_file)

    to_server, from_server = ssl.MemoryBIO(), ssl.MemoryBIO()
    to_client, from_client = ssl.MemoryBIO(), ssl.MemoryBIO()
    server = server_ctx.wrap_bio(to_server, from_server, server_side=True)
    client = client_ctx.wrap_bio(to_client, from_client, server_hostname="localhost")
    pending = [client, server]
    for _ in range(10):
        for side in list(pending):
            try:
                side.do_handshake()
                pending.remove(side)
            except ssl.SSLWantReadError:
                pass
        to_server.write(from_client.read())
        to_client.write(from_server.read())
        if not pending:
            break
    assert not pending, "the TLS handshake did not complete"
    return server.getpeercert(binary_form=True)


def _all_ids(pages) -> list[str]:
    return [c["certificateId"] for page in pages for c in page["certificates"]]


# ---------------------------------------------------------------------------- issuing


def test_create_keys_and_certificate_issues_rsa_certificate_from_local_ca(
    iot, core, region, clock, tmp_path
):
    result = iot.create_keys_and_certificate(setAsActive=True)

    pem = result["certificatePem"]
    cert_id = result["certificateId"]
    assert cert_id == _der_id(pem)
    assert result["certificateArn"] == f"arn:aws:iot:{region}:{ACCOUNT}:cert/{cert_id}"
    cert = x509.load_pem_x509_certificate(pem.encode())
    cert.verify_directly_issued_by(core.core.ca.ca_cert)
    # OpenSSL's own chain verification, as the broker's TLS will do it; the id is what it sees.
    der = _mutual_tls_peer(core.core.ca, pem, result["keyPair"]["PrivateKey"], tmp_path)
    assert hashlib.sha256(der).hexdigest() == cert_id
    public_key = cert.public_key()
    assert isinstance(public_key, rsa.RSAPublicKey) and public_key.key_size == 2048
    assert result["keyPair"]["PrivateKey"].startswith("-----BEGIN RSA PRIVATE KEY-----")
    assert result["keyPair"]["PublicKey"].startswith("-----BEGIN PUBLIC KEY-----")
    assert key_matches_certificate(load_private_key(result["keyPair"]["PrivateKey"]), pem)

    description = iot.describe_certificate(certificateId=cert_id)["certificateDescription"]
    assert description["status"] == "ACTIVE"
    assert description["certificatePem"] == pem
    assert description["certificateMode"] == "DEFAULT"
    assert description["ownedBy"] == ACCOUNT
    assert description["customerVersion"] == 1
    assert description["generationId"]
    assert "caCertificateId" not in description
    assert description["transferData"] == {}
    assert description["creationDate"].timestamp() == pytest.approx(clock.now)
    assert description["lastModifiedDate"] == description["creationDate"]
    # Issued on the core's clock, valid until 2049 like AWS's own device certificates.
    assert description["validity"]["notBefore"].timestamp() == int(clock.now)
    assert description["validity"]["notAfter"] == DEVICE_CERT_NOT_AFTER


def test_create_keys_and_certificate_is_inactive_by_default(iot):
    cert_id = iot.create_keys_and_certificate()["certificateId"]
    assert iot.describe_certificate(certificateId=cert_id)["certificateDescription"]["status"] == (
        "INACTIVE"
    )


def test_create_certificate_from_csr_certifies_the_csr_key(iot, core):
    key = generate_key("ec-p256")
    result = iot.create_certificate_from_csr(
        certificateSigningRequest=make_csr(key, "my-device"), setAsActive=True
    )

    pem = result["certificatePem"]
    assert result["certificateId"] == _der_id(pem)
    assert key_matches_certificate(key, pem)
    cert = x509.load_pem_x509_certificate(pem.encode())
    cert.verify_directly_issued_by(core.core.ca.ca_cert)
    description = iot.describe_certificate(certificateId=result["certificateId"])
    assert description["certificateDescription"]["status"] == "ACTIVE"
    assert "keyPair" not in result


def test_create_certificate_from_csr_without_set_as_active_is_inactive(iot):
    csr = make_csr(generate_key("ec-p256"), "my-device")
    cert_id = iot.create_certificate_from_csr(certificateSigningRequest=csr)["certificateId"]
    assert iot.describe_certificate(certificateId=cert_id)["certificateDescription"]["status"] == (
        "INACTIVE"
    )


@pytest.mark.parametrize(
    "csr",
    [
        "not a csr",
        "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n",
        _self_signed(),  # a certificate is not a CSR
    ],
)
def test_create_certificate_from_malformed_csr_is_invalid_request(iot, csr):
    with pytest.raises(ClientError) as excinfo:
        iot.create_certificate_from_csr(certificateSigningRequest=csr)
    assert error_code(excinfo) == "InvalidRequestException"
    assert http_status(excinfo) == 400


# ---------------------------------------------------------------------------- without a CA


def test_register_certificate_without_ca_is_active_and_sni_only(iot, region):
    pem = _self_signed()
    result = iot.register_certificate_without_ca(certificatePem=pem)

    assert result["certificateId"] == _der_id(pem)
    assert result["certificateArn"] == f"arn:aws:iot:{region}:{ACCOUNT}:cert/{_der_id(pem)}"
    description = iot.describe_certificate(certificateId=result["certificateId"])
    description = description["certificateDescription"]
    assert description["status"] == "ACTIVE"
    assert description["certificateMode"] == "SNI_ONLY"
    assert "caCertificateId" not in description
    assert description["certificatePem"] == pem


def test_register_certificate_without_ca_with_status(iot):
    cert_id = iot.register_certificate_without_ca(certificatePem=_self_signed(), status="REVOKED")[
        "certificateId"
    ]
    assert iot.describe_certificate(certificateId=cert_id)["certificateDescription"]["status"] == (
        "REVOKED"
    )


def test_register_certificate_without_ca_twice_is_already_exists(iot):
    pem = _self_signed()
    first = iot.register_certificate_without_ca(certificatePem=pem)

    with pytest.raises(ClientError) as excinfo:
        iot.register_certificate_without_ca(certificatePem=pem)
    assert error_code(excinfo) == "ResourceAlreadyExistsException"
    assert http_status(excinfo) == 409
    assert excinfo.value.response["resourceId"] == first["certificateId"]
    assert excinfo.value.response["resourceArn"] == first["certificateArn"]


def test_certificate_issued_here_cannot_be_registered_again(iot):
    created = iot.create_keys_and_certificate()
    with pytest.raises(ClientError) as excinfo:
        iot.register_certificate_without_ca(certificatePem=created["certificatePem"])
    assert error_code(excinfo) == "ResourceAlreadyExistsException"
    assert excinfo.value.response["resourceId"] == created["certificateId"]


@pytest.mark.parametrize(
    "pem",
    [
        "garbage",
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        make_csr(generate_key("ec-p256"), "x"),
    ],
)
def test_register_certificate_without_ca_malformed_pem_is_validation_error(iot, pem):
    with pytest.raises(ClientError) as excinfo:
        iot.register_certificate_without_ca(certificatePem=pem)
    assert error_code(excinfo) == "CertificateValidationException"
    assert http_status(excinfo) == 400


def test_register_certificate_without_ca_refuses_weak_rsa_key(iot):
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    with pytest.raises(ClientError) as excinfo:
        iot.register_certificate_without_ca(certificatePem=self_signed_certificate(weak, "weak"))
    assert error_code(excinfo) == "CertificateValidationException"


def test_register_certificate_without_ca_refuses_internal_status(iot):
    with pytest.raises(ClientError) as excinfo:
        iot.register_certificate_without_ca(
            certificatePem=_self_signed(), status="PENDING_TRANSFER"
        )
    assert error_code(excinfo) == "InvalidRequestException"
    assert http_status(excinfo) == 400


def test_same_certificate_registers_in_two_regions(iot, core, region):
    """Certificates are regional: one PEM may be registered in several regions."""
    other = client("iot", core, f"{region}-b")
    pem = _self_signed()
    here = iot.register_certificate_without_ca(certificatePem=pem, status="ACTIVE")
    there = other.register_certificate_without_ca(certificatePem=pem, status="INACTIVE")

    assert here["certificateId"] == there["certificateId"]
    assert here["certificateArn"] != there["certificateArn"]
    store = core.core.store
    assert store.certificate_status(here["certificateId"], region) == "ACTIVE"
    assert store.certificate_status(here["certificateId"], f"{region}-b") == "INACTIVE"
    # Without a region the first registration answers.
    assert store.certificate_by_id(here["certificateId"]).region == region


# ---------------------------------------------------------------------------- describe / list


def test_describe_unknown_certificate_is_not_found(iot):
    with pytest.raises(ClientError) as excinfo:
        iot.describe_certificate(certificateId=MISSING_ID)
    assert error_code(excinfo) == "ResourceNotFoundException"
    assert http_status(excinfo) == 404


def test_describe_certificate_with_malformed_id_is_invalid_request(unchecked_iot):
    with pytest.raises(ClientError) as excinfo:
        unchecked_iot.describe_certificate(certificateId="z" * 64)
    assert error_code(excinfo) == "InvalidRequestException"
    assert http_status(excinfo) == 400


def test_certificates_are_regional(iot, core, region):
    cert_id = iot.register_certificate_without_ca(certificatePem=_self_signed())["certificateId"]
    other = client("iot", core, f"{region}-elsewhere")
    assert other.list_certificates()["certificates"] == []
    with pytest.raises(ClientError) as excinfo:
        other.describe_certificate(certificateId=cert_id)
    assert error_code(excinfo) == "ResourceNotFoundException"


def test_list_certificates_pages_in_creation_order(iot, clock):
    ids = []
    for _ in range(5):
        ids.append(iot.register_certificate_without_ca(certificatePem=_self_signed())["certificateId"])
        clock.advance(1)

    first = iot.list_certificates(pageSize=2)
    assert [c["certificateId"] for c in first["certificates"]] == ids[::-1][:2]
    second = iot.list_certificates(pageSize=2, marker=first["nextMarker"])
    assert [c["certificateId"] for c in second["certificates"]] == ids[::-1][2:4]
    third = iot.list_certificates(pageSize=2, marker=second["nextMarker"])
    assert [c["certificateId"] for c in third["certificates"]] == ids[::-1][4:]
    assert "nextMarker" not in third

    ascending = iot.list_certificates(ascendingOrder=True)
    assert [c["certificateId"] for c in ascending["certificates"]] == ids
    assert "nextMarker" not in ascending
    summary = ascending["certificates"][0]
    assert set(summary) == {
        "certificateArn", "certificateId", "status", "certificateMode", "creationDate",
    }
    assert summary["status"] == "ACTIVE" and summary["certificateMode"] == "SNI_ONLY"


def test_list_certificates_paginator_and_default_page_size(iot):
    ids = {
        iot.register_certificate_without_ca(certificatePem=_self_signed())["certificateId"]
        for _ in range(27)
    }
    # AWS's default page size is 25.
    first = iot.list_certificates()
    assert len(first["certificates"]) == 25 and "nextMarker" in first

    pages = list(iot.get_paginator("list_certificates").paginate(PaginationConfig={"PageSize": 10}))
    assert [len(page["certificates"]) for page in pages] == [10, 10, 7]
    assert set(_all_ids(pages)) == ids


def test_list_certificates_marker_survives_deleting_its_certificate(iot):
    ids = [
        iot.register_certificate_without_ca(certificatePem=_self_signed(), status="INACTIVE")[
            "certificateId"
        ]
        for _ in range(4)
    ]
    first = iot.list_certificates(pageSize=2, ascendingOrder=True)
    iot.delete_certificate(certificateId=first["certificates"][-1]["certificateId"])

    rest = iot.list_certificates(pageSize=2, ascendingOrder=True, marker=first["nextMarker"])
    assert [c["certificateId"] for c in rest["certificates"]] == ids[2:]


@pytest.fixture
def unchecked_iot(core, region):
    """A client that sends what it is given, so the core's own validation answers."""
    return boto3.client(
        "iot",
        endpoint_url=core.http_url,
        region_name=region,
        aws_access_key_id=LOCAL_ACCESS_KEY_ID,
        aws_secret_access_key=LOCAL_SECRET_ACCESS_KEY,
        config=NO_RETRY.merge(Config(parameter_validation=False)),
    )


@pytest.mark.parametrize(
    "kwargs", [{"pageSize": 0}, {"pageSize": 251}, {"marker": "bm90LWEtbWFya2Vy"}, {"marker": "!"}]
)
def test_list_certificates_bad_paging_is_invalid_request(unchecked_iot, kwargs):
    with pytest.raises(ClientError) as excinfo:
        unchecked_iot.list_certificates(**kwargs)
    assert error_code(excinfo) == "InvalidRequestException"
    assert http_status(excinfo) == 400


# ---------------------------------------------------------------------------- update


def test_update_certificate_status_round_trip_and_versions(iot, clock):
    cert_id = iot.create_keys_and_certificate(setAsActive=True)["certificateId"]
    before = iot.describe_certificate(certificateId=cert_id)["certificateDescription"]

    clock.advance(10)
    iot.update_certificate(certificateId=cert_id, newStatus="INACTIVE")
    after = iot.describe_certificate(certificateId=cert_id)["certificateDescription"]
    assert after["status"] == "INACTIVE"
    assert after["customerVersion"] == 2
    assert after["generationId"] != before["generationId"]
    assert after["lastModifiedDate"].timestamp() == pytest.approx(clock.now)
    assert after["creationDate"] == before["creationDate"]

    iot.update_certificate(certificateId=cert_id, newStatus="ACTIVE")
    assert iot.describe_certificate(certificateId=cert_id)["certificateDescription"]["status"] == (
        "ACTIVE"
    )


def test_update_certificate_to_same_status_is_idempotent(iot):
    cert_id = iot.create_keys_and_certificate(setAsActive=True)["certificateId"]
    iot.update_certificate(certificateId=cert_id, newStatus="ACTIVE")
    description = iot.describe_certificate(certificateId=cert_id)["certificateDescription"]
    assert description["status"] == "ACTIVE" and description["customerVersion"] == 1


@pytest.mark.parametrize("new_status", ["ACTIVE", "INACTIVE"])
def test_revoked_certificate_status_cannot_change(iot, new_status):
    cert_id = iot.create_keys_and_certificate(setAsActive=True)["certificateId"]
    iot.update_certificate(certificateId=cert_id, newStatus="REVOKED")
    iot.update_certificate(certificateId=cert_id, newStatus="REVOKED")  # no change: accepted

    with pytest.raises(ClientError) as excinfo:
        iot.update_certificate(certificateId=cert_id, newStatus=new_status)
    assert error_code(excinfo) == "CertificateStateException"
    assert http_status(excinfo) == 406
    assert iot.describe_certificate(certificateId=cert_id)["certificateDescription"]["status"] == (
        "REVOKED"
    )


@pytest.mark.parametrize("new_status", ["PENDING_TRANSFER", "PENDING_ACTIVATION"])
def test_update_certificate_to_internal_status_is_invalid_request(iot, new_status):
    cert_id = iot.create_keys_and_certificate()["certificateId"]
    with pytest.raises(ClientError) as excinfo:
        iot.update_certificate(certificateId=cert_id, newStatus=new_status)
    assert error_code(excinfo) == "InvalidRequestException"


def test_update_certificate_bad_input(iot, unchecked_iot):
    with pytest.raises(ClientError) as excinfo:
        iot.update_certificate(certificateId=MISSING_ID, newStatus="ACTIVE")
    assert error_code(excinfo) == "ResourceNotFoundException"
    assert http_status(excinfo) == 404

    cert_id = iot.create_keys_and_certificate()["certificateId"]
    with pytest.raises(ClientError) as excinfo:
        unchecked_iot.update_certificate(certificateId=cert_id, newStatus="ENABLED")
    assert error_code(excinfo) == "InvalidRequestException"
    assert "enum value set" in excinfo.value.response["Error"]["Message"]


# ---------------------------------------------------------------------------- delete


def test_delete_active_certificate_must_be_deactivated_first(iot):
    cert_id = iot.create_keys_and_certificate(setAsActive=True)["certificateId"]

    with pytest.raises(ClientError) as excinfo:
        iot.delete_certificate(certificateId=cert_id)
    assert error_code(excinfo) == "CertificateStateException"
    assert http_status(excinfo) == 406
    assert excinfo.value.response["Error"]["Message"] == (
        "Certificate must be deactivated before deletion."
    )
    # forceDelete does not skip the status rule.
    with pytest.raises(ClientError) as excinfo:
        iot.delete_certificate(certificateId=cert_id, forceDelete=True)
    assert error_code(excinfo) == "CertificateStateException"

    iot.update_certificate(certificateId=cert_id, newStatus="INACTIVE")
    iot.delete_certificate(certificateId=cert_id)
    with pytest.raises(ClientError) as excinfo:
        iot.describe_certificate(certificateId=cert_id)
    assert error_code(excinfo) == "ResourceNotFoundException"
    assert iot.list_certificates()["certificates"] == []


def test_delete_revoked_certificate(iot):
    cert_id = iot.create_keys_and_certificate(setAsActive=True)["certificateId"]
    iot.update_certificate(certificateId=cert_id, newStatus="REVOKED")
    iot.delete_certificate(certificateId=cert_id)
    assert iot.list_certificates()["certificates"] == []


def test_delete_unknown_certificate_is_not_found(iot):
    with pytest.raises(ClientError) as excinfo:
        iot.delete_certificate(certificateId=MISSING_ID)
    assert error_code(excinfo) == "ResourceNotFoundException"
    assert http_status(excinfo) == 404


POLICY = json.dumps({
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "iot:Connect", "Resource": "*"}],
})


def test_delete_certificate_attached_to_thing_is_conflict_even_forced(iot):
    created = iot.create_keys_and_certificate()
    iot.create_thing(thingName="device-1")
    iot.attach_thing_principal(thingName="device-1", principal=created["certificateArn"])

    for force in (False, True):
        with pytest.raises(ClientError) as excinfo:
            iot.delete_certificate(certificateId=created["certificateId"], forceDelete=force)
        assert error_code(excinfo) == "DeleteConflictException"
        assert http_status(excinfo) == 409
        assert created["certificateArn"] in excinfo.value.response["Error"]["Message"]

    iot.detach_thing_principal(thingName="device-1", principal=created["certificateArn"])
    iot.delete_certificate(certificateId=created["certificateId"])
    assert iot.list_certificates()["certificates"] == []


def test_delete_certificate_with_policy_is_conflict_unless_forced(iot):
    created = iot.create_keys_and_certificate()
    iot.create_policy(policyName="connect", policyDocument=POLICY)
    iot.attach_policy(policyName="connect", target=created["certificateArn"])

    with pytest.raises(ClientError) as excinfo:
        iot.delete_certificate(certificateId=created["certificateId"])
    assert error_code(excinfo) == "DeleteConflictException"
    assert http_status(excinfo) == 409
    assert "policies" in excinfo.value.response["Error"]["Message"]

    iot.delete_certificate(certificateId=created["certificateId"], forceDelete=True)
    assert iot.list_certificates()["certificates"] == []
    # The attachment went with the certificate, so the policy can be deleted now.
    assert iot.list_targets_for_policy(policyName="connect")["targets"] == []
    iot.delete_policy(policyName="connect")


class _Queries(CertificateQueries, StoreBase):
    """The certificate queries alone, over a database holding only what a test creates."""


def test_principal_attachment_counts_reads_other_families_tables():
    db = sqlite3.connect(":memory:", isolation_level=None)
    db.row_factory = sqlite3.Row
    queries = _Queries(db)
    arn = f"arn:aws:iot:us-east-1:{ACCOUNT}:cert/{'a' * 64}"
    # Neither family's table exists yet: nothing is attached.
    assert queries.principal_attachment_counts("us-east-1", arn) == AttachmentCounts(0, 0)

    db.execute("CREATE TABLE thing_principals (region TEXT, thing TEXT, principal TEXT)")
    db.executemany(
        "INSERT INTO thing_principals VALUES (?, ?, ?)",
        [("us-east-1", "t1", arn), ("us-east-1", "t2", arn), ("eu-west-1", "t1", arn)],
    )
    assert queries.principal_attachment_counts("us-east-1", arn) == AttachmentCounts(2, 0)

    db.execute("CREATE TABLE policy_targets (region TEXT, policy TEXT, target TEXT)")
    db.executemany(
        "INSERT INTO policy_targets VALUES (?, ?, ?)",
        [("us-east-1", "p1", arn), ("us-east-1", "p1", "arn:other")],
    )
    assert queries.principal_attachment_counts("us-east-1", arn) == AttachmentCounts(2, 1)
    assert queries.principal_attachment_counts("eu-west-1", arn) == AttachmentCounts(1, 0)


# ---------------------------------------------------------------------------- CA certificates


def test_registration_code_is_stable_per_region(iot, core, region):
    code = iot.get_registration_code()["registrationCode"]
    assert len(code) == 64 and int(code, 16) >= 0
    assert iot.get_registration_code()["registrationCode"] == code
    other = client("iot", core, f"{region}-other").get_registration_code()["registrationCode"]
    assert other != code


def test_delete_registration_code_makes_a_new_one(iot):
    code = iot.get_registration_code()["registrationCode"]
    iot.delete_registration_code()
    new_code = iot.get_registration_code()["registrationCode"]
    assert new_code != code

    # A verification certificate made for the old code no longer proves anything.
    ca = _CA()
    with pytest.raises(ClientError) as excinfo:
        iot.register_ca_certificate(caCertificate=ca.pem, verificationCertificate=ca.issue(code))
    assert error_code(excinfo) == "RegistrationCodeValidationException"

    iot.delete_registration_code()
    with pytest.raises(ClientError) as excinfo:
        iot.delete_registration_code()
    assert error_code(excinfo) == "ResourceNotFoundException"
    assert http_status(excinfo) == 404


def test_register_ca_certificate_default_mode_and_describe(iot, region, clock):
    ca = _CA()
    config = {"templateName": "jitp-template"}
    result = ca.register(iot, allowAutoRegistration=True, registrationConfig=config)

    cert_id = result["certificateId"]
    assert cert_id == _der_id(ca.pem)
    assert result["certificateArn"] == f"arn:aws:iot:{region}:{ACCOUNT}:cacert/{cert_id}"
    described = iot.describe_ca_certificate(certificateId=cert_id)
    description = described["certificateDescription"]
    assert description["status"] == "ACTIVE"
    assert description["certificateMode"] == "DEFAULT"
    assert description["autoRegistrationStatus"] == "ENABLE"
    assert description["certificatePem"] == ca.pem
    assert description["ownedBy"] == ACCOUNT
    assert description["customerVersion"] == 1
    assert description["creationDate"].timestamp() == pytest.approx(clock.now)
    assert description["validity"]["notAfter"] > description["validity"]["notBefore"]
    assert described["registrationConfig"] == config

    listed = iot.list_ca_certificates()["certificates"]
    assert [c["certificateId"] for c in listed] == [cert_id]
    assert set(listed[0]) == {"certificateArn", "certificateId", "status", "creationDate"}


def test_register_ca_certificate_defaults_inactive_without_auto_registration(iot):
    cert_id = _CA().register(iot, setAsActive=False)["certificateId"]
    description = iot.describe_ca_certificate(certificateId=cert_id)["certificateDescription"]
    assert description["status"] == "INACTIVE"
    assert description["autoRegistrationStatus"] == "DISABLE"


def test_register_ca_certificate_sni_only_needs_no_verification(iot):
    ca = _CA()
    cert_id = iot.register_ca_certificate(caCertificate=ca.pem, certificateMode="SNI_ONLY")[
        "certificateId"
    ]
    description = iot.describe_ca_certificate(certificateId=cert_id)["certificateDescription"]
    assert description["certificateMode"] == "SNI_ONLY"


def test_register_ca_certificate_verification_cn_must_be_registration_code(iot):
    ca = _CA()
    with pytest.raises(ClientError) as excinfo:
        iot.register_ca_certificate(
            caCertificate=ca.pem, verificationCertificate=ca.issue("f" * 64)
        )
    assert error_code(excinfo) == "RegistrationCodeValidationException"
    assert http_status(excinfo) == 400


def test_register_ca_certificate_verification_must_be_signed_by_the_ca(iot):
    ca, impostor = _CA(), _CA()
    code = iot.get_registration_code()["registrationCode"]
    with pytest.raises(ClientError) as excinfo:
        iot.register_ca_certificate(
            caCertificate=ca.pem, verificationCertificate=impostor.issue(code)
        )
    assert error_code(excinfo) == "CertificateValidationException"
    assert http_status(excinfo) == 400


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({}, "InvalidRequestException"),  # DEFAULT mode without a verification certificate
        ({"certificateMode": "SNI_ONLY", "verificationCertificate": _self_signed()},
         "InvalidRequestException"),
        ({"certificateMode": "SNI_ONLY", "caCertificate": "garbage"},
         "CertificateValidationException"),
        ({"certificateMode": "SNI_ONLY", "caCertificate": _self_signed("not a CA")},
         "CertificateValidationException"),
        ({"verificationCertificate": "garbage"}, "CertificateValidationException"),
    ],
)
def test_register_ca_certificate_refusals(iot, kwargs, code):
    kwargs.setdefault("caCertificate", _CA().pem)
    with pytest.raises(ClientError) as excinfo:
        iot.register_ca_certificate(**kwargs)
    assert error_code(excinfo) == code
    assert http_status(excinfo) == 400


def test_register_ca_certificate_twice_is_already_exists(iot):
    ca = _CA()
    first = ca.register(iot)
    with pytest.raises(ClientError) as excinfo:
        ca.register(iot)
    assert error_code(excinfo) == "ResourceAlreadyExistsException"
    assert http_status(excinfo) == 409
    assert excinfo.value.response["resourceId"] == first["certificateId"]
    assert excinfo.value.response["resourceArn"] == first["certificateArn"]


def test_at_most_ten_ca_certificates_share_a_subject(iot):
    for _ in range(10):
        iot.register_ca_certificate(caCertificate=_CA("Shared CA").pem, certificateMode="SNI_ONLY")
    with pytest.raises(ClientError) as excinfo:
        iot.register_ca_certificate(caCertificate=_CA("Shared CA").pem, certificateMode="SNI_ONLY")
    assert error_code(excinfo) == "LimitExceededException"
    assert http_status(excinfo) == 410


def test_list_ca_certificates_pages_and_filters_by_template(iot, clock):
    ids = []
    for index in range(3):
        config = {"templateName": "t-even"} if index % 2 == 0 else None
        kwargs = {"registrationConfig": config} if config else {}
        ids.append(_CA(f"CA {index}").register(iot, **kwargs)["certificateId"])
        clock.advance(1)

    first = iot.list_ca_certificates(pageSize=2, ascendingOrder=True)
    assert [c["certificateId"] for c in first["certificates"]] == ids[:2]
    rest = iot.list_ca_certificates(pageSize=2, ascendingOrder=True, marker=first["nextMarker"])
    assert [c["certificateId"] for c in rest["certificates"]] == ids[2:]
    assert "nextMarker" not in rest
    assert _all_ids([iot.list_ca_certificates()]) == ids[::-1]
    filtered = iot.list_ca_certificates(templateName="t-even", ascendingOrder=True)
    assert _all_ids([filtered]) == [ids[0], ids[2]]


def test_update_ca_certificate(iot, clock):
    cert_id = _CA().register(iot, registrationConfig={"templateName": "first"})["certificateId"]

    clock.advance(5)
    iot.update_ca_certificate(
        certificateId=cert_id,
        newStatus="INACTIVE",
        newAutoRegistrationStatus="ENABLE",
        registrationConfig={"templateName": "second"},
    )
    described = iot.describe_ca_certificate(certificateId=cert_id)
    description = described["certificateDescription"]
    assert description["status"] == "INACTIVE"
    assert description["autoRegistrationStatus"] == "ENABLE"
    assert description["customerVersion"] == 2
    assert description["lastModifiedDate"].timestamp() == pytest.approx(clock.now)
    assert described["registrationConfig"] == {"templateName": "second"}

    iot.update_ca_certificate(certificateId=cert_id, removeAutoRegistration=True)
    described = iot.describe_ca_certificate(certificateId=cert_id)
    assert "registrationConfig" not in described
    assert described["certificateDescription"]["status"] == "INACTIVE"  # untouched

    with pytest.raises(ClientError) as excinfo:
        iot.update_ca_certificate(certificateId=MISSING_ID, newStatus="ACTIVE")
    assert error_code(excinfo) == "ResourceNotFoundException"
    assert http_status(excinfo) == 404


def test_delete_ca_certificate_rules(iot):
    ca = _CA()
    ca_id = ca.register(iot)["certificateId"]
    device_id = iot.register_certificate(certificatePem=ca.issue(), caCertificatePem=ca.pem)[
        "certificateId"
    ]

    with pytest.raises(ClientError) as excinfo:
        iot.delete_ca_certificate(certificateId=ca_id)
    assert error_code(excinfo) == "CertificateStateException"
    assert http_status(excinfo) == 406

    iot.update_ca_certificate(certificateId=ca_id, newStatus="INACTIVE")
    with pytest.raises(ClientError) as excinfo:  # a device certificate still names it
        iot.delete_ca_certificate(certificateId=ca_id)
    assert error_code(excinfo) == "CertificateStateException"

    iot.delete_certificate(certificateId=device_id)
    iot.delete_ca_certificate(certificateId=ca_id)
    with pytest.raises(ClientError) as excinfo:
        iot.describe_ca_certificate(certificateId=ca_id)
    assert error_code(excinfo) == "ResourceNotFoundException"
    assert http_status(excinfo) == 404
    with pytest.raises(ClientError) as excinfo:
        iot.delete_ca_certificate(certificateId=ca_id)
    assert error_code(excinfo) == "ResourceNotFoundException"


# ---------------------------------------------------------------------------- register with a CA


def test_register_certificate_with_ca(iot, region):
    ca = _CA()
    ca_id = ca.register(iot)["certificateId"]
    pem = ca.issue()

    result = iot.register_certificate(certificatePem=pem, caCertificatePem=ca.pem)
    assert result["certificateId"] == _der_id(pem)
    assert result["certificateArn"] == f"arn:aws:iot:{region}:{ACCOUNT}:cert/{_der_id(pem)}"
    description = iot.describe_certificate(certificateId=result["certificateId"])
    description = description["certificateDescription"]
    assert description["caCertificateId"] == ca_id
    assert description["status"] == "INACTIVE"
    assert description["certificateMode"] == "DEFAULT"


def test_register_certificate_finds_its_ca_by_issuer(iot):
    ca = _CA("Issuer Lookup CA")
    ca_id = ca.register(iot)["certificateId"]
    _CA("Some Other CA").register(iot)

    cert_id = iot.register_certificate(certificatePem=ca.issue(), status="ACTIVE")["certificateId"]
    description = iot.describe_certificate(certificateId=cert_id)["certificateDescription"]
    assert description["caCertificateId"] == ca_id
    assert description["status"] == "ACTIVE"


def test_register_certificate_set_as_active(iot):
    ca = _CA()
    ca.register(iot)
    cert_id = iot.register_certificate(certificatePem=ca.issue(), setAsActive=True)["certificateId"]
    assert iot.describe_certificate(certificateId=cert_id)["certificateDescription"]["status"] == (
        "ACTIVE"
    )


def test_register_certificate_inherits_sni_only_mode_of_its_ca(iot):
    ca = _CA()
    iot.register_ca_certificate(caCertificate=ca.pem, certificateMode="SNI_ONLY", setAsActive=True)
    cert_id = iot.register_certificate(certificatePem=ca.issue())["certificateId"]
    description = iot.describe_certificate(certificateId=cert_id)["certificateDescription"]
    assert description["certificateMode"] == "SNI_ONLY"


def test_register_certificate_validation_failures(iot):
    ca, stranger = _CA(), _CA()
    ca.register(iot)
    cases = [
        {"certificatePem": "garbage"},
        {"certificatePem": ca.issue(), "caCertificatePem": "garbage"},
        {"certificatePem": stranger.issue()},  # no registered CA signed it
        {"certificatePem": stranger.issue(), "caCertificatePem": ca.pem},  # not signed by it
        {"certificatePem": stranger.issue(), "caCertificatePem": stranger.pem},  # not registered
        {"certificatePem": _self_signed()},
    ]
    for kwargs in cases:
        with pytest.raises(ClientError) as excinfo:
            iot.register_certificate(**kwargs)
        assert error_code(excinfo) == "CertificateValidationException", kwargs
        assert http_status(excinfo) == 400


def test_register_certificate_with_inactive_ca_is_state_error(iot):
    ca = _CA()
    ca.register(iot, setAsActive=False)
    with pytest.raises(ClientError) as excinfo:
        iot.register_certificate(certificatePem=ca.issue(), caCertificatePem=ca.pem)
    assert error_code(excinfo) == "CertificateStateException"
    assert http_status(excinfo) == 406


def test_register_certificate_twice_is_already_exists(iot):
    ca = _CA()
    ca.register(iot)
    pem = ca.issue()
    first = iot.register_certificate(certificatePem=pem)
    with pytest.raises(ClientError) as excinfo:
        iot.register_certificate(certificatePem=pem)
    assert error_code(excinfo) == "ResourceAlreadyExistsException"
    assert http_status(excinfo) == 409
    assert excinfo.value.response["resourceId"] == first["certificateId"]


def test_register_certificate_ambiguous_ca_is_conflict(iot):
    """Two registered CAs with one subject and key: the caller must say which one."""
    key = generate_key("ec-p256")
    ca, twin = _CA("Twin CA", key), _CA("Twin CA", key)
    assert _der_id(ca.pem) != _der_id(twin.pem)
    ca_id = ca.register(iot)["certificateId"]
    twin.register(iot)
    pem = ca.issue()

    with pytest.raises(ClientError) as excinfo:
        iot.register_certificate(certificatePem=pem)
    assert error_code(excinfo) == "CertificateConflictException"
    assert http_status(excinfo) == 409

    cert_id = iot.register_certificate(certificatePem=pem, caCertificatePem=ca.pem)["certificateId"]
    description = iot.describe_certificate(certificateId=cert_id)["certificateDescription"]
    assert description["caCertificateId"] == ca_id


def test_list_certificates_by_ca(iot):
    ca, other = _CA("CA one"), _CA("CA two")
    ca_id = ca.register(iot)["certificateId"]
    other.register(iot)
    mine = {iot.register_certificate(certificatePem=ca.issue())["certificateId"] for _ in range(3)}
    iot.register_certificate(certificatePem=other.issue())
    iot.create_keys_and_certificate()

    pages = list(
        iot.get_paginator("list_certificates_by_ca").paginate(
            caCertificateId=ca_id, PaginationConfig={"PageSize": 2}
        )
    )
    assert [len(page["certificates"]) for page in pages] == [2, 1]
    assert set(_all_ids(pages)) == mine
    assert iot.list_certificates_by_ca(caCertificateId=MISSING_ID)["certificates"] == []


# ---------------------------------------------------------------------------- store look-ups


def test_store_lookups_for_the_broker_and_other_families(iot, core, region):
    created = iot.create_keys_and_certificate(setAsActive=True)
    store = core.core.store
    cert_id = created["certificateId"]

    record = store.certificate_by_id(cert_id)
    assert record is not None
    assert (record.region, record.arn, record.status) == (
        region, created["certificateArn"], "ACTIVE",
    )
    assert record.pem == created["certificatePem"]
    assert store.certificate_status(cert_id) == "ACTIVE"
    assert store.certificate_status(cert_id, region) == "ACTIVE"
    assert store.certificate_status(cert_id, f"{region}-nowhere") is None
    assert store.certificate_status(MISSING_ID) is None

    iot.update_certificate(certificateId=cert_id, newStatus="REVOKED")
    assert store.certificate_status(cert_id) == "REVOKED"

    assert store.certificate_arn_exists(region, created["certificateArn"])
    assert not store.certificate_arn_exists(f"{region}-nowhere", created["certificateArn"])
    arn = created["certificateArn"]
    other_id_arn = arn[:-1] + ("1" if arn.endswith("0") else "0")  # always a different id
    assert not store.certificate_arn_exists(region, other_id_arn)


# ---------------------------------------------------------------------------- AWS CLI


def _aws(core, region: str, *args: str) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": LOCAL_ACCESS_KEY_ID,
        "AWS_SECRET_ACCESS_KEY": LOCAL_SECRET_ACCESS_KEY,
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_MAX_ATTEMPTS": "1",
    }
    aws = Path(sys.executable).with_name("aws")
    return subprocess.run(
        [str(aws), "iot", *args, "--endpoint-url", core.http_url, "--region", region,
         "--output", "json"],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )


def test_aws_cli_certificate_lifecycle(core, region):
    created = _aws(core, region, "create-keys-and-certificate", "--set-as-active")
    assert created.returncode == 0, created.stderr
    cert = json.loads(created.stdout)
    cert_id = cert["certificateId"]
    assert cert_id == _der_id(cert["certificatePem"])

    described = _aws(core, region, "describe-certificate", "--certificate-id", cert_id)
    assert described.returncode == 0, described.stderr
    assert json.loads(described.stdout)["certificateDescription"]["status"] == "ACTIVE"

    refused = _aws(core, region, "delete-certificate", "--certificate-id", cert_id)
    assert refused.returncode != 0
    assert "CertificateStateException" in refused.stderr
    assert "Certificate must be deactivated before deletion." in refused.stderr

    deactivated = _aws(
        core, region, "update-certificate", "--certificate-id", cert_id, "--new-status", "INACTIVE"
    )
    assert deactivated.returncode == 0, deactivated.stderr
    deleted = _aws(core, region, "delete-certificate", "--certificate-id", cert_id)
    assert deleted.returncode == 0, deleted.stderr
    listed = _aws(core, region, "list-certificates")
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout)["certificates"] == []
