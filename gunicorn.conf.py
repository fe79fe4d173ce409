"""gunicorn settings, read when `gunicorn recovery_project.wsgi` starts in this folder.

Command-line flags win over these. WEB_CONCURRENCY sets the worker count
(default: two per core plus one, gunicorn's own advice for sync workers that
spend part of each request waiting on PostgreSQL and Redis).
"""

import multiprocessing
import os

bind = os.environ.get("GUNICORN_BIND", f"127.0.0.1:{os.environ.get('PORT', '8000')}")
workers = int(os.environ.get("WEB_CONCURRENCY", multiprocessing.cpu_count() * 2 + 1))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = 30
keepalive = 5
max_requests = 5000
max_requests_jitter = 500
accesslog = os.environ.get("GUNICORN_ACCESS_LOG")  # e.g. "-" for standard output; off by default
errorlog = "-"
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
