"""Settings for Recovery, read from the environment (see README's table).

Every variable is read once here through ``recovery_project.env``; a bad value
stops the process at start with a message naming the variable.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from pathlib import Path

from kombu import Exchange, Queue

from recovery_project import env

BASE_DIR = Path(__file__).resolve().parent.parent

DEBUG = env.boolean("DEBUG", False)

SECRET_KEY = env.string("SECRET_KEY")
# True when DEBUG runs on the development key below: compensation's start says once that links it signs are forgeable.
SECRET_KEY_IS_DEVELOPMENT_KEY = SECRET_KEY is None
if SECRET_KEY is None:
    if not DEBUG:
        raise env.ConfigError("SECRET_KEY", "must be set when DEBUG is off (a long random string)")
    SECRET_KEY = "django-insecure-development-only-key-do-not-use-in-production"  # noqa: S105

ALLOWED_HOSTS = env.csv_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.csv_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "recovery_project.apps.RecoveryAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "axes",
    "django_htmx",
    "policies",
    "compensation",
    "reporting",
    "console",
]

# Django's session, CSRF, auth, messages and clickjacking middleware, each skipped for API calls
# that carry a token (they serve browsers: the admin, the browsable API); see recovery_project/middleware.py.
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "compensation.http.RequestBodyMiddleware",  # refuses an oversized or (under /api/) non-JSON body unread
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "recovery_project.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "recovery_project.middleware.CsrfViewMiddleware",
    "recovery_project.middleware.AuthenticationMiddleware",
    "recovery_project.middleware.MessageMiddleware",
    "recovery_project.middleware.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",  # turns a locked-out login into the lockout page
    "django_htmx.middleware.HtmxMiddleware",  # request.htmx: the console's fragments
]

ROOT_URLCONF = "recovery_project.urls"
WSGI_APPLICATION = "recovery_project.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {"default": env.database("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
DATABASES["default"]["CONN_MAX_AGE"] = env.integer("CONN_MAX_AGE", 60, minimum=0)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DATABASES["default"]["ATOMIC_REQUESTS"] = False
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # A database that does not answer is a quick 503 (compensation/exceptions.py), never a request hanging
    # until gunicorn's timeout: give up connecting after this many seconds.
    # A server that stops answering on a kept connection is noticed by TCP keepalives and the kernel's
    # user timeout within about 10 s (libpq parameters), not minutes of retransmits.
    DATABASES["default"].setdefault("OPTIONS", {})
    for option, value in {
        "connect_timeout": env.integer("DATABASE_CONNECT_TIMEOUT", 3, minimum=1, maximum=60),
        "keepalives": 1,
        "keepalives_idle": 5,
        "keepalives_interval": 2,
        "keepalives_count": 3,
        "tcp_user_timeout": 10_000,
    }.items():
        DATABASES["default"]["OPTIONS"].setdefault(option, value)
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql" and env.boolean(
    "DATABASE_SERVER_SIDE_BINDING", True
):
    # Server-side parameters, and prepared statements: psycopg prepares a statement the fifth time a
    # connection runs it, so PostgreSQL stops planning the hot path's statements on every request.
    # Django turns preparing off unless prepare_threshold is given. Not behind PgBouncer in transaction
    # mode, where a statement prepared on one server connection is missing on the next.
    DATABASES["default"].setdefault("OPTIONS", {}).update(server_side_binding=True, prepare_threshold=5)
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A file database shared by the dev server and an eager worker: take the write lock when a
    # transaction starts and wait for it, so concurrent requests queue instead of failing.
    DATABASES["default"]["OPTIONS"] = {"timeout": 20, "transaction_mode": "IMMEDIATE"}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = env.time_zone("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    # No manifest: a process started before collectstatic still renders pages.
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
# Also serve straight from the apps' static folders, so the API docs and the admin
# keep their assets even where `collectstatic` was not run (collected files win).
WHITENOISE_USE_FINDERS = True

# --- Security -----------------------------------------------------------------
SECURE_SSL_REDIRECT = env.boolean("SECURE_SSL_REDIRECT", False)
if env.boolean("TRUST_X_FORWARDED_PROTO", False):  # only behind a proxy that sets it
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_SECURE = SECURE_SSL_REDIRECT
CSRF_COOKIE_SECURE = SECURE_SSL_REDIRECT
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
DATA_UPLOAD_MAX_MEMORY_SIZE = env.integer("DATA_UPLOAD_MAX_MEMORY_SIZE", 1024 * 1024, minimum=1024)
# Strict-Transport-Security: off until the site is HTTPS only (browsers remember it for this many seconds).
SECURE_HSTS_SECONDS = env.integer("SECURE_HSTS_SECONDS", 0, minimum=0)
# On by default, as check --deploy asks; neither does anything until SECURE_HSTS_SECONDS is set.
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.boolean("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
SECURE_HSTS_PRELOAD = env.boolean("SECURE_HSTS_PRELOAD", True)
# How many proxies in front append to X-Forwarded-For; 0: the header is ignored and the peer is the client.
# The rate limits (REST_FRAMEWORK's NUM_PROXIES) and the login lockout read the client's address this one way.
NUM_PROXIES = env.integer("NUM_PROXIES", 0, minimum=0)
# Django's checks look for CsrfViewMiddleware and XFrameOptionsMiddleware by path; ours are subclasses
# (recovery_project/middleware.py), which recovery_project/checks.py looks for instead, with the cookie checks.
SILENCED_SYSTEM_CHECKS = ["security.W002", "security.W003"]

# Login lockout (django-axes) on every username and password login: the admin's and any other page's.
# Five failures for one username from one address, each within 15 minutes of the one before, lock that
# pair out for 15 minutes from the fifth; tries while locked out are refused and do not extend it.
# Token authentication never calls authenticate() and is not affected.
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]
AXES_FAILURE_LIMIT = 5
AXES_COOLOFF_TIME = timedelta(minutes=15)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True  # a right password forgets that pair's earlier failures
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_CLIENT_IP_CALLABLE = "compensation.http.client_address"
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"

# --- Domain -------------------------------------------------------------------
DEFAULT_CURRENCY = env.currency("DEFAULT_CURRENCY", "USD")
# How {money} reads in messages: "$46.00" (en_US), "46,00 $" (de_DE).
MONEY_LOCALE = env.locale("MONEY_LOCALE", "en_US")
AGENT_APPROVAL_LIMIT = env.decimal("AGENT_APPROVAL_LIMIT", "100.00", minimum=Decimal("0"))
# Who sets a customer's e-mail, tier, lifetime value and interests: "agent" (offer-set POSTs, as in v1) or
# "trusted" (only the integration role, through /api/v1/customers/; offer-set POSTs leave them be).
CUSTOMER_FACTS = env.choice("CUSTOMER_FACTS", "agent", ("agent", "trusted"))
# How the ranking learns (compensation/learning.py): both "off" is v1's ranking exactly.
RANKING_EXPLORATION = env.choice("RANKING_EXPLORATION", "thompson", ("thompson", "off"))
RANKING_POSITION_CORRECTION = env.choice("RANKING_POSITION_CORRECTION", "on", ("on", "off"))
INCIDENT_REPEAT_WINDOW_DAYS = env.integer("INCIDENT_REPEAT_WINDOW_DAYS", 90, minimum=1)
OFFER_SET_TTL_MINUTES = env.integer("OFFER_SET_TTL_MINUTES", 60, minimum=1)
ESCALATION_SLA_HOURS = env.integer("ESCALATION_SLA_HOURS", 4, minimum=1)
INCIDENT_MAX_AGE_DAYS = env.integer("INCIDENT_MAX_AGE_DAYS", 365, minimum=1)
# Follow-ups: the explanation is sent this many minutes after recording and is due
# within 24 hours; the satisfaction check goes out after it. Feedback links expire.
FOLLOW_UP_EXPLANATION_DELAY_MINUTES = env.integer("FOLLOW_UP_EXPLANATION_DELAY_MINUTES", 60, minimum=0, maximum=1440)
FOLLOW_UP_SATISFACTION_DELAY_HOURS = env.integer("FOLLOW_UP_SATISFACTION_DELAY_HOURS", 24, minimum=0)
FEEDBACK_LINK_MAX_AGE_DAYS = env.integer("FEEDBACK_LINK_MAX_AGE_DAYS", 14, minimum=1)
# Where the e-mails' feedback links point: the public base URL of this API; without it, the address this
# server answers on (http://127.0.0.1:$PORT, 8000 without PORT, as gunicorn.conf.py and `make run` bind).
PUBLIC_BASE_URL = env.public_base_url("PUBLIC_BASE_URL", port_name="PORT")
# Submissions the worker has not recorded after this many seconds are sent again.
OUTCOME_REQUEUE_AFTER_SECONDS = env.integer("OUTCOME_REQUEUE_AFTER_SECONDS", 60, minimum=1)
# A recording task takes up to this many pending outcomes in one transaction (1: one at a time).
OUTCOME_RECORD_BATCH = env.integer("OUTCOME_RECORD_BATCH", 50, minimum=1, maximum=500)
# A submission whose recording fails this many times is marked failed (kept, not sent again; managers told).
OUTCOME_MAX_ATTEMPTS = env.integer("OUTCOME_MAX_ATTEMPTS", 8, minimum=1, maximum=100)
# The admin's policy simulations run in the request: over more incidents than this in the window they replay
# a sample (every n-th incident), so a one-policy "Simulate" answers in seconds. A pack uploaded there may be
# this large (the upload page alone takes a body over DATA_UPLOAD_MAX_MEMORY_SIZE, up to this and its form).
SIMULATION_ADMIN_SAMPLE = env.integer("SIMULATION_ADMIN_SAMPLE", 30_000, minimum=1)
SIMULATION_PACK_MAX_BYTES = env.integer("SIMULATION_PACK_MAX_BYTES", 2 * 1024 * 1024, minimum=1024)
# Operational events (API.md, v2, "Proactive recovery"): their POSTs and the admin's CSV upload take bodies up
# to EVENT_MAX_BODY_BYTES; a manager may put EVENT_MAX_CUSTOMERS_PER_DAY customers into events a day; the
# customers' links live EVENT_CHOICE_DAYS; e-mails go at EVENT_EMAILS_PER_MINUTE (0: as fast as they can).
EVENT_MAX_BODY_BYTES = env.integer("EVENT_MAX_BODY_BYTES", 8 * 1024 * 1024, minimum=1024)
EVENT_MAX_CUSTOMERS_PER_DAY = env.integer("EVENT_MAX_CUSTOMERS_PER_DAY", 50_000, minimum=0)
EVENT_CHOICE_DAYS = env.integer("EVENT_CHOICE_DAYS", 14, minimum=1, maximum=365)
EVENT_EMAILS_PER_MINUTE = env.integer("EVENT_EMAILS_PER_MINUTE", 600, minimum=0)

# --- The demo (manage.py load_demo, `make run`) -------------------------------
# The password of the demo admin and the demo users: DEMO_ADMIN_PASSWORD when set, else the one kept in
# DEMO_PASSWORD_FILE (created with a random one, mode 0600, on the first run; git-ignored).
DEMO_ADMIN_PASSWORD = env.string("DEMO_ADMIN_PASSWORD")
DEMO_PASSWORD_FILE = Path(env.string("DEMO_PASSWORD_FILE", str(BASE_DIR / ".demo-admin-password"))).expanduser()
# Off: the start-up warnings (no REDIS_URL, the development SECRET_KEY) are not logged by each process;
# `make run` turns them off for the processes it starts and shows them once, in its box.
START_WARNINGS = env.boolean("START_WARNINGS", True)
# A folder where a Celery worker writes the file "worker", and beat "beat", once started (`make run` waits for them).
PROCESS_READY_DIR = env.string("PROCESS_READY_DIR")

# --- Redis: broker and cache --------------------------------------------------
REDIS_URL = env.redis_url("REDIS_URL")

if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "recovery_project.cache.RedisCache",  # Django's, reusing its redis-py client
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "recovery",
            "OPTIONS": {"socket_connect_timeout": 2, "socket_timeout": 2},
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- Celery -------------------------------------------------------------------
# A policy simulation (POST /api/v1/simulations/) replays weeks of incidents: minutes, not the 90/120 s every
# other task gets. Past the soft limit it stops and is marked failed; the hard limit kills the process. A
# simulation still "running" after the hard limit died with its worker (or waited in the queue that long)
# and is marked failed, so its user can start another (compensation/services/simulation_runs.py).
SIMULATION_SOFT_TIME_LIMIT = 30 * 60
SIMULATION_TIME_LIMIT = 31 * 60
SIMULATION_KEEP_DAYS = 7  # GET /api/v1/simulations/{id}/ answers 404 after this, and a periodic task deletes it
# Visibility timeout must exceed the longest task (time limit x retries' ETA is
# not counted: retried tasks are new messages), or Redis redelivers running work.
CELERY_VISIBILITY_TIMEOUT = 3600
CELERY_BROKER_URL = REDIS_URL or "memory://localhost/"  # with a host: kombu warns of none once per process
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": CELERY_VISIBILITY_TIMEOUT,
    # A request that enqueues must not hang on a dead broker: the outbox covers it. One connection
    # attempt when publishing (kombu otherwise retries for broker_connection_timeout plus backoff,
    # about 6 s); the worker's consumer retries with broker_connection_max_retries as before.
    "socket_connect_timeout": 2,
    "max_retries": 0,
    "socket_timeout": 5,
}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ALWAYS_EAGER = REDIS_URL is None
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_TIME_LIMIT = 120
CELERY_TASK_SOFT_TIME_LIMIT = 90
# Two queues: "celery" (recording outcomes, e-mails, periodic work) and "simulations", so a long simulation
# never holds up recording where a worker of its own serves it (`celery -A recovery_project worker -Q
# simulations`). A worker started without -Q consumes every queue listed here.
CELERY_TASK_DEFAULT_QUEUE = "celery"
CELERY_TASK_QUEUES = (
    Queue("celery", Exchange("celery", type="direct"), routing_key="celery"),
    Queue("simulations", Exchange("simulations", type="direct"), routing_key="simulations"),
)
CELERY_TASK_ROUTES = {"compensation.simulation_run": {"queue": "simulations"}}
CELERY_TASK_ANNOTATIONS = {
    "compensation.simulation_run": {
        "soft_time_limit": SIMULATION_SOFT_TIME_LIMIT,
        "time_limit": SIMULATION_TIME_LIMIT,
    }
}
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Stops Celery closing the database connection around every task; recovery_project/celery.py
# closes it when broken or older than CONN_MAX_AGE instead, as Django does per request.
CELERY_DB_REUSE_MAX = 1_000_000
CELERY_TIMEZONE = TIME_ZONE
CELERY_BEAT_SCHEDULE: dict = {
    "outcome-submissions-requeue": {"task": "compensation.outcome_submissions_requeue", "schedule": 30.0},
    "follow-ups-send": {"task": "compensation.follow_ups_send", "schedule": 60.0},
    "escalations-flag-overdue": {"task": "compensation.escalations_flag_overdue", "schedule": 60.0},
    "idempotency-records-purge": {"task": "compensation.idempotency_records_purge", "schedule": 3600.0},
    "budget-alerts-send": {"task": "compensation.budget_alerts_send", "schedule": 300.0},
    "simulations-purge": {"task": "compensation.simulations_purge", "schedule": 3600.0},
    "events-resume": {"task": "compensation.events_resume", "schedule": 60.0},
}

# --- E-mail -------------------------------------------------------------------
EMAIL_HOST = env.string("EMAIL_HOST")
EMAIL_BACKEND = env.string(
    "EMAIL_BACKEND",
    "django.core.mail.backends.smtp.EmailBackend" if EMAIL_HOST else "django.core.mail.backends.console.EmailBackend",
)
EMAIL_PORT = env.integer("EMAIL_PORT", 587, minimum=1)
EMAIL_HOST_USER = env.string("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env.string("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env.boolean("EMAIL_USE_TLS", True)
EMAIL_TIMEOUT = env.integer("EMAIL_TIMEOUT", 10, minimum=1)
EMAIL_FILE_PATH = env.string("EMAIL_FILE_PATH")  # the folder of django.core.mail.backends.filebased.EmailBackend
if EMAIL_BACKEND == "django.core.mail.backends.filebased.EmailBackend" and EMAIL_FILE_PATH is None:
    raise env.ConfigError("EMAIL_FILE_PATH", "must name a folder when EMAIL_BACKEND is the file-based backend")
DEFAULT_FROM_EMAIL = env.string("DEFAULT_FROM_EMAIL", "Recovery <recovery@localhost>")

# --- REST framework -----------------------------------------------------------
THROTTLE_USER_RATE = env.throttle_rate("THROTTLE_USER_RATE", "1000/min")
THROTTLE_ANON_RATE = env.throttle_rate("THROTTLE_ANON_RATE", "60/min")  # the feedback links
# The events' customer page /r/{token}/, per address: a limit of its own.
THROTTLE_CUSTOMER_PAGE_RATE = env.throttle_rate("THROTTLE_CUSTOMER_PAGE_RATE", "60/min")
CONSOLE_LOOKUP_RATE = env.throttle_rate("CONSOLE_LOOKUP_RATE", "60/min")  # the console's customer lookups, per user

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # DRF's token authentication, reading the user's role in the same query (no query per check).
        "compensation.authentication.RoleTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "compensation.pagination.PageNumberPagination",
    "PAGE_SIZE": 25,
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "compensation.schema.RecoveryAutoSchema",
    "DEFAULT_PARSER_CLASSES": ["compensation.http.SafeJSONParser"],  # JSON only (compensation.http)
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "compensation.http.JSONContentNegotiation",
    "NUM_PROXIES": NUM_PROXIES,  # DRF's None would trust any X-Forwarded-For
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    "DEFAULT_THROTTLE_CLASSES": ["compensation.http.ResilientUserRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {"user": THROTTLE_USER_RATE, "anon": THROTTLE_ANON_RATE},
    "EXCEPTION_HANDLER": "compensation.exceptions.exception_handler",
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Recovery API",
    "DESCRIPTION": (
        "Ranked a/b/c compensation options for service recovery, outcomes, escalations and reports. "
        "Authenticate with `Authorization: Token <key>` (see `manage.py issue_token`)."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_AUTHENTICATION": [],  # public: a stale token in the browser must not hide the docs
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "OutcomeStatusEnum": "compensation.models.OutcomeSubmission.Status",
        "EscalationStatusEnum": "compensation.models.Escalation.Status",
        "EscalationKindEnum": "compensation.models.Escalation.Kind",
        "AcceptedStatusEnum": ["accepted"],
        "OfferKindEnum": "policies.choices.OfferKind",
        "RemedyKindEnum": "policies.choices.REMEDY_KIND_CHOICES",
        "RemedyStatusEnum": "compensation.models.Remedy.Status",
        "TierEnum": "policies.choices.Tier",
        "SimulationStatusEnum": "compensation.models.Simulation.Status",
        "EventStatusEnum": "compensation.models.Event.Status",
        "SimulationStartedStatusEnum": ["running"],
    },
}

# --- Logging: to standard error, so command output stays clean ----------------
LOG_LEVEL = env.string("LOG_LEVEL", "INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "quiet_probes": {"()": "recovery_project.logfilters.QuietProbes"},
        "redact_customer_links": {"()": "recovery_project.logfilters.RedactCustomerLinks"},
        "require_debug_true": {"()": "django.utils.log.RequireDebugTrue"},
        "require_debug_false": {"()": "django.utils.log.RequireDebugFalse"},
    },
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
        "django.server": {
            "()": "django.utils.log.ServerFormatter",
            "format": "[{server_time}] {message}",
            "style": "{",
        },
    },
    "handlers": {
        "stderr": {
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stderr",
            "formatter": "plain",
            "filters": ["redact_customer_links"],
        },
        # Django's own handlers, with customer links left out ("Bad Request: /r/…"): whoever reads one can choose.
        "console": {
            "class": "logging.StreamHandler",
            "level": "INFO",
            "filters": ["require_debug_true", "redact_customer_links"],
        },
        "mail_admins": {
            "class": "django.utils.log.AdminEmailHandler",
            "level": "ERROR",
            "filters": ["require_debug_false", "redact_customer_links"],
        },
        # The development server's request lines, less the probes that answered 2xx.
        "django.server": {
            "class": "logging.StreamHandler",
            "formatter": "django.server",
            "level": "INFO",
            "filters": ["quiet_probes", "redact_customer_links"],
        },
    },
    "root": {"handlers": ["stderr"], "level": "WARNING"},
    "loggers": {
        "recovery": {"handlers": ["stderr"], "level": LOG_LEVEL, "propagate": False},
        "policies": {"handlers": ["stderr"], "level": LOG_LEVEL, "propagate": False},
        "compensation": {"handlers": ["stderr"], "level": LOG_LEVEL, "propagate": False},
        "django": {"handlers": ["console", "mail_admins"], "level": "INFO"},
        "django.server": {"handlers": ["django.server"], "level": "INFO", "propagate": False},
    },
}
