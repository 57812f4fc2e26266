"""Fixtures for the client layer: a Target for the shared test core, one region per test."""

from __future__ import annotations

import pytest

from iot_tui.aws.core_process import fetch_health
from iot_tui.aws.inspector import Inspector
from iot_tui.aws.target import Clients, Target
from iot_tui.local.server import LocalServer


def local_target(core: LocalServer, region: str, **overrides) -> Target:
    health = fetch_health("127.0.0.1", core.ports["http"], timeout=5)
    assert health is not None
    return Target.local(health, region=region, max_attempts=1, **overrides)


@pytest.fixture
def target(core: LocalServer, region: str) -> Target:
    return local_target(core, region)


@pytest.fixture
def inspector() -> Inspector:
    return Inspector()


@pytest.fixture
def clients(target: Target, inspector: Inspector) -> Clients:
    return target.connect(inspector)
