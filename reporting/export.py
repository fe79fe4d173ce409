"""The outcome list's CSV: the header, then every row of the filter, streamed.

PostgreSQL writes the rows itself with ``COPY (SELECT ...) TO STDOUT``, the
formatting, the coupon masking and the formula guard done in the SELECT;
elsewhere (SQLite) Python's csv module writes them from the list's rows. Both
give the same bytes for the same data (tests/reporting/test_outcome_csv.py):
the excel dialect, quoted only where needed, rows ended by CRLF, NULL and ""
as an empty cell.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Generator, Iterator
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import EmptyResultSet
from django.db import connection
from django.db.backends.utils import CursorDebugWrapper
from django.db.models import Model, QuerySet

from compensation.models import Coupon, Customer, OfferSet, Outcome
from policies.models import Category, Policy
from reporting.reports import CSV_HEADER, outcome_rows, report_session
from reporting.serializers import COUPON_MASK, CSV_FORMULA, outcome_csv_row

CSV_ROWS_PER_CHUNK = 1000  # Python path: rows per chunk written to the client
CSV_ROWS_PER_FETCH = 5000  # Python path: rows per fetch from the database
CSV_CHUNK_BYTES = 64 * 1024  # COPY path: bytes per chunk written to the client


def outcome_csv(outcomes: QuerySet[Outcome], *, whole_coupons: bool) -> Iterator[str | bytes]:
    """The CSV of ``outcomes`` (the filtered list), newest first, in chunks, for a StreamingHttpResponse.

    Its first chunk is made at once, in the caller (the view): the query has started, or failed there,
    where a database outage can still be answered 503. The rest runs as the response is read; closing
    the iterator (the client went away) ends the query and the transaction it runs in, so the
    connection is clean for the next request.
    """
    if connection.vendor == "postgresql":
        return _started(outcome_csv_copy(outcomes, whole_coupons=whole_coupons))
    return _started(outcome_csv_python(outcomes, whole_coupons=whole_coupons))


def _started(chunks: Generator[Any, None, None]) -> Iterator[Any]:
    first = next(chunks, None)

    def rest() -> Iterator[Any]:
        try:
            if first is not None:
                yield first
            yield from chunks
        finally:
            chunks.close()

    return rest()


def csv_header() -> str:
    buffer = io.StringIO()
    csv.writer(buffer).writerow(CSV_HEADER)
    return buffer.getvalue()


# --- Python: any database -------------------------------------------------------------------


def outcome_csv_python(outcomes: QuerySet[Outcome], *, whole_coupons: bool) -> Iterator[str]:
    """The header, then the rows in chunks of ``CSV_ROWS_PER_CHUNK``, written by Python's csv module.

    On PostgreSQL the rows would come from a server-side cursor inside a transaction: outside one,
    Django declares it WITH HOLD and PostgreSQL builds the whole result before the first row.
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_HEADER)
    with report_session():
        rows = outcome_rows(outcomes).iterator(chunk_size=CSV_ROWS_PER_FETCH)
        for count, row in enumerate(rows, start=1):
            writer.writerow(outcome_csv_row(row, whole_coupons=whole_coupons))
            if count % CSV_ROWS_PER_CHUNK == 0:
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
    yield buffer.getvalue()


# --- PostgreSQL: COPY ---------------------------------------------------------------------------

# The outcome's own columns the CSV needs, selected by the list's query (its filters as the ORM writes
# them) and named so by position; the rest is joined to them below.
_OWN = (
    "id",
    "offer_set_id",
    "customer_id",
    "agent_id",
    "category_id",
    "tier",
    "choice",
    "accepted",
    "kind",
    "policy_id",
    "cost",
    "remedy_cost",
    "currency",
    "satisfaction",
    "offer_set_created_at",
    "submitted_at",
    "recorded_at",
)


def _name(model: type[Model], field: str | None = None) -> str:
    """A model's table, or one of its fields' column (``pk``: its primary key's), quoted."""
    if field is None:
        return connection.ops.quote_name(model._meta.db_table)
    return connection.ops.quote_name(model._meta.pk.column if field == "pk" else model._meta.get_field(field).column)


def _guarded(expression: str) -> str:
    """A free-text cell with the formula guard of reporting.serializers.csv_cell (one %s: CSV_FORMULA);
    "" as NULL, since COPY quotes an empty string and Python's csv does not."""
    return f"CASE WHEN {expression} ~ %s THEN '''' || {expression} ELSE NULLIF({expression}, '') END"


def _guarded_names(model: type[Model], field: str) -> str:
    """A small table's ids and guarded names: the guard runs once per row of the table, not once per
    outcome. Grouped by the key so that PostgreSQL keeps the subquery apart instead of pulling it up
    (OFFSET 0 would do that too, but rules out a parallel plan)."""
    guarded = _guarded(_name(model, field))
    return f"(SELECT {_name(model, 'pk')} AS id, {guarded} AS cell FROM {_name(model)} GROUP BY 1)"  # noqa: S608


def _text(column: str) -> str:
    """A text cell of a fixed set of values (tier, choice, kind, currency): no guard; "" as NULL."""
    return f"NULLIF(o.{column}, '')"


