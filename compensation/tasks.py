"""Celery tasks: they take ids, call a service, and own the retries.

Every task is safe to run twice (``acks_late`` redelivers after a crash): the
services claim their row before acting (a row lock on a pending submission or a
due follow-up, a conditional update on an escalation's overdue flag or a month's
budget alert).
"""

from __future__ import annotations

import logging

from celery import Task, shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import DatabaseError
from django.utils import timezone

from compensation import queue
from compensation.services import budgets, escalations, events, follow_ups, outcomes, simulation_runs

logger = logging.getLogger("compensation")

RETRY = {
    "autoretry_for": (DatabaseError,),
    "retry_backoff": 2,
    "retry_backoff_max": 300,
    "retry_jitter": True,
    "max_retries": 12,
}


@shared_task(bind=True, name=queue.OUTCOME_RECORD, acks_late=True, **RETRY)
def outcome_record_task(self: Task, submission_id: str, batch: int | None = None) -> int:
    """Record this accepted outcome, with other pending ones in the same transaction; returns how many.

    A second delivery finds it recorded and does nothing (or records others
    still pending). A retry records its own submission alone, so one that
    cannot be recorded never holds back the rest; each failure recording it
    alone counts, and after ``OUTCOME_MAX_ATTEMPTS`` it is marked ``failed``
    and left for a manager (the admin's "Retry" and "Release").
    """
    size = batch if batch is not None else settings.OUTCOME_RECORD_BATCH
    if self.request.retries:
        size = 1
    return len(outcomes.outcomes_record(submission_id=submission_id, batch=size))


@shared_task(name=queue.OUTCOME_FAILURE_NOTIFY, acks_late=True, **{**RETRY, "autoretry_for": (DatabaseError, OSError)})
def outcome_failure_notify_task(submission_id: str) -> bool:
    return outcomes.outcome_failure_notify(submission_id=submission_id)


@shared_task(name=queue.OUTCOME_SUBMISSIONS_REQUEUE, acks_late=True)
def outcome_submissions_requeue() -> int:
    return outcomes.outcome_submissions_requeue()


@shared_task(name=queue.FOLLOW_UPS_SEND, acks_late=True)
def follow_ups_send() -> int:
    return follow_ups.follow_ups_send()


@shared_task(name=queue.ESCALATION_NOTIFY, acks_late=True, **{**RETRY, "autoretry_for": (DatabaseError, OSError)})
def escalation_notify_task(escalation_id: int, overdue: bool = False) -> bool:
    return escalations.escalation_notify(escalation_id=escalation_id, overdue=overdue)


@shared_task(name=queue.ESCALATIONS_FLAG_OVERDUE, acks_late=True)
def escalations_flag_overdue() -> int:
    return escalations.escalations_flag_overdue()


@shared_task(name=queue.BUDGET_ALERTS_SEND, acks_late=True)
def budget_alerts_send() -> int:
    """E-mail the managers once per policy and month that has spent 80% of its cap (claimed before sending)."""
    return budgets.budget_alerts_send()


@shared_task(name=queue.IDEMPOTENCY_RECORDS_PURGE, acks_late=True)
def idempotency_records_purge() -> int:
    from compensation.idempotency import KEEP
    from compensation.models import IdempotencyRecord

    deleted, _ = IdempotencyRecord.objects.filter(created_at__lt=timezone.now() - KEEP).delete()
    return deleted


@shared_task(name=queue.SIMULATION_RUN, acks_late=True)
def simulation_run_task(simulation_id: str) -> str:
    """Run a policy simulation posted through the API; on the ``simulations`` queue (settings.CELERY_TASK_ROUTES),
    with time limits of its own (``SIMULATION_SOFT_TIME_LIMIT``, ``SIMULATION_TIME_LIMIT``, set by
    CELERY_TASK_ANNOTATIONS). A second delivery finds the row no longer running and does nothing."""
    return simulation_runs.simulation_run(simulation_id=simulation_id)


@shared_task(name=queue.SIMULATIONS_PURGE, acks_late=True)
def simulations_purge() -> int:
    return simulation_runs.simulations_purge()


@shared_task(name=queue.EVENT_PROCESS, acks_late=True, **RETRY)
def event_process_task(event_id: int) -> int:
    """Process an operational event for a slice (``events.SLICE_SECONDS``, well under the soft time limit),
    then send itself again if customers are left; returns the e-mails sent. A second delivery while another
    worker holds the event does nothing (the holder's own task carries on). Should a slice overrun the soft
    limit all the same, the send it cut short counts as failed and the task sends itself again at once."""
    try:
        done = events.event_work(event_id=event_id)
    except SoftTimeLimitExceeded:
        logger.warning("event %s: a slice ran past the soft time limit; sent again", event_id)
        events.event_enqueue(event_id)
        return 0
    if not done.finished and done.again_in is not None:
        events.event_enqueue(event_id, countdown=done.again_in)
    return done.emailed


@shared_task(name=queue.EVENTS_RESUME, acks_late=True)
def events_resume() -> int:
    return events.events_resume()
