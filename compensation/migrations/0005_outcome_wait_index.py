"""PostgreSQL: an index on each outcome's wait (submitted - offer set created), so the summary
report's median reads the middle of an index instead of sorting every outcome of the period.

PostgreSQL only, so it lives outside the models' state: declared in Meta.indexes, SQLite would
index through a function only Django registers. Built CONCURRENTLY, so writes to the outcomes go
on while it builds.
"""

from django.db import migrations

INDEX = "outcome_wait"


def create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    table = schema_editor.quote_name(apps.get_model("compensation", "Outcome")._meta.db_table)
    # The included columns let the median's scan stay in the index (an index-only scan).
    schema_editor.execute(
        f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {INDEX} ON {table} ((submitted_at - offer_set_created_at)) "
        "INCLUDE (recorded_at, submitted_at, offer_set_created_at)"
    )


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {INDEX}")


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY cannot run in a transaction

    dependencies = [("compensation", "0004_reports")]

    operations = [migrations.RunPython(create, drop)]
