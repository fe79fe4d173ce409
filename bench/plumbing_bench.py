"""Plumbing: what the project's calls cost beside a stock DRF service (issue 10, section 4).

One run serves, each with gunicorn (two sync workers unless ``--workers``
says otherwise, DEBUG off, the checkout's gunicorn.conf.py) on one PostgreSQL
database and one Redis:

- the floor, ``bench/floor/``: stock DRF, token authentication,
  ``CommonMiddleware`` only, no throttle; ``GET /me/`` returns the username;
- this checkout: ``GET /api/v1/me/``, ``POST /api/v1/offer-sets/`` (the
  offer-sets benchmark's requests) and ``POST /api/v1/offer-sets/{id}/outcome/``
  (the outcomes benchmark's 202 path; no worker runs, the tasks wait in Redis);
- with ``--compare PATH`` (repeatable), another checkout of the project served
  the same way, for before-and-after figures from the same run
  (``git worktree add /tmp/before <commit>``).

wrk drives one server at a time (``--connections``, ``--seconds`` each), in
rounds: the floor, every server's ``me``, offer sets and outcomes, the floor
again. Each figure is set against the mean of its round's two floor runs;
with several rounds the summary gives the median ratio. The machine is
shared and noisy: read the ratios, not the absolute figures.

The throttle stays on, at a rate that never refuses (``100000000/s``): its
cost is part of every request. The one-second period keeps the old throttle's
per-user history (a list of timestamps, one per request in the period) at
the length a busy user has at the production rate (1,000/min), where a
period of a minute would grow it to every request of the last minute.

The database, ``<name>_plumbing_bench``, is kept between runs (``--reseed``
seeds it anew): the offer-sets benchmark's 1,000 policies over 50 categories,
100,000 customers and 300,000 incidents (``--policies`` scales the three down
for quick iterations; figures to report use the default), and a pool of open
offer sets for the outcome requests, whose answers are deleted and budgets
reset at every start, so each run answers fresh sets.

``--profile N`` then runs N offer-set requests in this process (Django's test
client, the same database and Redis) under cProfile, and prints where a
request's time goes.
"""

from __future__ import annotations

import cProfile
import json
import os
import pstats
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from bench import offer_sets_bench, outcomes_bench
from bench.offer_sets_bench import CATEGORIES, LUA_ME, LUA_OFFER_SETS, ROOT, start_gunicorn, stop, wrk
from bench.outcomes_bench import LUA_OUTCOMES
from bench.reports_bench import _database_comment_read, _database_comment_write, _database_create, _server_url

SPEC_VERSION = "v1"
OUTCOME_IDS_PER_SECOND = 1000  # outcome requests a server might answer per second: ids in each slice
THROTTLE_RATE = "100000000/s"
SLICES = 3  # each measurement runs in this many slices, the floor between them
TARGETS = {"me": 0.8, "offer-sets": 0.3}


@dataclass
class Server:
    label: str
    app: str
    cwd: Path
    env: dict[str, str]
    port: int = 0
    process: subprocess.Popen | None = None
    results: dict[str, list[dict[str, float]]] = field(default_factory=dict)


# --- The database ---------------------------------------------------------------------------------


def _sizes(policies: int) -> dict[str, int]:
    scale = policies / offer_sets_bench.POLICIES
    return {
        "policies": policies,
        "customers": max(1000, round(offer_sets_bench.CUSTOMERS * scale)),
        "incidents": max(3000, round(offer_sets_bench.INCIDENTS * scale)),
    }


