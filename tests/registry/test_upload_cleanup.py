"""The cleanup of interrupted uploads: what counts as abandoned (writer gone, or untouched past the grace).

The end-to-end case, a real server killed mid-upload, is tests/core/test_interrupted_uploads.py.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

import pytest

from apps.core.storage import get_storage
from apps.registry import uploads
from apps.registry.cleanup import uploads_cleanup
from worker.schedule import beat_schedule

HOST = socket.gethostname()


@pytest.fixture
def spool(settings, tmp_path) -> Path:
    folder = tmp_path / "spool"
    folder.mkdir()
    settings.FILE_UPLOAD_TEMP_DIR = str(folder)
    return folder


@pytest.fixture
def storage(settings) -> Path:
    root = Path(urlparse(settings.ASSAY_STORAGE_URL).path)
    (root / "artifacts").mkdir(parents=True)
    return root


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def age(path: Path, seconds: float) -> Path:
    then = time.time() - seconds
    os.utime(path, (then, then))
    return path


def test_files_of_a_dead_writer_go_at_once_and_live_ones_stay(spool, storage):
    # given leftovers of a process that is gone, and files a live process (this one) is writing
    gone = dead_pid()
    spooled_dead = spool / f"assay-{gone}@{HOST}-abc123_x.upload"
    partial_dead = storage / "artifacts" / f".0f1e2d.{gone}@{HOST}.partial"
    spooled_live = spool / f"assay-{os.getpid()}@{HOST}-def456.upload"
    partial_live = storage / "artifacts" / f".9a8b7c.{os.getpid()}@{HOST}.partial"
    complete = storage / "artifacts" / "0f1e2d"
    for path in (spooled_dead, partial_dead, spooled_live, partial_live, complete):
        path.write_bytes(b"bytes")

    # when the cleanup runs
    report = uploads_cleanup()

    # then only the dead writer's files are gone; the complete artifact is untouched
    assert sorted(report.removed) == sorted([str(spooled_dead), str(partial_dead)])
    assert report.kept == 2
    assert spooled_live.exists() and partial_live.exists() and complete.read_bytes() == b"bytes"


def test_files_untouched_past_the_grace_go_whoever_wrote_them(spool, storage, settings):
    # given files of a writer on another host (its pid means nothing here), one old and one fresh, and an
    # old file named before owners were recorded
    settings.ASSAY_UPLOAD_CLEANUP_GRACE_SECONDS = 600
    old_remote = storage / "artifacts" / ".aa11.4242@other-host.partial"
    fresh_remote = storage / "artifacts" / ".bb22.4242@other-host.partial"
    old_unowned = spool / "assay-k2j3h4.upload"
    for path in (fresh_remote, old_unowned):
        path.write_bytes(b"x")
    old_remote.write_bytes(b"x")
    age(old_remote, 601)
    age(old_unowned, 601)

    # when the cleanup runs
    report = uploads_cleanup()

    # then the old ones are gone and the fresh one stays
    assert sorted(report.removed) == sorted([str(old_remote), str(old_unowned)])
    assert fresh_remote.exists()


def test_uploads_spool_into_the_projects_folder_named_for_their_writer(spool):
    spooled = uploads._spool_file()
    try:
        name = Path(spooled.name)
        assert name.parent == spool
        assert name.name.startswith(f"assay-{os.getpid()}@{HOST}-") and name.name.endswith(".upload")
    finally:
        spooled.close()


def test_the_storage_writes_under_a_partial_name_the_cleanup_recognises(storage, tmp_path):
    # a save interrupted by an error removes its partial itself; the name is what a killed writer leaves
    class Boom:
        def read(self, _n: int) -> bytes:
            raise RuntimeError("client went away")

    with pytest.raises(RuntimeError):
        get_storage().save(Boom(), kind="artifacts")
    assert not list(storage.rglob(".*.partial"))


def test_the_worker_cleans_up_periodically(settings):
    schedule = beat_schedule()
    assert schedule["registry-cleanup-uploads"] == {
        "task": "registry.cleanup_uploads",
        "schedule": float(settings.ASSAY_UPLOAD_CLEANUP_INTERVAL_SECONDS),
    }
