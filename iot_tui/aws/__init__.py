"""The one client layer: targets, boto3 clients, the API inspector, registry and fleet helpers.

Nothing here imports Textual: every function is usable from a script or a test.
"""
