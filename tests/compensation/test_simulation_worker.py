"""Simulations through a real worker: the ``simulations`` queue, a worker started as production starts it
(``celery -A recovery_project worker``, no ``-Q``), PostgreSQL and Redis. The eager flow, the errors and the
rules are in test_simulations_api.py; the worker helpers are test_outcome_worker.py's.
"""

from __future__ import annotations

import collections
import contextlib
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from compensation import queue
from compensation.models import Simulation
from compensation.services.simulations import simulate_policies
from recovery_project.celery import app as celery_app
from tests.compensation.test_outcome_worker import (
    broker,  # noqa: F401 (a fixture)
    broker_unreachable,
    log_tail,
    wait_for,
    worker_db,  # noqa: F401 (a fixture)
    worker_process,
)
from tests.compensation.test_simulations import draft
from tests.compensation.test_simulations_api import SIMULATIONS, assert_hand_figures, world_build

QUEUES = ("celery", "simulations")


# --- Routing: no broker needed ------------------------------------------------------------------


def test_simulations_go_to_their_own_queue_and_everything_else_to_the_default() -> None:
    router = celery_app.amqp.router
    assert router.route({}, "compensation.simulation_run")["queue"].name == "simulations"
    for other in ("compensation.outcome_record", "compensation.simulations_purge", "recovery_project.noop"):
        assert router.route({}, other)["queue"].name == "celery", other


def test_a_worker_started_without_queues_consumes_both() -> None:
    """``celery worker`` without ``-Q`` consumes every queue of ``task_queues``: both are declared there, each
    with its own exchange and routing key, and none is left to be created on the fly."""
    queues = celery_app.amqp.queues
    assert sorted(queues) == sorted(QUEUES)
    assert [(queues[name].exchange.name, queues[name].routing_key) for name in QUEUES] == [
        ("celery", "celery"),
        ("simulations", "simulations"),
    ]
    assert celery_app.conf.task_default_queue == "celery"
    assert celery_app.conf.task_create_missing_queues  # a -Q naming another queue still works


# --- The broker ---------------------------------------------------------------------------------


def waiting(name: str) -> int:
    """Messages waiting in the queue ``name``."""
    with celery_app.connection_for_write() as conn:
        return celery_app.amqp.queues[name](conn.default_channel).queue_declare().message_count


def queues_reset() -> None:
    with celery_app.connection_for_write() as conn:
        for name in QUEUES:
            queue = celery_app.amqp.queues[name](conn.default_channel)
            queue.declare()
            queue.purge()


@pytest.fixture
def both_queues(broker: None) -> Iterator[None]:  # noqa: F811 (the fixture imported above)
    """test_outcome_worker.py's broker (publishing to Redis for real), with the simulations queue empty too."""
    queues_reset()
    try:
        yield
    finally:
        queues_reset()


def worker_as_production_starts_it(log: Path) -> contextlib.AbstractContextManager[subprocess.Popen]:
    """``celery -A recovery_project worker`` with no ``-Q``, prefork (so the time limits apply), on the test's
    database and Redis; stopped in any case."""
    return worker_process(log, concurrency=1, queues=None, name="simulation-test")


def manager_client(make_user: Any, username: str = "manager-1") -> APIClient:
    _, key = make_user(username, "manager")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


# --- Through the real worker -------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_worker_started_as_in_production_runs_a_simulation_posted_through_the_api(
    worker_db: None,  # noqa: F811 (the fixture imported above)
    both_queues: None,
    make_user: Any,
    tmp_path: Path,
) -> None:
    world_build(timezone.now())
    client = manager_client(make_user)

    response = client.post(SIMULATIONS, {"pack": draft(), "days": 30}, format="json")

    assert response.status_code == 202, response.content
    simulation_id = response.json()["id"]
    assert response.json() == {"id": simulation_id, "status": "running"}
    assert (waiting("simulations"), waiting("celery")) == (1, 0)  # published at the commit, to its own queue
    assert client.get(f"{SIMULATIONS}{simulation_id}/").json()["status"] == "running"

    log = tmp_path / "worker.log"
    with worker_as_production_starts_it(log):

        def finished() -> dict[str, Any] | None:
            shown = client.get(f"{SIMULATIONS}{simulation_id}/").json()
            return shown if shown["status"] != "running" else None

        shown = wait_for(finished, timeout=90, interval=0.2, what=lambda: f"the simulation to finish\n{log_tail(log)}")
        wait_for(lambda: waiting("simulations") == 0, timeout=10, what=lambda: "an empty queue")

    assert (shown["status"], shown["progress"], shown["error"]) == ("done", 1.0, None), log_tail(log)
    assert_hand_figures(shown["result"])
    assert shown["result"] == simulate_policies(draft(), days=30)
    assert Simulation.objects.get(pk=simulation_id).finished_at is not None


@pytest.mark.django_db(transaction=True)
def test_a_simulation_started_while_the_broker_is_down_fails_at_once_and_the_next_one_runs(
    both_queues: None, make_user: Any
) -> None:
    world_build(timezone.now())
    client = manager_client(make_user)

    with broker_unreachable():
        response = client.post(SIMULATIONS, {"pack": draft()}, format="json")

    assert response.status_code == 202, response.content
    shown = client.get(f"{SIMULATIONS}{response.json()['id']}/").json()
    assert (shown["status"], shown["error"]) == ("failed", "could not reach the task queue; try again")
    assert waiting("simulations") == 0

    again = client.post(SIMULATIONS, {"pack": draft()}, format="json")  # the broker is back
    assert again.status_code == 202, again.content
    assert waiting("simulations") == 1


@pytest.mark.django_db(transaction=True)
def test_of_ten_simultaneous_starts_by_one_manager_exactly_one_runs(
    worker_db: None,  # noqa: F811 (the fixture imported above)
    make_user: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The one-running rule holds under a race: ten requests released together, one 202 and nine 409s,
    whatever each saw before it inserted (the partial unique constraint decides). The task is sent nowhere, so
    the winner is still running when the others look (eager here, it would finish at once and free the slot)."""
    monkeypatch.setattr(queue, "task_send", lambda *args, **kwargs: True)
    world_build(timezone.now())
    _, key = make_user("manager-1", "manager")
    barrier = threading.Barrier(10)
    results: list[Any] = [None] * 10

    def post(index: int) -> None:
        try:
            client = APIClient()
            client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
            barrier.wait(timeout=30)
            results[index] = client.post(SIMULATIONS, {"pack": draft()}, format="json")
        except Exception as exc:  # reported by the assertion below, not lost in the thread
            results[index] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=post, args=(index,)) for index in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    statuses = collections.Counter(getattr(result, "status_code", repr(result)) for result in results)
    assert statuses == {202: 1, 409: 9}, statuses
    assert {result.json()["code"] for result in results if result.status_code == 409} == {"simulation_running"}
    # One row, still running (its task went nowhere); the nine refused started nothing.
    assert list(Simulation.objects.values_list("status", flat=True)) == ["running"]
