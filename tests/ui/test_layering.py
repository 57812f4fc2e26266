"""Layer rules checked, not hoped for: `aws` and `local` import no Textual; `ui` imports no `local`."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "iot_tui"


def imported_modules(folder: Path) -> set[tuple[str, str]]:
    found = set()
    for path in folder.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                found |= {(str(path.relative_to(PACKAGE)), alias.name) for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add((str(path.relative_to(PACKAGE)), node.module))
    return found


@pytest.mark.parametrize("layer", ["aws", "local", "iotcore"])
def test_layer_imports_no_textual(layer):
    offenders = {(f, m) for f, m in imported_modules(PACKAGE / layer) if m.split(".")[0] in ("textual", "rich")}
    assert not offenders


def _is_local(module: str) -> bool:
    return module == "iot_tui.local" or module.startswith("iot_tui.local.")


@pytest.mark.parametrize("layer", ["ui", "aws", "iotcore"])
def test_layer_imports_nothing_from_local(layer):
    """The UI and the client layer talk to the local core over the network, as to AWS."""
    offenders = {(f, m) for f, m in imported_modules(PACKAGE / layer) if _is_local(m)}
    assert not offenders


def test_iotcore_imports_nothing_of_ours():
    offenders = {(f, m) for f, m in imported_modules(PACKAGE / "iotcore")
                 if m.startswith("iot_tui") and not m.startswith("iot_tui.iotcore")}
    assert not offenders


def test_importing_aws_loads_no_textual():
    code = ("import sys, iot_tui.aws.target, iot_tui.aws.inspector, iot_tui.aws.fleet, iot_tui.aws.registry, "
            "iot_tui.aws.explain, iot_tui.aws.doctor, iot_tui.aws.core_process; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'textual'))")
    answer = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert answer.stdout.strip() == "[]"
