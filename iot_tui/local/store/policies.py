"""(being written)"""


class PolicyQueries:
    SCHEMA = ""
