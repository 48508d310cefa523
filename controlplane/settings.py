"""Assay settings: every value comes from the environment (12-factor).

The defaults give the embedded setup a laptop needs (SQLite, no broker:
``database://``, the worker polls the job table; artifacts on the local disk, all under ``var/``).
Production sets ``DATABASE_URL``, ``CELERY_BROKER_URL``, ``ASSAY_STORAGE_URL``
and friends; see the configuration tables of docs/operations.md for the full list.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlparse

from django.core.exceptions import ImproperlyConfigured

from .local_env import read as read_local_env

BASE_DIR = Path(__file__).resolve().parent.parent

# A local checkout's own settings (var/local.env, written by scripts/run): the environment wins.
LOCAL_ENV_FILE = Path(os.environ.get("ASSAY_VAR_DIR") or BASE_DIR / "var") / "local.env"
_LOCAL_ENV = read_local_env(LOCAL_ENV_FILE)


def env(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    if value in (None, ""):
        value = _LOCAL_ENV.get(name)
    return value if value not in (None, "") else default


def env_bool(name: str, default: bool = False) -> bool:
    value = env(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    value = env(name)
    return int(value) if value is not None else default


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in (env(name, default) or "").split(",") if item.strip()]


def database_from_url(url: str) -> dict:
    """Turn ``sqlite:///path`` or ``postgres://user:pw@host:port/name`` into a DATABASES entry."""
    parsed = urlparse(url)
    if parsed.scheme == "sqlite":
        # As in SQLAlchemy: sqlite:///relative/to/project.db, sqlite:////absolute/path.db
        name = Path(unquote(parsed.path)[1:])
        if not name.is_absolute():
            name = BASE_DIR / name
        name.parent.mkdir(parents=True, exist_ok=True)  # the embedded setup starts from nothing
        return {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(name),
            # WAL lets the web process read while a worker writes; IMMEDIATE makes
            # writers queue on the busy timeout instead of failing on lock upgrade.
            "OPTIONS": {
                "timeout": 30,
                "transaction_mode": "IMMEDIATE",
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            },
            # A file, never :memory:, so worker processes in tests see the same data.
            "TEST": {"NAME": str(name.with_name(name.stem + "_test.sqlite3"))},
        }
    if parsed.scheme in {"postgres", "postgresql", "pgsql"}:
        # Query parameters become connection options; "true"/"false" become booleans and digits
        # integers, as some options need (?server_side_binding=true&prepare_threshold=5).
        booleans = {"true": True, "false": False}
        options = {
            k: booleans.get(v[-1].lower(), int(v[-1]) if v[-1].isdigit() else v[-1])
            for k, v in parse_qs(parsed.query).items()
        }
        return {
            # Django's backend, minus a health-check round trip per request (apps/core/fastpath/postgresql).
            "ENGINE": "apps.core.fastpath.postgresql",
            "NAME": unquote(parsed.path.lstrip("/")),
            "USER": unquote(parsed.username or ""),
            "PASSWORD": unquote(parsed.password or ""),
            "HOST": parsed.hostname or "",
            "PORT": str(parsed.port or ""),
            "CONN_MAX_AGE": env_int("DATABASE_CONN_MAX_AGE", 60),
            "CONN_HEALTH_CHECKS": env_bool("DATABASE_CONN_HEALTH_CHECKS", True),
            "OPTIONS": options,
        }
    raise ImproperlyConfigured(f"DATABASE_URL scheme {parsed.scheme!r} is not supported (use sqlite:// or postgres://)")


# PostgreSQL: the hot path's few statements are prepared once per connection (apps/core/fastpath/postgresql).
# Turn off behind a pooler that cannot keep prepared statements (PgBouncer before 1.21 in
# transaction mode).
DATABASE_PREPARED_STATEMENTS = env_bool("DATABASE_PREPARED_STATEMENTS", True)

DEBUG = env_bool("DJANGO_DEBUG", False)
VAR_DIR = Path(env("ASSAY_VAR_DIR", str(BASE_DIR / "var")))

