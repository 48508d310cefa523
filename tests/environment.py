"""Test-run environment defaults, loaded as a pytest plugin (-p) before Django reads its settings.

Settings come only from the environment; these defaults give the embedded
setup (SQLite file database, filesystem broker, local storage) under a
throwaway folder, unless the caller (``.ci/run``) points at real servers.
"""

import os
import tempfile

_run_dir = os.environ.setdefault("ASSAY_VAR_DIR", tempfile.mkdtemp(prefix="assay-test-"))
os.makedirs(os.path.join(_run_dir, "staticfiles"), exist_ok=True)  # whitenoise warns when STATIC_ROOT is missing
os.environ.setdefault("DJANGO_SECRET_KEY", "test-only-secret-key-not-for-production-0123456789")
os.environ.setdefault("DJANGO_ALLOWED_HOSTS", "testserver,127.0.0.1,localhost")
os.environ.setdefault("ASSAY_SECURE_COOKIES", "0")
# The Celery process tests run on a broker: the filesystem folder unless the caller names Redis or RabbitMQ.
# (The embedded default, database://, has no broker; tests/worker/test_standalone.py runs that worker.)
os.environ.setdefault("CELERY_BROKER_URL", "filesystem://")
# Fast password hashing keeps the suite quick; production keeps PBKDF2.
os.environ.setdefault("ASSAY_PASSWORD_HASHERS", "django.contrib.auth.hashers.MD5PasswordHasher")
