"""Cheap format checks on uploaded bytes, run in the web process before anything is stored.

These read magic numbers, archive listings, headers and the top level of a
protobuf message: enough to refuse pickles and unknown bytes at once (415 with
a reason) without importing onnxruntime or skops here. The worker loads each
accepted artifact fully afterwards and marks it invalid if it does not load.

Model formats: ONNX, skops, XGBoost (JSON or UBJ), LightGBM text. Pickle in
any wrapping (plain, joblib's compressed pickles, zip archives holding
``*.pkl`` such as PyTorch ``.pt`` files) is refused: loading a pickle runs code.
Dataset formats: CSV, JSON Lines, Parquet, with their column names.
"""

from __future__ import annotations

import bz2
import csv
import io
import json
import lzma
import struct
import zipfile
import zlib
from dataclasses import dataclass
from typing import IO

from apps.core.errors import UnsupportedContent, ValidationFailed

from . import parquet_footer
from .archives import ArchiveRefused, check_bounds, check_zip
from .choices import ArtifactFormat, DatasetFormat

HEAD_BYTES = 64 * 1024

# Top-level fields of onnx.ModelProto (onnx/onnx.proto3) and the wire type each must have.
_ONNX_FIELDS = {
    1: 0,  # ir_version: int64
    2: 2,  # producer_name
    3: 2,  # producer_version
    4: 2,  # domain
    5: 0,  # model_version: int64
    6: 2,  # doc_string
    7: 2,  # graph: GraphProto
    8: 2,  # opset_import (repeated)
    14: 2,  # metadata_props (repeated)
    20: 2,  # training_info (repeated)
    25: 2,  # functions (repeated)
    26: 2,  # configuration (repeated)
}
_ONNX_MAX_IR_VERSION = 64


class Refused(UnsupportedContent):
    """Bytes that match no accepted format (415), with the reason people see."""


def _refuse(reason: str) -> Refused:
    return Refused(reason)


# ---------------------------------------------------------------------------------------------
# Pickle in its wrappings


def _looks_like_pickle(data: bytes) -> bool:
    # Protocol 2+ pickles start with PROTO (0x80) and the protocol number.
    return len(data) >= 2 and data[0] == 0x80 and 2 <= data[1] <= 5


def _decompressed_head(data: bytes) -> tuple[str, bytes] | None:
    """(compression, first decompressed bytes) when ``data`` starts like a compressed stream."""
    try:
        if len(data) >= 2 and data[0] == 0x78 and data[1] in (0x01, 0x5E, 0x9C, 0xDA):
            return "zlib", zlib.decompressobj().decompress(data, 64)
        if data[:2] == b"\x1f\x8b":
            return "gzip", zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(data, 64)
        if data[:3] == b"BZh":
            return "bz2", bz2.BZ2Decompressor().decompress(data, 64)
        if data[:6] == b"\xfd7zXZ\x00" or data[:3] == b"\x5d\x00\x00":
            return "lzma", lzma.LZMADecompressor().decompress(data, 64)
    except (zlib.error, OSError, EOFError, lzma.LZMAError, ValueError):
        return None
    if data[:4] == b"\x04\x22\x4d\x18":
        return "lz4", b""
    return None


_PICKLE_REASON = "Pickle files are refused: loading one runs arbitrary code. Export the model as {hint}."
_EXPORT_HINT = "ONNX, skops (scikit-learn), XGBoost JSON/UBJ or LightGBM text"


def _check_not_pickle(head: bytes) -> None:
    if _looks_like_pickle(head):
        raise _refuse("This is a Python pickle. " + _PICKLE_REASON.format(hint=_EXPORT_HINT))
    compressed = _decompressed_head(head)
    if compressed is not None:
        kind, inner = compressed
        if _looks_like_pickle(inner):
            raise _refuse(
                f"This is a {kind}-compressed pickle (as joblib writes). " + _PICKLE_REASON.format(hint=_EXPORT_HINT)
            )
        raise _refuse(f"{kind}-compressed data is not an accepted format; upload the uncompressed model file.")


# ---------------------------------------------------------------------------------------------
# Model formats


def _read_varint(fh: IO[bytes]) -> int | None:
    result = 0
    for shift in range(0, 70, 7):
        byte = fh.read(1)
        if not byte:
            return None
        result |= (byte[0] & 0x7F) << shift
        if not byte[0] & 0x80:
            return result
    return None


