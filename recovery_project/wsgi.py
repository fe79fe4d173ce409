"""WSGI entry point: ``gunicorn recovery_project.wsgi``."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "recovery_project.settings")

application = get_wsgi_application()
