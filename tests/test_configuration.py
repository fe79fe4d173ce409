"""Settings come from the environment; a bad value fails at start, naming the variable."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def start(**env: str) -> subprocess.CompletedProcess:
    """Load the production settings in a fresh process with this environment."""
    clean = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "SECRET_KEY", "DEBUG"}}
    clean.update(env, DJANGO_SETTINGS_MODULE="recovery_project.settings")
    code = (
        "import django; django.setup(); from django.conf import settings; "
        "print(settings.DATABASES['default']['ENGINE'], settings.CELERY_TASK_ALWAYS_EAGER)"
    )
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=clean, capture_output=True, text=True, timeout=60)


def test_secret_key_is_required_when_debug_is_off():
    result = start()
    assert result.returncode != 0
    assert "SECRET_KEY: must be set when DEBUG is off" in result.stderr


def test_debug_runs_without_secret_key_on_sqlite_with_eager_tasks_and_says_so():
    result = start(DEBUG="1")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["django.db.backends.sqlite3", "True"]
    assert result.stderr.count("REDIS_URL is not set") == 1


def test_database_url_selects_postgresql_and_redis_url_turns_off_eager_tasks():
    result = start(
        SECRET_KEY="s" * 50, DATABASE_URL="postgres://u@127.0.0.1:5432/db", REDIS_URL="redis://127.0.0.1:6379/0"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["django.db.backends.postgresql", "False"]
    assert "REDIS_URL is not set" not in result.stderr


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("DEBUG", "maybe", "DEBUG: 'maybe' is not a boolean"),
        ("DATABASE_URL", "mysql://x@y/z", "DATABASE_URL: must be a sqlite:/// or postgres:// URL"),
        ("REDIS_URL", "localhost:6379", "REDIS_URL: 'localhost:6379' is not a redis:// or rediss:// URL"),
        ("DEFAULT_CURRENCY", "dollars", "DEFAULT_CURRENCY: 'DOLLARS' is not a three-letter"),
        ("TIME_ZONE", "Mars/Olympus", "TIME_ZONE: 'Mars/Olympus' is not an IANA time zone"),
        ("MONEY_LOCALE", "xx_YY", "MONEY_LOCALE: 'xx_YY' is not a locale such as en_US"),
        ("AGENT_APPROVAL_LIMIT", "lots", "AGENT_APPROVAL_LIMIT: 'lots' is not a decimal"),
        ("AGENT_APPROVAL_LIMIT", "-5", "AGENT_APPROVAL_LIMIT: must be a finite number of at least 0"),
        ("THROTTLE_USER_RATE", "fast", "THROTTLE_USER_RATE: 'fast' is not a rate"),
        ("SECURE_SSL_REDIRECT", "sometimes", "SECURE_SSL_REDIRECT: 'sometimes' is not a boolean"),
        ("EMAIL_PORT", "smtp", "EMAIL_PORT: 'smtp' is not an integer"),
        ("OUTCOME_MAX_ATTEMPTS", "0", "OUTCOME_MAX_ATTEMPTS: must be at least 1, got 0"),
        ("OUTCOME_MAX_ATTEMPTS", "often", "OUTCOME_MAX_ATTEMPTS: 'often' is not an integer"),
        ("CUSTOMER_FACTS", "crm", "CUSTOMER_FACTS: 'crm' is not one of agent, trusted"),
    ],
)
def test_bad_values_fail_at_start_naming_the_variable(name, value, message):
    result = start(SECRET_KEY="s" * 50, **{name: value})
    assert result.returncode != 0
    assert message in result.stderr


def test_settings_module_does_not_need_django_configured_to_import_celery_app():
    result = subprocess.run(
        [sys.executable, "-c", "from recovery_project import celery_app; print(celery_app.main)"],
        cwd=ROOT,
        env={**os.environ, "DEBUG": "1"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "recovery_project"


@pytest.mark.django_db
def test_models_and_migrations_agree():
    from django.core.management import call_command

    call_command("makemigrations", "--check", "--dry-run", verbosity=0)


@pytest.mark.django_db
def test_postgresql_prepares_the_statements_a_connection_repeats():
    from django.db import connection

    from tests.conftest import need

    need(connection.vendor == "postgresql", "needs PostgreSQL (DATABASE_URL=postgres://…): its prepared statements")
    with connection.cursor() as cursor:
        for _ in range(6):  # psycopg prepares a statement the fifth time a connection runs it
            cursor.execute("SELECT %s::int + 1 AS prepared_probe", [1])
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        prepared = [row[0] for row in cursor.fetchall()]

    assert any("prepared_probe" in statement for statement in prepared), prepared


@pytest.mark.django_db(transaction=True)  # the report's transaction is the outermost one, as in production
def test_reports_plan_each_query_for_its_own_period_despite_prepared_statements():
    from django.db import connection

    from reporting.reports import report_session
    from tests.conftest import need

    need(connection.vendor == "postgresql", "needs PostgreSQL (DATABASE_URL=postgres://…): its plan cache")
    with report_session(), connection.cursor() as cursor:
        cursor.execute("SHOW plan_cache_mode")
        assert cursor.fetchone()[0] == "force_custom_plan"
    with connection.cursor() as cursor:  # for the report's transaction only
        cursor.execute("SHOW plan_cache_mode")
        assert cursor.fetchone()[0] == "auto"


@pytest.mark.parametrize(
    ("url", "worker", "expected"),
    [
        ("redis://127.0.0.1:6379/15", "gw0", "redis://127.0.0.1:6379/15"),
        ("redis://127.0.0.1:6379/15", "gw3", "redis://127.0.0.1:6379/12"),
        ("redis://127.0.0.1:6379/1", "gw3", "redis://127.0.0.1:6379/14"),
        ("redis://127.0.0.1:6379", "gw1", "redis://127.0.0.1:6379/15"),
        ("rediss://:secret@cache:6380/4?ssl_cert_reqs=none", "gw1", "rediss://:secret@cache:6380/3?ssl_cert_reqs=none"),
        ("redis://127.0.0.1:6379/15", None, "redis://127.0.0.1:6379/15"),
        (None, "gw2", None),
    ],
)
def test_each_xdist_worker_gets_a_redis_database_of_its_own(url: str | None, worker: str | None, expected: str) -> None:
    from tests.settings import redis_url_of_this_process

    assert redis_url_of_this_process(url, worker) == expected
