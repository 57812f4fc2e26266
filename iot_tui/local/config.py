"""Settings of one local core: where it listens, where it keeps state, and its time rules."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import platformdirs

# The ports and the one identity clients expect (any key is accepted unless strict_auth is on).
from iot_tui.core_defaults import (
    DEFAULT_HOST,
    DEFAULT_HTTP_PORT,
    DEFAULT_MQTT_PORT,
    DEFAULT_WS_PORT,
    LOCAL_ACCESS_KEY_ID,
    LOCAL_SECRET_ACCESS_KEY,
)

DEFAULT_REGION = "us-east-1"
DEFAULT_ACCOUNT_ID = "000000000000"
# AWS: a thing type can be deleted 5 minutes after it was deprecated.
THING_TYPE_DEPRECATION_WAIT = 300.0
# AWS's MQTT time rules: keep-alive 30 to 1200 seconds, persistent sessions kept 1 hour.
KEEP_ALIVE_MIN = 30
KEEP_ALIVE_MAX = 1200
SESSION_EXPIRY = 3600.0


def default_data_dir() -> Path:
    """The core's state lives beside the app's files, in its own folder."""
    return Path(platformdirs.user_data_dir("iot-tui")) / "local-core"


@dataclass
class CoreConfig:
    host: str = DEFAULT_HOST
    http_port: int = DEFAULT_HTTP_PORT
    mqtt_port: int = DEFAULT_MQTT_PORT
    ws_port: int = DEFAULT_WS_PORT
    data_dir: Path = field(default_factory=default_data_dir)
    region: str = DEFAULT_REGION
    account_id: str = DEFAULT_ACCOUNT_ID
    strict_auth: bool = False
    access_key_id: str = LOCAL_ACCESS_KEY_ID
    secret_access_key: str = LOCAL_SECRET_ACCESS_KEY
    deprecation_wait: float = THING_TYPE_DEPRECATION_WAIT
    keep_alive_min: int = KEEP_ALIVE_MIN
    keep_alive_max: int = KEEP_ALIVE_MAX
    session_expiry: float = SESSION_EXPIRY
    # Injected so tests and snapshots run on a fixed clock.
    clock: Callable[[], float] = time.time

    @property
    def db_path(self) -> Path:
        return self.data_dir / "core.sqlite3"

    @property
    def ca_dir(self) -> Path:
        return self.data_dir / "ca"

    @property
    def http_url(self) -> str:
        return f"http://{self.host}:{self.http_port}"
