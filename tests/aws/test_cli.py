"""The headless twins of the Fleet screen, and the setup check, against the test core."""

from __future__ import annotations

import pytest

from iot_tui.cli import main


@pytest.fixture(autouse=True)
def no_endpoint_environment(monkeypatch):
    for name in ("AWS_ENDPOINT_URL_IOT", "AWS_ENDPOINT_URL", "AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name, raising=False)


def test_fleet_setup_then_cleanup(core, region, capsys, tmp_path, monkeypatch):
    monkeypatch.setattr("iot_tui.aws.fleet.certificates_dir", lambda: tmp_path)
    target = ["--endpoint-url", core.http_url, "--region", region]
    assert main(["fleet", "setup", "--yes", "--seed", "1", *target]) == 0
    out = capsys.readouterr().out
    assert "plan: 3 thing types, 4 thing groups, 20 things" in out
    assert "[27/27] CreateThing Vehicle-VIN-020: created" in out
    assert "thing: 20 created" in out
    assert main(["fleet", "setup", *target]) == 0
    assert "thing: 20 existed" in capsys.readouterr().out
    # Types deprecated now cannot go for 5 minutes: `now` fails loudly, `skip` succeeds.
    assert main(["fleet", "cleanup", "--yes", "--types", "now", *target]) == 1
    captured = capsys.readouterr()
    assert "DeleteThingType SedanVehicle: failed (InvalidRequestException)" in captured.out
    assert "3 step(s) failed" in captured.err
    assert main(["fleet", "cleanup", "--yes", "--types", "skip", *target]) == 0
    assert "found: 0 things, 0 certificates, 0 groups, 3 thing types" in capsys.readouterr().out


def test_cleanup_refuses_without_confirmation(core, region, capsys):
    target = ["--endpoint-url", core.http_url, "--region", region]
    main(["fleet", "setup", *target])
    capsys.readouterr()
    assert main(["fleet", "cleanup", *target]) == 1
    assert "pass --yes" in capsys.readouterr().err


def test_debug_prints_every_call(core, region, capsys):
    assert main(["fleet", "cleanup", "--debug", "--endpoint-url", core.http_url, "--region", region]) == 0
    captured = capsys.readouterr()
    assert "nothing to clean up" in captured.out
    assert "iot DescribeThing  GET " in captured.err and "error ResourceNotFoundException" in captured.err


def test_aws_without_region_is_a_message_not_a_traceback(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    assert main(["fleet", "setup", "--aws"]) == 2
    assert "No AWS region found" in capsys.readouterr().err


def test_doctor_checks_the_local_core(core, region, capsys):
    code = main(["doctor", "--endpoint-url", core.http_url, "--region", region])
    out = capsys.readouterr().out
    assert "ok   identity: account 000000000000" in out
    assert "ok   iot:ListThings: allowed" in out
    assert "ok   endpoint: iot:Data-ATS is localhost" in out
    assert "TLS localhost:" in out
    assert code == (1 if "FAIL" in out else 0)
