"""A production configuration passes ``check --deploy`` with nothing to report; the hardening settings (HSTS,
``NUM_PROXIES``, ``EMAIL_FILE_PATH``) come from the environment; ``DEBUG`` on the development key says so once."""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.test import override_settings

from recovery_project.checks import browser_middleware_check

ROOT = Path(__file__).resolve().parent.parent
DEV_KEY_WARNING = "SECRET_KEY is not set: DEBUG runs on the development key"
PRODUCTION = {
    "DEBUG": "0",
    "SECRET_KEY": secrets.token_urlsafe(64),
    "ALLOWED_HOSTS": "recovery.example.com",
    "SECURE_SSL_REDIRECT": "1",
    "SECURE_HSTS_SECONDS": "31536000",  # the HSTS flags' defaults are what check --deploy asks for
    "REDIS_URL": "redis://127.0.0.1:6379/0",  # not connected to by the checks
}
OWN = set(PRODUCTION) | {
    "SECURE_HSTS_INCLUDE_SUBDOMAINS",
    "SECURE_HSTS_PRELOAD",
    "DATABASE_URL",
    "NUM_PROXIES",
    "EMAIL_BACKEND",
    "EMAIL_FILE_PATH",
    "EMAIL_HOST",
    "TRUST_X_FORWARDED_PROTO",
}


def run(args: list[str], **env: str) -> subprocess.CompletedProcess:
    """A fresh process on the production settings module with exactly this configuration."""
    clean = {k: v for k, v in os.environ.items() if k not in OWN}
    clean.update(env, DJANGO_SETTINGS_MODULE="recovery_project.settings")
    return subprocess.run(args, cwd=ROOT, env=clean, capture_output=True, text=True, timeout=120)


def python(code: str, **env: str) -> subprocess.CompletedProcess:
    return run([sys.executable, "-c", "import django; django.setup(); " + code], **env)


def setting(name: str, **env: str) -> Any:
    result = python(f"import json; from django.conf import settings; print(json.dumps(settings.{name}))", **env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def check_deploy(**env: str) -> subprocess.CompletedProcess:
    return run([sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"], **env)


# --- check --deploy ----------------------------------------------------------------------------------------


def test_check_deploy_reports_nothing_for_a_production_configuration() -> None:
    """On this run's database (PostgreSQL in CI) or SQLite."""
    database = {"DATABASE_URL": os.environ["DATABASE_URL"]} if os.environ.get("DATABASE_URL") else {}

    result = check_deploy(**PRODUCTION, **database)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout
    assert "WARNINGS" not in result.stdout + result.stderr
    assert result.stderr.strip() == "", result.stderr  # nothing logged at start either


@pytest.mark.parametrize(
    ("changes", "reported"),
    [
        ({"SECURE_HSTS_SECONDS": "0"}, {"security.W004"}),
        ({"SECURE_HSTS_INCLUDE_SUBDOMAINS": "0", "SECURE_HSTS_PRELOAD": "0"}, {"security.W005", "security.W021"}),
        ({"SECURE_SSL_REDIRECT": "0"}, {"security.W008", "security.W010", "recovery.W016"}),
        ({"DEBUG": "1"}, {"security.W018"}),
        ({"SECRET_KEY": "short"}, {"security.W009"}),
    ],
)
def test_check_deploy_still_reports_what_a_production_configuration_lacks(
    changes: dict[str, str], reported: set[str]
) -> None:
    result = check_deploy(**{**PRODUCTION, **changes})

    assert result.returncode != 0
    found = {word.strip("():") for word in result.stdout.split() + result.stderr.split() if word.startswith("(")}
    assert {code for code in found if "." in code} == reported, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("missing", "reported"),
    [
        ("recovery_project.middleware.CsrfViewMiddleware", "recovery.W003"),
        ("recovery_project.middleware.XFrameOptionsMiddleware", "recovery.W002"),
    ],
)
@override_settings(CSRF_COOKIE_SECURE=True)
def test_the_projects_middleware_checks_warn_without_the_middleware(missing: str, reported: str) -> None:
    assert browser_middleware_check() == []

    with override_settings(MIDDLEWARE=[m for m in settings.MIDDLEWARE if m != missing]):
        assert [message.id for message in browser_middleware_check()] == [reported]


def test_the_projects_middleware_checks_warn_of_an_insecure_csrf_cookie_and_framing() -> None:
    with override_settings(CSRF_COOKIE_SECURE=False, X_FRAME_OPTIONS="SAMEORIGIN"):
        assert sorted(message.id for message in browser_middleware_check()) == ["recovery.W016", "recovery.W019"]


# --- HSTS --------------------------------------------------------------------------------------------------


def test_hsts_is_off_by_default_its_flags_ready_and_all_read_from_the_environment() -> None:
    names = "[settings.SECURE_HSTS_SECONDS, settings.SECURE_HSTS_INCLUDE_SUBDOMAINS, settings.SECURE_HSTS_PRELOAD]"
    code = f"import json; from django.conf import settings; print(json.dumps({names}))"

    default = python(code, SECRET_KEY="s" * 50)
    assert default.returncode == 0, default.stderr
    assert json.loads(default.stdout) == [0, True, True]  # no header is sent while the max-age is 0

    configured = python(
        code,
        SECRET_KEY="s" * 50,
        SECURE_HSTS_SECONDS="63072000",
        SECURE_HSTS_INCLUDE_SUBDOMAINS="no",
        SECURE_HSTS_PRELOAD="off",
    )
    assert json.loads(configured.stdout) == [63072000, False, False]


@pytest.mark.django_db
@override_settings(SECURE_HSTS_SECONDS=31536000, SECURE_HSTS_INCLUDE_SUBDOMAINS=True, SECURE_HSTS_PRELOAD=True)
def test_https_answers_carry_strict_transport_security(client: Any) -> None:
    assert client.get("/healthz", secure=True)["Strict-Transport-Security"] == (
        "max-age=31536000; includeSubDomains; preload"
    )
    assert "Strict-Transport-Security" not in client.get("/healthz")  # never over plain HTTP


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("SECURE_HSTS_SECONDS", "-1", "SECURE_HSTS_SECONDS: must be at least 0"),
        ("SECURE_HSTS_SECONDS", "a year", "SECURE_HSTS_SECONDS: 'a year' is not an integer"),
        ("SECURE_HSTS_PRELOAD", "maybe", "SECURE_HSTS_PRELOAD: 'maybe' is not a boolean"),
        ("NUM_PROXIES", "-1", "NUM_PROXIES: must be at least 0"),
        ("NUM_PROXIES", "one", "NUM_PROXIES: 'one' is not an integer"),
        (
            "EMAIL_BACKEND",
            "django.core.mail.backends.filebased.EmailBackend",
            "EMAIL_FILE_PATH: must name a folder when EMAIL_BACKEND is the file-based backend",
        ),
    ],
)
def test_bad_hardening_values_fail_at_start_naming_the_variable(name: str, value: str, message: str) -> None:
    result = python("", SECRET_KEY="s" * 50, **{name: value})

    assert result.returncode != 0
    assert message in result.stderr


