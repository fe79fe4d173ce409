"""The outcome path (docs/architecture.md, "Request path 2") for real: Redis, a Celery worker, PostgreSQL,
and the faults between them.

tests/settings.py makes tasks eager; the worker tests switch the app to publishing to the Redis at
REDIS_URL and start real workers, in this process (``celery.contrib.testing``) or as a subprocess that
can be killed. Every test commits (``transaction=True``) because workers and threads must see the rows.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import redis
from celery import signals
from celery.contrib.testing.worker import start_worker
from django.conf import settings
from django.db import connection
from django.db import connections as db_connections
from django.db.models import Sum
from rest_framework.test import APIClient

from compensation.models import (
    AcceptanceStat,
    BudgetCharge,
    Coupon,
    CreditEntry,
    FollowUp,
    Offer,
    OfferSet,
    Outcome,
    OutcomeSubmission,
    PolicyMonthSpend,
    PositionStat,
)
from compensation.services.outcomes import outcome_submissions_requeue, outcome_submit
from compensation.tasks import outcome_record_task
from policies.choices import OfferKind
from policies.models import Policy
from recovery_project.celery import app as celery_app
from tests.clock import CLOCK_PRELUDE
from tests.conftest import postgres_needed
from tests.factories import CategoryFactory, OfferTemplateFactory, PolicyFactory

pytestmark = pytest.mark.django_db(transaction=True)

OFFER_SETS = "/api/v1/offer-sets/"
COST = Decimal("10.00")  # the fixed credit every set offers; its estimated cost
FAULT_OUTCOMES = 200
PENDING = OutcomeSubmission.Status.PENDING
RECORDED = OutcomeSubmission.Status.RECORDED
# kombu's Redis transport keeps delivered, unacknowledged messages here until acked or the visibility timeout.
UNACKED_KEYS = ("unacked", "unacked_index", "unacked_mutex")


@pytest.fixture
def worker_db(transactional_db: None) -> None:
    """A database a worker in other threads or processes can share with the test."""
    postgres_needed(
        "the worker writes from other threads or processes while the test reads and writes, which SQLite's "
        "in-memory test database (table locks that fail instead of waiting, this process only) cannot take"
    )


# --- Polling -----------------------------------------------------------------------------------


def wait_for(condition: Callable[[], Any], *, timeout: float, what: Callable[[], str], interval: float = 0.05) -> Any:
    """Poll ``condition`` until it is truthy (and return it), failing with ``what()`` at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what()}")
        time.sleep(interval)


def counts() -> dict[str, int]:
    return {
        "pending": OutcomeSubmission.objects.filter(status=PENDING).count(),
        "recorded": OutcomeSubmission.objects.filter(status=RECORDED).count(),
        "outcomes": Outcome.objects.count(),
        "queued": queued(),
        "unacked": unacked(),
    }


# --- The broker --------------------------------------------------------------------------------


def default_queue() -> Any:
    return celery_app.amqp.queues[celery_app.conf.task_default_queue]


def redis_client() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=2, socket_timeout=5)


def queued() -> int:
    """Messages waiting in the default queue (every priority)."""
    with celery_app.connection_for_write() as conn:
        # Declaring an existing queue changes nothing and answers its size; a passive declare
        # fails on Redis for an empty queue (an empty list is no key at all).
        return default_queue()(conn.default_channel).queue_declare().message_count


def unacked() -> int:
    """Messages delivered to a worker and not yet acknowledged."""
    with contextlib.closing(redis_client()) as client:
        return client.hlen(UNACKED_KEYS[0])


def broker_queue_reset() -> None:
    """Empty the default queue and the unacknowledged set, and (re)declare the queue.

    A test before may have deleted the queue's keys or purged it while pooled connections
    still believe the queue declared: declaring it here again is what keeps the next publish
    from going nowhere.
    """
    with celery_app.connection_for_write() as conn:
        queue = default_queue()(conn.default_channel)
        queue.declare()
        queue.purge()
    with contextlib.closing(redis_client()) as client:
        client.delete(*UNACKED_KEYS)


def producer_pools_reset() -> None:
    """Forget the app's broker pools, so the next publish takes the pool for ``broker_url`` as it is now.

    kombu keeps one pool per broker URL for the whole process: they stay open (a pool closed
    here would stay closed for every later publish to its URL), the app just stops holding one.
    """
    celery_app._pool = None
    celery_app.amqp._producer_pool = None


