import logging
import os
import sys

from django.apps import AppConfig
from django.conf import settings
from django.utils.autoreload import DJANGO_AUTORELOAD_ENV

logger = logging.getLogger("compensation")


def _runserver_reloader() -> bool:
    """The ``runserver`` process that only watches the files and restarts its child; the child serves and warns."""
    return "runserver" in sys.argv and "--noreload" not in sys.argv and os.environ.get(DJANGO_AUTORELOAD_ENV) != "true"


def start_warnings() -> list[str]:
    """What a process says once at start about a configuration fit only for development.

    Logged by every process that loads the project unless ``START_WARNINGS`` is off; ``make run`` turns it off
    for the processes it starts and shows these once, in its box (``load_demo --json``)."""
    warnings = []
    if settings.CELERY_TASK_ALWAYS_EAGER:
        warnings.append(
            "REDIS_URL is not set: Celery tasks run eagerly in this process (no broker, worker or beat). "
            "Set REDIS_URL for production."
        )
    if settings.SECRET_KEY_IS_DEVELOPMENT_KEY:
        warnings.append(
            "SECRET_KEY is not set: DEBUG runs on the development key, which is public, so anyone can forge "
            "the signed links this server trusts (the feedback links in e-mails). Set SECRET_KEY to a long "
            "random string for anything but local development."
        )
    return warnings


class CompensationConfig(AppConfig):
    name = "compensation"
    verbose_name = "Compensation"

    def ready(self) -> None:
        from compensation import tasks  # noqa: F401  (registers the tasks services send by name)

        if _runserver_reloader() or not settings.START_WARNINGS:
            return  # said once, by the serving process (or by `make run`'s box)
        for warning in start_warnings():
            logger.warning(warning)
