"""The local core's MQTT broker: codec, sessions, policies, TLS and WebSocket listeners."""
