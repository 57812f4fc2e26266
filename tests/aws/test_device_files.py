"""Device files: the folder layout, 0600 keys written atomically, the CA per target, listing and removal."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from iot_tui.aws import device_files
from iot_tui.aws.device_files import DeviceFilesError
from iot_tui.aws.target import Target
from iot_tui.files import write_atomic

CERT_ID = "a" * 64
OTHER_ID = "b" * 64


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def save(root: Path, thing: str = "Vehicle-VIN-001", cert_id: str = CERT_ID,
         ca: device_files.CaFile | None = None) -> device_files.DeviceFiles:
    return device_files.save_device_files(root, thing, cert_id, "CERT\n", "KEY\n", "PUB\n", ca)


def test_certificates_root_defaults_to_the_user_data_dir(tmp_path, monkeypatch):
    assert device_files.certificates_root(tmp_path) == tmp_path / "certificates"
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert device_files.certificates_root() == tmp_path / "xdg" / "iot-tui" / "certificates"


def test_layout_and_modes(tmp_path):
    ca = device_files.CaFile(device_files.LOCAL_CORE_CA, b"CA\n")
    files = save(tmp_path, ca=ca)
    folder = tmp_path / "Vehicle-VIN-001"
    assert files.cert_path == folder / f"{CERT_ID}.crt"
    assert files.key_path == folder / f"{CERT_ID}.key"
    assert files.public_key_path == folder / f"{CERT_ID}.pub"
    assert files.ca_path == folder / "LocalCoreCA.pem"
    assert files.folder == folder
    assert files.key_path.read_text() == "KEY\n" and files.ca_path.read_bytes() == b"CA\n"
    assert mode(files.key_path) == 0o600
    assert mode(files.cert_path) == 0o644 and mode(files.public_key_path) == 0o644
    assert mode(folder) == 0o700
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [f"{CERT_ID}.crt", f"{CERT_ID}.key", f"{CERT_ID}.pub", "LocalCoreCA.pem"])  # no temp files left


def test_temp_file_has_the_final_mode_before_it_is_renamed(tmp_path, monkeypatch):
    seen = []
    real_replace = os.replace

    def spy(source, destination):
        seen.append((Path(source).parent, mode(Path(source)), Path(source).read_bytes()))
        return real_replace(source, destination)

    monkeypatch.setattr(os, "replace", spy)
    write_atomic(tmp_path / "k.key", b"secret", 0o600)
    write_atomic(tmp_path / "k.crt", b"public", 0o644)
    assert seen == [(tmp_path, 0o600, b"secret"), (tmp_path, 0o644, b"public")]


def test_failed_write_keeps_the_old_file_and_leaves_no_temp(tmp_path, monkeypatch):
    path = tmp_path / "k.key"
    device_files.write_atomic(path, b"old", 0o600)

    def broken(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", broken)
    with pytest.raises(OSError):
        device_files.write_atomic(path, b"new", 0o600)
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["k.key"]


@pytest.mark.parametrize("thing", ["", "../escape", "a/b", "x" * 129, "spaces here"])
def test_bad_thing_names_are_refused(tmp_path, thing):
    with pytest.raises(DeviceFilesError, match="invalid thing name"):
        save(tmp_path, thing=thing)
    assert list(tmp_path.iterdir()) == []


def test_bad_certificate_id_is_refused(tmp_path):
    with pytest.raises(DeviceFilesError, match="invalid certificate id"):
        save(tmp_path, cert_id="../../etc/passwd")


def test_target_ca_on_aws_is_amazon_root_ca_1():
    ca = device_files.target_ca(Target(kind="aws", region="us-east-1"))
    assert ca is not None and ca.name == "AmazonRootCA1.pem"
    assert ca.pem == (device_files.ASSETS_DIR / "AmazonRootCA1.pem").read_bytes()


def test_target_ca_on_the_local_core_is_its_ca(target):
    ca = device_files.target_ca(target)
    assert ca is not None and ca.name == "LocalCoreCA.pem"
    assert ca.pem == target.ca_file.read_bytes()
    assert b"BEGIN CERTIFICATE" in ca.pem


def test_target_ca_missing_or_unreadable(tmp_path):
    assert device_files.target_ca(Target(kind="endpoint", region="us-east-1")) is None
    missing = Target(kind="local", region="us-east-1", ca_file=tmp_path / "gone.pem")
    with pytest.raises(DeviceFilesError, match="cannot read the CA file .*gone.pem"):
        device_files.target_ca(missing)


def test_list_find_and_ca_choice(tmp_path):
    local = device_files.CaFile(device_files.LOCAL_CORE_CA, b"L")
    save(tmp_path, "car-2", OTHER_ID, local)
    save(tmp_path, "car-1", CERT_ID, local)
    (tmp_path / "car-1" / "notes.txt").write_text("ignored")
    (tmp_path / "car-1" / f"{'c' * 64}.crt").write_text("no key: ignored")
    listed = device_files.list_device_folders(tmp_path)
    assert [(f.thing, f.certificate_id) for f in listed] == [("car-1", CERT_ID), ("car-2", OTHER_ID)]
    assert listed[0].ca_path == tmp_path / "car-1" / "LocalCoreCA.pem"
    # The same thing name on AWS shares the folder: the CA is then picked by name.
    save(tmp_path, "car-1", OTHER_ID, device_files.CaFile(device_files.AMAZON_ROOT_CA, b"A"))
    assert device_files.find_device_files(tmp_path, "car-1", CERT_ID).ca_path is None
    chosen = device_files.find_device_files(tmp_path, "car-1", OTHER_ID, device_files.AMAZON_ROOT_CA)
    assert chosen.ca_path == tmp_path / "car-1" / "AmazonRootCA1.pem"
    assert device_files.find_device_files(tmp_path, "car-3", CERT_ID) is None
    assert device_files.list_device_folders(tmp_path / "nowhere") == []


def test_remove_one_certificate_then_the_folder(tmp_path):
    save(tmp_path, "car-1", CERT_ID)
    save(tmp_path, "car-1", OTHER_ID)
    assert device_files.remove_device_files(tmp_path, "car-1", CERT_ID)
    assert [f.certificate_id for f in device_files.list_device_folders(tmp_path)] == [OTHER_ID]
    assert device_files.remove_device_files(tmp_path, "car-1", OTHER_ID)
    assert not (tmp_path / "car-1").exists()
    save(tmp_path, "car-2", CERT_ID)
    assert device_files.remove_device_files(tmp_path, "car-2")
    assert not (tmp_path / "car-2").exists()
    assert not device_files.remove_device_files(tmp_path, "car-2")