def django_setup(*, policies: int, reseed: bool, out) -> tuple[str, dict[str, int]]:
    """Point Django at the kept plumbing database (seeding it when needed); returns its URL and sizes."""
    url = os.environ.get("DATABASE_URL", "").strip()
    if not url.startswith(("postgres://", "postgresql://")):
        raise SystemExit("bench: the plumbing benchmark needs PostgreSQL (DATABASE_URL)")
    base, name = _server_url(url)
    name = name.replace("_reports_bench", "_plumbing_bench")
    sizes = _sizes(policies)
    key = f"plumbing bench {SPEC_VERSION} " + " ".join(f"{k}={v}" for k, v in sizes.items())
    stored = _database_comment_read(base, name)
    sys.path.insert(0, str(ROOT))
    os.environ["DATABASE_URL"] = f"{base}/{name}"
    os.environ["SECRET_KEY"] = "bench-only-secret-key-" + "x" * 30
    os.environ.setdefault("LOG_LEVEL", "ERROR")
    os.environ["THROTTLE_USER_RATE"] = THROTTLE_RATE
    os.environ["DJANGO_SETTINGS_MODULE"] = "recovery_project.settings"
    why = "--reseed" if reseed else "none yet" if stored is None else "" if stored[0] == key else f"was {stored[0]!r}"
    if why:
        print(f"database {name}: seeding anew ({why})", file=out)
        _database_create(base, name)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    if why:
        offer_sets_bench.seed(out=out, **sizes)
        outcomes_bench.seed_policies()
        _database_comment_write(os.environ["DATABASE_URL"], key)
    else:
        print(f"database {name}: reusing it ({key}); --reseed to seed anew", file=out)
    return os.environ["DATABASE_URL"], sizes


def outcome_pool(*, agent, needed: int, out) -> list[str]:
    """``needed`` open, unanswered offer sets for the outcome requests: answers deleted, budgets reset, topped up."""
    from django.db import transaction
    from django.utils import timezone

    from compensation.models import Customer, OfferSet, OutcomeSubmission, PolicyMonthSpend
    from policies.models import Category, OfferTemplate

    category = Category.objects.get(slug=outcomes_bench.CATEGORY)
    pool = OfferSet.objects.filter(incident__category=category, created_by=agent)
    with transaction.atomic():
        # No worker ran, so nothing was recorded: the answers are outbox rows only.
        OutcomeSubmission.objects.filter(offer_set__in=pool).delete()
        PolicyMonthSpend.objects.filter(policy__categories=category).delete()
        pool.update(expires_at=timezone.now() + timedelta(days=1))
    ids = [str(i) for i in pool.order_by("created_at", "id").values_list("id", flat=True)[:needed]]
    if len(ids) < needed:
        started = time.perf_counter()
        customers = list(Customer.objects.filter(external_id__startswith="O-"))
        if not customers:
            customers = Customer.objects.bulk_create(
                [Customer(external_id=f"O-{i}", name=f"Customer {i}") for i in range(outcomes_bench.CUSTOMERS)],
                batch_size=5000,
            )
        templates = list(OfferTemplate.objects.filter(policy__categories=category).order_by("order"))
        missing = needed - len(ids)
        ids += outcomes_bench.seed_offer_sets(
            agent=agent,
            count=missing,
            category=category,
            templates=templates,
            customers=customers,
            seed=len(ids),
        )
        print(f"outcome pool: {missing:,} offer sets added in {time.perf_counter() - started:.0f} s", file=out)
    return ids


