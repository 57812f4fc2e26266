"""Every operation the local core implements, one module per resource family.

Importing this package registers all handlers in `iot_tui.local.http.ops.HANDLERS`.
"""

from iot_tui.local.http.handlers import certificates, data, iam, policies, registry, resources  # noqa: F401
