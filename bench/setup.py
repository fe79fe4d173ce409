"""A database of the benchmark's own, migrated, so a run never touches real data.

SQLite in a temporary file by default; with ``DATABASE_URL`` set to PostgreSQL,
a ``<name>_bench`` database beside it, dropped and created anew.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def bench_database_url() -> str:
    url = os.environ.get("DATABASE_URL", "").strip()
    if not url:
        return f"sqlite:///{tempfile.mkdtemp(prefix='recovery-bench-')}/bench.sqlite3"
    if not url.startswith(("postgres://", "postgresql://")):
        sys.exit("bench: DATABASE_URL must be PostgreSQL (or unset for SQLite)")
    import psycopg

    base, _, name = url.rpartition("/")
    bench_name = f"{name.split('?')[0] or 'recovery'}_bench"
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{bench_name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{bench_name}"')
    return f"{base}/{bench_name}"


def django_setup() -> str:
    """Point Django at a fresh benchmark database, migrate it, return its URL."""
    sys.path.insert(0, str(ROOT))
    url = bench_database_url()
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("SECRET_KEY", "bench-only-secret-key")
    os.environ.setdefault("LOG_LEVEL", "ERROR")
    os.environ["DJANGO_SETTINGS_MODULE"] = "recovery_project.settings"
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    return url