# --- Load -------------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _revision(path: Path) -> str:
    result = subprocess.run(["git", "-C", str(path), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run(
        ["git", "-C", str(path), "status", "--porcelain", "--untracked-files=no"], capture_output=True
    )
    return (result.stdout.strip() or "?") + ("+" if dirty.stdout.strip() else "")


PATHS = {"me": "GET /api/v1/me/", "offer-sets": "POST /api/v1/offer-sets/", "outcomes": "POST .../outcome/"}


def _print_round(number: int, rounds: int, floor_label: str, rows: list[dict[str, Any]], out) -> None:
    print(f"\nround {number + 1} of {rounds}", file=out)
    print(f"{'':<64}{'req/s':>8}{'p50 ms':>8}{'p99 ms':>8}{'non-2xx':>8}{'floor':>8}{'x floor':>9}", file=out)
    for row in rows:
        target = TARGETS.get(row["what"])
        print(
            f"{row['label'] + ': ' + PATHS[row['what']]:<64}{row['rps']:>8.0f}{row['p50']:>8.1f}{row['p99']:>8.1f}"
            f"{row['non_2xx']:>8.0f}{row['floor']:>8.0f}{row['ratio']:>9.2f}"
            + (f"  (target >= {target:.2f})" if target else ""),
            file=out,
        )
    print(f"(floor: {floor_label}, GET /me/, the mean of its runs just before and after each slice)", file=out)


def run(
    *,
    seconds: int,
    connections: int,
    workers: int | None,
    policies: int,
    rounds: int,
    compare: list[str],
    reseed: bool,
    profile: int,
    endpoints: list[str] | None = None,
    cpu: int = 0,
    cpu_batches: int = 3,
    out=sys.stdout,
) -> None:
    if shutil.which("wrk") is None:
        raise SystemExit("bench: wrk is needed (apt-get install wrk)")
    if not os.environ.get("REDIS_URL"):
        raise SystemExit("bench: the plumbing benchmark needs REDIS_URL (the cache and the outcomes' broker)")
    workers = workers or 2
    url, sizes = django_setup(policies=policies, reseed=reseed, out=out)

    from django.conf import settings
    from django.db import connections as db_connections

    from compensation.services.users import user_token_issue
    from recovery_project.celery import app as celery_app

    agent, token, _ = user_token_issue(username="bench-agent", role="agent")
    slice_size = max(1, seconds // SLICES) * OUTCOME_IDS_PER_SECOND
    others = [Path(path) for path in compare]
    projects = [("this " + _revision(ROOT), ROOT), *((f"{path.name} {_revision(path)}", path) for path in others)]
    if len({label for label, _ in projects}) < len(projects):
        raise SystemExit("bench: --compare checkouts need folders of different names")
    answering = endpoints is None or "outcomes" in endpoints
    ids = outcome_pool(agent=agent, needed=slice_size * SLICES * len(projects) * rounds if answering else 0, out=out)
    db_connections.close_all()
    celery_app.control.purge()

    env = {
        **os.environ,
        "DATABASE_URL": url,
        "DEBUG": "0",
        "SECRET_KEY": "bench-only-secret-key-" + "x" * 30,
        "THROTTLE_USER_RATE": THROTTLE_RATE,
        "LOG_LEVEL": "WARNING",
        "PYTHONWARNINGS": "ignore:No directory at",  # WhiteNoise: no collectstatic in a benchmark
    }
    floor = Server(
        "floor (stock DRF)", "bench.floor.wsgi", ROOT, {**env, "DJANGO_SETTINGS_MODULE": "bench.floor.settings"}
    )
    servers = [
        Server(label, "recovery_project.wsgi", path, {**env, "DJANGO_SETTINGS_MODULE": "recovery_project.settings"})
        for label, path in projects
    ]
    values = {"token": token.key, "customers": sizes["customers"], "categories": CATEGORIES}
    cache = settings.CACHES["default"]["BACKEND"].rsplit(".", 1)[-1]
    print(
        f"gunicorn {workers} sync workers each, DEBUG off, cache {cache}, broker Redis, throttle {THROTTLE_RATE}; "
        f"wrk {connections} connections, {seconds} s per run, "
        f"{rounds} round(s); {sizes['policies']} policies, {sizes['customers']:,} customers",
        file=out,
    )
    summary = (
        _load(
            floor=floor,
            servers=servers,
            workers=workers,
            values=values,
            ids=ids,
            slice_size=slice_size,
            seconds=seconds,
            connections=connections,
            rounds=rounds,
            endpoints=endpoints,
            out=out,
        )
        if rounds
        else {}
    )
    if summary:
        print(f"\nratio to the floor{' (median of the rounds)' if rounds > 1 else ''}", file=out)
    for (label, what), ratios in summary.items():
        target = TARGETS.get(what)
        print(
            f"  {label:<36}{what:<12}{statistics.median(ratios):>6.2f}"
            + (f"   target >= {target:.2f}" if target else "")
            + (f"   rounds: {', '.join(f'{r:.2f}' for r in ratios)}" if rounds > 1 else ""),
            file=out,
        )
    if cpu:
        cpu_env = {
            **env,
            "BENCH_TOKEN": token.key,
            "BENCH_CUSTOMERS": str(sizes["customers"]),
            "BENCH_CATEGORIES": str(CATEGORIES),
        }
        cpu_per_request(projects=projects, requests=cpu, batches=cpu_batches, env=cpu_env, out=out)
    if profile:
        profile_offer_sets(requests=profile, token=token.key, sizes=sizes, out=out)


def _load(
    *,
    floor: Server,
    servers: list[Server],
    workers: int,
    values: dict[str, Any],
    ids: list[str],
    slice_size: int,
    seconds: int,
    connections: int,
    rounds: int,
    endpoints: list[str] | None,
    out,
) -> dict[tuple[str, str], list[float]]:
    """Serve the floor and every checkout, drive them in rounds; each measurement's ratios to the floor."""
    from recovery_project.celery import app as celery_app

    summary: dict[tuple[str, str], list[float]] = {}
    id_files: list[str] = []
    try:
        for server in [floor, *servers]:
            server.port = _free_port()
            server.process = start_gunicorn(server.port, server.env, workers, app=server.app, cwd=server.cwd)
        base = {server.label: f"http://127.0.0.1:{server.port}" for server in [floor, *servers]}
        wrk(f"{base[floor.label]}/me/", LUA_ME % values, seconds=2, connections=connections)  # warm-up
        for server in servers:  # warm-up: connections, and each worker's compiled policy index
            wrk(f"{base[server.label]}/api/v1/me/", LUA_ME % values, seconds=2, connections=connections)
            wrk(f"{base[server.label]}/api/v1/offer-sets/", LUA_OFFER_SETS % values, seconds=3, connections=connections)

        # The floor runs before and after every slice of every measurement (F E F E F ...), so each slice
        # has the floor of its own minute beside it: the machine is shared, its load moves within a round.
        floor_url = f"{base[floor.label]}/me/"
        slice_seconds = max(1, seconds // SLICES)
        outcome_slices = iter(range(len(ids) // slice_size))

        def target(server: Server, what: str) -> tuple[str, str]:
            """The URL and wrk script of one slice; outcome slices answer offer sets no slice answered."""
            url = f"{base[server.label]}/api/v1/"
            if what == "me":
                return url + "me/", LUA_ME % values
            if what == "offer-sets":
                return url + "offer-sets/", LUA_OFFER_SETS % values
            start = next(outcome_slices) * slice_size
            with tempfile.NamedTemporaryFile("w", suffix=".ids", delete=False) as handle:
                handle.write("\n".join(ids[start : start + slice_size]))
            id_files.append(handle.name)
            return url + f"offer-sets/{uuid.UUID(int=0)}/outcome/", LUA_OUTCOMES % {**values, "ids": handle.name}

        for number in range(rounds):
            rows = []
            previous_floor = wrk(floor_url, LUA_ME % values, seconds=slice_seconds, connections=connections)
            for what in endpoints or PATHS:
                for server in servers:
                    slices, ratios = [], []
                    for _ in range(SLICES):
                        url, script = target(server, what)
                        figures = wrk(url, script, seconds=slice_seconds, connections=connections)
                        if what == "outcomes" and figures["rps"] * slice_seconds > slice_size:
                            print(f"note: {server.label} outran its {slice_size:,} outcome ids (409s)", file=out)
                        next_floor = wrk(floor_url, LUA_ME % values, seconds=slice_seconds, connections=connections)
                        floor_rps = (previous_floor["rps"] + next_floor["rps"]) / 2
                        previous_floor = next_floor
                        slices.append({**figures, "floor": floor_rps})
                        ratios.append(figures["rps"] / floor_rps)
                    row = {
                        "label": server.label,
                        "what": what,
                        "rps": statistics.mean(f["rps"] for f in slices),
                        "p50": statistics.median(f["p50"] for f in slices),
                        "p99": max(f["p99"] for f in slices),
                        "non_2xx": sum(f["non_2xx"] for f in slices),
                        "floor": statistics.mean(f["floor"] for f in slices),
                        "ratio": statistics.mean(ratios),
                    }
                    rows.append(row)
                    summary.setdefault((server.label, what), []).append(row["ratio"])
            _print_round(number, rounds, floor.label, rows, out)
    finally:
        for server in [floor, *servers]:
            if server.process is not None:
                stop(server.process)
        for name in id_files:
            os.unlink(name)
        celery_app.control.purge()  # the outcomes' recording tasks: no worker will take them
    return summary


# --- Processor time per request ----------------------------------------------------------------------


def cpu_per_request(*, projects: list[tuple[str, Path]], requests: int, batches: int, env: dict, out) -> None:
    """Each checkout's processor time per request (its process and its PostgreSQL backend), batches interleaved.

    bench/plumbing_cpu.py runs in each checkout's folder, one process per
    batch; the median batch is shown. Django's test client, not gunicorn: no
    WSGI server and no per-request connection health check, the same for all.
    """
    driver = ROOT / "bench" / "plumbing_cpu.py"
    results: dict[tuple[str, str], list[dict[str, float]]] = {}
    for batch in range(batches):
        for what in ("me", "offer-sets"):
            for label, path in projects:
                done = subprocess.run(
                    [sys.executable, str(driver), what, str(requests)],
                    cwd=path,
                    env={**env, "BENCH_SEED": str(batch)},
                    capture_output=True,
                    text=True,
                )
                if done.returncode:
                    raise SystemExit(f"bench: {driver.name} failed in {path}:\n{done.stderr[-2000:]}")
                results.setdefault((label, what), []).append(json.loads(done.stdout.strip().splitlines()[-1]))
    print(
        f"\nprocessor time per request, in-process ({requests} requests x {batches} interleaved batches, median):",
        file=out,
    )
    print(f"{'':<60}{'python ms':>10}{'database':>10}{'total':>10}{'x this':>8}{'wall ms':>9}  totals", file=out)
    base: dict[str, float] = {}
    for (label, what), runs in results.items():
        python = statistics.median(r["python_ms"] for r in runs)
        database = statistics.median(r["database_ms"] for r in runs)
        wall = statistics.median(r["wall_ms"] for r in runs)
        base.setdefault(what, python + database)
        totals = sorted(r["python_ms"] + r["database_ms"] for r in runs)
        print(
            f"{label + ': ' + PATHS[what]:<60}{python:>10.3f}{database:>10.3f}{python + database:>10.3f}"
            f"{(python + database) / base[what]:>8.2f}{wall:>9.2f}  {', '.join(f'{t:.2f}' for t in totals)}",
            file=out,
        )


# --- Where an offer-set request's time goes ---------------------------------------------------------

# (label, module file suffix, function name): cumulative time per request, outermost first.
PHASES = [
    ("whole request (Django handler)", "django/core/handlers/base.py", "get_response"),
    ("  database health check (SELECT 1)", "django/db/backends/base/base.py", "close_if_health_check_failed"),
    ("  authentication (token, user, role)", "rest_framework/request.py", "_authenticate"),
    ("  throttle", "rest_framework/views.py", "check_throttles"),
    ("  request body parse", "rest_framework/request.py", "_load_data_and_files"),
    ("  input validation", "compensation/serializers.py", "offer_set_input_validate"),
    ("  policy index (revision read)", "policies/index.py", "policy_index_get"),
    ("  offer_set_create (service)", "compensation/services/offer_sets.py", "offer_set_create"),
    ("    customer upsert", "compensation/services/offer_sets.py", "customer_upsert"),
    ("    request facts (one query)", "compensation/selectors.py", "request_facts"),
    ("    engine (compute_options)", "compensation/engine.py", "compute_options"),
    ("    snapshot insert", "compensation/services/offer_sets.py", "offer_set_insert"),
    ("    commit", "django/db/transaction.py", "__exit__"),
    ("  response payload", "compensation/serializers.py", "offer_set_payload"),
    ("  render JSON", "rest_framework/renderers.py", "render"),
    ("all SQL (psycopg execute)", "psycopg/cursor.py", "execute"),
    ("all Redis (commands and pipelines)", "redis/client.py", "execute_command"),
    ("", "redis/client.py", "execute"),
]


def profile_offer_sets(*, requests: int, token: str, sizes: dict[str, int], out) -> None:
    """N offer-set requests in-process: wall time without a profiler, then cProfile's breakdown."""
    from django.db import connection
    from django.test import Client

    rng = random.Random(17)
    interests = ["sports", "cooking", "movies", "music", "books", "gaming", "travel", "fitness", "kids", "coffee"]

    def body() -> str:
        c = rng.randrange(sizes["customers"])
        return json.dumps(
            {
                "customer": {"external_id": f"C-{c}", "name": f"Customer {c}", "interests": [rng.choice(interests)]},
                "incident": {
                    "category": f"cat_{rng.randrange(CATEGORIES)}",
                    "severity": rng.randint(1, 5),
                    "order_value": f"{rng.randint(0, 400)}.00",
                    "description": "bench",
                },
            }
        )

    client = Client(HTTP_AUTHORIZATION=f"Token {token}", HTTP_HOST="127.0.0.1")

    def post() -> None:
        response = client.post("/api/v1/offer-sets/", body(), content_type="application/json")
        if response.status_code != 201:
            raise SystemExit(f"bench: offer set answered {response.status_code}: {response.content[:300]!r}")

    for _ in range(50):  # warm-up: the connection, the compiled index, prepared statements
        post()
    started = time.perf_counter()
    for _ in range(requests):
        post()
    wall = (time.perf_counter() - started) / requests * 1000

    # Each statement's wall time (sent, run, answered), without the profiler: what the database side costs.
    timings: dict[str, list[float]] = {}

    def timed(execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            timings.setdefault(_statement_name(sql), []).append(time.perf_counter() - started)

    with connection.execute_wrapper(timed):
        for _ in range(requests):
            post()
    statements = sum(len(t) for t in timings.values())

    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(requests):
        post()
    profiler.disable()
    stats = pstats.Stats(profiler)
    table: dict[tuple[str, str], float] = {}
    for (filename, _, name), (_, _, _, cumulative, _) in stats.stats.items():  # type: ignore[attr-defined]
        for _, suffix, function in PHASES:
            if name == function and filename.endswith(suffix):
                key = (suffix, function)
                # Recursive or repeated entries (one per line number) add up.
                table[key] = table.get(key, 0.0) + cumulative
    total = table.get(("django/core/handlers/base.py", "get_response"), 0.0)
    print(
        f"\nPOST /api/v1/offer-sets/ in-process (Django test client, {requests} requests, this checkout): "
        f"{wall:.2f} ms per request without a profiler; {statements / requests:.1f} SQL statements per request "
        "(Django's, not counting the health check's SELECT 1)",
        file=out,
    )
    print("SQL statements, wall time from sending to the last row (no profiler):", file=out)
    for name, seconds in sorted(timings.items(), key=lambda item: -sum(item[1])):
        per_request = sum(seconds) / requests * 1000
        print(f"  {per_request:>7.3f} ms/request  {len(seconds) / requests:>4.1f}x  {name}", file=out)
    print("under cProfile (its overhead inflates many small Python calls more than waiting):", file=out)
    print(f"{'':<44}{'ms/request':>11}{'share':>8}", file=out)
    redis_total = 0.0
    for label, suffix, function in PHASES:
        seconds = table.get((suffix, function), 0.0)
        if suffix == "redis/client.py":
            redis_total += seconds
            if function == "execute":
                print(f"{'all Redis (commands and pipelines)':<44}{redis_total / requests * 1000:>11.3f}", file=out)
            continue
        share = f"{seconds / total:>8.0%}" if total else ""
        print(f"{label:<44}{seconds / requests * 1000:>11.3f}{share}", file=out)
    path = Path(tempfile.gettempdir()) / "plumbing_offer_sets.prof"
    stats.dump_stats(path)
    print(f"whole profile: {path} (python -m pstats {path}; sort cumulative; stats 40)", file=out)
    _top(stats, out)


def _statement_name(sql: str) -> str:
    """A statement's kind and main table, to group the same statement's runs."""
    words = sql.replace("(", " ").replace('"', "").split()
    head = " ".join(words[:2]).upper()
    for keyword in ("INTO", "FROM", "UPDATE"):
        if keyword in (w.upper() for w in words):
            position = [w.upper() for w in words].index(keyword)
            return f"{head} ... {keyword} {words[position + 1]}"[:90]
    return head[:90]


def _top(stats: pstats.Stats, out: Any, limit: int = 25) -> None:
    """The functions with the most time of their own."""
    rows = sorted(stats.stats.items(), key=lambda item: item[1][2], reverse=True)[:limit]  # type: ignore[attr-defined]
    print(f"top {limit} by own time:", file=out)
    total = sum(v[2] for v in stats.stats.values())  # type: ignore[attr-defined]
    for (filename, line, name), (_, calls, own, _, _) in rows:
        short = "/".join(Path(filename).parts[-2:])
        print(f"  {own / total:>5.1%}  {calls:>8}  {short}:{line} {name}", file=out)