SECRET_KEY = env("DJANGO_SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "DJANGO_SECRET_KEY must be set. In a local checkout, scripts/run writes one to "
            f"{LOCAL_ENV_FILE} on its first start and manage.py reads it from there."
        )
    SECRET_KEY = "insecure-local-development-key-never-use-in-production"  # noqa: S105 (DJANGO_DEBUG=1 only)

ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost" if DEBUG else "")
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "apps.core",
    "apps.audit",
    "apps.accounts",
    "apps.rbac",
    "apps.jobs",
    "apps.registry",
    "apps.evidence",
    "apps.policies",
    "apps.releases",
    "apps.deployments",
    "apps.notifications",
    "apps.reports",
    "apps.demo",
]

# The Browser* entries are Django's session, CSRF, auth and messages middleware (and ours for the
# session user and error pages), standing aside for API requests that carry a bearer token, which
# never use a session (apps/core/middleware.py).
MIDDLEWARE = [
    "apps.audit.middleware.RequestContextMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "apps.core.middleware.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "apps.core.middleware.BrowserSessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "apps.core.middleware.BrowserCsrfMiddleware",
    "apps.core.middleware.BrowserAuthenticationMiddleware",
    "apps.core.middleware.BrowserPrincipalMiddleware",
    "apps.core.middleware.BrowserMessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "apps.core.middleware.BrowserDomainErrorMiddleware",
]

ROOT_URLCONF = "controlplane.urls"
WSGI_APPLICATION = "controlplane.wsgi.application"

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
                "apps.core.context_processors.assay",
            ],
        },
    },
]

