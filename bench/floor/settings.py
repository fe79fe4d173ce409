"""The floor: a stock Django REST framework service, the least an authenticated JSON call can cost.

DRF's token authentication and nothing else: ``CommonMiddleware`` only, no
throttle, no sessions, DRF's default renderers. It reads the same
``DATABASE_URL`` as the project (the benchmark points both at one database, so
the same token works on both) and keeps its connections, as the project does
(``CONN_MAX_AGE``); Django's other defaults stand (no health checks, no
server-side binding). ``python -m bench plumbing`` serves it with gunicorn
beside the project.
"""

from __future__ import annotations

import os

import environ

SECRET_KEY = os.environ.get("SECRET_KEY", "bench-floor-only-secret-key")
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "rest_framework",
    "rest_framework.authtoken",
]
MIDDLEWARE = ["django.middleware.common.CommonMiddleware"]
ROOT_URLCONF = "bench.floor.urls"
WSGI_APPLICATION = "bench.floor.wsgi.application"
DATABASES = {"default": {**environ.Env.db_url_config(os.environ["DATABASE_URL"]), "CONN_MAX_AGE": 60}}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["rest_framework.authentication.TokenAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
}
