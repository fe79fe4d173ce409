"""``POST /api/v1/customers/bulk/`` with 1,000 customers: all new, then all updated with changes.

A fresh PostgreSQL database (bench/setup.py) seeded with ``--customers`` stored customers (default
100,000, set-based SQL) so the upsert meets a table of a real size; one gunicorn sync worker (DEBUG off)
serves it; an integration token posts, one request at a time, ``--rounds`` rounds (default 5) of:

- 1,000 customers that do not exist yet (created: no change rows);
- the same 1,000 again with a new name, tier, lifetime value and interests (updated: 4,000 change rows).

Each request is timed from connect to the last byte; the median and max per kind are printed, against
the target of 2 s, with the rows each round wrote (checked, not assumed). Then the same calls in-process,
split into validation (the serializers) and the write (one statement), to say where the time goes.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from bench.offer_sets_bench import start_gunicorn, stop
from bench.plumbing_bench import _free_port

BATCH = 1000
TARGET_SECONDS = 2.0
TIERS = ("standard", "silver", "gold", "platinum")
INTERESTS = ("sports", "cooking", "music", "travel", "books", "gaming", "garden", "pets")


def seed(*, customers: int, out) -> None:
    """``customers`` stored customers, ``SEED-<n>``, in one statement."""
    from django.db import connection

    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO compensation_customer
                (external_id, name, email, tier, lifetime_value, interests, created_at, updated_at)
            SELECT 'SEED-' || n, 'Seeded ' || n, 'seed' || n || '@example.com',
                   (ARRAY['standard', 'silver', 'gold', 'platinum'])[1 + n %% 4], (n %% 5000)::numeric,
                   '["sports"]'::jsonb, now(), now()
            FROM generate_series(1, %s) AS n
            """,
            [customers],
        )
        cursor.execute("ANALYZE compensation_customer")
    print(f"seeded {customers:,} customers in {time.perf_counter() - started:.1f} s", file=out)


def batch(round_: int, *, changed: bool) -> list[dict]:
    """1,000 customers of this round: as first sent, or with four of their fields changed."""
    rows = []
    for n in range(BATCH):
        shift = 1 if changed else 0
        rows.append(
            {
                "external_id": f"BENCH-{round_}-{n:04}",
                "name": f"Customer {n}" + (" (renamed)" if changed else ""),
                "email": f"customer{n}@example.com",
                "tier": TIERS[(n + shift) % len(TIERS)],
                "lifetime_value": f"{(n * 7 + shift * 100) % 10000}.{n % 100:02}",
                "interests": [INTERESTS[(n + shift) % len(INTERESTS)], INTERESTS[(n + 3) % len(INTERESTS)]],
            }
        )
    return rows


def _post(url: str, token: str, body: bytes) -> tuple[float, int, dict]:
    request = urllib.request.Request(  # noqa: S310 - our server
        url,
        data=body,
        method="POST",
        headers={"Authorization": f"Token {token}", "Content-Type": "application/json"},
    )
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=120) as response:  # noqa: S310 - our server
            answer, status = response.read(), response.status
    except urllib.error.HTTPError as error:
        answer, status = error.read(), error.code
    elapsed = time.perf_counter() - started
    try:
        data = json.loads(answer)
    except ValueError:
        data = {"body": answer[:200].decode(errors="replace")}
    return elapsed, status, data


def in_process(*, rounds: int, user, out) -> None:
    """The same bulk calls without HTTP: validation, then the write, each timed."""
    from django.utils import timezone

    from compensation.serializers import customers_bulk_validate
    from compensation.services.customers import customers_bulk_put

    figures: dict[str, list[float]] = {"validate": [], "write new": [], "write changed": []}
    for round_ in range(rounds):
        for changed in (False, True):
            rows = batch(1000 + round_, changed=changed)
            started = time.perf_counter()
            customers = customers_bulk_validate({"customers": rows})
            validated = time.perf_counter()
            customers_bulk_put(customers=customers, by=user.get_username(), now=timezone.now())
            written = time.perf_counter()
            figures["validate"].append(validated - started)
            figures["write changed" if changed else "write new"].append(written - validated)
    print("in-process (no HTTP), median of the rounds:", file=out)
    for label, values in figures.items():
        print(f"  {label:<16}{statistics.median(values) * 1000:>9.1f} ms", file=out)


def run(*, rounds: int, customers: int, out=sys.stdout) -> None:
    from django.db import connection
    from django.db import connections as db_connections

    from compensation.models import Customer, CustomerChange
    from compensation.services.users import user_token_issue

    if connection.vendor != "postgresql":
        raise SystemExit("bench: the customers benchmark needs PostgreSQL (DATABASE_URL=postgres://...)")
    seed(customers=customers, out=out)
    user, token, _ = user_token_issue(username="bench-integration", role="integration")
    db_connections.close_all()

    port = _free_port()
    env = {
        **os.environ,
        "DEBUG": "0",
        "SECRET_KEY": "bench-only-secret-key-" + "x" * 30,
        "THROTTLE_USER_RATE": "100000000/min",
        "LOG_LEVEL": "WARNING",
        "PYTHONWARNINGS": "ignore:No directory at",  # WhiteNoise: no collectstatic in a benchmark
    }
    url = f"http://127.0.0.1:{port}/api/v1/customers/bulk/"
    times: dict[str, list[float]] = {"new": [], "changed": []}
    with tempfile.TemporaryDirectory(prefix="recovery-customers-bench-") as logs:
        server = start_gunicorn(port, env, 1, log=Path(logs) / "gunicorn.log")
        try:
            _post(url, token.key, json.dumps({"customers": batch(-1, changed=False)}).encode())  # warm-up
            print(
                f"POST /api/v1/customers/bulk/ with {BATCH:,} customers, {rounds} rounds, one request at a time; "
                "gunicorn 1 sync worker, DEBUG off, PostgreSQL",
                file=out,
            )
            print(f"{'round':<8}{'kind':<10}{'seconds':>9}  answer   rows written (checked)", file=out)
            for round_ in range(rounds):
                for kind in ("new", "changed"):
                    body = json.dumps({"customers": batch(round_, changed=kind == "changed")}).encode()
                    changes_before = CustomerChange.objects.count()
                    elapsed, status, data = _post(url, token.key, body)
                    if status != 200:
                        raise SystemExit(f"bench: {status} {data}")
                    stored = Customer.objects.filter(external_id__startswith=f"BENCH-{round_}-").count()
                    changes = CustomerChange.objects.count() - changes_before
                    times[kind].append(elapsed)
                    print(
                        f"{round_:<8}{kind:<10}{elapsed:>9.3f}  {json.dumps(data):<30} "
                        f"customers {stored:,}, change rows {changes:,}",
                        file=out,
                    )
        finally:
            stop(server)
    for kind, values in times.items():
        median = statistics.median(values)
        verdict = "under" if median < TARGET_SECONDS else "OVER"
        print(
            f"{kind:<8} median {median:.3f} s, max {max(values):.3f} s ({verdict} the {TARGET_SECONDS:.0f} s target)",
            file=out,
        )
    in_process(rounds=rounds, user=user, out=out)
