import logging

from django.apps import AppConfig
from django.conf import settings

logger = logging.getLogger("compensation")


class CompensationConfig(AppConfig):
    name = "compensation"
    verbose_name = "Compensation"

    def ready(self) -> None:
        from compensation import tasks  # noqa: F401  (registers the tasks services send by name)

        if settings.CELERY_TASK_ALWAYS_EAGER:
            logger.warning(
                "REDIS_URL is not set: Celery tasks run eagerly in this process (no broker, worker or beat). "
                "Set REDIS_URL for production."
            )
