"""The local core's wire contract: where it listens by default and the one identity it knows.

Both sides share these: the core (`iot_tui.local`) listens on these ports and, when it runs with
--strict-auth, accepts only this key; the client layer (`iot_tui.aws`) looks for a core there and
signs with this key when nothing else is configured. Pure constants, importing nothing, so neither
layer depends on the other through them.
"""

DEFAULT_HOST = "127.0.0.1"
DEFAULT_HTTP_PORT = 4580
DEFAULT_MQTT_PORT = 8883
DEFAULT_WS_PORT = 8443

LOCAL_ACCESS_KEY_ID = "AKIAIOTTUILOCAL00000"
LOCAL_SECRET_ACCESS_KEY = "iot-tui-local-secret-access-key"
