"""Remove what interrupted uploads leave behind: spooled copies and half-written artifacts.

An upload is spooled to ``FILE_UPLOAD_TEMP_DIR`` (``assay-<pid>@<host>-*.upload``) while it is
hashed, then copied into artifact storage under a temporary name beside its final one
(``.<key>.<pid>@<host>.partial``) and renamed into place. A web process killed in between leaves
these files behind; nothing else ever deletes them. A file is removed when

- the process named in it is gone (same host, no such pid), or
- it has not been written for ``ASSAY_UPLOAD_CLEANUP_GRACE_SECONDS`` (a writer on another host,
  or a file named before owners were recorded).

A live upload is never touched: its writer is alive and its file is being written. So the cleanup
is safe to run at any time and from any number of processes: at start (``manage.py
cleanup_uploads``, which ``scripts/run`` calls) and periodically by the worker
(``registry.cleanup_uploads``). Complete artifacts never match these names. S3 storage leaves no
partial objects (an object appears only when its upload completes).
"""

from __future__ import annotations

import logging
import os
import re
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings

from apps.core.storage import FolderStorage, get_storage

logger = logging.getLogger(__name__)

SPOOL = re.compile(r"^assay-(?:(?P<pid>\d+)@(?P<host>.+)-)?[a-z0-9_]+\.upload$")
PARTIAL = re.compile(r"^\.(?P<key>[^/]+?)(?:\.(?P<pid>\d+)@(?P<host>.+))?\.partial$")


@dataclass
class CleanupReport:
    """What one cleanup pass removed (paths) and how many leftovers it kept because their writer may be alive."""

    removed: list[str] = field(default_factory=list)
    kept: int = 0
    freed_bytes: int = 0


def _pid_alive(pid: int) -> bool:
    """Whether a process with this id runs on this machine (a zombie, killed but not yet reaped, does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            state = stat.read().rsplit(b")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state not in (b"Z", b"X")


def _abandoned(path: Path, match: re.Match, *, host: str, cutoff: float) -> bool:
    try:
        mtime = path.stat().st_mtime
    except FileNotFoundError:
        return False
    if mtime < cutoff:
        return True
    pid = match.group("pid")
    return bool(pid) and match.group("host") == host and int(pid) != os.getpid() and not _pid_alive(int(pid))


def _candidates() -> list[tuple[Path, re.Match]]:
    found: list[tuple[Path, re.Match]] = []
    spool = settings.FILE_UPLOAD_TEMP_DIR
    if spool and os.path.isdir(spool):
        for entry in os.scandir(spool):
            match = SPOOL.match(entry.name)
            if match and entry.is_file(follow_symlinks=False):
                found.append((Path(entry.path), match))
    storage = get_storage()
    if isinstance(storage, FolderStorage) and storage.root.is_dir():
        for folder, _dirs, files in os.walk(storage.root):
            for name in files:
                match = PARTIAL.match(name) if name.startswith(".") else None
                if match:
                    found.append((Path(folder) / name, match))
    return found


def uploads_cleanup(*, grace_seconds: float | None = None) -> CleanupReport:
    """Delete spooled uploads and partial artifacts whose writer is gone or that are older than the grace period."""
    grace = settings.ASSAY_UPLOAD_CLEANUP_GRACE_SECONDS if grace_seconds is None else grace_seconds
    cutoff = time.time() - grace
    host = socket.gethostname()
    report = CleanupReport()
    for path, match in _candidates():
        if not _abandoned(path, match, host=host, cutoff=cutoff):
            report.kept += 1
            continue
        try:
            size = path.stat().st_size
            path.unlink()
        except FileNotFoundError:  # another cleanup got there first
            continue
        report.removed.append(str(path))
        report.freed_bytes += size
        logger.info("removed %s (%d bytes) left by an interrupted upload", path, size)
    return report
