"""Plain sentences for the inspector and error messages: what a call does, what its answer means,
what an error code means and how to fix it. Teaching is the point of the app.
"""

from __future__ import annotations

import functools
import html
import re
from dataclasses import dataclass
from typing import Any

# operation -> (what it does, what a successful response means)
OPERATIONS: dict[str, tuple[str, str]] = {
    "CreateThing": ("Registers a device (a thing) in the registry, optionally with a type and attributes.",
                    ("The thing exists now; its name, ARN and id are returned. Creating the same thing again "
                    "with the same settings succeeds without change.")),
    "DescribeThing": ("Reads one thing from the registry.",
                      "The thing's type, attributes, version (bumped on every update) and ARN."),
    "UpdateThing": ("Changes a thing's type or attributes.", "The update was applied and the version increased."),
    "DeleteThing": ("Removes a thing from the registry. Its certificates must be detached first.",
                    "The thing is gone (deleting a missing thing also succeeds)."),
    "ListThings": ("Lists things one page at a time, optionally filtered by type or by one attribute.",
                   "One page of things; a nextToken means there are more pages to ask for."),
    "CreateThingType": ("Defines a thing type: a description and up to 3 searchable attributes shared by its things.",
                        "The type exists; things can now be created with it."),
    "DescribeThingType": ("Reads a thing type and its deprecation state.",
                          "Its properties, and whether and when it was deprecated."),
    "ListThingTypes": ("Lists thing types.", "One page of thing types with their properties and deprecation state."),
    "DeprecateThingType": ("Marks a thing type deprecated (no new things may use it), or undoes that.",
                           "The type is deprecated; AWS allows deleting it 5 minutes later."),
    "DeleteThingType": ("Deletes a deprecated thing type that no thing uses any more.",
                        "The type is gone."),
    "CreateThingGroup": ("Creates a thing group, optionally under a parent group.", "The group exists."),
    "DescribeThingGroup": ("Reads a thing group: its properties, parent and ancestors.",
                           "The group's properties and its place in the hierarchy."),
    "DeleteThingGroup": ("Deletes a thing group (its things stay in the registry).", "The group is gone."),
    "ListThingGroups": ("Lists thing groups.", "One page of groups, each with name and ARN."),
    "AddThingToThingGroup": ("Puts a thing into a group.", "The thing is a member (adding it twice changes nothing)."),
    "ListThingsInThingGroup": ("Lists the things in a group.", "One page of member thing names."),
    "ListThingGroupsForThing": ("Lists the groups a thing belongs to.", "The groups, each with name and ARN."),
    "AttachThingPrincipal": ("Attaches a certificate (principal) to a thing, so a device can act as it.",
                             "The certificate and the thing are linked."),
    "DetachThingPrincipal": ("Detaches a certificate from a thing.",
                             "The link is removed; AWS may take a few seconds to show it."),
    "ListThingPrincipals": ("Lists the certificates attached to a thing.", "The principals' ARNs."),
    "ListPrincipalThings": ("Lists the things a certificate is attached to.", "The thing names."),
    "CreateKeysAndCertificate": ("Creates a key pair and a device certificate signed by the AWS IoT CA.",
                                 "The certificate PEM and both keys: the private key is shown only this once."),
    "DescribeCertificate": ("Reads a certificate: status, dates, PEM.",
                            "Its status (ACTIVE, INACTIVE, REVOKED...), validity and owner."),
    "ListCertificates": ("Lists the account's device certificates.",
                         "One page of certificates with id, status and creation date."),
    "UpdateCertificate": ("Changes a certificate's status (ACTIVE, INACTIVE, REVOKED).",
                          "The new status applies to new connections."),
    "DeleteCertificate": ("Deletes an INACTIVE certificate with no things or policies attached.",
                          "The certificate is gone."),
    "ListAttachedPolicies": ("Lists the policies attached to a certificate or group.", "The policy names and ARNs."),
    "DetachPolicy": ("Detaches a policy from a certificate.", "The certificate no longer gets that policy's permissions."),
    "DescribeEndpoint": ("Gives the account's host name for one endpoint type (data, credentials, jobs).",
                         "The host devices and apps connect to; ports are 8883 (MQTT) and 443."),
    "GetCallerIdentity": ("Tells who is calling: account, user or role.",
                          "The credentials work; the account id and ARN identify them."),
    "GetThingShadow": ("Reads a thing's device shadow document.", "The shadow's state, metadata and version."),
    "UpdateThingShadow": ("Changes a thing's device shadow.", "The accepted document with the new version."),
}

