"""Settings for the test suite: production settings with a test secret and fast hashing.

DATABASE_URL and REDIS_URL are honoured as in production, so CI runs the suite
against real PostgreSQL and Redis.
"""

import os

os.environ.setdefault("SECRET_KEY", "test-only-secret-key-not-for-production")

from recovery_project.settings import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
STORAGES = {**STORAGES, "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}  # noqa: F405
STATIC_ROOT = None  # tests never collect static files; WhiteNoise serves them from the apps

# Tasks run in-process unless a test starts a real worker (see tests/compensation/test_outcome_worker.py):
# API tests see the outcome recorded as soon as the transaction's on_commit callbacks run.
CELERY_TASK_ALWAYS_EAGER = True

# pytest-xdist's processes share the Redis at REDIS_URL: each keeps its cache keys apart (and clears only
# its own, tests/conftest.py), so their throttle counts and policy revisions never meet.
if CACHES["default"]["BACKEND"].endswith(".RedisCache"):  # noqa: F405
    CACHES["default"]["KEY_PREFIX"] = f"recovery-{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"  # noqa: F405
