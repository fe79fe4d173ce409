"""Sending Celery tasks from services, by name: services never import ``tasks.py`` (which imports them).

A broker outage never fails the request that enqueues: the outbox (outcome
submissions) or a periodic task sends the work again later.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import current_app

logger = logging.getLogger("compensation")

OUTCOME_RECORD = "compensation.outcome_record"
OUTCOME_SUBMISSIONS_REQUEUE = "compensation.outcome_submissions_requeue"
OUTCOME_FAILURE_NOTIFY = "compensation.outcome_failure_notify"
FOLLOW_UPS_SEND = "compensation.follow_ups_send"
ESCALATION_NOTIFY = "compensation.escalation_notify"
ESCALATIONS_FLAG_OVERDUE = "compensation.escalations_flag_overdue"
IDEMPOTENCY_RECORDS_PURGE = "compensation.idempotency_records_purge"
BUDGET_ALERTS_SEND = "compensation.budget_alerts_send"
SIMULATION_RUN = "compensation.simulation_run"  # routed to the "simulations" queue (settings.CELERY_TASK_ROUTES)
SIMULATIONS_PURGE = "compensation.simulations_purge"
EVENT_PROCESS = "compensation.event_process"
EVENTS_RESUME = "compensation.events_resume"


def task_send(name: str, *args: Any, countdown: float | None = None, **kwargs: Any) -> bool:
    """Send the task ``name`` (eagerly run where no broker is configured); False when the broker is down.

    ``kwargs`` are the task's; ``countdown`` is the broker's: seconds before a worker may run it. The task
    comes from the app's registry, which ``CompensationConfig.ready`` fills by importing ``compensation.tasks``.
    """
    options = {"countdown": countdown} if countdown else {}
    try:
        current_app.tasks[name].apply_async(args, kwargs, retry=False, **options)
    except Exception:
        logger.warning("could not enqueue %s%r; it will be sent again later", name, args, exc_info=True)
        return False
    return True


def outcome_enqueue(submission_id: Any) -> None:
    """Send the recording task of a submission; if the broker is down, the requeue task sends it later."""
    task_send(OUTCOME_RECORD, str(submission_id))