# error code -> (what it means, how to fix it)
ERRORS: dict[str, tuple[str, str]] = {
    "ResourceNotFoundException": (
        ("The thing, type, group, certificate or policy named in the request does not exist in this "
        "account and region."),
        "Check the name and the region; list the resources to see what exists, or create it first."),
    "InvalidRequestException": (
        ("AWS understood the request but refuses it as given: a value is malformed, or the resource is "
        "in a state that does not allow it (for example a thing type deprecated less than 5 minutes ago)."),
        "Read the message: it names the field or the state. Fix the value, or wait and retry."),
    "ResourceAlreadyExistsException": (
        "A resource with that name already exists with different settings.",
        "Use another name, or describe the existing one and update it instead."),
    "VersionConflictException": (
        "The expectedVersion in the request is not the resource's current version: someone changed it since you read it.",
        "Describe the resource again to get the current version, then retry with it."),
    "VersionConflict": (
        "The version in the request is not the current one.",
        "Read it again to get the current version, then retry."),
    "ConflictException": (
        "The shadow's version is not the one the update was made against: it changed since you read it.",
        "Read the shadow again (its current version), then send the update with that version."),
    "RequestEntityTooLargeException": (
        "The payload is too large: at most 8 KB of shadow state (desired + reported), 128 KB for a message.",
        "Send less: split a shadow's state over named shadows, or a message over several."),
    "DeleteConflictException": (
        ("The resource is still in use: a certificate still attached to things or policies, a thing type "
        "still used by things, or an ACTIVE certificate."),
        "Detach or remove what uses it first (the message says what), then delete again."),
    "ThrottlingException": (
        "Too many requests per second for this API in this account.",
        "Slow down and retry; the SDK retries with backoff, so raise max_attempts or batch the work."),
    "TooManyRequestsException": (
        "Too many requests in flight.", "Wait a moment and retry."),
    "UnauthorizedException": (
        "The caller is not allowed to perform this action on this resource.",
        "Attach an IAM policy allowing the iot: action, or use another profile."),
    "AccessDeniedException": (
        "IAM denied the request: the credentials are valid but lack permission.",
        "Add the iot: (or sts:) action to the user's or role's IAM policy, or switch profile."),
    "AccessDenied": (
        "IAM denied the request: the credentials are valid but lack permission.",
        "Add the action to the user's or role's IAM policy, or switch profile."),
    "ExpiredTokenException": (
        "The session credentials have expired.",
        "Refresh them: `aws sso login --profile P`, or get new temporary credentials."),
    "ExpiredToken": (
        "The session credentials have expired.",
        "Refresh them: `aws sso login --profile P`, or get new temporary credentials."),
    "UnrecognizedClientException": (
        "AWS does not recognise the access key: it is wrong, deleted, or for another partition.",
        "Check AWS_ACCESS_KEY_ID and the profile; create a new key if it was deleted."),
    "InvalidClientTokenId": (
        "The access key id is not valid.", "Check the key in the profile or the environment."),
    "SignatureDoesNotMatch": (
        "The request signature is wrong: the secret key does not match the access key, or the clock is off.",
        "Check the secret key and the system clock."),
    "InvalidSignatureException": (
        "The request signature is wrong: the secret key does not match the access key, or the clock is off.",
        "Check the secret key and the system clock."),
    "NoCredentialsError": (
        "No AWS credentials were found in the environment, the profile or the instance role.",
        "Run `aws configure` (or `aws sso login`), or pass --profile."),
    "NoRegionError": ("No region was given.", "Pass --region or set AWS_REGION."),
    "EndpointConnectionError": (
        "Nothing answers at the endpoint: the network is down, the URL is wrong, or the local core stopped.",
        "Check the address in the header; for the local core run `iot-tui local serve`."),
    "ConnectTimeoutError": (
        "The endpoint did not accept the connection in time.", "Check the network and the endpoint address."),
    "ReadTimeoutError": ("The endpoint accepted the request but did not answer in time.", "Retry; check the endpoint."),
    "ServiceUnavailableException": ("The service is temporarily unavailable.", "Retry after a short wait."),
    "InternalFailureException": ("The service failed while handling the request.", "Retry; report it if it persists."),
    "LimitExceededException": (
        "An account quota was reached (for example things per group or policy versions).",
        "Delete unused resources or ask for a quota increase."),
    "CertificateStateException": (
        "The certificate is in the wrong state for this action (for example deleting an ACTIVE certificate).",
        "Set it INACTIVE first with UpdateCertificate, then retry."),
    "NotImplementedException": (
        "The local core does not implement this operation yet.",
        "Use real AWS for it, or wait for a newer iot-tui."),
}