def _is_onnx(fh: IO[bytes], size: int) -> bool:
    """Walk ModelProto's top-level fields to the end of the file; require ir_version and graph."""
    fh.seek(0)
    seen: set[int] = set()
    ir_version = None
    while fh.tell() < size:
        key = _read_varint(fh)
        if key is None:
            return False
        number, wire = key >> 3, key & 7
        expected = _ONNX_FIELDS.get(number)
        if expected is None or expected != wire:
            return False
        if wire == 0:
            value = _read_varint(fh)
            if value is None:
                return False
            if number == 1:
                ir_version = value
        else:
            length = _read_varint(fh)
            if length is None or fh.tell() + length > size:
                return False
            fh.seek(length, io.SEEK_CUR)
        seen.add(number)
    return ir_version is not None and 1 <= ir_version <= _ONNX_MAX_IR_VERSION and 7 in seen


def _zip_format(fh: IO[bytes]) -> ArtifactFormat:
    try:
        check_zip(fh, what="The zip archive")
    except ArchiveRefused as exc:
        raise _refuse(f"{exc}.")
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise _refuse(f"The zip archive cannot be read ({exc}).")
    fh.seek(0)
    try:
        with zipfile.ZipFile(fh) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise _refuse(f"The zip archive cannot be read ({exc}).")
    pickles = [n for n in names if n.lower().endswith((".pkl", ".pickle")) or n.rsplit("/", 1)[-1] == "data.pkl"]
    if pickles:
        raise _refuse(
            f"The zip archive carries pickled data ({pickles[0]}), as PyTorch .pt and similar files do. "
            + _PICKLE_REASON.format(hint=_EXPORT_HINT)
        )
    if "schema.json" in names:
        return ArtifactFormat.SKOPS
    raise _refuse("The zip archive is not a skops file (it has no schema.json).")


def _json_top_level_keys(text: str, wanted: str) -> bool:
    """True when ``text`` (the head of a JSON document) is an object with key ``wanted`` at the top level."""
    depth = 0
    in_string = False
    escaped = False
    start = 0
    i = 0
    n = len(text)
    while i < n:
        ch = text[i]
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
                if depth == 1:
                    rest = text[i + 1 : i + 64].lstrip()
                    if rest.startswith(":") and json.loads(text[start : i + 1]) == wanted:
                        return True
        elif ch == '"':
            in_string = True
            start = i
        elif ch in "{[":
            depth += 1
        elif ch in "}]":
            depth -= 1
            if depth == 0:
                return False
        i += 1
    return False


_UBJ_LENGTH = {b"i": ">b", b"U": ">B", b"I": ">h", b"l": ">i", b"L": ">q"}


def _ubj_first_key(head: bytes) -> str | None:
    """The first key of a UBJSON object (XGBoost's binary model format)."""
    if head[:1] != b"{":
        return None
    pos = 1
    if head[pos : pos + 1] in (b"$", b"#"):
        return None  # optimised containers are not what XGBoost writes for its model object
    marker = head[pos : pos + 1]
    fmt = _UBJ_LENGTH.get(marker)
    if fmt is None:
        return None
    width = struct.calcsize(fmt)
    try:
        (length,) = struct.unpack(fmt, head[pos + 1 : pos + 1 + width])
    except struct.error:
        return None
    if not 0 < length <= 64:
        return None
    raw = head[pos + 1 + width : pos + 1 + width + length]
    try:
        return raw.decode("ascii")
    except UnicodeDecodeError:
        return None


def detect_model_format(fh: IO[bytes], size: int) -> ArtifactFormat:
    """Name the artifact's format from its bytes, or raise ``Refused`` (415) saying why not."""
    fh.seek(0)
    head = fh.read(HEAD_BYTES)
    if not head:
        raise _refuse("The artifact is empty.")
    _check_not_pickle(head)
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        return _zip_format(fh)
    stripped = head.lstrip()
    if stripped[:1] == b"{":
        if head[:1] == b"{" and _ubj_first_key(head) == "learner":
            return ArtifactFormat.XGBOOST
        try:
            text = stripped.decode("utf-8", errors="strict")
        except UnicodeDecodeError:
            text = stripped.decode("utf-8", errors="ignore")
        if _json_top_level_keys(text, "learner"):
            return ArtifactFormat.XGBOOST
        raise _refuse('This JSON document is not an XGBoost model (no top-level "learner" object).')
    if head.startswith(b"tree") and b"version=v" in head[:4096]:
        return ArtifactFormat.LIGHTGBM
    if _is_onnx(fh, size):
        return ArtifactFormat.ONNX
    raise _refuse(f"The artifact's bytes match no accepted format ({_EXPORT_HINT}).")


