"""Every error code the issue names has a meaning and a fix; every operation has a sentence."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError, NoCredentialsError

from iot_tui.aws.explain import error_meaning, explain, explain_error

REQUIRED = ["ResourceNotFoundException", "InvalidRequestException", "ResourceAlreadyExistsException",
            "VersionConflictException", "DeleteConflictException", "ThrottlingException",
            "UnauthorizedException", "AccessDeniedException", "ExpiredTokenException"]


@pytest.mark.parametrize("code", REQUIRED)
def test_required_error_codes_are_explained(code):
    meaning, fix = error_meaning(code)
    assert meaning and fix
    assert error_meaning(code.removesuffix("Exception")) is not None


def test_success_explanation_has_two_sentences():
    explanation = explain("iot", "ListThings", status=200)
    assert explanation.sentences() == [
        "Lists things one page at a time, optionally filtered by type or by one attribute.",
        "One page of things; a nextToken means there are more pages to ask for."]


def test_failure_explanation_adds_meaning_and_fix():
    lines = explain("iot", "DeleteThingType", "InvalidRequestException", 400).sentences()
    assert lines[1] == "The call failed with InvalidRequestException (HTTP 400)."
    assert "5 minutes" in lines[2] and lines[3].startswith("Fix: ")


def test_unlisted_operations_use_the_model_documentation():
    assert explain("iot", "ListPolicies").does == "Lists your policies."
    assert explain("iot", "NoSuchOperation").does == "Calls NoSuchOperation."


def test_explain_error_reads_client_errors_and_sdk_exceptions():
    error = ClientError({"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, "ListThings")
    code, message, meaning, fix = explain_error(error)
    assert (code, message) == ("ThrottlingException", "Rate exceeded") and "per second" in meaning
    code, _message, meaning, fix = explain_error(NoCredentialsError())
    assert code == "NoCredentialsError" and "aws configure" in fix
