"""The ``liudong`` command: settings, keys, and the embedded database's persistence."""

import os
import subprocess
import sys
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from application.cli import cli
from application.database import start_embedded
from application.services import Services
from application.settings import Settings
from domain.common import Actor, Role, Stamp
from domain.identity import IdentityNumber
from tests.factories import id_number


def test_config_prints_the_effective_settings_with_the_password_masked(monkeypatch: Any) -> None:
    monkeypatch.setenv("LIUDONG_DATABASE_URL", "postgresql://office:s3cret@db.internal:5432/liudong")
    monkeypatch.setenv("LIUDONG_PORT", "9000")
    result = CliRunner().invoke(cli, ["config"])
    assert result.exit_code == 0, result.output
    assert "s3cret" not in result.output
    assert "postgresql://office:*****@db.internal:5432/liudong" in result.output
    assert '"LIUDONG_PORT": 9000' in result.output


def test_keys_create_prints_the_key_last_and_it_authenticates(database: Any, services: Services,
                                                               monkeypatch: Any) -> None:
    monkeypatch.setenv("LIUDONG_DATABASE_URL", database.dsn)
    result = CliRunner().invoke(cli, ["keys", "create", "--name", "wang.fang", "--role", "supervisor",
                                      "--area", "新碶街道", "--area", "daqi"])
    assert result.exit_code == 0, result.output
    key = result.output.split()[-1]
    principal = services.authenticator.authenticate(key)
    assert principal is not None
    assert principal.actor == Actor("wang.fang", Role.SUPERVISOR)
    assert principal.areas == ("daqi", "xinqi")  # names resolved to the register's codes
    listed = CliRunner().invoke(cli, ["keys", "list", "--user", "wang.fang"])
    assert listed.exit_code == 0 and "supervisor" in listed.output and key not in listed.output


def test_a_disabled_account_signs_in_no_more_and_its_sessions_end_at_once(
        database: Any, services: Services, monkeypatch: Any) -> None:
    """Found by a review: nothing disabled an account, so a leaver kept it and a live session."""
    from application.users import SignInRefused

    monkeypatch.setenv("LIUDONG_DATABASE_URL", database.dsn)
    now = datetime.now(UTC)
    made = CliRunner().invoke(cli, ["users", "create", "--name", "leaver.li", "--role", "caseworker",
                                    "--password-stdin"], input="correct horse battery\n")
    assert made.exit_code == 0, made.output
    token, _ = services.users.sign_in("leaver.li", "correct horse battery", now)
    assert services.users.session(token, now) is not None
    disabled = CliRunner().invoke(cli, ["users", "disable", "leaver.li"])
    assert disabled.exit_code == 0 and disabled.output.strip() == "disabled leaver.li", disabled.output
    assert services.users.session(token, now) is None
    with pytest.raises(SignInRefused):
        services.users.sign_in("leaver.li", "correct horse battery", now)
    listed = CliRunner().invoke(cli, ["users", "list"])
    assert listed.exit_code == 0 and "leaver.li\tcaseworker\tdistrict\tdisabled" in listed.output, listed.output
    again = CliRunner().invoke(cli, ["users", "disable", "leaver.li"])
    assert again.exit_code == 0 and "already" in again.output
    unknown = CliRunner().invoke(cli, ["users", "disable", "nobody.here"])
    assert unknown.exit_code == 2 and "no account named nobody.here" in unknown.output
    assert CliRunner().invoke(cli, ["users", "enable", "leaver.li"]).exit_code == 0
    assert services.users.sign_in("leaver.li", "correct horse battery", now)


def test_keys_create_refuses_an_unknown_role(database: Any, monkeypatch: Any) -> None:
    monkeypatch.setenv("LIUDONG_DATABASE_URL", database.dsn)
    result = CliRunner().invoke(cli, ["keys", "create", "--name", "x", "--role", "mayor"])
    assert result.exit_code == 2
    assert "caseworker" in result.output


def test_the_embedded_database_keeps_its_data_across_restarts(tmp_path: Path) -> None:
    """No LIUDONG_DATABASE_URL: an embedded PostgreSQL in the data dir, reused after a restart."""
    settings = Settings(data_dir=tmp_path / "var", run_projections=False)
    stamp = Stamp(Actor("cw", Role.CASEWORKER), datetime(2026, 11, 25, 2, tzinfo=UTC))
    database = start_embedded(settings.data_dir)
    services = Services.open(settings, database=database, run_projections=False)
    created = services.app.register_resident(
        id_number=IdentityNumber.parse(id_number()), name="Li", phone="13800138000", hometown="Anhui",
        employer=None, area="xinqi", registered_on=date(2026, 1, 1), stamp=stamp)
    services.close()
    database._handle.cleanup()  # stop the server, as at the end of `liudong serve`
    assert (tmp_path / "var" / "pgdata" / "PG_VERSION").exists()

    restarted = start_embedded(settings.data_dir)
    again = Services.open(settings, database=restarted, run_projections=False)
    try:
        assert again.app.repository.get(created.id).name == "Li"
    finally:
        again.close()
        restarted._handle.cleanup()


def test_the_sweeps_run_from_the_command_line(database: Any, services: Services, monkeypatch: Any) -> None:
    monkeypatch.setenv("LIUDONG_DATABASE_URL", database.dsn)
    for args, said in ((["sla", "sweep"], "service-level breaches"), (["permits", "sweep"], "lapsed permits")):
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 0, result.output
        assert said in result.output


@pytest.mark.parametrize(("setting", "said"), [
    ({"LIUDONG_POOL_SIZE": "abc"}, "LIUDONG_POOL_SIZE: Input should be a valid integer"),
    ({"LIUDONG_SLA_FILE": "/no/such/sla.toml"}, "LIUDONG_SLA_FILE=/no/such/sla.toml: No such file or directory"),
    ({"LIUDONG_PII_MASTER_KEY": "short!"}, "the master key for personal data is not readable base64"),
    ({"LIUDONG_AUDIT_SIGNING_KEY_FILE": "/no/such.key"}, "LIUDONG_AUDIT_SIGNING_KEY_FILE=/no/such.key: not an Ed25519"),
    ({"LIUDONG_DATABASE_URL": "postgresql://postgres@127.0.0.1:1/none"}, "the database cannot be reached"),
])
def test_an_unusable_setting_is_said_in_one_line_not_a_traceback(
        tmp_path: Path, setting: dict[str, str], said: str) -> None:
    """Found by a review: a mistyped setting or an unreachable database ended every command,
    serve too, in a traceback."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("LIUDONG_")}
    environment.update({"LIUDONG_DATA_DIR": str(tmp_path / "var"), **setting})
    ran = subprocess.run([sys.executable, "-m", "application.cli", "audit", "verify"], env=environment,
                         capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert ran.returncode == 2, ran.stderr
    assert said in ran.stderr and "Traceback" not in ran.stderr, ran.stderr
