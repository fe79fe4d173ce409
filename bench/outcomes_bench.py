"""The outcome path: the 202 submission endpoint under load, then recording throughput.

1. Seeds 40,000 open offer sets (three options each, from three policies with
   monthly caps, so every submission runs the conditional budget update), runs
   gunicorn as production would and drives ``POST /api/v1/offer-sets/{id}/outcome/``
   with wrk, side by side with ``GET /api/v1/me/`` as the floor. No worker runs
   meanwhile: the tasks wait in Redis, as they would during a worker outage.
2. Recording: 10,000 pending submissions in the queue, drained by one Celery
   worker of concurrency 2 (prefork); prints outcomes recorded per second. A
   no-op task drained the same way gives the broker's own ceiling beside it.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

from bench.offer_sets_bench import LUA_ME, ROOT, _configured_workers, side_by_side, start_gunicorn, stop, wrk

OFFER_SETS = 40_000
CUSTOMERS = 2_000
QUEUE = 10_000
CHOICES = ["a", "b", "c", "declined"]

LUA_OUTCOMES = r"""
local ids = {}
for line in io.lines("%(ids)s") do ids[#ids + 1] = line end
local counter = 0
local threads = 2
function setup(thread)
  thread:set("tid", counter)
  counter = counter + 1
end
local n = 0
local choices = {"a", "b", "c", "declined"}
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Token %(token)s"
request = function()
  n = n + 1
  local i = ((n * threads + tid) %% #ids) + 1
  local body = string.format('{"choice":"%%s","satisfaction":%%d,"notes":"bench"}',
    choices[(n %% 4) + 1], (n %% 5) + 1)
  return wrk.format(nil, "/api/v1/offer-sets/" .. ids[i] .. "/outcome/", nil, body)
end
"""


OPTIONS = [  # kind, value, unit, estimated cost: the three options of every seeded set
    ("percent_discount", Decimal("20"), "percent", Decimal("12.00")),
    ("fixed_credit", Decimal("10.00"), "amount", Decimal("10.00")),
    ("gift", Decimal("15.00"), "amount", Decimal("15.00")),
]
CATEGORY = "late_delivery"


def seed_policies():
    """The category and three capped policies the sets' options come from; returns (category, templates)."""
    from policies.models import Category, OfferTemplate, Policy
    from policies.services import policy_revision_bump

    category = Category.objects.create(slug=CATEGORY, name="Late delivery")
    templates = []
    for n, (kind, value, _, _) in enumerate(OPTIONS):
        policy = Policy.objects.create(
            slug=f"bench-{kind}", name=f"Bench {kind}", priority=50, monthly_cap=Decimal("9999999.00"), version=1
        )
        policy.categories.add(category)
        templates.append(
            OfferTemplate.objects.create(
                policy=policy,
                kind=kind,
                title=f"{kind} on us",
                value=value,
                max_amount=Decimal("40.00") if kind == "percent_discount" else None,
                expires_in_days=60,
                order=n,
            )
        )
    policy_revision_bump()
    return category, templates


def seed_offer_sets(*, agent, count: int, category, templates, customers: list, seed: int = 11) -> list[str]:
    """``count`` offer sets open for a day, for ``customers`` in turn; returns their ids."""
    from django.utils import timezone

    from compensation.models import Incident, Offer, OfferSet

    rng = random.Random(seed)
    now = timezone.now()
    ids: list[str] = []
    for start in range(0, count, 5000):
        size = min(5000, count - start)
        incidents = Incident.objects.bulk_create(
            [
                Incident(
                    customer=customers[(start + i) % len(customers)],
                    category=category,
                    severity=rng.randint(1, 5),
                    order_value=Decimal(rng.randint(20, 300)),
                    currency="USD",
                    occurred_at=now,
                )
                for i in range(size)
            ]
        )
        sets = [
            OfferSet(
                id=uuid.uuid4(),
                created_by=agent,
                customer_id=incident.customer_id,
                incident=incident,
                policy_revision=1,
                created_at=now,
                expires_at=now + timedelta(days=1),
            )
            for incident in incidents
        ]
        OfferSet.objects.bulk_create(sets)
        Offer.objects.bulk_create(
            [
                Offer(
                    offer_set=offer_set,
                    label="abc"[n],
                    rank=n,
                    kind=template.kind,
                    title=template.title,
                    value=template.value,
                    unit=unit,
                    estimated_cost=cost,
                    currency="USD",
                    policy_id=template.policy_id,
                    policy_name=f"Bench {template.kind}",
                    policy_version=1,
                    offer_template=template,
                    expires_in_days=60,
                    score=1.0 - n / 10,
                )
                for offer_set in sets
                for n, (template, (_, _, unit, cost)) in enumerate(zip(templates, OPTIONS, strict=True))
            ],
            batch_size=5000,
        )
        ids += [str(offer_set.id) for offer_set in sets]
    return ids


def seed(*, agent, count: int, out) -> list[str]:
    """``count`` unexpired offer sets with options a/b/c from three capped policies; returns their ids."""
    from compensation.models import Customer

    started = time.perf_counter()
    category, templates = seed_policies()
    customers = Customer.objects.bulk_create(
        [Customer(external_id=f"O-{i}", name=f"Customer {i}", email=f"c{i}@example.com") for i in range(CUSTOMERS)],
        batch_size=5000,
    )
    ids = seed_offer_sets(agent=agent, count=count, category=category, templates=templates, customers=customers)
    print(f"seeded {count:,} offer sets for {CUSTOMERS:,} customers in {time.perf_counter() - started:.0f} s", file=out)
    return ids


def start_worker(env: dict[str, str], *, concurrency: int = 2) -> subprocess.Popen:
    return subprocess.Popen(
        [
            str(Path(sys.executable).parent / "celery"),
            "-A",
            "recovery_project",
            "worker",
            "--pool",
            "prefork",
            "-c",
            str(concurrency),
            "-l",
            "warning",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ],
        cwd=ROOT,
        env=env,
        start_new_session=True,
    )


def drain(count_done, target: int, *, timeout: float = 600) -> float:
    """Seconds until ``count_done()`` reaches ``target``, timed from the first item done."""
    deadline = time.monotonic() + timeout
    while count_done() == 0:
        if time.monotonic() > deadline:
            raise SystemExit("bench: the worker recorded nothing")
        time.sleep(0.01)
    started = time.perf_counter()
    while (done := count_done()) < target:
        if time.monotonic() > deadline:
            raise SystemExit(f"bench: only {done} of {target} done before the timeout")
        time.sleep(0.05)
    return time.perf_counter() - started


def recording(*, env: dict[str, str], ids: list[str], agent, out) -> None:
    from django.conf import settings
    from django.db import connections as db_connections
    from django.utils import timezone

    from compensation.models import Offer, Outcome, OutcomeSubmission
    from compensation.queue import outcome_enqueue
    from recovery_project.celery import app, noop

    app.control.purge()
    pending = list(
        OutcomeSubmission.objects.filter(status=OutcomeSubmission.Status.PENDING).values_list("pk", flat=True)
    )
    taken = set(OutcomeSubmission.objects.values_list("offer_set_id", flat=True))
    free = [i for i in ids if uuid.UUID(i) not in taken]
    now = timezone.now()
    offers = {
        (o.offer_set_id, o.label): o
        for o in Offer.objects.filter(offer_set_id__in=free[: max(0, QUEUE - len(pending))])
    }
    rng = random.Random(5)
    new = []
    for offer_set_id in free[: max(0, QUEUE - len(pending))]:
        choice = rng.choice(CHOICES)
        new.append(
            OutcomeSubmission(
                offer_set_id=offer_set_id,
                offer=offers.get((uuid.UUID(offer_set_id), choice)),
                choice=choice,
                submitted_by=agent,
                submitted_at=now,
                enqueued_at=now,
            )
        )
    OutcomeSubmission.objects.bulk_create(new, batch_size=5000)
    queue = [*pending, *(s.pk for s in new)][:QUEUE]
    before = Outcome.objects.count()
    for submission_id in queue:
        outcome_enqueue(submission_id)
    db_connections.close_all()

    import redis

    client = redis.Redis.from_url(env["REDIS_URL"])
    worker = start_worker(env)
    try:
        started = time.perf_counter()
        seconds = drain(lambda: Outcome.objects.count() - before, len(queue))
        recorded_at = time.perf_counter()
        # Batches record ahead of the queue: the messages left find their outcome recorded.
        drain(lambda: len(queue) - client.llen("celery") - client.hlen("unacked"), len(queue))
        emptied = time.perf_counter() - started
    finally:
        stop(worker)
    print(
        f"recording: {len(queue):,} outcomes recorded by one worker (prefork, concurrency 2, batches of "
        f"{settings.OUTCOME_RECORD_BATCH}) in {seconds:.1f} s: {len(queue) / seconds:,.0f} outcomes/s "
        f"(target >= 250); its {len(queue):,} messages all handled {emptied:.1f} s after the worker started "
        f"({recorded_at - started:.1f} s to the last outcome)",
        file=out,
    )

    # The broker's own ceiling: the same number of no-op tasks through the same worker.
    app.control.purge()
    for _ in range(len(queue)):
        noop.apply_async()
    worker = start_worker(env)
    try:
        seconds = drain(lambda: len(queue) - client.llen("celery"), len(queue))
    finally:
        stop(worker)
    print(f"no-op task, same worker: {len(queue) / seconds:,.0f} tasks/s (the broker's ceiling)", file=out)


def run(*, seconds: int, connections: int, workers: int | None = None, out=sys.stdout) -> None:
    from django.conf import settings
    from django.db import connections as db_connections

    from compensation.services.users import user_token_issue

    if not settings.REDIS_URL:
        raise SystemExit("bench: the outcomes benchmark needs REDIS_URL (a real broker)")
    if shutil.which("wrk") is None:
        raise SystemExit("bench: wrk is needed (apt-get install wrk)")
    agent, token, _ = user_token_issue(username="bench-agent", role="agent")
    ids = seed(agent=agent, count=OFFER_SETS, out=out)
    db_connections.close_all()
    with tempfile.NamedTemporaryFile("w", suffix=".ids", delete=False) as handle:
        handle.write("\n".join(ids))
    env = {
        **os.environ,
        "DEBUG": "0",
        "SECRET_KEY": "bench-only-secret-key-" + "x" * 30,
        "THROTTLE_USER_RATE": "100000000/min",
        "LOG_LEVEL": "WARNING",
    }
    from recovery_project.celery import app

    app.control.purge()
    port = 8900 + os.getpid() % 90
    server = start_gunicorn(port, env, workers)
    try:
        base = f"http://127.0.0.1:{port}"
        values = {"token": token.key, "ids": handle.name}
        wrk(f"{base}/api/v1/me/", LUA_ME % values, seconds=3, connections=connections)  # warm-up
        trivial = wrk(f"{base}/api/v1/me/", LUA_ME % values, seconds=seconds, connections=connections)
        outcomes = wrk(
            f"{base}/api/v1/offer-sets/00000000-0000-0000-0000-000000000000/outcome/",
            LUA_OUTCOMES % values,
            seconds=seconds,
            connections=connections,
        )
    finally:
        stop(server)
        os.unlink(handle.name)

    side_by_side(
        f"gunicorn, {workers or _configured_workers()} sync workers, DEBUG off, broker Redis; "
        f"wrk {connections} connections, {seconds} s each",
        floor=trivial,
        name="POST .../outcome/ (202)",
        figures=outcomes,
        out=out,
    )
    recording(env=env, ids=ids, agent=agent, out=out)
