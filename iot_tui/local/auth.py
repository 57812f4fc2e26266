"""SigV4 on the local core: who is calling, for which service and region, and (strict mode) is it genuine.

The credential scope of every request names the service (`iot`, `iotdata`, `sts`, `iam`) and the
region; AWS IoT is regional, so the scope's region selects the region's resources.
"""

from __future__ import annotations

import hmac
import re
from dataclasses import dataclass
from urllib.parse import parse_qsl

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from iot_tui.local.http.errors import ApiError

_AUTH_HEADER = re.compile(
    r"AWS4-HMAC-SHA256\s+Credential=(?P<credential>[^,\s]+),\s*SignedHeaders=(?P<signed>[^,\s]+),\s*Signature=(?P<signature>[0-9a-f]+)"
)


@dataclass(frozen=True)
class Caller:
    access_key_id: str
    date: str
    region: str
    service: str
    signed_headers: str
    signature: str
    presigned: bool


def _scope(credential: str) -> tuple[str, str, str, str]:
    parts = credential.split("/")
    if len(parts) != 5 or parts[4] != "aws4_request":
        raise ApiError("IncompleteSignatureException", f"Credential should be scoped to a valid region: {credential}", 403)
    return parts[0], parts[1], parts[2], parts[3]


def identify(headers: dict[str, str], query: str) -> Caller:
    """Read the SigV4 credential scope from the Authorization header or a presigned URL."""
    header = headers.get("authorization")
    if header:
        match = _AUTH_HEADER.match(header.strip())
        if match is None:
            raise ApiError("IncompleteSignatureException", "Authorization header requires a valid AWS4-HMAC-SHA256 signature", 403)
        key, date, region, service = _scope(match["credential"])
        return Caller(key, date, region, service, match["signed"], match["signature"], False)
    params = dict(parse_qsl(query))
    if params.get("X-Amz-Algorithm") == "AWS4-HMAC-SHA256" and "X-Amz-Credential" in params:
        key, date, region, service = _scope(params["X-Amz-Credential"])
        return Caller(
            key, date, region, service, params.get("X-Amz-SignedHeaders", ""), params.get("X-Amz-Signature", ""), True
        )
    raise ApiError("MissingAuthenticationTokenException", "Missing Authentication Token", 403)


def verify(
    caller: Caller, method: str, url: str, headers: dict[str, str], body: bytes, access_key_id: str, secret: str
) -> None:
    """Strict mode: recompute the signature with the local credentials and compare."""
    if caller.access_key_id != access_key_id:
        raise ApiError("UnrecognizedClientException", "The security token included in the request is invalid.", 403)
    if caller.presigned:
        raise ApiError("InvalidSignatureException", "Presigned requests are not accepted on the HTTP API.", 403)
    signed = caller.signed_headers.split(";")
    request = AWSRequest(method=method, url=url, data=body, headers={k: v for k, v in headers.items() if k in signed})
    amz_date = headers.get("x-amz-date", "")
    request.context["timestamp"] = amz_date
    signer = SigV4Auth(Credentials(access_key_id, secret, headers.get("x-amz-security-token")), caller.service, caller.region)
    signer._modify_request_before_signing = lambda r: None  # keep the caller's headers as sent
    canonical = signer.canonical_request(request)
    expected = signer.signature(signer.string_to_sign(request, canonical), request)
    if not hmac.compare_digest(expected, caller.signature):
        raise ApiError(
            "InvalidSignatureException",
            "The request signature we calculated does not match the signature you provided. "
            "Check your AWS Secret Access Key and signing method.",
            403,
        )
