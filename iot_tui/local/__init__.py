"""The embedded local AWS IoT Core: a server that speaks AWS's wire protocols on 127.0.0.1.

Imports neither `iot_tui.ui` nor `iot_tui.aws`; it could ship alone.
"""
