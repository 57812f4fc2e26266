"""Device files on disk: `<data dir>/certificates/<thing>/<certificateId>.crt|.key|.pub` plus the CA.

One layout serves the certificate wizard, the MQTT pane, the shadow viewer and cleanup, so a
folder can be handed to any device as it is. Keys are 0600 and every file is written atomically:
a crash never leaves a torn key, and a key is never readable by others, not even for a moment.
"""

from __future__ import annotations

import contextlib
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from iot_tui.assets import ASSETS_DIR
from iot_tui.files import write_atomic

if TYPE_CHECKING:
    from iot_tui.aws.target import Target

APP_NAME = "iot-tui"
CERTIFICATES = "certificates"
AMAZON_ROOT_CA = "AmazonRootCA1.pem"
# Distinct from Amazon's name: one thing name can exist on both targets and share a folder.
LOCAL_CORE_CA = "LocalCoreCA.pem"
CA_NAMES = (AMAZON_ROOT_CA, LOCAL_CORE_CA)
KEY_MODE = 0o600
FILE_MODE = 0o644
DIR_MODE = 0o700

# AWS's thing name pattern: it also keeps a name from escaping the certificates folder.
_THING_NAME = re.compile(r"[a-zA-Z0-9:_-]{1,128}")
_CERTIFICATE_ID = re.compile(r"[0-9a-f]{64}")


class DeviceFilesError(ValueError):
    """A local input problem (bad thing name, unreadable CA file); the message says what to fix."""


@dataclass(frozen=True)
class CaFile:
    """The CA a device needs to trust the target's MQTT server, and its name in the folder."""

    name: str
    pem: bytes


@dataclass(frozen=True)
class DeviceFiles:
    """One certificate's files in a thing's folder; `ca_path` is None when the folder has no CA."""

    thing: str
    certificate_id: str
    cert_path: Path
    key_path: Path
    public_key_path: Path
    ca_path: Path | None

    @property
    def folder(self) -> Path:
        return self.cert_path.parent


def certificates_root(data_dir: Path | None = None) -> Path:
    """`<data dir>/certificates`; tests and scripts pass their own data dir."""
    if data_dir is None:
        import platformdirs

        data_dir = Path(platformdirs.user_data_dir(APP_NAME))
    return data_dir / CERTIFICATES


def check_thing_name(thing: str) -> str:
    if not _THING_NAME.fullmatch(thing or ""):
        raise DeviceFilesError(
            f"invalid thing name {thing!r}: use 1 to 128 letters, digits, ':', '_' or '-'")
    return thing


def check_certificate_id(certificate_id: str) -> str:
    if not _CERTIFICATE_ID.fullmatch(certificate_id or ""):
        raise DeviceFilesError(f"invalid certificate id {certificate_id!r}: expected 64 lowercase hex digits")
    return certificate_id


def ca_name(target: Target) -> str:
    return AMAZON_ROOT_CA if target.kind == "aws" else LOCAL_CORE_CA


def target_ca(target: Target) -> CaFile | None:
    """The CA for the target's MQTT server: Amazon Root CA 1 on AWS, the core's own CA locally.

    None for an endpoint that names no CA file. Read before anything is created, so a missing
    file stops the wizard before AWS hands out a private key that could not be saved.
    """
    source = ASSETS_DIR / AMAZON_ROOT_CA if target.kind == "aws" else target.ca_file
    if source is None:
        return None
    try:
        return CaFile(ca_name(target), Path(source).read_bytes())
    except OSError as error:
        raise DeviceFilesError(f"cannot read the CA file {source}: {error.strerror}") from None


def _paths(root: Path, thing: str, certificate_id: str) -> tuple[Path, Path, Path]:
    folder = root / check_thing_name(thing)
    base = check_certificate_id(certificate_id)
    return folder / f"{base}.crt", folder / f"{base}.key", folder / f"{base}.pub"


def save_device_files(root: Path, thing: str, certificate_id: str, certificate_pem: str, private_key_pem: str,
                      public_key_pem: str, ca: CaFile | None) -> DeviceFiles:
    """Write one certificate's files (key 0600) and the target's CA beside them."""
    cert_path, key_path, pub_path = _paths(root, thing, certificate_id)
    cert_path.parent.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    write_atomic(key_path, private_key_pem.encode("ascii"), KEY_MODE)
    write_atomic(cert_path, certificate_pem.encode("ascii"), FILE_MODE)
    write_atomic(pub_path, public_key_pem.encode("ascii"), FILE_MODE)
    ca_path = None
    if ca is not None:
        ca_path = cert_path.parent / ca.name
        write_atomic(ca_path, ca.pem, FILE_MODE)
    return DeviceFiles(thing, certificate_id, cert_path, key_path, pub_path, ca_path)


def _folder_ca(folder: Path, name: str | None) -> Path | None:
    """The named CA if present; without a name, the folder's only CA (None when there are two)."""
    present = [folder / n for n in ([name] if name else CA_NAMES) if (folder / n).is_file()]
    return present[0] if len(present) == 1 else None


def find_device_files(root: Path, thing: str, certificate_id: str, ca: str | None = None) -> DeviceFiles | None:
    """A certificate's files when its certificate and key are both there; `ca` picks the CA by name."""
    cert_path, key_path, pub_path = _paths(root, thing, certificate_id)
    if not (cert_path.is_file() and key_path.is_file()):
        return None
    return DeviceFiles(thing, certificate_id, cert_path, key_path, pub_path, _folder_ca(cert_path.parent, ca))


def list_device_folders(root: Path, ca: str | None = None) -> list[DeviceFiles]:
    """Every usable certificate under the root, by thing then certificate id; stray files are ignored."""
    if not root.is_dir():
        return []
    found = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and _THING_NAME.fullmatch(p.name)):
        for cert in sorted(folder.glob("*.crt")):
            if _CERTIFICATE_ID.fullmatch(cert.stem):
                files = find_device_files(root, folder.name, cert.stem, ca)
                if files is not None:
                    found.append(files)
    return found


def remove_device_files(root: Path, thing: str, certificate_id: str | None = None) -> bool:
    """Remove a thing's folder, or one certificate's files and the folder once no certificate is left.

    True when anything was removed.
    """
    folder = root / check_thing_name(thing)
    if not folder.is_dir():
        return False
    if certificate_id is None:
        shutil.rmtree(folder)
        return True
    removed = False
    for path in _paths(root, thing, certificate_id):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
            removed = True
    if not any(folder.glob("*.crt")):
        shutil.rmtree(folder)
    return removed
