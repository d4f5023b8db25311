"""Settings for the Todo API: every deploy-time value is read here, from the environment."""

from datetime import timedelta
from pathlib import Path
from typing import Any, TypedDict
from urllib.parse import urlsplit

import dj_database_url
from corsheaders.defaults import default_headers as default_cors_headers
from django.core.exceptions import ImproperlyConfigured

from todo_api.env import env_bool, env_list, env_number, env_rate, env_str

BASE_DIR = Path(__file__).resolve().parent.parent

DEBUG = env_bool("DJANGO_DEBUG", False)

SECRET_KEY = env_str("DJANGO_SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("DJANGO_SECRET_KEY is required when DJANGO_DEBUG is off")
    SECRET_KEY = "insecure-development-key-used-only-with-DJANGO_DEBUG-on"  # noqa: S105 (DEBUG only, see above)

ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"] if DEBUG else [])
if not DEBUG and not ALLOWED_HOSTS:
    raise ImproperlyConfigured("DJANGO_ALLOWED_HOSTS is required when DJANGO_DEBUG is off")

INSTALLED_APPS = [
    # First: its templates override the admin's and drf-spectacular's.
    "todo_api",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "axes",
    "corsheaders",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "authbridge",
    "tasks",
]

MIDDLEWARE = [
    "todo_api.logging.RequestLogMiddleware",
    # Times what follows, and answers GET /metrics before the host check (only with METRICS_TOKEN).
    "todo_api.metrics.MetricsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Before every middleware that can answer except SecurityMiddleware's HTTPS redirect, so 413s and
    # other early errors carry CORS headers too.
    "corsheaders.middleware.CorsMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "todo_api.middleware.BodySizeLimitMiddleware",
    "todo_api.middleware.QueryStringLimitMiddleware",
    # Sessions, Django's user and messages serve the admin only: skipped under /api/.
    "todo_api.admin_only.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "todo_api.admin_only.AuthenticationMiddleware",
    "todo_api.admin_only.MessageMiddleware",
    # Answers a locked-out staff sign-in with 429 (todo_api/admin_login.py); skipped under /api/ too.
    "todo_api.admin_only.AxesMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "todo_api.middleware.DatabaseUnavailableMiddleware",
]

ROOT_URLCONF = "todo_api.urls"
WSGI_APPLICATION = "todo_api.wsgi.application"
# Routes accept paths with and without a trailing slash themselves; no redirects.
APPEND_SLASH = False

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
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

DATABASE_POOL = env_bool("DATABASE_POOL", False)
DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL") or f"sqlite:///{BASE_DIR / 'db.sqlite3'}",
        # The pool keeps connections itself; Django refuses CONN_MAX_AGE with it.
        conn_max_age=0 if DATABASE_POOL else env_number("DATABASE_CONN_MAX_AGE", 60),
        # A reused connection that sat idle is checked first (a `SELECT 1`): Neon drops connections
        # when its compute suspends, and the check turns that into a reconnect instead of one failed
        # request per connection. One that ran a query less than DATABASE_HEALTH_CHECK_IDLE_SECONDS
        # ago is not checked (todo_api/database.py).
        conn_health_checks=env_bool("DATABASE_CONN_HEALTH_CHECKS", True),
    )
}
DATABASE_HEALTH_CHECK_IDLE_SECONDS = env_number(
    "DATABASE_HEALTH_CHECK_IDLE_SECONDS", 5, kind=float, minimum=0
)
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Neon's pooled endpoint is PgBouncer in transaction mode: server-side cursors
    # would outlive the transaction that opened them.
    DATABASES["default"]["DISABLE_SERVER_SIDE_CURSORS"] = env_bool(
        "DATABASE_DISABLE_SERVER_SIDE_CURSORS", True
    )
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A transaction takes the write lock when it begins, not at its first write: two transactions
    # that read then write would otherwise deadlock, and one fail with "database is locked".
    DATABASES["default"].setdefault("OPTIONS", {})["transaction_mode"] = "IMMEDIATE"
