"""The Textual app. Imports `iot_tui.aws`, never `iot_tui.local`: the UI is the same on every target."""
