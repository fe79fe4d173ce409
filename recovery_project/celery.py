"""The Celery app. Settings come from Django's, under the ``CELERY_`` namespace."""

from __future__ import annotations

import os
from pathlib import Path

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "recovery_project.settings")

app = Celery("recovery_project")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@signals.task_prerun.connect
@signals.task_postrun.connect
def _close_old_connections(task=None, **kwargs) -> None:
    """Keep the worker's database connection across tasks, as Django keeps it across requests.

    Celery's own Django fixup closes it around every task unless
    ``CELERY_DB_REUSE_MAX`` is set (it is, in settings); a new PostgreSQL
    connection per task cost more than the task. Like a request, a task drops
    a connection that is broken or older than ``CONN_MAX_AGE``. Not for eager
    tasks: they run inside the caller's transaction.
    """
    if task is not None and getattr(task.request, "is_eager", False):
        return
    from django.db import close_old_connections

    close_old_connections()


@signals.worker_ready.connect
def _worker_started(**kwargs) -> None:
    _started("worker")


@signals.beat_init.connect
def _beat_started(**kwargs) -> None:
    _started("beat")


def _started(name: str) -> None:
    """Write ``name`` in PROCESS_READY_DIR when set: `make run` waits for it, so the worker's and beat's start-up
    logs come before its box, not after."""
    from django.conf import settings

    if settings.PROCESS_READY_DIR:
        (Path(settings.PROCESS_READY_DIR) / name).touch()


@app.task(name="recovery_project.noop", ignore_result=True)
def noop() -> None:
    """Does nothing: a probe of the broker and workers, and the benchmark's baseline."""
