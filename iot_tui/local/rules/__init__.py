"""The local core's rules engine: AWS IoT SQL rules run on every matching message."""
