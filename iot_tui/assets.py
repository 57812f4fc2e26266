"""Where the shipped assets are: inside the package when installed from a wheel, else the repo's `assets/`."""

from __future__ import annotations

from pathlib import Path

_PACKAGED = Path(__file__).resolve().parent / "_assets"
_SOURCE = Path(__file__).resolve().parent.parent / "assets"

ASSETS_DIR = _PACKAGED if _PACKAGED.is_dir() else _SOURCE
