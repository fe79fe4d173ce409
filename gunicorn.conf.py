"""gunicorn settings, read when `gunicorn recovery_project.wsgi` starts in this folder.

Command-line flags win over these. WEB_CONCURRENCY sets the worker count,
default one sync worker per core: requests here spend most of their time on
the CPU (the benchmark in bench/ measured 2 workers ahead of 5 on two cores),
so more workers only add switching.
"""

import multiprocessing
import os

bind = os.environ.get("GUNICORN_BIND", f"127.0.0.1:{os.environ.get('PORT', '8000')}")
workers = int(os.environ.get("WEB_CONCURRENCY", max(2, multiprocessing.cpu_count())))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = 30
keepalive = 5
max_requests = 5000
max_requests_jitter = 500
accesslog = os.environ.get("GUNICORN_ACCESS_LOG")  # e.g. "-" for standard output; off by default
logger_class = "recovery_project.gunicorn_logging.RedactingLogger"  # no event customer's link in the access log
errorlog = "-"
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
