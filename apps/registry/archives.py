"""Bounds on what an archive may expand to, checked before anything is inflated.

The upload limit counts stored (compressed) bytes; a 254 KiB zip can hold a 256 MiB member.
Every archive the web checks or a worker opens goes through here first: skops files (zip
archives) and Parquet datasets (whose pages are compressed). The checks read only the zip's
central directory or the Parquet footer:

- more than ``ASSAY_ARCHIVE_MAX_MEMBERS`` zip entries is refused;
- a declared expanded size above ``ASSAY_ARCHIVE_MAX_BYTES`` is refused;
- past 16 MiB, an expanded size more than ``ASSAY_ARCHIVE_MAX_RATIO`` times the stored size is
  refused (a model's arrays do not compress a hundredfold; a bomb's zeros do).

The declared sizes are what the readers honour: Python's ``zipfile`` (which skops uses) stops
inflating a member at the size its central directory declares and fails the CRC check if more
was hidden, so a member cannot expand past the size checked here.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import IO

from django.conf import settings

MIB = 1024 * 1024
RATIO_FLOOR = 16 * MIB  # below this, any compression ratio is harmless


class ArchiveRefused(ValueError):
    """An archive that would expand past the configured bounds; the message says which and by how much."""


def _mib(n: int) -> str:
    return f"{n / MIB:.0f} MiB" if n >= MIB else f"{n / 1024:.0f} KiB"


def check_bounds(*, members: int, expanded: int, stored: int, what: str = "archive") -> None:
    """Refuse ``members`` entries expanding to ``expanded`` bytes from ``stored`` bytes when past the limits."""
    max_members = int(settings.ASSAY_ARCHIVE_MAX_MEMBERS)
    max_bytes = int(settings.ASSAY_ARCHIVE_MAX_BYTES)
    max_ratio = int(settings.ASSAY_ARCHIVE_MAX_RATIO)
    if members > max_members:
        raise ArchiveRefused(f"{what} has more than {max_members} members ({members})")
    if expanded > max_bytes:
        raise ArchiveRefused(f"{what} expands to more than {_mib(max_bytes)} ({_mib(expanded)} from {_mib(stored)})")
    if expanded > RATIO_FLOOR and expanded > max_ratio * max(stored, 1):
        raise ArchiveRefused(
            f"{what} expands to more than {max_ratio} times its size ({_mib(expanded)} from {_mib(stored)})"
        )


def _declared_entries(fh: IO[bytes]) -> int | None:
    """The entry count in the zip's end-of-central-directory record, read before the directory itself."""
    try:
        record = zipfile._EndRecData(fh)  # the stdlib's own reader of that record (zip64 included)
    except OSError:
        return None
    if not record:
        return None
    return int(record[zipfile._ECD_ENTRIES_TOTAL])


def check_zip(source: str | Path | IO[bytes], *, what: str = "archive") -> int:
    """Refuse a zip archive that would expand past the bounds; returns its expanded size in bytes.

    ``source`` is a path or a seekable binary file (left at an unspecified position).
    ``zipfile.BadZipFile`` propagates for bytes that are not a zip archive.
    """
    if isinstance(source, str | Path):
        with open(source, "rb") as fh:
            return check_zip(fh, what=what)
    fh = source
    fh.seek(0, 2)
    stored = fh.tell()
    declared = _declared_entries(fh)
    if declared is not None:
        # refused before the central directory is parsed: a million entries cost memory to list
        check_bounds(members=declared, expanded=0, stored=stored, what=what)
    fh.seek(0)
    with zipfile.ZipFile(fh) as archive:
        infos = archive.infolist()
    expanded = sum(info.file_size for info in infos)
    check_bounds(members=len(infos), expanded=expanded, stored=stored, what=what)
    return expanded


def check_parquet_metadata(metadata, *, stored: int, what: str = "Parquet file") -> int:
    """Refuse a Parquet file whose footer declares more uncompressed bytes than allowed.

    ``metadata`` is a ``pyarrow.parquet.FileMetaData``; returns the declared uncompressed size of
    its column chunks (encoded, before compression). Row groups are not counted as members: a
    long table legitimately has many.
    """
    expanded = 0
    for i in range(metadata.num_row_groups):
        group = metadata.row_group(i)
        expanded += sum(group.column(j).total_uncompressed_size for j in range(group.num_columns))
    check_bounds(members=0, expanded=expanded, stored=stored, what=what)
    return expanded
