"""iot-tui: learn and operate AWS IoT Core from the terminal."""

__version__ = "0.1.0"
