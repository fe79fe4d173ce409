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


class CompensationConfig(AppConfig):
    name = "compensation"
    verbose_name = "Compensation"

    def ready(self) -> None:
        from compensation import tasks  # noqa: F401  (registers the tasks services send by name)

        if _runserver_reloader():
            return  # said once, by the serving process
        if settings.CELERY_TASK_ALWAYS_EAGER:
            logger.warning(
                "REDIS_URL is not set: Celery tasks run eagerly in this process (no broker, worker or beat). "
                "Set REDIS_URL for production."
            )
        if settings.SECRET_KEY_IS_DEVELOPMENT_KEY:
            logger.warning(
                "SECRET_KEY is not set: DEBUG runs on the development key, which is public, so anyone can forge "
                "the signed links this server trusts (the feedback links in e-mails). Set SECRET_KEY to a long "
                "random string for anything but local development."
            )
