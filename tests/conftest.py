"""Shared fixtures: a real local core on free 127.0.0.1 ports, and real boto3 clients against it.

Tests share one core per session and stay apart by region: AWS IoT is regional, so each test
gets a region of its own and sees none of the other tests' resources.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from hypothesis import HealthCheck, settings

from iot_tui.core_defaults import LOCAL_ACCESS_KEY_ID, LOCAL_SECRET_ACCESS_KEY
from iot_tui.local.config import CoreConfig
from iot_tui.local.server import LocalServer

# CI is a shared 2-core machine: no deadlines, a fixed seed, and a bounded number of examples.
settings.register_profile(
    "ci", derandomize=True, deadline=None, max_examples=60, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("dev", deadline=None, max_examples=60, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))

_regions = itertools.count(1)
# No retries: a test must see the first answer, and a 5xx must fail loudly instead of hanging.
NO_RETRY = Config(retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=5, read_timeout=30)


class FakeClock:
    """A clock tests move by hand, for AWS's time rules."""

    def __init__(self, start: float = 1_780_000_000.0):
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def core_config(data_dir: Path, **overrides) -> CoreConfig:
    config = CoreConfig(data_dir=data_dir, http_port=0, mqtt_port=0, ws_port=0)
    for name, value in overrides.items():
        setattr(config, name, value)
    return config


def start_core(data_dir: Path, **overrides) -> LocalServer:
    return LocalServer(core_config(data_dir, **overrides)).start_in_thread()


@pytest.fixture(scope="session")
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(scope="session")
def core(tmp_path_factory: pytest.TempPathFactory, clock: FakeClock) -> Iterator[LocalServer]:
    server = start_core(tmp_path_factory.mktemp("core"), clock=clock, deprecation_wait=300.0)
    yield server
    server.stop_thread()


@pytest.fixture
def region() -> str:
    return f"us-test-{next(_regions)}"


def client(service: str, server: LocalServer, region: str, **kwargs):
    return boto3.client(
        service,
        endpoint_url=server.http_url,
        region_name=region,
        aws_access_key_id=kwargs.pop("access_key", LOCAL_ACCESS_KEY_ID),
        aws_secret_access_key=kwargs.pop("secret_key", LOCAL_SECRET_ACCESS_KEY),
        config=NO_RETRY,
        **kwargs,
    )


@pytest.fixture
def iot(core: LocalServer, region: str):
    return client("iot", core, region)


@pytest.fixture
def iot_data(core: LocalServer, region: str):
    return client("iot-data", core, region)


@pytest.fixture
def sts(core: LocalServer, region: str):
    return client("sts", core, region)


def error_code(excinfo: pytest.ExceptionInfo) -> str:
    return excinfo.value.response["Error"]["Code"]


def http_status(excinfo: pytest.ExceptionInfo) -> int:
    return excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"]