@pytest.fixture
def broker(needs_redis: None) -> Iterator[None]:
    """The app publishing to the Redis at REDIS_URL for real, on an empty queue before and after."""
    eager = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = False
    producer_pools_reset()
    broker_queue_reset()
    try:
        yield
    finally:
        celery_app.conf.task_always_eager = eager
        broker_queue_reset()


@contextlib.contextmanager
def broker_unreachable() -> Iterator[str]:
    """Point the app's publishing at a port where nothing listens; restore the real broker after."""
    with socket.socket() as probe:  # a port the kernel just handed out and nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    real = celery_app.conf.broker_url
    celery_app.conf.broker_url = f"redis://127.0.0.1:{port}/0"
    producer_pools_reset()
    try:
        yield celery_app.conf.broker_url
    finally:
        celery_app.conf.broker_url = real
        producer_pools_reset()


# --- Workers -----------------------------------------------------------------------------------


def _close_worker_thread_connections(task: Any = None, **kwargs: Any) -> None:
    if task is not None and not getattr(task.request, "is_eager", False):
        db_connections.close_all()


@contextlib.contextmanager
def worker_in_process(*, pool: str = "solo", concurrency: int = 1) -> Iterator[Any]:
    """A real worker in a thread of this process, consuming the queue the app publishes to.

    Its threads close their database connections after each task: they outlive the worker (the
    thread pool is not shut down when the worker stops) and would keep the test database open.
    """
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level  # the worker's log setup takes over the root logger
    signals.task_postrun.connect(_close_worker_thread_connections)
    worker = None
    try:
        with start_worker(
            celery_app,
            pool=pool,
            concurrency=concurrency,
            perform_ping_check=False,
            queues=[celery_app.conf.task_default_queue],
            loglevel="WARNING",
            shutdown_timeout=30,
        ) as worker:
            yield worker
    finally:
        executor = getattr(getattr(worker, "pool", None), "executor", None)
        if executor is not None:
            executor.shutdown(wait=True)
        signals.task_postrun.disconnect(_close_worker_thread_connections)
        root.handlers[:] = handlers
        root.setLevel(level)


def database_url_of_this_test() -> str:
    """DATABASE_URL of the database this test uses (the test database, not the configured one)."""
    db = connection.settings_dict
    auth = quote(db["USER"] or "", safe="")
    if db["PASSWORD"]:
        auth += ":" + quote(db["PASSWORD"], safe="")
    host = quote(db["HOST"] or "localhost", safe="")
    port = f":{db['PORT']}" if db["PORT"] else ""
    return f"postgres://{auth}{'@' if auth else ''}{host}{port}/{quote(db['NAME'], safe='')}"


def worker_stop(process: subprocess.Popen, *, kill: bool = False, timeout: float = 20) -> None:
    """SIGKILL the worker's whole process group at once (``kill``), or ask it for a warm shutdown;
    SIGKILL whatever outlives ``timeout``."""
    if kill:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
    else:
        process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)  # pool children of a parent that died before them


# ``celery -A recovery_project worker``, except that what the worker publishes itself (a retry) goes to
# the broker: tests.settings makes tasks eager, which would run a retry inline, inside the failed attempt.
# CLOCK_PRELUDE first: the worker reads the clock (recorded_at, follow-ups) as shifted as the test's.
WORKER_MAIN = CLOCK_PRELUDE + (
    "import sys; from recovery_project.celery import app; "
    "app.conf.task_always_eager = False; app.worker_main(sys.argv[1:])"
)


DEFAULT_QUEUE = celery_app.conf.task_default_queue


