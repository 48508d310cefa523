"""Operator commands run as the manual shows them (docs/access.md, docs/audit.md), in a checkout
with no environment at all: ``var/local.env`` (written by scripts/run) gives them the secret key,
and the database and audit signing key resolve under the checkout's var/ as for the running
control plane. Without that file and without DJANGO_SECRET_KEY, the settings refuse to start, as a
production host must."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from controlplane import local_env

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]


@pytest.fixture
def checkout(tmp_path) -> Path:
    """A checkout of its own: settings and manage.py copied (BASE_DIR is where the settings file is),
    the code linked; no var/ yet."""
    root = tmp_path / "checkout"
    root.mkdir()
    shutil.copytree(ROOT / "controlplane", root / "controlplane", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy2(ROOT / "manage.py", root / "manage.py")
    for name in ("apps", "worker", "templates", "static"):
        (root / name).symlink_to(ROOT / name)
    return root


def clean_env(**extra: str) -> dict[str, str]:
    """Nothing of the test run's environment: no DJANGO_*, no ASSAY_*, no DATABASE_URL."""
    return {"PATH": os.environ["PATH"], "LANG": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1", **extra}


def manage(root: Path, *args: str, env: dict[str, str] | None = None, stdin: str | None = None):
    return subprocess.run(
        [sys.executable, str(root / "manage.py"), *args],
        cwd="/",  # from anywhere: paths resolve from the checkout, not the working directory
        env=env if env is not None else clean_env(),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=180,
    )


def test_readme_operator_commands_work_in_a_checkout_without_environment(checkout):
    assert local_env.create(checkout / "var" / "local.env")  # what scripts/run does on its first start
    assert not local_env.create(checkout / "var" / "local.env")  # and never again
    assert (checkout / "var" / "local.env").stat().st_mode & 0o777 == 0o600

    for args in (
        ("check",),
        ("migrate", "--noinput", "--verbosity", "0"),
        ("audit_keygen", "--if-missing"),
        ("user_create", "alice"),
        ("role_grant", "--user", "alice", "--role", "viewer"),
        ("audit_checkpoint",),
    ):
        done = manage(checkout, *args)
        assert done.returncode == 0, (args, done.stderr[-2000:])
    token = manage(checkout, "token_create", "--user", "alice", "--scopes", "read")
    verify = manage(checkout, "audit_verify")

    assert token.returncode == 0, token.stderr[-2000:]
    assert token.stdout.strip().splitlines()[-1].startswith("assay_")
    assert verify.returncode == 0, verify.stdout + verify.stderr[-2000:]
    # the same places scripts/run uses: the checkout's var/
    assert (checkout / "var" / "assay.sqlite3").exists()
    assert (checkout / "var" / "keys" / "audit-ed25519.pem").exists()


@pytest.mark.parametrize("debug", [None, "0"])
def test_without_a_key_or_a_local_file_the_settings_refuse(checkout, debug):
    env = clean_env() if debug is None else clean_env(DJANGO_DEBUG=debug)

    done = manage(checkout, "check", env=env)

    assert done.returncode != 0
    assert "ImproperlyConfigured" in done.stderr and "DJANGO_SECRET_KEY must be set" in done.stderr
    assert not (checkout / "var" / "local.env").exists()  # nothing invents a key on its own


def test_the_environment_wins_over_the_local_file(checkout):
    local_env.create(checkout / "var" / "local.env")
    shown = [
        "shell",
        "-c",
        "from django.conf import settings; print(settings.SECRET_KEY == 'from-the-environment-' * 3)",
    ]

    done = manage(checkout, *shown, env=clean_env(DJANGO_SECRET_KEY="from-the-environment-" * 3))

    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "True"