# --- NUM_PROXIES -------------------------------------------------------------------------------------------


def test_num_proxies_is_zero_by_default_never_drfs_trust_everything_none() -> None:
    assert setting("REST_FRAMEWORK['NUM_PROXIES']", SECRET_KEY="s" * 50) == 0
    assert setting("REST_FRAMEWORK['NUM_PROXIES']", SECRET_KEY="s" * 50, NUM_PROXIES="2") == 2


# --- EMAIL_FILE_PATH ---------------------------------------------------------------------------------------


def test_email_file_path_is_where_the_file_backend_writes(tmp_path: Path) -> None:
    folder = tmp_path / "mail"

    result = python(
        "from django.core.mail import send_mail; "
        "send_mail('Your recovery', 'Hello', 'recovery@example.com', ['ada@example.com'])",
        SECRET_KEY="s" * 50,
        EMAIL_BACKEND="django.core.mail.backends.filebased.EmailBackend",
        EMAIL_FILE_PATH=str(folder),
    )

    assert result.returncode == 0, result.stderr
    [written] = list(folder.iterdir())
    assert "Subject: Your recovery" in written.read_text()


# --- The development key -----------------------------------------------------------------------------------


def test_debug_on_the_development_key_says_links_are_forgeable_once() -> None:
    result = python("", DEBUG="1")

    assert result.returncode == 0, result.stderr
    assert result.stderr.count(DEV_KEY_WARNING) == 1
    assert "feedback links" in result.stderr


def test_a_set_secret_key_says_nothing_of_it() -> None:
    result = python("", DEBUG="1", SECRET_KEY=secrets.token_urlsafe(50))

    assert result.returncode == 0, result.stderr
    assert DEV_KEY_WARNING not in result.stderr


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_runserver_with_its_reloader_says_it_once(tmp_path: Path) -> None:
    """The reloader's parent process loads the project too; only the serving child warns."""
    port = free_port()
    clean = {k: v for k, v in os.environ.items() if k not in OWN}
    clean.update(DEBUG="1", DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}", PYTHONUNBUFFERED="1")
    clean["DJANGO_SETTINGS_MODULE"] = "recovery_project.settings"
    log = tmp_path / "runserver.log"
    with log.open("w") as output:
        server = subprocess.Popen(
            [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}"],
            cwd=ROOT,
            env=clean,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: the reloader and its child stop together
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as answer:
                    assert answer.status == 200
                break
            except OSError:
                assert server.poll() is None, log.read_text()
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.2)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)

    text = log.read_text()
    assert text.count(DEV_KEY_WARNING) == 1, text
    assert text.count("REDIS_URL is not set") == 1, text