if DATABASE_POOL:
    if DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
        raise ImproperlyConfigured("DATABASE_POOL needs a PostgreSQL DATABASE_URL")
    # With CONN_HEALTH_CHECKS (above) Django makes the pool check each connection before lending it,
    # so connections that died with the database are replaced, not handed to a request.
    _pool_min_size = env_number("DATABASE_POOL_MIN_SIZE", 2, minimum=1)
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": _pool_min_size,
        "max_size": max(_pool_min_size, env_number("DATABASE_POOL_MAX_SIZE", 4, minimum=1)),
        # Seconds a request waits for a free connection (or for a lost database) before a 503.
        "timeout": env_number("DATABASE_POOL_TIMEOUT", 5, kind=float, minimum=0.1),
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "authbridge.User"

# Staff sign-in lockout (django-axes, todo_api/admin_login.py): AXES_FAILURE_LIMIT failures lock the
# account, and separately the client address, for AXES_COOLOFF_MINUTES; axes' backend comes first so a
# locked-out attempt is refused before ModelBackend hashes the password. An admin lifts a lockout by
# deleting its "Access attempt" in the admin (or `manage.py axes_reset_username NAME`).
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env_number("AXES_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=env_number("AXES_COOLOFF_MINUTES", 15, kind=float, minimum=0.1))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_ON_SUCCESS = True
# Proxies in front that append the client's address to X-Forwarded-For (0: REMOTE_ADDR is the client).
TRUSTED_PROXY_COUNT = env_number("DJANGO_TRUSTED_PROXY_COUNT", 0)
AXES_CLIENT_IP_CALLABLE = "todo_api.admin_login.client_ip"
# Failures are logged with the address; a username may be a password typed in the wrong field.
AXES_SENSITIVE_PARAMETERS = ["username"]
AXES_VERBOSE = False
# axes checks for its own middleware's path; ours is a subclass that skips the API (admin_only.py).
SILENCED_SYSTEM_CHECKS = ["axes.W002"]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(env_str("DJANGO_STATIC_ROOT") or BASE_DIR / "staticfiles")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    # With DEBUG off, static files have content-hashed, pre-compressed names from collectstatic's
    # manifest (the Docker build runs it), so WhiteNoise can cache them forever. Without the manifest
    # the server refuses to start (todo_api/static_manifest.py); the test suite swaps in the plain
    # backend (tests/conftest.py), and tests/test_dockerfile.py checks the real one.
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage",
    },
}

