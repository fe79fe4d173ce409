"""The offer-set path under load, side by side with a trivial authenticated endpoint.

Seeds PostgreSQL with 1,000 active policies over 50 categories, 100,000
customers and 300,000 past incidents; runs gunicorn as production would (two
sync workers, DEBUG off); drives ``POST /api/v1/offer-sets/`` and ``GET
/api/v1/me/`` with wrk at 16 connections; then measures the engine alone and
the compiled index's memory for 10,000 policies.
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import tracemalloc
import urllib.request
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CATEGORIES = 50
POLICIES = 1000
CUSTOMERS = 100_000
INCIDENTS = 300_000
INTERESTS = ["sports", "cooking", "movies", "music", "books", "gaming", "travel", "fitness", "kids", "coffee"]
KINDS = ["percent_discount", "fixed_credit", "free_shipping", "refund", "gift", "expedited_replacement"]


def _offer(kind: str, i: int, policy_id: int, order: int):
    from policies.models import OfferTemplate

    value = {"percent_discount": 20, "refund": 50}.get(kind, 5 + i % 30)
    return OfferTemplate(
        policy_id=policy_id,
        kind=kind,
        title="{value}% off" if kind in {"percent_discount", "refund"} else "{amount} {currency} " + kind,
        message="{customer_name}, we are sorry about the {incident}.",
        value=Decimal(value),
        max_amount=Decimal("60.00") if kind in {"percent_discount", "refund"} else None,
        expires_in_days=60,
        order=order,
    )


def seed_policies(count: int, *, start: int = 0, categories: list | None = None) -> None:
    """``count`` active policies with three offers each, bulk-inserted (no per-row signals)."""
    from policies.models import Category, OfferTemplate, Perk, Policy

    rng = random.Random(start)
    categories = categories or list(Category.objects.order_by("pk"))
    policies = Policy.objects.bulk_create(
        [
            Policy(
                slug=f"bench-policy-{i}",
                name=f"Bench policy {i}",
                priority=rng.randint(0, 100),
                severity_min=rng.choice([None, 1, 2, 3]),
                tiers=rng.choice([[], [], ["gold", "platinum"]]),
                min_repeat_count=rng.choice([None, None, 2]),
                monthly_cap=rng.choice([None, Decimal("100000.00")]),
                per_customer_cap_30d=rng.choice([None, Decimal("500.00")]),
                generosity_per_severity=Decimal("0.10"),
                version=1,
            )
            for i in range(start, start + count)
        ],
        batch_size=1000,
    )
    offers = []
    links = []
    for n, policy in enumerate(policies):
        kinds = rng.sample(KINDS, 2)
        offers += [_offer(kinds[0], n, policy.pk, 0), _offer(kinds[1], n, policy.pk, 1)]
        if n % 10 == 0:
            offers.append(
                OfferTemplate(policy_id=policy.pk, kind="personalized_perk", title="{perk_name} on us", order=2)
            )
        else:
            offers.append(_offer("fixed_credit", n, policy.pk, 2))
        links.append(Policy.categories.through(policy_id=policy.pk, category_id=categories[n % len(categories)].pk))
    OfferTemplate.objects.bulk_create(offers, batch_size=5000)
    Policy.categories.through.objects.bulk_create(links, batch_size=5000)
    if not Perk.objects.exists():
        Perk.objects.bulk_create(
            [Perk(slug=f"perk-{i}", name=f"Perk {i}", tags=[INTERESTS[i % 10]], cost=Decimal(8 + i)) for i in range(20)]
        )


def seed_customers(count: int, rng: random.Random) -> None:
    """``count`` customers ``C-0`` ... with random tiers, lifetime values and two interests, bulk-inserted."""
    from compensation.models import Customer

    Customer.objects.bulk_create(
        [
            Customer(
                external_id=f"C-{i}",
                name=f"Customer {i}",
                tier=rng.choice(["standard", "standard", "silver", "gold", "platinum"]),
                lifetime_value=Decimal(rng.randint(0, 8000)),
                interests=rng.sample(INTERESTS, 2),
            )
            for i in range(count)
        ],
        batch_size=5000,
    )


def seed(*, out, policies: int = POLICIES, customers: int = CUSTOMERS, incidents: int = INCIDENTS) -> None:
    from django.utils import timezone

    from compensation.models import Customer, Incident
    from policies.models import Category
    from policies.services import policy_revision_bump

    started = time.perf_counter()
    categories = Category.objects.bulk_create(
        [Category(slug=f"cat_{i}", name=f"problem {i}") for i in range(CATEGORIES)]
    )
    seed_policies(policies, categories=categories)
    rng = random.Random(7)
    seed_customers(customers, rng)
    customer_ids = list(Customer.objects.filter(external_id__startswith="C-").values_list("pk", flat=True))
    now = timezone.now()
    batch = []
    for i in range(incidents):
        batch.append(
            Incident(
                customer_id=customer_ids[i % customers],
                category_id=categories[rng.randrange(CATEGORIES)].pk,
                severity=rng.randint(1, 5),
                order_value=Decimal(rng.randint(0, 400)),
                currency="USD",
                occurred_at=now - timedelta(days=rng.randint(0, 200)),
            )
        )
        if len(batch) == 10_000:
            Incident.objects.bulk_create(batch)
            batch = []
    Incident.objects.bulk_create(batch)
    policy_revision_bump()
    print(
        f"seeded {policies} policies / {CATEGORIES} categories, {customers:,} customers, {incidents:,} incidents "
        f"in {time.perf_counter() - started:.0f} s",
        file=out,
    )


LUA_OFFER_SETS = r"""
math.randomseed(os.time())
local interests = {"sports", "cooking", "movies", "music", "books", "gaming", "travel", "fitness", "kids", "coffee"}
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Token %(token)s"
request = function()
  local c = math.random(0, %(customers)d - 1)
  local body = string.format(
    '{"customer":{"external_id":"C-%%d","name":"Customer %%d","interests":["%%s"]},' ..
    '"incident":{"category":"cat_%%d","severity":%%d,"order_value":"%%d.00","description":"bench"}}',
    c, c, interests[math.random(1, 10)], math.random(0, %(categories)d - 1), math.random(1, 5), math.random(0, 400))
  return wrk.format(nil, "/api/v1/offer-sets/", nil, body)
