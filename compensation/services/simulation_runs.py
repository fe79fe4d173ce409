"""Simulations asked for through the API (``POST /api/v1/simulations/``): a row per run, run by a Celery task.

A manager's pack, validated when posted, is stored in a :class:`~compensation.models.Simulation` row; after
the commit a task on the ``simulations`` queue replays it (``simulations.simulate_policies``, in one process)
and stores the result, writing its progress on the way. One simulation runs per user at a time: the partial
unique constraint on running rows holds that rule, so two requests at once cannot both start one.

A row left "running" past the task's hard time limit belongs to a worker that died (or to a task that waited
in the queue that long): it is marked failed before the user's next start, by the task if it is delivered
again, and by the periodic purge, so nobody stays locked out. If the task queue cannot be reached when the
row is committed, the row is marked failed at once, with an error saying so: the user can start again.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import DatabaseError, IntegrityError, transaction
from django.utils import timezone

from compensation import queue
from compensation.errors import Conflict, ErrorCode
from compensation.models import Simulation
from compensation.services.simulations import SimulationError, simulate_policies
from policies.packs import PackError

logger = logging.getLogger("compensation")

RUNNING, DONE, FAILED = Simulation.Status.RUNNING, Simulation.Status.DONE, Simulation.Status.FAILED
QUEUE_UNREACHABLE = "could not reach the task queue; try again"
PROGRESS_EVERY_FRACTION = 0.01  # progress is written at most once per percent ...
PROGRESS_EVERY_SECONDS = 2.0  # ... and once per two seconds
START_ATTEMPTS = 3  # inserts tried when the running row that refused one has finished by the time we look


class SimulationStopped(Exception):
    """The row is no longer running (marked failed as stale, or deleted): the run ends without a word."""


def _stale_error() -> str:
    minutes = settings.SIMULATION_TIME_LIMIT // 60
    return (
        f"the worker stopped before the simulation finished (no result {minutes} minutes after it was started); "
        "start it again"
    )


def _stale_before(now: datetime) -> datetime:
    return now - timedelta(seconds=settings.SIMULATION_TIME_LIMIT)


def simulations_fail_stale(*, now: datetime, user: Any = None) -> int:
    """Mark failed the running simulations (of ``user``, or everyone's) started longer ago than the task's hard
    time limit: no worker is running them any more. Returns how many."""
    rows = Simulation.objects.filter(status=RUNNING, created_at__lt=_stale_before(now))
    if user is not None:
        rows = rows.filter(created_by=user)
    return rows.update(status=FAILED, error=_stale_error(), finished_at=now)


def simulation_start(*, user: Any, pack: Any, days: int, now: datetime | None = None) -> Simulation:
    """Store a simulation of the (validated) ``pack`` over ``days`` days and send it to the worker on commit.

    Raises :class:`Conflict` (``simulation_running``) while another simulation of the user runs.
    """
    now = now or timezone.now()
    simulations_fail_stale(now=now, user=user)
    for attempt in range(START_ATTEMPTS):
        try:
            with transaction.atomic():
                simulation = Simulation.objects.create(created_by=user, pack=pack, days=days, created_at=now)
            break
        except IntegrityError:
            # The partial unique constraint: another request of this user got there first. If that run has
            # already finished (a small pack, a fast worker), nothing runs any more and this start may go on.
            if Simulation.objects.filter(created_by=user, status=RUNNING).exists():
                raise Conflict(
                    "You already have a simulation running: wait for it to finish (GET /api/v1/simulations/{id}/) "
                    "before starting another.",
                    ErrorCode.SIMULATION_RUNNING,
                ) from None
            if attempt == START_ATTEMPTS - 1:
                raise
    transaction.on_commit(lambda: simulation_enqueue(simulation_id=simulation.pk))
    return simulation


def simulation_enqueue(*, simulation_id: uuid.UUID) -> bool:
    """Send the simulation to the worker; if the broker cannot be reached, mark it failed (nothing would run
    it) so that its user may start another. Returns whether it was sent."""
    if queue.task_send(queue.SIMULATION_RUN, str(simulation_id)):
        return True
    failed = Simulation.objects.filter(pk=simulation_id, status=RUNNING).update(
        status=FAILED, error=QUEUE_UNREACHABLE, finished_at=timezone.now()
    )
    if failed:
        logger.warning("simulation %s failed: the task queue could not be reached", simulation_id)
    return False


class SimulationProgress:
    """The replay's progress callback: writes ``progress`` to the row, at most once per percent and once per
    ``every_seconds``, each a plain UPDATE committed on its own (the task runs outside a transaction), so
    ``GET`` sees it move. Raises :class:`SimulationStopped` when the row is no longer running."""

    def __init__(
        self,
        simulation_id: uuid.UUID | str,
        *,
        clock: Callable[[], float] = time.monotonic,
        every_fraction: float = PROGRESS_EVERY_FRACTION,
        every_seconds: float = PROGRESS_EVERY_SECONDS,
    ) -> None:
        self.simulation_id = simulation_id
        self.clock = clock
        self.every_fraction = every_fraction
        self.every_seconds = every_seconds
        self.written = 0.0
        self.written_at = clock()

    def __call__(self, fraction: float) -> None:
        fraction = min(1.0, max(0.0, fraction))
        now = self.clock()
        if fraction - self.written < self.every_fraction or now - self.written_at < self.every_seconds:
            return
        try:
            updated = Simulation.objects.filter(pk=self.simulation_id, status=RUNNING).update(progress=fraction)
        except DatabaseError:  # progress is for people watching; the result is written (or fails) at the end
            logger.warning("could not write the progress of simulation %s", self.simulation_id, exc_info=True)
            return
        if not updated:
            raise SimulationStopped(self.simulation_id)
        self.written, self.written_at = fraction, now


def simulation_error_text(exc: BaseException) -> str:
    """What ``GET`` shows for a failed run: the pack's problems as the import names them, or what went wrong."""
    if isinstance(exc, PackError):
        count = len(exc.errors)
        return f"nothing simulated: {count} problem{'s' if count != 1 else ''} in the pack\n" + "\n".join(exc.errors)
    if isinstance(exc, SimulationError):
        return str(exc)
    if isinstance(exc, SoftTimeLimitExceeded):
        minutes = settings.SIMULATION_SOFT_TIME_LIMIT // 60
        return f"the simulation took longer than {minutes} minutes and was stopped; try fewer days"
    return f"{type(exc).__name__}: {exc}"


def simulation_run(*, simulation_id: uuid.UUID | str, now: datetime | None = None) -> str:
    """Run a stored simulation and store its result (status ``done``) or its error (``failed``).

    Safe to deliver twice: a row that is not running (done, failed, deleted) is left as it is, and the end
    is written only to a row still running. A delivery that comes after the task's hard time limit (a
    worker that died mid-run, again and again) marks it failed instead of running it. Returns the status
    the run left (``skipped`` when there was nothing to run, ``stopped`` when the row stopped running).
    """
    now = now or timezone.now()
    simulation = Simulation.objects.filter(pk=simulation_id, status=RUNNING).only("days", "pack", "created_at").first()
    if simulation is None:
        return "skipped"
    if simulation.created_at < _stale_before(now):
        _finish(simulation_id, status=FAILED, error=_stale_error())
        return FAILED
    try:
        result = simulate_policies(
            simulation.pack, days=simulation.days, now=now, workers=1, progress=SimulationProgress(simulation_id)
        )
    except SimulationStopped:
        return "stopped"
    except (PackError, SimulationError, SoftTimeLimitExceeded) as exc:
        _finish(simulation_id, status=FAILED, error=simulation_error_text(exc))
        return FAILED
    except Exception as exc:
        logger.exception("simulation %s failed", simulation_id)
        _finish(simulation_id, status=FAILED, error=simulation_error_text(exc))
        return FAILED
    _finish(simulation_id, status=DONE, result=result, progress=1.0)
    return DONE


def _finish(simulation_id: uuid.UUID | str, *, status: str, **fields: Any) -> None:
    Simulation.objects.filter(pk=simulation_id, status=RUNNING).update(
        status=status, finished_at=timezone.now(), **fields
    )


def simulations_purge(*, now: datetime | None = None) -> int:
    """The periodic clean-up: running simulations past the hard time limit marked failed, and simulations
    older than ``SIMULATION_KEEP_DAYS`` deleted. Returns how many were deleted."""
    now = now or timezone.now()
    simulations_fail_stale(now=now)
    deleted, _ = Simulation.objects.filter(created_at__lt=now - timedelta(days=settings.SIMULATION_KEEP_DAYS)).delete()
    return deleted