# Behind a TLS-terminating proxy (every PaaS): trust its X-Forwarded-Proto, then redirect, HSTS and
# secure cookies can be switched on. Probes reach the container over plain HTTP, so they are exempt.
if env_bool("DJANGO_SECURE_PROXY_SSL_HEADER", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", False)
SECURE_REDIRECT_EXEMPT = [r"^healthz/?$", r"^readyz/?$"]
SECURE_HSTS_SECONDS = env_number("DJANGO_SECURE_HSTS_SECONDS", 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("DJANGO_SECURE_HSTS_PRELOAD", False)
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = env_bool("DJANGO_SECURE_COOKIES", not DEBUG)
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS")

# Bodies larger than this get 413 before they are read (see BodySizeLimitMiddleware).
DATA_UPLOAD_MAX_MEMORY_SIZE = env_number("API_MAX_BODY_BYTES", 64 * 1024, minimum=1024)

CORS_ALLOWED_ORIGINS = env_list("CORS_ALLOWED_ORIGINS")
# The API's prefix, as in todo_api/admin_only.py and todo_api/urls.py.
CORS_URLS_REGEX = r"^/api/.*$"
# Response headers a browser app may read besides the safelisted ones.
CORS_EXPOSE_HEADERS = [
    "ETag",
    "Idempotent-Replayed",
    "Location",
    "Retry-After",
    "WWW-Authenticate",
    "X-Ignored-Fields",
    "X-Request-ID",
]
# Request headers besides corsheaders' defaults: conditional writes and idempotent creates.
CORS_ALLOW_HEADERS = [*default_cors_headers, "idempotency-key", "if-match", "if-none-match"]

# How long a create sent with an Idempotency-Key is remembered, and replayed to a retry with that key.
IDEMPOTENCY_KEY_TTL_HOURS = env_number("IDEMPOTENCY_KEY_TTL_HOURS", 24, minimum=24)

# How long the change feed keeps a change: a client's cursor older than that may have lost some (410).
CHANGES_RETENTION_DAYS = env_number("CHANGES_RETENTION_DAYS", 30, minimum=1)

# Task events to Dapr pub/sub (docs/events.md): the sidecar's HTTP endpoint, or the port Dapr sets in
# the app's container. Unset: no event is recorded or published.
DAPR_HTTP_ENDPOINT = (env_str("DAPR_HTTP_ENDPOINT") or "").rstrip("/") or None
if DAPR_HTTP_ENDPOINT is None and env_str("DAPR_HTTP_PORT"):
    DAPR_HTTP_ENDPOINT = f"http://127.0.0.1:{env_number('DAPR_HTTP_PORT', 3500, minimum=1)}"
if DAPR_HTTP_ENDPOINT is not None and urlsplit(DAPR_HTTP_ENDPOINT).scheme not in ("http", "https"):
    raise ImproperlyConfigured(f"DAPR_HTTP_ENDPOINT must be an http(s) URL; got {DAPR_HTTP_ENDPOINT!r}")
EVENTS_ENABLED = DAPR_HTTP_ENDPOINT is not None
EVENTS_PUBSUB = env_str("EVENTS_PUBSUB") or "pubsub"
EVENTS_TOPIC_TASKS = env_str("EVENTS_TOPIC_TASKS") or "task-events"
EVENTS_TOPIC_REMINDERS = env_str("EVENTS_TOPIC_REMINDERS") or "reminders"
EVENTS_SOURCE = env_str("EVENTS_SOURCE") or "todo-api"

# Seconds between the reminder worker's polls (manage.py run_worker): a reminder fires within about
# this long after it is due, at the cost of one indexed query per poll (docs/deploy.md, "The worker").
WORKER_POLL_SECONDS = env_number("WORKER_POLL_SECONDS", 1.0, kind=float, minimum=0.1)

# Prometheus metrics (docs/deploy.md, "Observability"): GET /metrics answers only with this bearer
# token, and is a 404 without one. The worker serves its own on WORKER_METRICS_PORT (0: not served).
METRICS_TOKEN = env_str("METRICS_TOKEN") or None
WORKER_METRICS_PORT = env_number("WORKER_METRICS_PORT", 0)
# todo_api_build_info's labels; the release pipeline sets both (the image's tag and commit).
APP_VERSION = env_str("APP_VERSION") or "unknown"
GIT_REVISION = env_str("GIT_REVISION") or "unknown"

# Better Auth: where its signing keys are published and what its tokens must say.
BETTER_AUTH_URL = (env_str("BETTER_AUTH_URL") or "").rstrip("/")
_better_auth_origin = "{0.scheme}://{0.netloc}".format(urlsplit(BETTER_AUTH_URL)) if BETTER_AUTH_URL else None


class BetterAuthSettings(TypedDict):
    JWKS_URL: str | None
    ISSUER: str | None
    AUDIENCE: str | None
    SECRET: str | None
    LEEWAY_SECONDS: int
    JWKS_TTL_SECONDS: float
    JWKS_REFETCH_INTERVAL_SECONDS: float
    JWKS_TIMEOUT_SECONDS: float


BETTER_AUTH: BetterAuthSettings = {
    "JWKS_URL": env_str("BETTER_AUTH_JWKS_URL")
    or (f"{BETTER_AUTH_URL}/api/auth/jwks" if BETTER_AUTH_URL else None),
    "ISSUER": env_str("BETTER_AUTH_ISSUER") or _better_auth_origin,
    "AUDIENCE": env_str("BETTER_AUTH_AUDIENCE") or _better_auth_origin,
    "SECRET": env_str("BETTER_AUTH_SECRET") or None,
    "LEEWAY_SECONDS": env_number("BETTER_AUTH_LEEWAY", 10),
    "JWKS_TTL_SECONDS": env_number("BETTER_AUTH_JWKS_TTL", 300, kind=float),
    "JWKS_REFETCH_INTERVAL_SECONDS": env_number("BETTER_AUTH_JWKS_REFETCH_INTERVAL", 10, kind=float),
    "JWKS_TIMEOUT_SECONDS": env_number("BETTER_AUTH_JWKS_TIMEOUT", 3, kind=float, minimum=0.1),
}
if BETTER_AUTH["JWKS_URL"] and urlsplit(BETTER_AUTH["JWKS_URL"]).scheme not in ("http", "https"):
    raise ImproperlyConfigured("BETTER_AUTH_JWKS_URL (or BETTER_AUTH_URL) must be an http(s) URL")
if BETTER_AUTH["SECRET"] is not None and len(BETTER_AUTH["SECRET"]) < 32:
    raise ImproperlyConfigured("BETTER_AUTH_SECRET must be at least 32 characters long")

# Per-user rate limit (todo_api/throttling.py), e.g. 600/min; unset: no limit. Counted in Redis when
# REDIS_URL is set, so that all replicas share it; else in the SQLite file API_USER_RATE_FILE, which
# gunicorn.conf.py names for the workers of one server; with neither, per process.
API_USER_RATE = env_rate("API_USER_RATE")
REDIS_URL = env_str("REDIS_URL") or None
API_USER_RATE_FILE = env_str("API_USER_RATE_FILE") or None
CACHES: dict[str, dict[str, Any]] = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    # Per process without Redis; room for every user active in one window (the default keeps 300).
    "throttle": {
        "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
        "LOCATION": "throttle",
        "OPTIONS": {"MAX_ENTRIES": 100_000},
    },
}
if REDIS_URL:
    CACHES["throttle"] = {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        # Short: a Redis that stops answering costs one request a quarter second, then is skipped.
        "OPTIONS": {"socket_connect_timeout": 0.25, "socket_timeout": 0.25},
    }

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["authbridge.authentication.BetterAuthJWTAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PARSER_CLASSES": ["todo_api.parsers.StrictJSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["todo_api.renderers.FastJSONRenderer"],
    "DEFAULT_SCHEMA_CLASS": "todo_api.schema.ErrorDocumentingAutoSchema",
    "EXCEPTION_HANDLER": "todo_api.errors.api_exception_handler",
    "DEFAULT_THROTTLE_CLASSES": ["todo_api.throttling.UserRateThrottle"],
    "UNAUTHENTICATED_USER": None,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Todo API",
    "DESCRIPTION": (
        "Tasks of users signed in with Better Auth. Send the Better Auth JWT as "
        "`Authorization: Bearer <token>`; every task is visible to its owner only."
    ),
    "VERSION": "1.0.0",
    # No licence has been granted: all rights reserved, which is what that page explains.
    "LICENSE": {"name": "Proprietary", "url": "https://choosealicense.com/no-permission/"},
    # Relative: Swagger UI's "Try it out" calls the server that serves the page.
    "SERVERS": [{"url": "/", "description": "This server"}],
    "TAGS": [
        {
            "name": "Tasks",
            "description": "The caller's tasks: `/api/v1/tasks`, paginated, filtered and ordered.",
        },
        {"name": "Tags", "description": "The tags on the caller's tasks."},
        {
            "name": "Sync",
            "description": "What changed in the caller's tasks since a cursor: keep a local copy current "
            '(docs/frontend.md, "Sync").',
        },
        {"name": "Account", "description": "The signed-in caller, as Better Auth describes them."},
        {
            "name": "Compatibility (Next.js todo spec)",
            "description": "The routes of the common Next.js + Better Auth todo spec, "
            "`/api/{user_id}/tasks`: "
            "the same tasks, the list as a plain array; `user_id` must be the caller's own id.",
        },
        {"name": "Health", "description": "Probes for the platform; no token needed."},
    ],
    "PREPROCESSING_HOOKS": ["todo_api.schema.without_trailing_slash"],
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums", "todo_api.schema.tidy"],
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "SWAGGER_UI_SETTINGS": {"persistAuthorization": True},
}

# JSON lines in production, readable lines in development; both carry the request id.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "todo_api.logging.RequestIdFilter"}},
    "formatters": {
        "json": {"()": "todo_api.logging.JsonFormatter"},
        "human": {
            "()": "logging.Formatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s",
            "defaults": {"request_id": "-"},
        },
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "filters": ["request_id"],
            "formatter": "human" if DEBUG else "json",
        },
    },
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    # RequestLogMiddleware already writes a line for every 4xx; keep Django's own for 5xx tracebacks.
    # axes' failures and lockouts are warnings; its INFO lines repeat them step by step.
    "loggers": {"django.request": {"level": "ERROR"}, "axes": {"level": "WARNING"}},
}
