"""User key remapping: binding ids to keys, read from the user's config folder."""

from __future__ import annotations

import json
from pathlib import Path


def keymap_file() -> Path:
    import platformdirs

    return Path(platformdirs.user_config_dir("iot-tui")) / "keymap.json"


def load_keymap(path: Path | None = None) -> dict[str, str]:
    """Remapped keys by binding id, e.g. {"toggle-inspector": "f12", "fleet-setup": "ctrl+s"}."""
    path = path or keymap_file()
    try:
        keymap = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as error:
        raise ValueError(f"cannot read the keymap {path}: {error}") from None
    if not isinstance(keymap, dict) or not all(isinstance(v, str) for v in keymap.values()):
        raise ValueError(f"{path} must map binding ids to keys, e.g. {{\"toggle-inspector\": \"f12\"}}")
    return keymap
