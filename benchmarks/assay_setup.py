"""Set-up for the registration benchmark: the environment Assay runs with, the operator steps, small HTTP helpers."""

from __future__ import annotations

import argparse
import json
import os
import secrets
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import servers

ROOT = servers.ROOT
MODEL = "bench-model"
TEAM = "bench"
USER = "bench-ci"
REF_BUCKET = "assay-bench-artifacts"


def log(message: str) -> None:
    print(f"==> {message}", flush=True)


def assay_env(args: argparse.Namespace, work: Path, database_url: str) -> dict:
    """The environment every Assay process of the run shares (storage is added per load)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k in {"PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "VIRTUAL_ENV", "PYTHONPATH"}
    }
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "controlplane.settings",
            "DJANGO_DEBUG": "0",
            "DJANGO_SECRET_KEY": secrets.token_urlsafe(48),
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
            "DATABASE_URL": database_url,
            "CELERY_BROKER_URL": args.broker,
            "ASSAY_CACHE_URL": args.cache,
            # The load comes from one CI account on purpose: its per-principal rate limit would cap it.
            "ASSAY_USER_RATE": "off",
            "ASSAY_VAR_DIR": str(work / "var"),
            "ASSAY_ALLOWED_S3_BUCKETS": REF_BUCKET,
            "ASSAY_LOG_LEVEL": "WARNING",
            # No S3 server runs: any accidental S3 call fails fast on a closed loopback port.
            "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench-secret",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_EC2_METADATA_DISABLED": "true",
            "PYTHONDONTWRITEBYTECODE": "1",
        }
    )
    return env


def storage_env(load: str, work: Path) -> dict:
    """JSON registrations reference ``s3://`` URIs only; uploads are stored in a local folder."""
    if load == "json":
        return {"ASSAY_STORAGE_URL": f"s3://{REF_BUCKET}/assay"}
    folder = work / "artifacts"
    folder.mkdir(parents=True, exist_ok=True)
    return {"ASSAY_STORAGE_URL": folder.as_uri()}


def manage(env: dict, *argv: str, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *argv],
        cwd=ROOT,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        check=check,
    )


_SETUP_WITH_SERVICES = """
from apps.accounts import services as accounts
from apps.accounts.models import Team, User
from apps.core.principals import Principal
from apps.rbac import services as rbac
system = Principal.system("assay-bench")
team = Team.objects.filter(name=TEAM).first() or accounts.team_create(actor=system, name=TEAM)
user = User.objects.filter(username=USER).first() or accounts.user_create(actor=system, username=USER, password=None)
rbac.role_grant(actor=system, subject=user, role="contributor", team=team)
token, full = accounts.token_create(actor=system, name="bench", user=user, scopes=["read", "registry:write"])
print(full)
"""


def create_principals(env: dict) -> tuple[str, str]:
    """Team, user, team-scoped contributor role and token; returns (token, how it was done)."""
    available = manage(env, "help", "--commands").stdout.split()
    wanted = {"user_create", "team_create", "role_grant", "token_create"}
    if wanted <= set(available):
        try:
            manage(env, "team_create", TEAM)
            manage(env, "user_create", USER, "--password-stdin", stdin=secrets.token_urlsafe(24) + "\n")
            manage(env, "role_grant", "--user", USER, "--role", "contributor", "--team", TEAM)
            out = manage(env, "token_create", "--user", USER, "--scopes", "read,registry:write").stdout
            return out.strip().splitlines()[-1].strip(), "operator commands"
        except subprocess.CalledProcessError as exc:
            log(f"operator command failed ({exc.cmd[2:]}: {exc.stderr.strip()[-300:]}); using the services")
    code = f"TEAM={TEAM!r}\nUSER={USER!r}\n" + _SETUP_WITH_SERVICES
    out = manage(env, "shell", "-c", code).stdout
    return out.strip().splitlines()[-1].strip(), "account services (operator commands missing)"


def http(method: str, url: str, *, token: str | None = None, body: bytes | None = None, content_type: str = ""):
    """One request; returns (status, parsed JSON or text)."""
    req = urllib.request.Request(url, data=body, method=method)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    if content_type:
        req.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            status, raw = resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
    try:
        return status, json.loads(raw or b"null")
    except ValueError:
        return status, raw.decode(errors="replace")[:500]


def multipart(fields: dict, file_field: str, filename: str, data: bytes) -> tuple[bytes, str]:
    boundary = "assaybench" + secrets.token_hex(12)
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode() for k, v in fields.items()
    ]
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{file_field}"; filename="{filename}"\r\n'
        f"Content-Type: application/octet-stream\r\n\r\n".encode()
        + data
        + b"\r\n"
    )
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"
