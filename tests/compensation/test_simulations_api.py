"""``POST /api/v1/simulations/`` and ``GET /api/v1/simulations/{id}/`` (API.md v2, "Policy lifecycle"), with the
task run eagerly at the commit, as tests/settings.py has it; the real worker is in test_simulation_worker.py.

The data is test_simulations.py's small world (three live policies, twelve incidents, figures computed by hand
there), at its instant ``NOW``.
"""

from __future__ import annotations

import copy
import io
import logging
import uuid
from datetime import datetime, timedelta
from typing import Any
from unittest import mock

import pytest
import time_machine
from celery.exceptions import SoftTimeLimitExceeded
from django.core.management import call_command
from django.db import IntegrityError, connection
from django.test.utils import CaptureQueriesContext
from kombu.exceptions import OperationalError as BrokerError

from compensation.models import Incident, Simulation
from compensation.services import simulation_runs, simulations
from compensation.services.simulation_runs import SimulationProgress, simulation_run
from compensation.services.simulations import simulate_policies
from compensation.tasks import simulation_run_task
from policies.models import Category, Policy
from tests.compensation.test_simulations import NOW, draft, seed_world

pytestmark = pytest.mark.django_db

SIMULATIONS = "/api/v1/simulations/"
HARD_LIMIT = timedelta(minutes=31)  # settings.SIMULATION_TIME_LIMIT, stated here


def world_build(now: datetime) -> list[Incident]:
    """test_simulations.py's world (its ``world`` fixture) with the incidents dated back from ``now``."""
    return seed_world(now)


@pytest.fixture
def world(db: None) -> list[Incident]:
    return world_build(NOW)


# The figures test_simulations.py's test_figures_by_hand computes by hand for draft() over 30 days.
HAND_FIGURES = {
    "days": 30,
    "incidents": 11,
    "changed": 7,
    "no_options_before": 2,
    "no_options_after": 1,
    "expected_cost_before": "101.32",
    "expected_cost_after": "137.99",
}


def assert_hand_figures(result: dict[str, Any]) -> None:
    assert {key: result[key] for key in HAND_FIGURES} == HAND_FIGURES
    credit = {row["slug"]: row for row in result["policies"]}["late-credit"]
    assert (credit["shown_before"], credit["expected_cost_before"], credit["expected_cost_after"]) == (
        5,
        "16.67",
        "25.00",
    )


@pytest.fixture
def frozen() -> Any:
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


def start(client: Any, body: Any, capture: Any) -> Any:
    with capture(execute=True):
        return client.post(SIMULATIONS, body, format="json")


def running_row(user: Any, *, created_at: datetime, **fields: Any) -> Simulation:
    return Simulation.objects.create(created_by=user, pack={}, days=30, created_at=created_at, **fields)


def user_of(username: str) -> Any:
    from django.contrib.auth import get_user_model

    return get_user_model().objects.get(username=username)


# --- The flow --------------------------------------------------------------------------------------