end
"""

LUA_ME = r"""
wrk.headers["Authorization"] = "Token %(token)s"
"""


def wrk(url: str, script: str, *, seconds: int, connections: int) -> dict[str, float]:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        handle.write(script)
    result = subprocess.run(
        ["wrk", "-t", "2", "-c", str(connections), "-d", f"{seconds}s", "--latency", "-s", handle.name, url],
        capture_output=True,
        text=True,
        check=True,
    )
    os.unlink(handle.name)
    text = result.stdout

    def latency(label: str) -> float:
        match = re.search(rf"^\s+{label}\s+([\d.]+)(us|ms|s)\s*$", text, re.M)
        if not match:
            return float("nan")
        value, unit = float(match.group(1)), match.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    return {
        "rps": rps,
        "p50": latency("50%"),
        "p99": latency("99%"),
        "non_2xx": float(errors.group(1)) if errors else 0.0,
    }


def start_gunicorn(
    port: int,
    env: dict[str, str],
    workers: int | None,
    *,
    app: str = "recovery_project.wsgi",
    cwd: Path = ROOT,
    log: Path | None = None,
) -> subprocess.Popen:
    """gunicorn with the gunicorn.conf.py of ``cwd`` (as production starts it), on a port of our own.

    ``app`` and ``cwd`` serve another WSGI module (the plumbing benchmark's floor) or
    another checkout of the project (its before-and-after comparison); ``log`` takes
    its output (and the project's log lines) instead of this terminal.
    """
    command = [str(Path(sys.executable).parent / "gunicorn"), app, "--bind", f"127.0.0.1:{port}"]
    if workers:
        command += ["--workers", str(workers)]
    with log.open("ab") if log else contextlib.nullcontext() as output:
        process = subprocess.Popen(
            [*command, "--log-level", "warning"],
            cwd=cwd,
            env=env,
            start_new_session=True,
            stdout=output,
            stderr=output,
        )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as response:
                if response.status == 200:
                    return process
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise SystemExit("bench: gunicorn did not start")


def stop(process: subprocess.Popen) -> None:
    """Stop a server or worker started in its own session, and everything it started."""
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)


def side_by_side(title: str, *, floor: dict[str, float], name: str, figures: dict[str, float], out) -> None:
    """The endpoint's figures under the floor's (GET /api/v1/me/), and their throughput ratio."""
    print(title, file=out)
    print(f"{'endpoint':<36}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'non-2xx':>10}", file=out)
    for label, row in (("GET /api/v1/me/ (floor)", floor), (name, figures)):
        print(f"{label:<36}{row['rps']:>10.0f}{row['p50']:>10.2f}{row['p99']:>10.2f}{row['non_2xx']:>10.0f}", file=out)
    print(f"ratio {name} / floor: {figures['rps'] / floor['rps']:.2f} (target >= 0.40)", file=out)


def engine_only(out, *, computations: int = 20_000) -> None:
    """The engine alone, one process, over the seeded policies: with both learning settings off (v1) and
    with the default (thompson and position correction), over the same learned counters, side by side."""
    from compensation import learning
    from compensation.engine import compute_options
    from compensation.engine_types import CustomerFacts, IncidentFacts, Spending
    from policies.index import policy_index_build

    index = policy_index_build(revision=-1)
    rng = random.Random(3)
    categories = list(index.categories.values())
    cases = [
        (
            CustomerFacts(
                external_id=f"C-{i}",
                name=f"Customer {i}",
                tier=rng.choice(["standard", "silver", "gold", "platinum"]),
                lifetime_value=Decimal(rng.randint(0, 8000)),
                interests=frozenset(rng.sample(INTERESTS, 2)),
            ),
            IncidentFacts(
                category_id=(category := rng.choice(categories)).id,
                category_name=category.name,
                severity=rng.randint(1, 5),
                fault="company",
                correctable=True,
                order_value=Decimal(rng.randint(0, 400)),
                repeat_count=rng.randint(1, 3),
                same_category_repeat_count=1,
                occurred_on=date.today(),
            ),
        )
        for i in range(500)
    ]
    # Counters as months of outcomes leave them: every template shown at a, b and c, chosen now and then.
    counts = {}
    for policy in index.policies.values():
        for offer in policy.offers:
            shown = [rng.randint(0, 200) for _ in range(3)]
            counts[offer.id] = learning.OfferCounts(*shown, rng.randint(0, sum(shown) // 3))
    learned = learning.LearningStats(offers=counts, positions=learning.PositionCounts(1000, 400, 200, 100))
    spending = Spending()
    figures = {}
    for name, mode, stats in (
        ("v1 (both off), learned counters", learning.V1, learned),
        ("thompson + correction, learned counters", learning.LearningMode(), learned),
        ("v1 (both off), nothing learned", learning.V1, learning.LearningStats()),
        ("thompson + correction, nothing learned", learning.LearningMode(), learning.LearningStats()),
    ):
        started = time.perf_counter()
        for n in range(computations):
            customer, incident = cases[n % len(cases)]
            compute_options(
                index=index,
                customer=customer,
                incident=incident,
                spending=spending,
                stats=stats,
                currency="USD",
                approval_limit=Decimal("100"),
                mode=mode,
                seed=n,
            )
        figures[name] = computations / (time.perf_counter() - started)
    print(f"engine alone ({len(index.policies)} active policies, one process):", file=out)
    for name, rate in figures.items():
        print(f"  {name:<42}{rate:>10,.0f} offer computations/s", file=out)


def engine_only_run(*, policies: int = POLICIES, out=sys.stdout) -> None:
    """``--engine-only``: seed the policies over 50 categories, then :func:`engine_only`."""
    from policies.models import Category

    categories = Category.objects.bulk_create(
        [Category(slug=f"cat_{i}", name=f"problem {i}") for i in range(CATEGORIES)]
    )
    seed_policies(policies, categories=categories)
    engine_only(out)


def index_memory(out, *, policies: int = 10_000) -> None:
    from policies.index import policy_index_build
    from policies.models import Policy

    have = Policy.objects.filter(active=True).count()
    if have < policies:
        seed_policies(policies - have, start=have + 100_000)
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    index = policy_index_build(revision=-2)
    after = tracemalloc.take_snapshot()
    size = sum(stat.size_diff for stat in after.compare_to(before, "filename"))
    tracemalloc.stop()
    print(f"compiled index for {len(index.policies):,} policies: {size / 1024 / 1024:.1f} MB", file=out)


def _configured_workers() -> int:
    """What the project's gunicorn.conf.py gives when --workers does not say otherwise."""
    namespace: dict = {}
    exec((ROOT / "gunicorn.conf.py").read_text(), namespace)  # noqa: S102 - our own config file
    return int(namespace.get("workers", 1))


def run(*, seconds: int, connections: int, workers: int | None = None, out=sys.stdout) -> None:
    from django.conf import settings
    from django.db import connections as db_connections

    from compensation.services.users import user_token_issue

    if shutil.which("wrk") is None:
        raise SystemExit("bench: wrk is needed (apt-get install wrk)")
    seed(out=out)
    _, token, _ = user_token_issue(username="bench-agent", role="agent")
    db_connections.close_all()

    env = {
        **os.environ,
        "DATABASE_URL": os.environ["DATABASE_URL"],
        "DEBUG": "0",
        "SECRET_KEY": "bench-only-secret-key-" + "x" * 30,
        "THROTTLE_USER_RATE": "100000000/min",  # the benchmark measures the path, not the throttle
        "LOG_LEVEL": "WARNING",
    }
    port = 8900 + os.getpid() % 90
    server = start_gunicorn(port, env, workers)
    try:
        base = f"http://127.0.0.1:{port}"
        values = {"token": token.key, "customers": CUSTOMERS, "categories": CATEGORIES}
        wrk(f"{base}/api/v1/offer-sets/", LUA_OFFER_SETS % values, seconds=3, connections=connections)  # warm-up
        trivial = wrk(f"{base}/api/v1/me/", LUA_ME % values, seconds=seconds, connections=connections)
        offers = wrk(f"{base}/api/v1/offer-sets/", LUA_OFFER_SETS % values, seconds=seconds, connections=connections)
    finally:
        stop(server)

    cache = settings.CACHES["default"]["BACKEND"].rsplit(".", 1)[-1]
    side_by_side(
        f"gunicorn, {workers or _configured_workers()} sync workers, DEBUG off, cache {cache}; "
        f"wrk {connections} connections, {seconds} s each",
        floor=trivial,
        name="POST /api/v1/offer-sets/",
        figures=offers,
        out=out,
    )
    engine_only(out)
    index_memory(out)