DATABASES = {"default": database_from_url(env("DATABASE_URL", f"sqlite:///{VAR_DIR / 'assay.sqlite3'}"))}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "accounts.User"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
PASSWORD_HASHERS = env_list("ASSAY_PASSWORD_HASHERS") or [
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
LOGIN_URL = "/login/"
LOGIN_REDIRECT_URL = "/"

# Sessions expire: a working day at most, and on browser close.
SESSION_COOKIE_AGE = env_int("ASSAY_SESSION_SECONDS", 8 * 3600)
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = env_bool("ASSAY_SECURE_COOKIES", not DEBUG)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SESSION_COOKIE_SAMESITE = "Lax"
ASSAY_LOGIN_MAX_FAILURES = env_int("ASSAY_LOGIN_MAX_FAILURES", 5)
ASSAY_LOGIN_LOCKOUT_SECONDS = env_int("ASSAY_LOGIN_LOCKOUT_SECONDS", 15 * 60)
# API tokens last at most this many days (0: no maximum, and tokens may be made to never expire).
ASSAY_TOKEN_MAX_DAYS = env_int("ASSAY_TOKEN_MAX_DAYS", 365)

SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# Behind a TLS-terminating proxy that sets X-Forwarded-Proto (and strips it from clients).
if env("DJANGO_SECURE_PROXY_SSL_HEADER"):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# HTTPS only: redirect plain HTTP and send HSTS. Off by default because the proxy in front may do
# both instead (docs/security.md); the health check stays reachable over HTTP for load balancers.
SECURE_SSL_REDIRECT = env_bool("ASSAY_SSL_REDIRECT", False)
SECURE_REDIRECT_EXEMPT = [r"^api/v1/health/$"]
SECURE_HSTS_SECONDS = env_int("ASSAY_HSTS_SECONDS", 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("ASSAY_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("ASSAY_HSTS_PRELOAD", False)
# Every response (apps.core.middleware.ContentSecurityPolicyMiddleware): no inline script or style.
ASSAY_CONTENT_SECURITY_POLICY = env(
    "ASSAY_CONTENT_SECURITY_POLICY",
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'",
)
SILENCED_SYSTEM_CHECKS = [
    # security.W003 looks for CsrfViewMiddleware by name; it runs, wrapped as
    # apps.core.middleware.BrowserCsrfMiddleware, for every request but bearer-token API calls
    # (which carry no cookie to forge). tests/core/test_deploy_check.py holds the wrapper in MIDDLEWARE.
    "security.W003",
    # e.g. security.W004,security.W008 when the proxy in front sends HSTS and redirects to HTTPS
    *env_list("DJANGO_SILENCED_SYSTEM_CHECKS"),
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = True

# Uploads: small bodies stay in memory, files spool to a temporary file while the
# registry's upload handler hashes them; anything over the limit is cut off.
ASSAY_MAX_UPLOAD_BYTES = env_int("ASSAY_MAX_UPLOAD_BYTES", 512 * 1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("ASSAY_MAX_FORM_BYTES", 2 * 1024 * 1024)
FILE_UPLOAD_MAX_MEMORY_SIZE = 0
# Spooled uploads go to a folder of our own, so copies left by a killed web process can be found and removed
# (see ASSAY_UPLOAD_CLEANUP_GRACE_SECONDS and docs/operations.md).
FILE_UPLOAD_TEMP_DIR = env("ASSAY_UPLOAD_TEMP_DIR", str(VAR_DIR / "tmp" / "uploads"))
with contextlib.suppress(OSError):  # a folder that cannot be made is reported by Django's check (files.E001)
    os.makedirs(FILE_UPLOAD_TEMP_DIR, exist_ok=True)
FILE_UPLOAD_HANDLERS = ["apps.registry.uploads.HashingUploadHandler"]
# A JSON request body: at most this many bytes (413) and this many levels of nesting (400).
ASSAY_MAX_JSON_BYTES = env_int("ASSAY_MAX_JSON_BYTES", 4 * 1024 * 1024)
ASSAY_MAX_JSON_DEPTH = env_int("ASSAY_MAX_JSON_DEPTH", 64)

# Artifact storage: file:///abs/folder or s3://bucket/prefix (AWS_ENDPOINT_URL for S3-compatible servers).
ASSAY_STORAGE_URL = env("ASSAY_STORAGE_URL", (VAR_DIR / "artifacts").as_uri())
AWS_ENDPOINT_URL = env("AWS_ENDPOINT_URL")
AWS_REGION = env("AWS_DEFAULT_REGION", "us-east-1")
# s3:// references are accepted only inside these buckets (the storage bucket is always allowed).
ASSAY_ALLOWED_S3_BUCKETS = env_list("ASSAY_ALLOWED_S3_BUCKETS")
# A download link (apps/registry/downloads.py) works for the person it was issued to for this long.
ASSAY_DOWNLOAD_LINK_SECONDS = env_int("ASSAY_DOWNLOAD_LINK_SECONDS", 300)

# Audit trail: checkpoint signing key (Ed25519, PEM or raw base64) and where checkpoints go.
ASSAY_AUDIT_SIGNING_KEY_FILE = env("ASSAY_AUDIT_SIGNING_KEY_FILE", str(VAR_DIR / "keys" / "audit-ed25519.pem"))
ASSAY_AUDIT_SIGNING_KEY = env("ASSAY_AUDIT_SIGNING_KEY")  # base64 raw 32-byte seed; wins over the file
ASSAY_AUDIT_TRUSTED_KEYS_DIR = env("ASSAY_AUDIT_TRUSTED_KEYS_DIR", str(VAR_DIR / "keys" / "trusted"))
ASSAY_CHECKPOINT_URL = env("ASSAY_CHECKPOINT_URL", (VAR_DIR / "checkpoints").as_uri())
# The audit log's name in its signed tree heads (the C2SP checkpoint's origin line and the key's name):
# a name unique to this installation, conventionally its host and path.
ASSAY_AUDIT_LOG_ORIGIN = env("ASSAY_AUDIT_LOG_ORIGIN", "assay.local/audit")
ASSAY_CHECKPOINT_INTERVAL_SECONDS = env_int("ASSAY_CHECKPOINT_INTERVAL_SECONDS", 300)
# Events are sealed (seq + hash) by the periodic seal task every ASSAY_AUDIT_SEAL_INTERVAL_SECONDS, and by
# every reader that verifies or exports; ASSAY_AUDIT_SEAL_ON_COMMIT=1 also seals right after each writing
# transaction commits, in the writing process (a transaction more per write, for deployments without beat).
ASSAY_AUDIT_SEAL_ON_COMMIT = env_bool("ASSAY_AUDIT_SEAL_ON_COMMIT", False)
ASSAY_AUDIT_SEAL_INTERVAL_SECONDS = env_int("ASSAY_AUDIT_SEAL_INTERVAL_SECONDS", 2)

# Reports: the key that signs report PDFs (PKCS#8 PEM, ECDSA P-256 or RSA) and its X.509 certificate, which
# is offered for download; the embedded setup creates a self-signed pair, production installs its own.
ASSAY_REPORT_SIGNING_KEY_FILE = env("ASSAY_REPORT_SIGNING_KEY_FILE", str(VAR_DIR / "keys" / "report-signing.pem"))
ASSAY_REPORT_CERTIFICATE_FILE = env("ASSAY_REPORT_CERTIFICATE_FILE", str(VAR_DIR / "keys" / "report-signing.crt"))
# Scheduled reports are also written here (file:///folder or s3://bucket/prefix; S3 Object Lock in compliance mode
# where the bucket has it, kept ASSAY_REPORT_RETENTION_DAYS), and due schedules are looked for this often.
ASSAY_REPORT_STORE_URL = env("ASSAY_REPORT_STORE_URL", (VAR_DIR / "report-store").as_uri())
ASSAY_REPORT_RETENTION_DAYS = env_int("ASSAY_REPORT_RETENTION_DAYS", 7 * 365)
ASSAY_REPORT_SCHEDULE_INTERVAL_SECONDS = env_int("ASSAY_REPORT_SCHEDULE_INTERVAL_SECONDS", 300)

# Policies: evaluate the Rego packs on an OPA server (its Data API) instead of with regopy here.
ASSAY_OPA_URL = env("ASSAY_OPA_URL", "")
ASSAY_OPA_TIMEOUT_SECONDS = env_int("ASSAY_OPA_TIMEOUT_SECONDS", 5)
# Packs evaluated here run in sandboxed child processes (docs/policy-sandbox.md): per evaluation of one pack,
# at most this much wall-clock time and this much memory; at most this many children per process.
ASSAY_POLICY_TIMEOUT_MS = env_int("ASSAY_POLICY_TIMEOUT_MS", 1000)
ASSAY_POLICY_MEMORY_MB = env_int("ASSAY_POLICY_MEMORY_MB", 256)
ASSAY_POLICY_SANDBOXES = env_int("ASSAY_POLICY_SANDBOXES", 2)
ASSAY_UNAUTHENTICATED_AUDIT_WINDOW_SECONDS = env_int("ASSAY_UNAUTHENTICATED_AUDIT_WINDOW_SECONDS", 60)

# Jobs: a running job renews its lease as it reports progress; the sweeper
# re-queues a job only once its lease has expired.
ASSAY_JOB_LEASE_SECONDS = env_int("ASSAY_JOB_LEASE_SECONDS", 120)
ASSAY_JOB_MAX_ATTEMPTS = env_int("ASSAY_JOB_MAX_ATTEMPTS", 5)
ASSAY_JOB_QUEUED_GRACE_SECONDS = env_int("ASSAY_JOB_QUEUED_GRACE_SECONDS", 60)
ASSAY_SWEEP_INTERVAL_SECONDS = env_int("ASSAY_SWEEP_INTERVAL_SECONDS", 30)
# The job table is the queue: each process sends the workers at most one wake-up per interval
# (the first at once), however many jobs it enqueued meanwhile.
ASSAY_JOB_WAKE_INTERVAL_SECONDS = float(env("ASSAY_JOB_WAKE_INTERVAL_SECONDS", "0.1"))
ASSAY_JOB_DRAIN_MAX_JOBS = env_int("ASSAY_JOB_DRAIN_MAX_JOBS", 100)
ASSAY_EXTRA_TASK_MODULES = env_list("ASSAY_EXTRA_TASK_MODULES")
# Workers write a heartbeat row every ASSAY_WORKER_HEARTBEAT_SECONDS; a worker not seen for
# ASSAY_WORKER_STALE_SECONDS counts as gone, and its row is deleted after ASSAY_WORKER_FORGET_SECONDS.
ASSAY_WORKER_HEARTBEAT_SECONDS = float(env("ASSAY_WORKER_HEARTBEAT_SECONDS", "5"))
ASSAY_WORKER_STALE_SECONDS = env_int("ASSAY_WORKER_STALE_SECONDS", 30)
ASSAY_WORKER_FORGET_SECONDS = env_int("ASSAY_WORKER_FORGET_SECONDS", 3600)
# Without a broker (CELERY_BROKER_URL=database://) a worker looks at the job table this often, and at once
# when a process that enqueued a job touches the wake-up file.
ASSAY_WORKER_POLL_SECONDS = float(env("ASSAY_WORKER_POLL_SECONDS", "1"))
ASSAY_WORKER_WAKE_FILE = env("ASSAY_WORKER_WAKE_FILE", str(VAR_DIR / "worker.wake"))
# Health is "degraded" when no worker was seen for ASSAY_WORKER_STALE_SECONDS, or a job has waited longer than this.
ASSAY_HEALTH_MAX_QUEUE_AGE_SECONDS = env_int("ASSAY_HEALTH_MAX_QUEUE_AGE_SECONDS", 300)
# Leftovers of interrupted uploads (spooled copies, half-written artifacts) are removed at start and by the
# periodic cleanup once untouched this long, or at once when the process that wrote them is gone.
ASSAY_UPLOAD_CLEANUP_GRACE_SECONDS = env_int("ASSAY_UPLOAD_CLEANUP_GRACE_SECONDS", 3600)
ASSAY_UPLOAD_CLEANUP_INTERVAL_SECONDS = env_int("ASSAY_UPLOAD_CLEANUP_INTERVAL_SECONDS", 600)

# Evidence: a bias report or PII scan on a dataset of more than ASSAY_EVIDENCE_CHUNK_ROWS rows is split into
# chunks of that many rows, computed by as many jobs in parallel and merged exactly.
ASSAY_EVIDENCE_CHUNK_ROWS = env_int("ASSAY_EVIDENCE_CHUNK_ROWS", 1_000_000)
# Secret salt of the PII scrub's `hash` operator; without it a salt is derived from DJANGO_SECRET_KEY.
ASSAY_PII_HASH_SALT = env("ASSAY_PII_HASH_SALT", "")
# A version whose declared accuracy (metrics.accuracy) differs from the accuracy its bias report measured by
# more than this (absolute) is flagged on its page and in the API.
ASSAY_METRIC_TOLERANCE = float(env("ASSAY_METRIC_TOLERANCE", "0.05"))
# Archives the web checks and the workers open (skops zips, Parquet's compressed pages) are refused before
# inflating when they would expand past ASSAY_ARCHIVE_MAX_BYTES, hold more than ASSAY_ARCHIVE_MAX_MEMBERS
# members, or expand more than ASSAY_ARCHIVE_MAX_RATIO times their stored size (past 16 MiB).
ASSAY_ARCHIVE_MAX_BYTES = env_int("ASSAY_ARCHIVE_MAX_BYTES", 1024 * 1024 * 1024)
ASSAY_ARCHIVE_MAX_MEMBERS = env_int("ASSAY_ARCHIVE_MAX_MEMBERS", 10_000)
ASSAY_ARCHIVE_MAX_RATIO = env_int("ASSAY_ARCHIVE_MAX_RATIO", 100)

# Releases: an open request (pending evidence or approval) expires after this many hours; an approval
# for a production environment must be renewed after the months given per risk tier ("tier=months,...").
ASSAY_RELEASE_REQUEST_TTL_HOURS = env_int("ASSAY_RELEASE_REQUEST_TTL_HOURS", 7 * 24)
ASSAY_REVALIDATION_MONTHS = env("ASSAY_REVALIDATION_MONTHS", "high=12,limited=24,minimal=36")
ASSAY_RELEASE_EXPIRY_INTERVAL_SECONDS = env_int("ASSAY_RELEASE_EXPIRY_INTERVAL_SECONDS", 300)
# The gate's ?wait= long poll: the longest a request may wait (larger asks are clamped; 0 turns waiting
# off) and how often a waiting request reads the stored state (each read: a few indexed SELECTs).
ASSAY_GATE_MAX_WAIT = float(env("ASSAY_GATE_MAX_WAIT", "60"))
ASSAY_GATE_POLL_SECONDS = float(env("ASSAY_GATE_POLL_SECONDS", "1"))

# Deployments (apps.deployments, worker/rollouts.py): how often the periodic tick queues the rollouts whose
# next look is due, how often a rollout waiting for readiness looks again, how long a step's new version
# has to become ready before the rollout rolls back, and the key that encrypts targets' credentials at rest
# (without it a key is derived from DJANGO_SECRET_KEY, with a purpose of its own).
ASSAY_DEPLOY_TICK_SECONDS = float(env("ASSAY_DEPLOY_TICK_SECONDS", "3"))
ASSAY_DEPLOY_POLL_SECONDS = float(env("ASSAY_DEPLOY_POLL_SECONDS", "2"))
ASSAY_DEPLOY_READY_TIMEOUT_SECONDS = float(env("ASSAY_DEPLOY_READY_TIMEOUT_SECONDS", "300"))
# How often the reconciler reads back every target and flags what no approved, current release accounts for.
ASSAY_DEPLOY_RECONCILE_SECONDS = float(env("ASSAY_DEPLOY_RECONCILE_SECONDS", "60"))
ASSAY_CREDENTIALS_ENCRYPTION_KEY = env("ASSAY_CREDENTIALS_ENCRYPTION_KEY", "")

# Outbound webhooks (apps.notifications): the key that encrypts their signing secrets at rest (without it a key
# is derived from DJANGO_SECRET_KEY), the HTTP timeout, and the retry schedule: attempt n waits
# min(MAX_DELAY, BASE * 2**(n-1)) seconds, times a random factor in [1 - JITTER, 1 + JITTER].
ASSAY_WEBHOOK_ENCRYPTION_KEY = env("ASSAY_WEBHOOK_ENCRYPTION_KEY", "")
# The dashboard's external address (https://assay.example.com) for links in webhook payloads; else paths.
ASSAY_PUBLIC_URL = env("ASSAY_PUBLIC_URL", "")
ASSAY_WEBHOOK_TIMEOUT_SECONDS = float(env("ASSAY_WEBHOOK_TIMEOUT_SECONDS", "10"))
ASSAY_WEBHOOK_MAX_ATTEMPTS = env_int("ASSAY_WEBHOOK_MAX_ATTEMPTS", 8)
ASSAY_WEBHOOK_RETRY_BASE_SECONDS = float(env("ASSAY_WEBHOOK_RETRY_BASE_SECONDS", "30"))
ASSAY_WEBHOOK_RETRY_MAX_DELAY_SECONDS = float(env("ASSAY_WEBHOOK_RETRY_MAX_DELAY_SECONDS", "3600"))
ASSAY_WEBHOOK_RETRY_JITTER = float(env("ASSAY_WEBHOOK_RETRY_JITTER", "0.2"))
ASSAY_WEBHOOK_DISPATCH_INTERVAL_SECONDS = env_int("ASSAY_WEBHOOK_DISPATCH_INTERVAL_SECONDS", 5)

# Caches hold rate-limit counters and the audit trail's flood counts, so they must be shared by every
# process: Redis (ASSAY_CACHE_URL=redis://...), or on one machine a folder (file:///path; by default
# var/cache): no database write per request, which on SQLite would queue every read behind the
# write lock. ASSAY_CACHE_URL=database keeps it in the database's assay_cache table.
_cache_url = env("ASSAY_CACHE_URL") or ""
_cache_folder = unquote(urlparse(_cache_url).path) if _cache_url.startswith("file:") else str(VAR_DIR / "cache")
CACHES = {
    "default": (
        {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": _cache_url}
        if _cache_url.startswith("redis")
        else {"BACKEND": "django.core.cache.backends.db.DatabaseCache", "LOCATION": "assay_cache"}
        if _cache_url == "database"
        else {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": _cache_folder,
            "OPTIONS": {"MAX_ENTRIES": 2000},
        }
    )
}

# Rate limits (apps/core/throttling.py): "<n>/<second|minute|hour|day>", or "off". Anonymous API
# requests per client address, authenticated ones per principal; sign-in attempts per address and
# per account (on top of the lockout after ASSAY_LOGIN_MAX_FAILURES failures in a row).
ASSAY_ANON_RATE = env("ASSAY_ANON_RATE", "120/minute")
ASSAY_USER_RATE = env("ASSAY_USER_RATE", "1200/minute")
ASSAY_LOGIN_ADDRESS_RATE = env("ASSAY_LOGIN_ADDRESS_RATE", "30/minute")
ASSAY_LOGIN_ACCOUNT_RATE = env("ASSAY_LOGIN_ACCOUNT_RATE", "10/minute")
# Behind one reverse proxy that appends the client's address to X-Forwarded-For: believe its last entry.
ASSAY_TRUST_X_FORWARDED_FOR = env_bool("ASSAY_TRUST_X_FORWARDED_FOR", False)

# Celery: the broker is a courier; job state lives in our tables. The embedded default, database://, has no
# broker at all: workers (python -m worker) poll the job table and a wake-up file. Production points this at
# Redis or RabbitMQ and runs Celery workers and one beat.
_filesystem_broker = VAR_DIR / "broker"
CELERY_BROKER_URL = env("CELERY_BROKER_URL", "database://")
if CELERY_BROKER_URL.startswith("redis://"):
    CELERY_BROKER_TRANSPORT = "controlplane.broker:Transport"  # kombu's, reusing its Redis client
elif CELERY_BROKER_URL.startswith("filesystem://"):
    CELERY_BROKER_TRANSPORT = "controlplane.broker:FilesystemTransport"  # kombu's, without its write race
CELERY_BROKER_TRANSPORT_OPTIONS = (
    {
        "data_folder_in": str(_filesystem_broker / "queue"),
        "data_folder_out": str(_filesystem_broker / "queue"),
        "control_folder": str(_filesystem_broker / "control"),
        "processed_folder": str(_filesystem_broker / "processed"),
        "store_processed": False,
        "polling_interval": 0.1,
    }
    if CELERY_BROKER_URL.startswith("filesystem")
    else {"visibility_timeout": 3600}
)
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_BACKEND = None
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ALWAYS_EAGER = env_bool("ASSAY_CELERY_EAGER", False)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_IMPORTS = ["worker.heartbeat"]  # every Celery worker writes a heartbeat (read by /api/v1/health/)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "apps.accounts.authentication.BearerTokenAuthentication",
        "apps.accounts.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "apps.core.negotiation.ContentNegotiation",
    "DEFAULT_PARSER_CLASSES": [
        "apps.core.parsers.JSONParser",  # DRF's, bounded: ASSAY_MAX_JSON_BYTES, ASSAY_MAX_JSON_DEPTH
        "rest_framework.parsers.MultiPartParser",
        "rest_framework.parsers.FormParser",
    ],
    "DEFAULT_PAGINATION_CLASS": "apps.core.pagination.Pagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "apps.core.api.exceptions.api_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_THROTTLE_CLASSES": [
        "apps.core.throttling.AnonymousRateThrottle",
        "apps.core.throttling.PrincipalRateThrottle",
    ],
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Assay API",
    "DESCRIPTION": "ML governance control plane: registry, evidence, policies, releases and the audit trail.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # Every operation's problem+json error answers, declared in one place (docs/api.md).
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "apps.core.api.schema.declare_problem_responses",
    ],
    "ENUM_NAME_OVERRIDES": {
        "ArtifactFormatEnum": "apps.registry.choices.ArtifactFormat",
        "DatasetFormatEnum": "apps.registry.choices.DatasetFormat",
        "VersionStatusEnum": "apps.registry.choices.VersionStatus",
        "DatasetStatusEnum": "apps.registry.choices.DatasetStatus",
        "TokenStatusEnum": ["active", "expired", "revoked"],
        "AccessReviewDecisionEnum": ["attest", "revoke"],
        "DecisionEnum": "apps.releases.choices.ApprovalDecision",  # its name before access reviews had a decision
        "RoleEnum": "apps.registry.choices.ColumnRole",  # a dataset column's role, kept apart from AccessRoleEnum
        "AccessRoleEnum": "apps.rbac.roles.Role",
        "EvidenceRunStatusEnum": "apps.evidence.choices.RunStatus",
        "EvidenceKindEnum": "apps.evidence.choices.EvidenceKind",
        "DeploymentStateEnum": "apps.deployments.choices.DeploymentState",
        "TargetKindEnum": "apps.deployments.choices.TargetKind",
        "DeploymentKindEnum": "apps.deployments.choices.DeploymentKind",
    },
}

# Error reports (the DJANGO_DEBUG=1 error page, mailed reports) never show settings, headers, the
# process environment or variables (apps/core/reporting.py).
DEFAULT_EXCEPTION_REPORTER = "apps.core.reporting.PlainExceptionReporter"
DEFAULT_EXCEPTION_REPORTER_FILTER = "apps.core.reporting.RevealNothingFilter"

LOG_LEVEL = env("ASSAY_LOG_LEVEL", "INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # WeasyPrint logs every layout step and page at INFO, and fontTools every subset: a report's PDF
        # would fill the worker's log. Their warnings and errors (a refused resource) still show.
        "weasyprint": {"level": "WARNING"},
        "fontTools": {"level": "WARNING"},
    },
}