def test_a_simulation_runs_and_its_result_is_the_replays(
    world: list[Incident], frozen: Any, manager: Any, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = manager.post(SIMULATIONS, {"pack": draft(), "days": 30}, format="json")

    assert response.status_code == 202, response.content
    body = response.json()
    assert body == {"id": body["id"], "status": "running"}
    simulation = Simulation.objects.get(pk=body["id"])
    assert (simulation.status, simulation.progress, simulation.days) == ("running", 0.0, 30)
    assert simulation.pack == draft()
    assert simulation.created_at == NOW
    assert simulation.created_by == user_of("manager-1")
    running = manager.get(f"{SIMULATIONS}{body['id']}/")
    assert running.json() == {"id": body["id"], "status": "running", "progress": 0.0, "result": None, "error": None}

    assert len(callbacks) == 1
    callbacks[0]()  # the commit's enqueue: the task runs eagerly here

    done = manager.get(f"{SIMULATIONS}{body['id']}/")
    assert done.status_code == 200
    shown = done.json()
    assert set(shown) == {"id", "status", "progress", "result", "error"}
    assert (shown["status"], shown["progress"], shown["error"]) == ("done", 1.0, None)
    assert_hand_figures(shown["result"])
    assert shown["result"] == simulate_policies(draft(), days=30, now=NOW)
    stored = Simulation.objects.get(pk=body["id"])
    assert stored.finished_at == NOW


def test_days_defaults_to_30_and_may_be_up_to_365(
    world: list[Incident], frozen: Any, manager: Any, django_capture_on_commit_callbacks: Any
) -> None:
    first = start(manager, {"pack": draft()}, django_capture_on_commit_callbacks)
    assert first.status_code == 202, first.content
    result = manager.get(f"{SIMULATIONS}{first.json()['id']}/").json()["result"]
    assert (result["days"], result["incidents"]) == (30, 11)

    year = start(manager, {"pack": draft(), "days": 365}, django_capture_on_commit_callbacks)
    assert year.status_code == 202, year.content
    result = manager.get(f"{SIMULATIONS}{year.json()['id']}/").json()["result"]
    assert (result["days"], result["incidents"]) == (365, 12)  # incident 12, 40 days old, is in the window


# --- Bad input: 400, nothing started ---------------------------------------------------------------


def test_a_pack_that_would_not_import_is_400_with_the_imports_paths(
    world: list[Incident], manager: Any, django_capture_on_commit_callbacks: Any
) -> None:
    bad = draft()
    bad["policies"][0]["offers"][0]["value"] = "lots"
    bad["policies"][1]["conditions"]["categories"] = ["nope"]
    bad["policies"][2]["surprise"] = 1

    response = start(manager, {"pack": bad, "days": 30}, django_capture_on_commit_callbacks)

    assert response.status_code == 400, response.content
    errors = response.json()
    assert set(errors) == {
        "policies[0].offers[0].value",
        "policies[1].conditions.categories",
        "policies[2].surprise",
    }
    assert errors["policies[0].offers[0].value"] == ["must be a decimal string such as \"12.50\", got 'lots'"]
    assert errors["policies[1].conditions.categories"][0].startswith("unknown category 'nope'")
    assert errors["policies[2].surprise"][0].startswith("unknown field; allowed: ")
    assert not Simulation.objects.exists()


NOT_A_MAPPING = ["must be a mapping with keys categories, perks, policies"]
UNSTORABLE = ["must not contain NUL characters or unpaired surrogates"]


@pytest.mark.parametrize(
    ("body", "errors"),
    [
        pytest.param({"days": 30}, {"pack": ["This field is required."]}, id="missing"),
        pytest.param({"pack": None}, {"pack": ["This field may not be null."]}, id="null"),
        pytest.param({"pack": ["policies"]}, {"pack": NOT_A_MAPPING}, id="a-list"),
        pytest.param({"pack": "policies: []"}, {"pack": NOT_A_MAPPING}, id="yaml-text"),
        pytest.param({"pack": {"policies": {"slug": "x"}}}, {"policies": ["must be a list"]}, id="policies-not-a-list"),
        pytest.param(
            {"pack": {"pack": {}}}, {"pack.pack": ["unknown field; allowed: categories, perks, policies"]}, id="nested"
        ),
        pytest.param(
            {"pack": {"policies": [{"slug": "x", "name": "X\x00"}]}}, {"policies[0].name": UNSTORABLE}, id="nul"
        ),
        pytest.param(  # JSON text: Python's test client cannot encode a lone surrogate
            '{"pack": {"policies": [{"slug": "x", "name": "\\ud800"}]}}',
            {"policies[0].name": UNSTORABLE},
            id="surrogate",
        ),
        pytest.param(
            ["pack"], {"non_field_errors": ["Invalid data. Expected a dictionary, but got list."]}, id="body-a-list"
        ),
    ],
)
def test_a_pack_that_is_not_one_is_400(
    world: list[Incident], manager: Any, django_capture_on_commit_callbacks: Any, body: Any, errors: dict
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        if isinstance(body, str):
            response = manager.generic("POST", SIMULATIONS, body.encode(), content_type="application/json")
        else:
            response = manager.post(SIMULATIONS, body, format="json")
    assert response.status_code == 400, response.content
    assert response.json() == errors
    assert not Simulation.objects.exists()


@pytest.mark.parametrize("days", [0, 366, -1, 1000000, 1.5, "thirty", True, None, [30], {"days": 30}])
def test_days_out_of_range_or_not_a_whole_number_is_400(
    world: list[Incident], manager: Any, django_capture_on_commit_callbacks: Any, days: Any
) -> None:
    response = start(manager, {"pack": draft(), "days": days}, django_capture_on_commit_callbacks)
    assert response.status_code == 400, response.content
    assert set(response.json()) == {"days"}
    assert not Simulation.objects.exists()


def test_every_problem_is_reported_at_once(
    world: list[Incident], manager: Any, django_capture_on_commit_callbacks: Any
) -> None:
    response = start(manager, {"pack": {"policies": [{"slug": "x"}]}, "days": 0}, django_capture_on_commit_callbacks)
    assert response.status_code == 400
    assert response.json() == {
        "days": ["Ensure this value is greater than or equal to 1."],
        "policies[0].name": ["is required"],
    }


# --- One at a time ---------------------------------------------------------------------------------


def test_a_second_simulation_while_one_runs_is_409_simulation_running(
    world: list[Incident], frozen: Any, manager: Any, django_capture_on_commit_callbacks: Any
) -> None:
    running = running_row(user_of("manager-1"), created_at=NOW - timedelta(minutes=5))

    response = start(manager, {"pack": draft()}, django_capture_on_commit_callbacks)

    assert response.status_code == 409, response.content
    assert response.json()["code"] == "simulation_running"
    assert "already have a simulation running" in response.json()["detail"]
    assert list(Simulation.objects.values_list("pk", flat=True)) == [running.pk]

    # Another manager is not held up by it; and once it is done, its owner may start again.
    other = start(manager_client_other(), {"pack": draft()}, django_capture_on_commit_callbacks)
    assert other.status_code == 202, other.content
    Simulation.objects.filter(pk=running.pk).update(status="done")
    again = start(manager, {"pack": draft()}, django_capture_on_commit_callbacks)
    assert again.status_code == 202, again.content


def manager_client_other() -> Any:
    from rest_framework.test import APIClient

    from compensation.services.users import user_token_issue

    _user, token, _ = user_token_issue(username="manager-2", role="manager")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


def test_the_one_running_rule_is_the_databases_not_only_a_check(
    world: list[Incident], frozen: Any, manager: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A request that looked before another committed still gets 409: the partial unique constraint refuses
    the second running row, whatever any check before the insert saw."""
    running_row(user_of("manager-1"), created_at=NOW)
    with CaptureQueriesContext(connection) as queries:
        response = manager.post(SIMULATIONS, {"pack": draft()}, format="json")
    assert response.status_code == 409, response.content
    inserts = [
        q["sql"] for q in queries.captured_queries if q["sql"].startswith('INSERT INTO "compensation_simulation"')
    ]
    assert len(inserts) == 1  # it tried, and the database said no
    assert Simulation.objects.count() == 1


def test_a_start_refused_by_a_run_that_has_since_finished_goes_on(
    world: list[Incident], frozen: Any, manager: Any, django_capture_on_commit_callbacks: Any
) -> None:
    """The race the constraint decides, lost to a run that finished before the loser looked (a small pack, a
    fast worker): nothing runs any more, so the start is tried again and goes on, rather than failing."""
    running_row(user_of("manager-1"), created_at=NOW - timedelta(minutes=1), status="done")  # the winner, done
    create = Simulation.objects.create
    calls = []

    def create_after_a_lost_race(**fields: Any) -> Simulation:
        calls.append(fields["days"])
        if len(calls) == 1:  # refused while the winner ran; it has finished by the time the loser looks
            raise IntegrityError('duplicate key value violates unique constraint "simulation_one_running_per_user"')
        return create(**fields)

    with mock.patch.object(Simulation.objects, "create", create_after_a_lost_race):
        response = start(manager, {"pack": draft(), "days": 7}, django_capture_on_commit_callbacks)

    assert response.status_code == 202, response.content
    assert calls == [7, 7]
    assert sorted(Simulation.objects.values_list("status", flat=True)) == ["done", "done"]


def test_a_running_simulation_past_the_hard_time_limit_is_failed_and_no_longer_blocks(
    world: list[Incident], frozen: Any, manager: Any, django_capture_on_commit_callbacks: Any
) -> None:
    owner = user_of("manager-1")
    dead = running_row(owner, created_at=NOW - HARD_LIMIT - timedelta(seconds=1), progress=0.4)

    response = start(manager, {"pack": draft()}, django_capture_on_commit_callbacks)

    assert response.status_code == 202, response.content
    old = manager.get(f"{SIMULATIONS}{dead.pk}/").json()
    assert (old["status"], old["progress"], old["result"]) == ("failed", 0.4, None)
    assert old["error"] == (
        "the worker stopped before the simulation finished (no result 31 minutes after it was started); start it again"
    )
    assert manager.get(f"{SIMULATIONS}{response.json()['id']}/").json()["status"] == "done"


def test_a_running_simulation_just_inside_the_hard_time_limit_still_blocks(
    world: list[Incident], frozen: Any, manager: Any, django_capture_on_commit_callbacks: Any
) -> None:
    alive = running_row(user_of("manager-1"), created_at=NOW - HARD_LIMIT + timedelta(seconds=1))
    response = start(manager, {"pack": draft()}, django_capture_on_commit_callbacks)
    assert response.status_code == 409
    alive.refresh_from_db()
    assert alive.status == "running"


# --- Who sees what, and for how long ---------------------------------------------------------------


def test_only_its_owner_sees_a_simulation(
    world: list[Incident], manager: Any, client_for: Any, django_capture_on_commit_callbacks: Any
) -> None:
    created = start(manager, {"pack": draft()}, django_capture_on_commit_callbacks).json()["id"]
    other = client_for("manager", "manager-2")

    for client, path in [
        (other, f"{SIMULATIONS}{created}/"),
        (manager, f"{SIMULATIONS}{uuid.uuid4()}/"),
        (manager, f"{SIMULATIONS}not-a-uuid/"),
        (manager, f"{SIMULATIONS}{created[:-1]}/"),
    ]:
        response = client.get(path)
        assert response.status_code == 404, (path, response.content)
        assert response.json()["code"] == "not_found"
    assert manager.get(f"{SIMULATIONS}{created}/").status_code == 200


@pytest.mark.parametrize(("role", "status"), [("agent", 403), ("analyst", 403), ("integration", 403), (None, 401)])
def test_only_managers_simulate(
    world: list[Incident],
    manager: Any,
    client_for: Any,
    api_client: Any,
    django_capture_on_commit_callbacks: Any,
    role: str | None,
    status: int,
) -> None:
    mine = start(manager, {"pack": draft()}, django_capture_on_commit_callbacks).json()["id"]
    client = client_for(role) if role else api_client

    posted = start(client, {"pack": draft()}, django_capture_on_commit_callbacks)
    read = client.get(f"{SIMULATIONS}{mine}/")

    assert (posted.status_code, read.status_code) == (status, status)
    assert posted.json()["code"] == read.json()["code"] == ("permission_denied" if role else "not_authenticated")
    assert Simulation.objects.count() == 1


def test_a_simulation_is_kept_7_days_then_gone_and_purged(world: list[Incident], frozen: Any, manager: Any) -> None:
    owner = user_of("manager-1")
    week_old = running_row(owner, created_at=NOW - timedelta(days=7) + timedelta(minutes=1), status="done")
    eight_days = running_row(owner, created_at=NOW - timedelta(days=8), status="done", result={"days": 30})
    dead_last_hour = running_row(owner, created_at=NOW - timedelta(hours=1))

    assert manager.get(f"{SIMULATIONS}{week_old.pk}/").status_code == 200
    assert manager.get(f"{SIMULATIONS}{eight_days.pk}/").status_code == 404
    assert Simulation.objects.filter(pk=eight_days.pk).exists()  # gone for the API before the purge runs

    call_command("run_periodic_tasks", stdout=io.StringIO(), stderr=io.StringIO())

    assert set(Simulation.objects.values_list("pk", flat=True)) == {week_old.pk, dead_last_hour.pk}
    dead_last_hour.refresh_from_db()  # the purge also fails what no worker runs any more
    assert dead_last_hour.status == "failed"
    assert dead_last_hour.error.startswith("the worker stopped before the simulation finished")
    assert manager.get(f"{SIMULATIONS}{week_old.pk}/").status_code == 200


def test_the_purge_is_a_periodic_task(settings: Any) -> None:
    from compensation.management.commands.run_periodic_tasks import PERIODIC
    from compensation.tasks import simulations_purge

    assert settings.CELERY_BEAT_SCHEDULE["simulations-purge"]["task"] == simulations_purge.name
    assert PERIODIC["simulations_purge"] is simulations_purge


# --- The task --------------------------------------------------------------------------------------


def test_the_broker_down_answers_202_and_fails_the_simulation_so_its_user_can_start_again(
    world: list[Incident], frozen: Any, manager: Any, django_capture_on_commit_callbacks: Any, monkeypatch: Any
) -> None:
    def broker_down(*args: Any, **kwargs: Any) -> None:
        raise BrokerError("Error 111 connecting to 127.0.0.1:1. Connection refused.")

    with monkeypatch.context() as patch:
        patch.setattr(simulation_run_task, "apply_async", broker_down)
        response = start(manager, {"pack": draft()}, django_capture_on_commit_callbacks)

    assert response.status_code == 202, response.content
    failed = manager.get(f"{SIMULATIONS}{response.json()['id']}/").json()
    assert (failed["status"], failed["error"], failed["result"]) == (
        "failed",
        "could not reach the task queue; try again",
        None,
    )
    again = start(manager, {"pack": draft()}, django_capture_on_commit_callbacks)
    assert again.status_code == 202
    assert manager.get(f"{SIMULATIONS}{again.json()['id']}/").json()["status"] == "done"


def test_a_second_delivery_does_nothing(world: list[Incident], frozen: Any) -> None:
    simulation = simulation_of(world)

    assert simulation_run_task.run(str(simulation.pk)) == "done"
    first = Simulation.objects.values("status", "result", "finished_at", "progress").get(pk=simulation.pk)
    with time_machine.travel(NOW + timedelta(minutes=1), tick=False):
        assert simulation_run_task.run(str(simulation.pk)) == "skipped"
    assert Simulation.objects.values("status", "result", "finished_at", "progress").get(pk=simulation.pk) == first
    assert first["status"] == "done"
    assert first["result"]["changed"] == 7

    Simulation.objects.filter(pk=simulation.pk).update(status="failed")
    failed = simulation
    assert simulation_run_task.run(str(failed.pk)) == "skipped"
    assert simulation_run_task.run(str(uuid.uuid4())) == "skipped"  # deleted meanwhile


def test_a_delivery_after_the_hard_time_limit_fails_it_instead_of_running_it(world: list[Incident]) -> None:
    simulation = simulation_of(world)
    assert simulation_run(simulation_id=simulation.pk, now=NOW + HARD_LIMIT + timedelta(seconds=1)) == "failed"
    simulation.refresh_from_db()
    assert simulation.result is None
    assert simulation.error.startswith("the worker stopped before the simulation finished")


def simulation_of(world: list[Incident], pack: Any = None, days: int = 30) -> Simulation:
    from compensation.services.users import user_token_issue

    user, _, _ = user_token_issue(username="manager-9", role="manager")
    return Simulation.objects.create(created_by=user, pack=draft() if pack is None else pack, days=days, created_at=NOW)


def test_a_pack_that_stopped_importing_fails_with_the_imports_errors(world: list[Incident], frozen: Any) -> None:
    """Validated when posted; the category it names deleted before the worker ran it."""
    pack = {"policies": [{"slug": "new", "name": "New", "conditions": {"categories": ["gone"]}}]}
    Category.objects.create(slug="gone", name="gone")
    simulation = simulation_of(world, pack)
    Category.objects.filter(slug="gone").delete()

    assert simulation_run(simulation_id=simulation.pk) == "failed"

    simulation.refresh_from_db()
    assert simulation.status == "failed"
    assert simulation.finished_at == NOW
    assert simulation.error.startswith(
        "nothing simulated: 1 problem in the pack\npolicies[0].conditions.categories: unknown category 'gone'"
    )


def test_an_unexpected_error_fails_it_with_its_class_and_message_and_is_logged(
    world: list[Incident], frozen: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    simulation = simulation_of(world)

    def broken(*args: Any, **kwargs: Any) -> None:
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(simulation_runs, "simulate_policies", broken)
    with caplog.at_level(logging.ERROR, logger="compensation"):
        assert simulation_run(simulation_id=simulation.pk) == "failed"

    simulation.refresh_from_db()
    assert (simulation.status, simulation.error) == ("failed", "ZeroDivisionError: division by zero")
    assert f"simulation {simulation.pk} failed" in caplog.text
    assert "Traceback" in caplog.text


def test_past_the_soft_time_limit_it_fails_saying_so(
    world: list[Incident], frozen: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    simulation = simulation_of(world)

    def too_long(*args: Any, **kwargs: Any) -> None:
        raise SoftTimeLimitExceeded()

    monkeypatch.setattr(simulation_runs, "simulate_policies", too_long)
    assert simulation_run(simulation_id=simulation.pk) == "failed"
    simulation.refresh_from_db()
    assert simulation.error == "the simulation took longer than 30 minutes and was stopped; try fewer days"


def test_the_task_has_time_limits_of_its_own(settings: Any) -> None:
    assert (simulation_run_task.soft_time_limit, simulation_run_task.time_limit) == (30 * 60, 31 * 60)
    assert (settings.SIMULATION_SOFT_TIME_LIMIT, settings.SIMULATION_TIME_LIMIT) == (30 * 60, 31 * 60)
    assert settings.CELERY_TASK_TIME_LIMIT == 120  # every other task keeps the global limit
    # Redis hands a message not acknowledged within the visibility timeout to another worker: it must
    # outlast the longest run, or a running simulation would run twice.
    assert settings.CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"] > settings.SIMULATION_TIME_LIMIT


# --- Progress --------------------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_progress_is_written_at_most_once_per_percent_and_per_two_seconds(world: list[Incident]) -> None:
    simulation = simulation_of(world)
    clock = Clock()
    progress = SimulationProgress(simulation.pk, clock=clock)

    def stored() -> float:
        return Simulation.objects.get(pk=simulation.pk).progress

    steps = [
        (1.0, 0.5, 0.0),  # one second in: too soon
        (2.0, 0.005, 0.0),  # two seconds, but less than a percent
        (2.0, 0.02, 0.02),
        (3.0, 0.2, 0.02),  # a second after the last write
        (10.0, 0.025, 0.02),  # half a percent after the last write
        (10.0, 0.5, 0.5),
        (20.0, 1.5, 1.0),  # never above 1
    ]
    for at, fraction, expected in steps:
        clock.now = 100.0 + at
        progress(fraction)
        assert stored() == expected, (at, fraction)


def test_progress_stops_a_run_whose_row_no_longer_runs(world: list[Incident], frozen: Any, monkeypatch: Any) -> None:
    simulation = simulation_of(world)
    monkeypatch.setattr(simulations, "PROGRESS_EVERY", 1)
    monkeypatch.setattr(simulation_runs, "PROGRESS_EVERY_SECONDS", 0.0)

    class MarkedFailedMeanwhile(SimulationProgress):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, every_seconds=0.0, **kwargs)

        def __call__(self, fraction: float) -> None:
            Simulation.objects.filter(pk=simulation.pk).update(status="failed", error="stale")
            super().__call__(fraction)

    monkeypatch.setattr(simulation_runs, "SimulationProgress", MarkedFailedMeanwhile)
    assert simulation_run(simulation_id=simulation.pk) == "stopped"
    simulation.refresh_from_db()
    assert (simulation.status, simulation.error, simulation.result) == ("failed", "stale", None)


def test_live_requests_are_unaffected_while_a_simulation_runs(
    world: list[Incident],
    frozen: Any,
    manager: Any,
    agent1: Any,
    django_capture_on_commit_callbacks: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """At the replay's first progress report, an agent asks for options through the API: they come from the
    live policies (a 10.00 credit), not from the draft being replayed (15.00), and the simulation shows as
    running with its progress."""
    monkeypatch.setattr(simulations, "PROGRESS_EVERY", 1)  # report after every incident
    seen: list[dict[str, Any]] = []

    class AsksForOptions(SimulationProgress):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, every_seconds=0.0, **kwargs)

        def __call__(self, fraction: float) -> None:
            super().__call__(fraction)
            if seen:
                return
            response = agent1.post(
                "/api/v1/offer-sets/",
                {
                    "customer": {"external_id": "c-live", "tier": "standard"},
                    "incident": {"category": "late_delivery", "severity": 3, "order_value": "80.00"},
                },
                format="json",
            )
            assert response.status_code == 201, response.content
            simulation = manager.get(f"{SIMULATIONS}{Simulation.objects.get().pk}/").json()
            seen.append({"options": response.json()["options"], "simulation": simulation, "fraction": fraction})

    monkeypatch.setattr(simulation_runs, "SimulationProgress", AsksForOptions)

    response = start(manager, {"pack": draft()}, django_capture_on_commit_callbacks)

    assert response.status_code == 202, response.content
    assert len(seen) == 1
    options = seen[0]["options"]
    assert [(o["label"], o["title"], o["value"], o["policy"]["version"]) for o in options] == [
        ("a", "A 10 credit", "10.00", 1)
    ]
    during = seen[0]["simulation"]
    assert (during["status"], during["result"]) == ("running", None)
    assert during["progress"] == pytest.approx(1 / 11)  # the first of the eleven incidents
    after = manager.get(f"{SIMULATIONS}{response.json()['id']}/").json()
    assert after["status"] == "done"
    assert_hand_figures(after["result"])
    # The live policy is as it was: no new version, the credit still 10.00.
    credit = Policy.objects.get(slug="late-credit")
    assert (credit.version, str(credit.offers.get().value)) == (1, "10.00")


def test_the_stored_pack_is_the_one_posted(
    world: list[Incident], manager: Any, django_capture_on_commit_callbacks: Any
) -> None:
    pack = copy.deepcopy(draft())
    response = start(manager, {"pack": pack, "days": 7}, django_capture_on_commit_callbacks)
    stored = Simulation.objects.get(pk=response.json()["id"])
    assert (stored.pack, stored.days) == (pack, 7)