@dataclass(frozen=True)
class Explanation:
    does: str
    means: str
    error: str | None = None
    fix: str | None = None

    def sentences(self) -> list[str]:
        lines = [self.does, self.means]
        if self.error:
            lines.append(self.error)
        if self.fix:
            lines.append(f"Fix: {self.fix}")
        return lines


def error_meaning(code: str | None) -> tuple[str, str] | None:
    """(meaning, fix) for an error code; SDK exceptions and codes with or without `Exception` match."""
    if not code:
        return None
    return ERRORS.get(code) or ERRORS.get(code + "Exception") or ERRORS.get(code.removesuffix("Exception"))


def describe_operation(service: str, operation: str) -> str:
    known = OPERATIONS.get(operation)
    return known[0] if known else _model_sentence(service, operation)


def explain(service: str, operation: str, error_code: str | None = None, status: int | None = None) -> Explanation:
    does = describe_operation(service, operation)
    if error_code is None:
        known = OPERATIONS.get(operation)
        means = known[1] if known else f"HTTP {status or 200}: the call succeeded; the fields below are its result."
        return Explanation(does, means)
    meaning = error_meaning(error_code)
    means = f"The call failed with {error_code}" + (f" (HTTP {status})." if status else ".")
    if meaning is None:
        return Explanation(does, means, "An error AWS returned; the message says what went wrong.",
                           "Read the message; search the AWS IoT API reference for the code.")
    return Explanation(does, means, *meaning)


def explain_error(error: BaseException) -> tuple[str, str, str, str]:
    """(code, message, meaning, fix) for any exception a worker raised, for the one error handler."""
    response: dict[str, Any] = getattr(error, "response", None) or {}
    details = response.get("Error", {})
    code = details.get("Code") or type(error).__name__
    message = details.get("Message") or str(error)
    meaning, fix = error_meaning(code) or ("An unexpected error.", "Read the message; retry.")
    return code, message, meaning, fix


@functools.cache
def _model_sentence(service: str, operation: str) -> str:
    """The first sentence of botocore's documentation for operations not described above."""
    import botocore.session
    from botocore.exceptions import BotoCoreError
    from botocore.model import OperationNotFoundError

    try:
        model = botocore.session.get_session().get_service_model(service)
        text = html.unescape(re.sub(r"<[^>]+>", "", model.operation_model(operation).documentation or ""))
    except (BotoCoreError, OperationNotFoundError):
        return f"Calls {operation}."
    sentence = text.strip().split(". ")[0].strip()
    return (sentence.rstrip(".") + ".") if sentence else f"Calls {operation}."