@contextlib.contextmanager
def worker_process(
    log: Path, *, concurrency: int = 2, queues: str | None = DEFAULT_QUEUE, name: str = "outcome-test"
) -> Iterator[subprocess.Popen]:
    """``celery worker --pool prefork`` in its own process group, on the test database; stopped in any case.

    ``queues``: its ``-Q`` (None: none given, so it consumes every queue the project declares, as production
    starts it)."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "DATABASE_URL": database_url_of_this_test(),
        "REDIS_URL": settings.REDIS_URL,
    }
    command = [
        *(sys.executable, "-c", WORKER_MAIN, "worker"),
        *("--pool", "prefork", "-c", str(concurrency), "-l", "warning"),
        *(("-Q", queues) if queues else ()),
        *("-n", f"{name}-{uuid.uuid4().hex[:8]}@%h"),
        *("--without-mingle", "--without-gossip", "--without-heartbeat"),
    ]
    with log.open("ab") as out:
        process = subprocess.Popen(
            command,
            cwd=settings.BASE_DIR,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield process
    finally:
        worker_stop(process)


def log_tail(log: Path, lines: int = 30) -> str:
    text = log.read_text(errors="replace") if log.exists() else ""
    return "\n".join(text.splitlines()[-lines:])


@contextlib.contextmanager
def task_runs() -> Iterator[list[tuple[str, str, Any]]]:
    """(submission id, state, return value) of every outcome_record run by a worker of this process."""
    runs: list[tuple[str, str, Any]] = []
    lock = threading.Lock()

    def record(sender: Any = None, args: Any = (), state: str = "", retval: Any = None, **kwargs: Any) -> None:
        if sender is not None and sender.name == outcome_record_task.name:
            with lock:
                runs.append((args[0], state, retval))

    signals.task_postrun.connect(record, weak=False)
    try:
        yield runs
    finally:
        signals.task_postrun.disconnect(record)


# --- Data --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Agent:
    user: Any
    token: str

    def client(self) -> APIClient:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {self.token}")
        return client


@pytest.fixture
def agent(make_user: Any) -> Agent:
    return Agent(*make_user("agent-1", "agent"))


def policy_make(*, coupon: bool = False, **caps: Any) -> Policy:
    """The only policy for late deliveries: a fixed credit of COST and, with ``coupon``, free shipping too."""
    category = CategoryFactory(slug="late_delivery")
    policy = PolicyFactory(categories=[category], **caps)
    OfferTemplateFactory(policy=policy, kind=OfferKind.FIXED_CREDIT, value=COST)
    if coupon:
        OfferTemplateFactory(policy=policy, kind=OfferKind.FREE_SHIPPING, value=Decimal("8.00"))
    return policy


@pytest.fixture
def two_option_policy(db: None) -> Policy:
    return policy_make(coupon=True)


def offer_sets_create(client: APIClient, external_ids: list[str], *, options: int) -> list[str]:
    ids = []
    for external_id in external_ids:
        response = client.post(
            OFFER_SETS,
            {
                "customer": {"external_id": external_id},
                "incident": {"category": "late_delivery", "severity": 3, "order_value": "80.00"},
            },
            format="json",
        )
        assert response.status_code == 201, response.content
        data = response.json()
        assert len(data["options"]) == options, data
        ids.append(data["id"])
    return ids


def outcome_url(offer_set_id: str) -> str:
    return f"{OFFER_SETS}{offer_set_id}/outcome/"


def outcomes_submit(agent: Agent, offer_set_ids: list[str], choice: str = "a") -> list[str]:
    """Accept ``choice`` on each set through the service; each commit enqueues its recording task."""
    offer_sets = OfferSet.objects.prefetch_related("offers").in_bulk(offer_set_ids)
    return [
        str(outcome_submit(user=agent.user, offer_set_id=offer_sets[uuid.UUID(offer_set_id)].pk, choice=choice).pk)
        for offer_set_id in offer_set_ids
    ]


def assert_recorded_exactly_once(submission_ids: list[str], *, options_per_set: int) -> None:
    """Every accepted choice became one Outcome with what it promises, and was counted once."""
    count = len(submission_ids)
    assert not OutcomeSubmission.objects.filter(status=PENDING).exists()
    assert OutcomeSubmission.objects.filter(status=RECORDED, recorded_at__isnull=False).count() == count
    assert sorted(str(pk) for pk in Outcome.objects.values_list("submission_id", flat=True)) == sorted(submission_ids)
    assert Outcome.objects.filter(accepted=True).count() == count
    assert Coupon.objects.count() + CreditEntry.objects.count() == count
    assert FollowUp.objects.count() == 2 * count
    stats = AcceptanceStat.objects.aggregate(chosen=Sum("chosen"), offered=Sum("offered"))
    assert stats == {"chosen": count, "offered": options_per_set * count}
    assert BudgetCharge.objects.count() == count


# --- 1. End to end through the API -------------------------------------------------------------


def test_a_real_worker_records_the_outcome_posted_through_the_api(
    worker_db: None, broker: None, two_option_policy: Policy, agent: Agent
) -> None:
    client = agent.client()
    (offer_set_id,) = offer_sets_create(client, ["C-1"], options=2)

    with worker_in_process():
        response = client.post(outcome_url(offer_set_id), {"choice": "a", "satisfaction": 4}, format="json")
        assert response.status_code == 202, response.content
        accepted = response.json()
        assert accepted == {
            "status": "accepted",
            "submission_id": accepted["submission_id"],
            "choice": "a",
            "outcome_status": "pending",
        }

        def recorded() -> dict | None:
            outcome = client.get(f"{OFFER_SETS}{offer_set_id}/").json()["outcome"]
            return outcome if outcome and outcome["status"] == "recorded" else None

        outcome = wait_for(recorded, timeout=30, interval=0.1, what=lambda: f"the outcome recorded; {counts()}")

    assert outcome["choice"] == "a"
    assert outcome["satisfaction"] == 4
    assert outcome["recorded_at"] is not None
    assert outcome["offer"]["label"] == "a"
    stored = Outcome.objects.get()
    assert str(stored.submission_id) == accepted["submission_id"]
    assert stored.follow_ups.count() == 2
    assert queued() == 0


# --- 2. Concurrent acceptances against one budget ----------------------------------------------


def _post_outcomes_concurrently(agent: Agent, offer_set_ids: list[str]) -> list[Any]:
    """One thread, client and database connection per set, released together by a barrier."""
    barrier = threading.Barrier(len(offer_set_ids))
    results: list[Any] = [None] * len(offer_set_ids)

    def run(index: int) -> None:
        try:
            client = agent.client()
            barrier.wait(timeout=30)
            results[index] = client.post(outcome_url(offer_set_ids[index]), {"choice": "a"}, format="json")
        except Exception as exc:  # reported by the assertion below, not lost in the thread
            results[index] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(index,)) for index in range(len(offer_set_ids))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads), "a request did not finish in 60 seconds"
    return results


@pytest.mark.parametrize(
    ("caps", "same_customer"),
    [
        ({"monthly_cap": 10 * COST}, False),
        ({"per_customer_cap_30d": 10 * COST}, True),
    ],
    ids=["monthly-budget", "per-customer-cap"],
)
def test_50_concurrent_acceptances_fit_exactly_10_into_a_budget_for_10(
    agent: Agent, caps: dict[str, Decimal], same_customer: bool
) -> None:
    postgres_needed(
        "SQLite lets one writer in at a time, so the 50 acceptances could not overlap and the test would prove nothing"
    )
    policy = policy_make(**caps)
    external_ids = ["C-same"] * 50 if same_customer else [f"C-{i}" for i in range(50)]
    offer_set_ids = offer_sets_create(agent.client(), external_ids, options=1)
    assert set(Offer.objects.values_list("estimated_cost", flat=True)) == {COST}

    results = _post_outcomes_concurrently(agent, offer_set_ids)

    statuses = collections.Counter(getattr(r, "status_code", repr(r)) for r in results)
    assert statuses == {202: 10, 409: 40}, statuses
    assert {r.json()["code"] for r in results if r.status_code == 409} == {"budget_exhausted"}
    assert PolicyMonthSpend.objects.get(policy=policy).spent == 10 * COST
    assert BudgetCharge.objects.count() == 10
    assert BudgetCharge.objects.aggregate(total=Sum("amount"))["total"] == 10 * COST
    assert OutcomeSubmission.objects.count() == 10
    accepted = {r.json()["submission_id"] for r in results if r.status_code == 202}
    assert {str(pk) for pk in OutcomeSubmission.objects.values_list("pk", flat=True)} == accepted
    # The suite records eagerly at each commit: the ten recordings ran concurrently too, each counted once.
    assert {str(pk) for pk in Outcome.objects.values_list("submission_id", flat=True)} == accepted
    assert AcceptanceStat.objects.aggregate(chosen=Sum("chosen"), offered=Sum("offered")) == {
        "chosen": 10,
        "offered": 10,
    }


# --- 3. Faults, each over 200 outcomes ---------------------------------------------------------


def test_a_worker_killed_mid_way_loses_nothing_once_the_outbox_is_swept(
    worker_db: None, broker: None, two_option_policy: Policy, agent: Agent, tmp_path: Path
) -> None:
    offer_set_ids = offer_sets_create(agent.client(), [f"C-{i}" for i in range(FAULT_OUTCOMES)], options=2)
    submission_ids = outcomes_submit(agent, offer_set_ids)
    assert queued() == FAULT_OUTCOMES  # each commit published its recording task

    def recorded() -> int:
        return OutcomeSubmission.objects.filter(status=RECORDED).count()

    log = tmp_path / "worker.log"
    with worker_process(log) as first:
        wait_for(lambda: recorded() >= 10, timeout=60, what=lambda: f"a first recording; {counts()}\n{log_tail(log)}")
        worker_stop(first, kill=True)
    at_kill = recorded()
    assert 0 < at_kill < FAULT_OUTCOMES, "the worker was to be killed mid-way"
    assert Outcome.objects.count() == at_kill  # a recording cut short rolled back whole
    held_by_the_dead = unacked()  # invisible for the visibility timeout (an hour): only the sweep brings them back
    # Swept before the next worker starts, so none of the pending is recorded in between.
    assert outcome_submissions_requeue(older_than=timedelta(0)) == FAULT_OUTCOMES - at_kill

    with worker_process(log):
        wait_for(
            lambda: (
                not OutcomeSubmission.objects.filter(status=PENDING).exists()
                and queued() == 0
                and unacked() == held_by_the_dead
            ),
            timeout=60,
            what=lambda: f"every outcome recorded and every message handled; {counts()}\n{log_tail(log)}",
        )

    assert_recorded_exactly_once(submission_ids, options_per_set=2)


def test_outcomes_accepted_while_the_broker_is_down_are_recorded_once_it_is_back(
    worker_db: None, broker: None, two_option_policy: Policy, agent: Agent
) -> None:
    client = agent.client()
    offer_set_ids = offer_sets_create(client, [f"C-{i}" for i in range(FAULT_OUTCOMES)], options=2)

    # How long each request waits for the dead broker is measured in bench/broker_outage_bench.py, not here.
    submission_ids = []
    with broker_unreachable():
        for offer_set_id in offer_set_ids:
            response = client.post(outcome_url(offer_set_id), {"choice": "a"}, format="json")
            assert response.status_code == 202, response.content
            assert response.json()["outcome_status"] == "pending"
            submission_ids.append(response.json()["submission_id"])

    assert OutcomeSubmission.objects.filter(status=PENDING).count() == FAULT_OUTCOMES
    assert not Outcome.objects.exists()
    assert queued() == 0  # nothing reached the real broker

    with worker_in_process(pool="threads", concurrency=4):
        assert OutcomeSubmission.objects.filter(status=PENDING).count() == FAULT_OUTCOMES  # nothing to consume
        assert outcome_submissions_requeue(older_than=timedelta(0)) == FAULT_OUTCOMES
        sweeps = [time.monotonic()]

        def recorded_with_beats_sweep() -> bool:
            """Beat's sweep, every 2 s here (30 s in production), as it would run: a send that failed even so
            (a loaded machine's connection timing out just after the outage) stays pending and is sent again."""
            if time.monotonic() - sweeps[-1] >= 2:
                outcome_submissions_requeue(older_than=timedelta(seconds=2))
                sweeps.append(time.monotonic())
            return not OutcomeSubmission.objects.filter(status=PENDING).exists() and queued() == 0 and unacked() == 0

        wait_for(recorded_with_beats_sweep, timeout=60, what=lambda: f"every outcome recorded; {counts()}")

    assert_recorded_exactly_once(submission_ids, options_per_set=2)


def test_five_deliveries_of_each_outcome_record_it_once(
    worker_db: None, broker: None, two_option_policy: Policy, agent: Agent
) -> None:
    offer_set_ids = offer_sets_create(agent.client(), [f"C-{i}" for i in range(FAULT_OUTCOMES)], options=2)
    submission_ids = outcomes_submit(agent, offer_set_ids)
    assert queued() == FAULT_OUTCOMES
    broker_queue_reset()  # drop the sends at commit: each submission is now delivered exactly 5 times
    for submission_id in submission_ids:
        for _ in range(5):  # side by side in the queue, so concurrent worker threads take copies of one
            outcome_record_task.apply_async((submission_id,))
    assert queued() == 5 * FAULT_OUTCOMES

    with task_runs() as runs, worker_in_process(pool="threads", concurrency=4):
        wait_for(
            lambda: len(runs) == 5 * FAULT_OUTCOMES and queued() == 0 and unacked() == 0,
            timeout=60,
            what=lambda: f"{5 * FAULT_OUTCOMES} task runs, {len(runs)} so far; {counts()}",
        )

    assert collections.Counter(state for _, state, _ in runs) == {"SUCCESS": 5 * FAULT_OUTCOMES}
    assert collections.Counter(submission_id for submission_id, _, _ in runs) == dict.fromkeys(submission_ids, 5)
    # Each run says how many outcomes it recorded (its own and, batched, other pending ones):
    # over all 1,000 runs that is each submission exactly once; most runs found theirs taken.
    assert sum(recorded for _, _, recorded in runs) == FAULT_OUTCOMES
    assert_recorded_exactly_once(submission_ids, options_per_set=2)


def test_two_workers_recording_at_once_lose_no_learning_count(
    worker_db: None, broker: None, two_option_policy: Policy, agent: Agent, tmp_path: Path
) -> None:
    offer_set_ids = offer_sets_create(agent.client(), [f"C-{i}" for i in range(FAULT_OUTCOMES)], options=2)
    offer_sets = OfferSet.objects.prefetch_related("offers").in_bulk([uuid.UUID(i) for i in offer_set_ids])
    choices = ["a", "b", "declined", "a"]
    expected_offers: dict[int, list[int]] = collections.defaultdict(lambda: [0, 0, 0, 0])
    for n, offer_set in enumerate(offer_sets.values()):
        choice = choices[n % len(choices)]
        outcome_submit(user=agent.user, offer_set_id=offer_set.pk, choice=choice)
        for offer in offer_set.offers.all():  # the tally by hand, from the options as stored
            expected_offers[offer.offer_template_id]["abc".index(offer.label)] += 1
            expected_offers[offer.offer_template_id][3] += offer.label == choice
    assert queued() == FAULT_OUTCOMES

    log = tmp_path / "workers.log"
    with worker_process(log, concurrency=2), worker_process(log, concurrency=2):  # two workers, four processes
        wait_for(
            lambda: not OutcomeSubmission.objects.filter(status=PENDING).exists() and queued() == 0,
            timeout=90,
            what=lambda: f"every outcome recorded; {counts()}\n{log_tail(log)}",
        )

    offers = {
        row["offer_template"]: [row["a"], row["b"], row["c"], row["chosen"]]
        for row in AcceptanceStat.objects.values("offer_template").annotate(
            a=Sum("shown_a"), b=Sum("shown_b"), c=Sum("shown_c"), chosen=Sum("chosen")
        )
    }
    assert offers == dict(expected_offers)
    positions = PositionStat.objects.aggregate(
        n=Sum("outcomes"), a=Sum("chosen_a"), b=Sum("chosen_b"), c=Sum("chosen_c")
    )
    assert positions == {"n": FAULT_OUTCOMES, "a": FAULT_OUTCOMES // 2, "b": FAULT_OUTCOMES // 4, "c": 0}
    assert PositionStat.objects.count() > 1  # the recordings spread over shards, not one hot row


# --- 4. Idempotency with a worker recording ----------------------------------------------------


def test_repeating_a_choice_under_a_real_worker_is_idempotent_and_another_is_refused(
    worker_db: None, broker: None, two_option_policy: Policy, agent: Agent
) -> None:
    client = agent.client()
    (offer_set_id,) = offer_sets_create(client, ["C-1"], options=2)
    url = outcome_url(offer_set_id)

    with task_runs() as runs, worker_in_process():
        first = client.post(url, {"choice": "a"}, format="json")
        assert first.status_code == 202, first.content
        submission_id = first.json()["submission_id"]
        repeat = client.post(url, {"choice": "a"}, format="json")  # recorded or not yet: the same answer
        assert repeat.status_code == 202, repeat.content
        assert repeat.json()["submission_id"] == submission_id

        wait_for(
            lambda: OutcomeSubmission.objects.filter(pk=submission_id, status=RECORDED).exists(),
            timeout=30,
            what=lambda: f"the outcome recorded; {counts()}",
        )
        after = client.post(url, {"choice": "a"}, format="json")
        other = client.post(url, {"choice": "b"}, format="json")
        declined = client.post(url, {"choice": "declined"}, format="json")
        wait_for(lambda: queued() == 0 and unacked() == 0, timeout=30, what=lambda: f"an idle worker; {counts()}")

    assert len(runs) == 1, runs  # the repeats sent nothing to record
    assert after.status_code == 202, after.content
    assert after.json() == {
        "status": "accepted",
        "submission_id": submission_id,
        "choice": "a",
        "outcome_status": "recorded",
    }
    for refused in (other, declined):
        assert refused.status_code == 409, refused.content
        assert refused.json()["code"] == "outcome_exists"
    assert OutcomeSubmission.objects.count() == 1
    assert Outcome.objects.count() == 1
    assert BudgetCharge.objects.count() == 1
    charged = Offer.objects.get(offer_set_id=offer_set_id, label="a").estimated_cost
    assert PolicyMonthSpend.objects.get().spent == charged
    assert AcceptanceStat.objects.aggregate(chosen=Sum("chosen"))["chosen"] == 1
