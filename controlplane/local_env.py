"""``var/local.env``: the settings of a local checkout that nobody has to export.

``scripts/run`` writes it once, with a generated ``DJANGO_SECRET_KEY`` (mode 0600, git-ignored with
the rest of ``var/``), and the settings read it when it is there, so ``manage.py`` commands run in
the checkout (``token_create``, ``role_grant``, ``audit_verify``) use the same secret key, database
and audit signing key as the running control plane, without any environment. A variable set in
the environment always wins over the file. A production install has no such file: there a missing
``DJANGO_SECRET_KEY`` still stops the start.

Run as a script (``python controlplane/local_env.py PATH``) it creates the file if it is missing.
"""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path

HEADER = (
    "# Settings of this local checkout, read by controlplane/settings.py when present.\n"
    "# Written once by scripts/run; never copy this file to a production host.\n"
)


def read(path: Path) -> dict[str, str]:
    """``KEY=VALUE`` lines (blank lines and ``#`` comments skipped); {} when there is no file."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    values = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, value = line.split("=", 1)
        values[key.strip()] = value.strip()
    return values


def create(path: Path) -> bool:
    """Write the file with a fresh secret key unless it exists; True when written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(HEADER + f"DJANGO_SECRET_KEY={secrets.token_urlsafe(50)}\n")
    return True


if __name__ == "__main__":
    target = Path(sys.argv[1])
    if create(target):
        print(f"==> wrote {target} with a generated secret key")
