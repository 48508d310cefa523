"""The web process reads a Parquet upload's columns from its footer without pyarrow: the same columns
and, for plain types, the same type names as pyarrow; a damaged footer is refused, never a crash."""

from __future__ import annotations

import contextlib
import datetime
import io
import random

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from apps.registry import parquet_footer, sniffing
from tests.registry import artifacts

PLAIN = {
    "age": pa.array([31, 47], pa.int64()),
    "income": pa.array([1.5, 2.5]),
    "name": pa.array(["a", "b"]),
    "flag": pa.array([True, False]),
    "small": pa.array([1, 2], pa.int8()),
    "count": pa.array([1, 2], pa.uint16()),
    "ratio": pa.array([0.5, 0.25], pa.float32()),
    "day": pa.array([datetime.date(2025, 1, 1)] * 2),
    "at": pa.array([datetime.datetime(2025, 1, 1)] * 2, pa.timestamp("us")),
    "at_ms": pa.array([datetime.datetime(2025, 1, 1)] * 2, pa.timestamp("ms")),
    "raw": pa.array([b"a", b"b"]),
    "empty": pa.array([None, None], pa.string()),
}
NESTED = {"tags": pa.array([[1, 2], [3]]), "point": pa.array([{"x": 1, "y": [1]}, {"x": 2, "y": []}])}


def _parquet(columns: dict, **kwargs) -> bytes:
    out = io.BytesIO()
    pq.write_table(pa.table(columns), out, **kwargs)
    return out.getvalue()


@pytest.mark.parametrize("version", ["1.0", "2.4", "2.6"])
@pytest.mark.parametrize("compression", ["snappy", "none"])
def test_the_footer_gives_pyarrow_s_columns_and_plain_types(version, compression):
    # given a file with plain and nested columns, nested ones between plain ones
    data = _parquet({**dict(list(PLAIN.items())[:3]), **NESTED, **PLAIN}, version=version, compression=compression)
    # when its footer is read
    columns = parquet_footer.read_schema(io.BytesIO(data), len(data))
    # then the columns are pyarrow's, in order, and plain types are named as pyarrow names them
    arrow = {f.name: str(f.type) for f in pq.read_schema(io.BytesIO(data))}
    assert list(columns) == list(arrow)
    assert {k: columns[k] for k in PLAIN} == {k: arrow[k] for k in PLAIN}
    assert (columns["tags"], columns["point"]) == ("list", "struct")


def test_a_parquet_upload_is_sniffed_with_the_footer_reader():
    data = artifacts.parquet_bytes()
    shape = sniffing.detect_dataset(io.BytesIO(data), len(data), None)
    assert (shape.format, shape.columns) == ("parquet", artifacts.COLUMNS)
    assert shape.types == {f.name: str(f.type) for f in pq.read_schema(io.BytesIO(data))}


def test_a_damaged_footer_is_refused_and_never_crashes():
    data = _parquet(PLAIN)
    length = int.from_bytes(data[-8:-4], "little")
    start = len(data) - 8 - length
    rng = random.Random(7)
    for _ in range(300):
        damaged = bytearray(data)
        for _ in range(rng.randint(1, 4)):
            damaged[rng.randrange(start, len(data) - 8)] = rng.randrange(256)
        # a damaged byte may still parse (as another name or type) or be refused; nothing else may happen
        with contextlib.suppress(parquet_footer.FooterError):
            parquet_footer.read_schema(io.BytesIO(bytes(damaged)), len(damaged))
    for cut in (9, 100, length // 2):
        truncated = data[:start] + data[start + cut :]
        with pytest.raises(sniffing.Refused):
            sniffing.detect_dataset(io.BytesIO(truncated), len(truncated), None)