def _iso(column: str) -> str:
    """A time as compensation.serializers.iso writes it: UTC, Z, microseconds only when not zero."""
    return f"replace(to_char(o.{column} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), '.000000Z', 'Z')"


def _coupon(code: str, *, whole: bool) -> str:
    """The code whole, or masked as reporting.serializers.coupon_code_shown masks it."""
    if whole:
        return code
    mask = COUPON_MASK
    return f"CASE WHEN length({code}) > 4 THEN '{mask}' || right({code}, 4) WHEN {code} <> '' THEN '{mask}' END"


# reporting.serializers.seconds_to_outcome: exact (extract gives a numeric), rounded halves away from zero,
# written as Python writes a float: trim_scale drops the trailing zeros, + 0.0 keeps one decimal (120.0, 60.5).
_SECONDS = "(trim_scale(round(extract(epoch FROM o.submitted_at - o.offer_set_created_at), 3)) + 0.0)"


def outcome_csv_copy_sql(outcomes: QuerySet[Outcome], *, whole_coupons: bool) -> tuple[str, list[Any]]:
    """The ``COPY ... TO STDOUT`` of the CSV's rows (no header) and its parameters.

    The list's query selects the outcomes' own columns; the statement joins the rest and formats
    each cell as :func:`reporting.serializers.outcome_csv_row` does. Raises EmptyResultSet when the
    filter can match nothing.
    """
    inner, inner_params = outcomes.order_by().values_list(*_OWN).query.sql_with_params()
    user = get_user_model()
    coupon = f"cp.{_name(Coupon, 'code')}"
    cells = [
        "o.id",
        "o.offer_set_id",
        f"s.{_name(OfferSet, 'incident')}",
        _guarded(f"c.{_name(Customer, 'external_id')}"),
        "u.cell",
        "cat.cell",
        _text("tier"),
        _text("choice"),
        "CASE WHEN o.accepted THEN 'true' ELSE 'false' END",
        _text("kind"),
        "o.policy_id",
        "p.cell",
        "round(o.cost, 2)",
        "round(o.remedy_cost, 2)",
        _text("currency"),
        "o.satisfaction",
        _guarded(f"({_coupon(coupon, whole=whole_coupons)})"),
        _iso("offer_set_created_at"),
        _iso("submitted_at"),
        _iso("recorded_at"),
        _SECONDS,
    ]
    select = f"SELECT {', '.join(cells)}"
    joins = (
        f" JOIN {_name(OfferSet)} AS s ON s.{_name(OfferSet, 'pk')} = o.offer_set_id"
        f" JOIN {_name(Customer)} AS c ON c.{_name(Customer, 'pk')} = o.customer_id"
        f" JOIN {_guarded_names(user, user.USERNAME_FIELD)} AS u ON u.id = o.agent_id"
        f" JOIN {_guarded_names(Category, 'slug')} AS cat ON cat.id = o.category_id"
        f" LEFT JOIN {_guarded_names(Policy, 'name')} AS p ON p.id = o.policy_id"
        f" LEFT JOIN {_name(Coupon)} AS cp ON cp.{_name(Coupon, 'outcome')} = o.id"
        " ORDER BY o.recorded_at DESC, o.id DESC"
    )
    # Parameters in the order of their placeholders: the guards of the cells, the filters', the joins' guards.
    params = [*[CSV_FORMULA] * select.count("%s"), *inner_params, *[CSV_FORMULA] * joins.count("%s")]
    statement = f"{select} FROM ({inner}) AS o ({', '.join(_OWN)}){joins}"
    return f"COPY ({statement}) TO STDOUT WITH (FORMAT csv)", params


def _logged(cursor: Any, sql: str, params: list[Any]) -> AbstractContextManager[None]:
    """Record the COPY like any query where queries are recorded (DEBUG, tests' query counts), with the
    time until its last row."""
    return cursor.debug_sql(sql, params) if isinstance(cursor, CursorDebugWrapper) else nullcontext()


def outcome_csv_copy(outcomes: QuerySet[Outcome], *, whole_coupons: bool) -> Iterator[bytes]:
    """The header, then the rows as PostgreSQL writes them, in chunks of about ``CSV_CHUNK_BYTES``.

    COPY sends one row per message, each ended by LF; Python's csv ends rows with CRLF, so each
    row's LF becomes CRLF (a line break inside a quoted cell is left alone). Runs in the report
    session's transaction; if the generator is closed early (the client went away), psycopg cancels
    the COPY and drains what was sent, and the transaction rolls back.
    """
    header = csv_header().encode()
    try:
        sql, params = outcome_csv_copy_sql(outcomes, whole_coupons=whole_coupons)
    except EmptyResultSet:
        yield header
        return
    buffer = bytearray(header)
    with (
        report_session(),
        connection.cursor() as cursor,
        connection.wrap_database_errors,
        _logged(cursor, sql, params),
        cursor.cursor.copy(sql, params) as copy,  # psycopg's own: Django's debug wrapper takes no params
    ):
        for row in copy:
            buffer += row[:-1]
            buffer += b"\r\n"
            if len(buffer) >= CSV_CHUNK_BYTES:
                yield bytes(buffer)
                buffer.clear()
    yield bytes(buffer)
