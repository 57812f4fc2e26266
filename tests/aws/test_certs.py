"""Certificates on a real local core: create or register, save, attach, connect with awscrt, delete safely."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from awscrt.exceptions import AwsCrtError
from awsiot import mqtt_connection_builder
from botocore.exceptions import ClientError
from cryptography.hazmat.primitives.asymmetric import rsa

from iot_tui.aws import certs, device_files, policies
from iot_tui.aws.target import Target
from iot_tui.iotcore import x509
from tests.conftest import error_code

TIMEOUT = 10.0


@pytest.fixture
def root(tmp_path) -> Path:
    return device_files.certificates_root(tmp_path)


@pytest.fixture
def full_learning(iot, target) -> str:
    chosen = policies.template("full-learning")
    policies.create_from_template(iot, "FullLearning", chosen, target.region, target.account_id)
    return "FullLearning"


def make_thing(iot, name: str = "Vehicle-VIN-001") -> str:
    iot.create_thing(thingName=name)
    return name


def mqtt_connect(core, files: device_files.DeviceFiles, client_id: str) -> None:
    """Connect and disconnect with the AWS IoT Device SDK, as a device would with the saved folder."""
    connection = mqtt_connection_builder.mtls_from_path(
        endpoint="localhost", port=core.ports["mqtt"], cert_filepath=str(files.cert_path),
        pri_key_filepath=str(files.key_path), ca_filepath=str(files.ca_path), client_id=client_id,
        clean_session=True, keep_alive_secs=30, enable_metrics_collection=False,
    )
    connection.connect().result(TIMEOUT)
    connection.disconnect().result(TIMEOUT)


@pytest.fixture
def broker(core):
    if "mqtt" not in core.ports:
        reason = "the local core has no MQTT listener yet (the broker is being finished elsewhere)"
        print(f"SKIP: {reason}")
        pytest.skip(reason)
    return core


def test_create_and_attach_saves_files_and_attaches(iot, target, root, full_learning):
    thing = make_thing(iot)
    seen: list[certs.Step] = []
    result = certs.create_and_attach(iot, thing, target, root, policy_name=full_learning, on_step=seen.append)
    assert [s.operation for s in result.steps] == [
        "CreateKeysAndCertificate", "SaveFiles", "AttachThingPrincipal", "AttachPolicy"]
    assert seen == result.steps
    files = result.files
    assert files.folder == root / thing
    assert files.cert_path.name == f"{result.certificate_id}.crt"
    assert stat.S_IMODE(files.key_path.stat().st_mode) == 0o600
    assert x509.certificate_id(files.cert_path.read_text()) == result.certificate_id
    assert x509.key_matches_certificate(x509.load_private_key(files.key_path.read_text()),
                                        files.cert_path.read_text())
    assert files.ca_path == root / thing / "LocalCoreCA.pem"
    assert files.ca_path.read_bytes() == target.ca_file.read_bytes()
    details = certs.describe_with_attachments(iot, result.certificate_id)
    assert (details.status, details.things, details.policies) == ("ACTIVE", [thing], [full_learning])
    assert details.arn == result.certificate_arn and details.created is not None
    assert device_files.list_device_folders(root) == [files]


def test_certificate_connects_with_awscrt_and_is_refused_once_deactivated(broker, iot, target, root, full_learning):
    thing = make_thing(iot)
    result = certs.create_and_attach(iot, thing, target, root, policy_name=full_learning)
    mqtt_connect(broker, result.files, thing)
    certs.set_status(iot, result.certificate_id, "INACTIVE")
    with pytest.raises(AwsCrtError):  # the broker closes the connection of an INACTIVE certificate
        mqtt_connect(broker, result.files, thing)
    certs.set_status(iot, result.certificate_id, "ACTIVE")
    mqtt_connect(broker, result.files, thing)


def test_missing_thing_or_policy_creates_nothing(iot, target, root):
    with pytest.raises(ClientError) as excinfo:
        certs.create_and_attach(iot, "NoSuchThing", target, root)
    assert error_code(excinfo) == "ResourceNotFoundException"
    thing = make_thing(iot)
    with pytest.raises(ClientError) as excinfo:
        certs.create_and_attach(iot, thing, target, root, policy_name="NoSuchPolicy")
    assert error_code(excinfo) == "ResourceNotFoundException"
    assert iot.list_certificates()["certificates"] == []
    assert not root.exists()


def test_unsaveable_files_leave_no_certificate_behind(iot, target, tmp_path):
    """AWS shows the private key once: a certificate whose key could not be saved is deleted again."""
    blocked = tmp_path / "certificates"
    blocked.write_text("a file where the folder should be")
    thing = make_thing(iot)
    with pytest.raises(OSError):
        certs.create_and_attach(iot, thing, target, blocked)
    assert iot.list_certificates()["certificates"] == []


def test_aws_target_gets_amazon_root_ca_beside_the_files(iot, region, root):
    """The CA follows the target; only the CA matters here, so the local core stands in for AWS."""
    thing = make_thing(iot)
    result = certs.create_and_attach(iot, thing, Target(kind="aws", region=region), root)
    assert result.files.ca_path == root / thing / "AmazonRootCA1.pem"
    assert x509.describe(result.files.ca_path.read_text()).common_name == "Amazon Root CA 1"


def test_bad_thing_name_is_refused_before_any_call(iot, target, root):
    with pytest.raises(device_files.DeviceFilesError):
        certs.create_and_attach(iot, "../x", target, root)
    assert iot.list_certificates()["certificates"] == []


def test_register_generated_certificate(broker, iot, target, root, full_learning):
    thing = make_thing(iot)
    result = certs.register_own(iot, thing, target, root, generate=True, key_kind="ec-p256",
                                policy_name=full_learning)
    assert [s.operation for s in result.steps] == [
        "GenerateCertificate", "SaveFiles", "RegisterCertificateWithoutCA", "AttachThingPrincipal", "AttachPolicy"]
    info = x509.describe(result.files.cert_path.read_text())
    assert info.certificate_id == result.certificate_id
    assert info.self_signed and info.common_name == thing and info.key_algorithm == "EC-P256"
    assert stat.S_IMODE(result.files.key_path.stat().st_mode) == 0o600
    details = certs.describe_with_attachments(iot, result.certificate_id)
    assert (details.status, details.mode, details.things) == ("ACTIVE", "SNI_ONLY", [thing])
    mqtt_connect(broker, result.files, thing)


def test_register_existing_pem_files(iot, target, root, tmp_path):
    thing = make_thing(iot)
    own = certs.generate_certificate(thing)
    cert_path, key_path = tmp_path / "mine.crt", tmp_path / "mine.key"
    cert_path.write_text(own.certificate_pem)
    key_path.write_text(own.private_key_pem)
    loaded = certs.load_certificate_files(cert_path, key_path)
    result = certs.register_own(iot, thing, target, root, pem=loaded)
    assert result.certificate_id == own.certificate_id
    assert [s.operation for s in result.steps] == ["SaveFiles", "RegisterCertificateWithoutCA",
                                                   "AttachThingPrincipal"]
    assert result.files.key_path.read_text() == own.private_key_pem
    # Registering it again: AWS refuses, and the files of the first registration stay.
    with pytest.raises(ClientError) as excinfo:
        certs.register_own(iot, thing, target, root, pem=loaded)
    assert error_code(excinfo) == "ResourceAlreadyExistsException"
    assert result.files.key_path.is_file()


def test_failed_registration_removes_the_files_it_wrote(iot, target, root):
    thing = make_thing(iot)
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    own = certs.OwnCertificate(x509.self_signed_certificate(weak, thing), x509.private_key_pem(weak))
    with pytest.raises(ClientError) as excinfo:
        certs.register_own(iot, thing, target, root, pem=own)
    assert error_code(excinfo) == "CertificateValidationException"
    assert device_files.list_device_folders(root) == []


def test_unusable_pem_files_get_clear_errors(tmp_path):
    own = certs.generate_certificate("car")
    other = certs.generate_certificate("car")
    good_cert, good_key = tmp_path / "c.crt", tmp_path / "c.key"
    good_cert.write_text(own.certificate_pem)
    good_key.write_text(own.private_key_pem)
    (tmp_path / "text.crt").write_text("hello")
    (tmp_path / "other.key").write_text(other.private_key_pem)
    (tmp_path / "der.crt").write_bytes(b"\x30\x82\x01\xff")
    cases = [
        (tmp_path / "missing.crt", good_key, "cannot read the certificate file .*missing.crt"),
        (tmp_path / "text.crt", good_key, "text.crt: not a PEM certificate"),
        (tmp_path / "der.crt", good_key, "der.crt: not a PEM"),
        (good_cert, good_cert, "c.crt: this PEM holds a 'CERTIFICATE' block, not a private key"),
        (good_cert, tmp_path / "other.key", "other.key is not the private key of .*c.crt"),
    ]
    for cert_path, key_path, message in cases:
        with pytest.raises(certs.CertificateFileError, match=message):
            certs.load_certificate_files(cert_path, key_path)


def test_register_needs_exactly_one_source(iot, target, root):
    with pytest.raises(ValueError, match="exactly one"):
        certs.register_own(iot, "car", target, root)


def test_policy_attach_detach_and_status(iot, target, root, full_learning):
    thing = make_thing(iot)
    result = certs.create_and_attach(iot, thing, target, root)
    assert certs.describe_with_attachments(iot, result.certificate_id).policies == []
    certs.attach_policy(iot, result.certificate_id, full_learning)
    assert certs.describe_with_attachments(iot, result.certificate_id).policies == [full_learning]
    certs.detach_policy(iot, result.certificate_arn, full_learning)
    assert certs.describe_with_attachments(iot, result.certificate_id).policies == []
    certs.set_status(iot, result.certificate_id, "INACTIVE")
    assert certs.describe_with_attachments(iot, result.certificate_id).status == "INACTIVE"
    certs.set_status(iot, result.certificate_id, "REVOKED")
    with pytest.raises(ClientError) as excinfo:
        certs.set_status(iot, result.certificate_id, "ACTIVE")
    assert error_code(excinfo) == "CertificateStateException"
    with pytest.raises(ValueError, match="status must be one of"):
        certs.set_status(iot, result.certificate_id, "PENDING_TRANSFER")


def test_safe_delete_inside_the_sample_fleet(iot, target, root, full_learning):
    thing = make_thing(iot)
    result = certs.create_and_attach(iot, thing, target, root, policy_name=full_learning)
    deleted = certs.safe_delete(iot, result.certificate_id, sample_things={thing}, files_root=root,
                                sleep=lambda s: None)
    assert [s.operation for s in deleted.steps] == [
        "DetachThingPrincipal", "DetachPolicy", "UpdateCertificate", "DeleteCertificate", "RemoveFiles"]
    assert deleted.removed_files == [root / thing]
    assert iot.list_certificates()["certificates"] == []
    assert device_files.list_device_folders(root) == []
    assert policies.list_targets(iot, full_learning) == []


def test_safe_delete_refuses_foreign_things_until_confirmed(iot, target, root):
    thing = make_thing(iot)
    result = certs.create_and_attach(iot, thing, target, root)
    with pytest.raises(certs.ConfirmationRequired) as excinfo:
        certs.safe_delete(iot, result.certificate_id, sample_things={"Vehicle-VIN-002"})
    assert excinfo.value.things == [thing]
    with pytest.raises(certs.ConfirmationRequired):
        certs.safe_delete(iot, result.certificate_id, confirm_id=result.certificate_id[:12])
    details = certs.describe_with_attachments(iot, result.certificate_id)
    assert (details.status, details.things) == ("ACTIVE", [thing])
    certs.safe_delete(iot, result.certificate_id, confirm_id=result.certificate_id)
    with pytest.raises(ClientError) as missing:
        certs.describe_with_attachments(iot, result.certificate_id)
    assert error_code(missing) == "ResourceNotFoundException"


def test_safe_delete_retries_while_aws_still_sees_the_thing(iot, target, root):
    """DetachThingPrincipal is asynchronous on AWS: DeleteCertificate may conflict for a few seconds."""
    thing = make_thing(iot)
    result = certs.create_and_attach(iot, thing, target, root)
    real_delete, calls, waits = iot.delete_certificate, [], []

    def flaky(**kwargs):
        calls.append(kwargs)
        if len(calls) < 3:
            raise ClientError({"Error": {"Code": "DeleteConflictException", "Message": "Things must be detached"}},
                              "DeleteCertificate")
        return real_delete(**kwargs)

    iot.delete_certificate = flaky
    certs.safe_delete(iot, result.certificate_id, sample_things={thing}, sleep=waits.append)
    assert len(calls) == 3 and waits == [certs.DELETE_RETRY_SECONDS] * 2
