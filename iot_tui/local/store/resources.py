"""(being written)"""


class ResourceQueries:
    SCHEMA = ""