def check_model(fh: IO[bytes], size: int, declared: str | None) -> ArtifactFormat:
    """Detect the format and make sure it is the one declared (when one was)."""
    if declared == ArtifactFormat.PREDICTIONS_ONLY:
        raise ValidationFailed(
            "A predictions_only version has no artifact: register it without a file, with an evaluation dataset.",
            errors={"format": ["predictions_only takes no artifact."]},
        )
    detected = detect_model_format(fh, size)
    if declared and declared != detected:
        raise _refuse(f"The artifact was declared as {declared} but its bytes are {detected}.")
    return detected


# ---------------------------------------------------------------------------------------------
# Datasets


@dataclass(frozen=True)
class DatasetShape:
    """What the cheap check learned: the format and the column names (with types where the file says)."""

    format: DatasetFormat
    columns: list[str]
    types: dict[str, str]


_PAR1 = b"PAR1"


def _first_line(fh: IO[bytes]) -> str:
    fh.seek(0)
    raw = fh.readline(HEAD_BYTES)
    if b"\x00" in raw:
        raise _refuse("The dataset is binary, not CSV, JSON Lines or Parquet.")
    try:
        return raw.decode("utf-8-sig").rstrip("\r\n")
    except UnicodeDecodeError:
        raise _refuse("The dataset's first line is not UTF-8 text.")


def _json_type(value) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int64"
    if isinstance(value, float):
        return "double"
    if isinstance(value, str):
        return "string"
    return "json"


def _parquet_shape(fh: IO[bytes], size: int) -> DatasetShape:
    """Columns and types from the footer, read without pyarrow (the web process never imports it)."""
    fh.seek(max(0, size - 4))
    if size < 12 or fh.read(4) != _PAR1:
        raise _refuse("The Parquet file is truncated (no PAR1 footer).")
    try:
        types, uncompressed = parquet_footer.read_footer(fh, size)
    except (parquet_footer.FooterError, OSError) as exc:
        raise _refuse(f"The Parquet footer cannot be read ({exc}).")
    try:
        check_bounds(members=0, expanded=uncompressed, stored=size, what="The Parquet file")
    except ArchiveRefused as exc:
        raise _refuse(f"{exc}.")
    return DatasetShape(format=DatasetFormat.PARQUET, columns=list(types), types=types)


def _jsonl_shape(line: str) -> DatasetShape:
    try:
        first = json.loads(line)
    except json.JSONDecodeError as exc:
        raise _refuse(f"The first line is not a JSON object ({exc.msg}).")
    if not isinstance(first, dict) or not first:
        raise _refuse("The first line of a JSON Lines dataset must be a non-empty JSON object.")
    return DatasetShape(
        format=DatasetFormat.JSONL, columns=list(first), types={k: _json_type(v) for k, v in first.items()}
    )


def _csv_shape(line: str) -> DatasetShape:
    if not line.strip():
        raise _refuse("The CSV file has no header line.")
    header = next(csv.reader([line]))
    names = [h.strip() for h in header]
    if any(not n for n in names):
        raise _refuse("The CSV header has an empty column name.")
    if len(set(names)) != len(names):
        raise _refuse("The CSV header repeats a column name.")
    return DatasetShape(format=DatasetFormat.CSV, columns=names, types={})


def detect_dataset(fh: IO[bytes], size: int, declared: str | None) -> DatasetShape:
    """Detect a dataset's format and columns; refuse what is none of CSV, JSON Lines, Parquet."""
    fh.seek(0)
    head = fh.read(HEAD_BYTES)
    if not head:
        raise _refuse("The dataset is empty.")
    _check_not_pickle(head)
    if head[:4] == b"PK\x03\x04":
        raise _refuse("Zip archives are not an accepted dataset format (CSV, JSON Lines or Parquet).")
    if head[:4] == _PAR1:
        shape = _parquet_shape(fh, size)
    else:
        line = _first_line(fh)
        shape = _jsonl_shape(line) if line.lstrip().startswith("{") else _csv_shape(line)
    if declared and declared != shape.format:
        raise _refuse(f"The dataset was declared as {declared} but its bytes are {shape.format}.")
    return shape


def check_declared_columns(shape_columns: list[str], schema: list[dict]) -> None:
    """Every declared column must be in the file: 400 naming the missing ones."""
    present = set(shape_columns)
    missing = [c["name"] for c in schema if c["name"] not in present]
    if missing:
        raise ValidationFailed(
            f"Declared column(s) missing from the file: {', '.join(missing)}.",
            errors={"schema": [f"missing column: {name}" for name in missing]},
            extra={"missing_columns": missing},
        )
