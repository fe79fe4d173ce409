"""Settings for the test suite: production settings with a test secret and fast hashing.

DATABASE_URL and REDIS_URL are honoured as in production, so CI runs the suite
against real PostgreSQL and Redis.
"""

import os
from urllib.parse import urlsplit, urlunsplit

os.environ.setdefault("SECRET_KEY", "test-only-secret-key-not-for-production")


def redis_url_of_this_process(url: str | None, worker: str | None) -> str | None:
    """pytest-xdist's worker gwN uses the Redis database N below REDIS_URL's (wrapping round the 16), so the
    Celery queues of the worker tests running in two processes at once never meet: CI's /15 gives 15, 14, ..."""
    if not url or not worker or not worker.startswith("gw"):
        return url
    parts = urlsplit(url)
    database = int(parts.path.strip("/") or 0)
    return urlunsplit(parts._replace(path=f"/{(database - int(worker.removeprefix('gw'))) % 16}"))


# From the URL the run was given (kept in TEST_REDIS_BASE_URL), never from one already moved: a Celery worker a
# test starts inherits both PYTEST_XDIST_WORKER and the moved REDIS_URL, and must land on the same database.
if os.environ.get("REDIS_URL"):
    os.environ.setdefault("TEST_REDIS_BASE_URL", os.environ["REDIS_URL"])
    os.environ["REDIS_URL"] = redis_url_of_this_process(
        os.environ["TEST_REDIS_BASE_URL"], os.environ.get("PYTEST_XDIST_WORKER")
    )

from recovery_project.settings import *  # noqa: E402, F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
STORAGES = {**STORAGES, "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}  # noqa: F405
STATIC_ROOT = None  # tests never collect static files; WhiteNoise serves them from the apps

# Tasks run in-process unless a test starts a real worker (see tests/compensation/test_outcome_worker.py):
# API tests see the outcome recorded as soon as the transaction's on_commit callbacks run.
CELERY_TASK_ALWAYS_EAGER = True

# Rankings the tests state by hand must not depend on random draws: exploration (Thompson sampling) is off
# here, and the learning tests (tests/compensation/test_learning*.py) turn it on where they test it. Position
# correction keeps its production default.
RANKING_EXPLORATION = "off"
EVENT_EMAILS_PER_MINUTE = 0  # unpaced, except where a test paces it
