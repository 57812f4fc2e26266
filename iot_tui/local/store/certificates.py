"""(being written)"""


class CertificateQueries:
    SCHEMA = ""
