"""The web process's cheap format checks: what they accept, what they refuse and why."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from apps.registry import sniffing
from tests.registry import artifacts


def detect(data: bytes) -> str:
    return sniffing.detect_model_format(io.BytesIO(data), len(data))


@pytest.mark.parametrize(
    "make, fmt",
    [
        (artifacts.onnx_bytes, "onnx"),
        (artifacts.skops_bytes, "skops"),
        (artifacts.xgboost_json_bytes, "xgboost"),
        (artifacts.xgboost_ubj_bytes, "xgboost"),
        (artifacts.lightgbm_bytes, "lightgbm"),
    ],
)
def test_accepted_model_formats_are_recognised(make, fmt):
    assert detect(make()) == fmt


@pytest.mark.parametrize("compress", [3, ("gzip", 3), ("bz2", 3), ("lzma", 3), ("xz", 3)])
def test_joblib_files_are_refused_whatever_their_compression(compress):
    with pytest.raises(sniffing.Refused, match="pickle"):
        detect(artifacts.joblib_bytes(compress))


def test_a_zip_that_is_not_skops_is_refused():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("weights.bin", b"\x00" * 10)
    with pytest.raises(sniffing.Refused, match="no schema.json"):
        detect(buffer.getvalue())


def test_a_skops_looking_zip_carrying_a_pickle_is_refused():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("schema.json", "{}")
        archive.writestr("extra.pkl", b"\x80\x04")
    with pytest.raises(sniffing.Refused, match="extra.pkl"):
        detect(buffer.getvalue())


def test_a_truncated_onnx_file_is_refused():
    data = artifacts.onnx_bytes()
    with pytest.raises(sniffing.Refused, match="no accepted format"):
        detect(data[: len(data) // 2])


def test_text_that_is_not_a_model_is_refused():
    with pytest.raises(sniffing.Refused):
        detect(b"hello, world\n" * 10)


def test_a_dataset_header_is_read_from_csv_jsonl_and_parquet():
    for make, fmt in [
        (artifacts.csv_bytes, "csv"),
        (artifacts.jsonl_bytes, "jsonl"),
        (artifacts.parquet_bytes, "parquet"),
    ]:
        data = make()
        shape = sniffing.detect_dataset(io.BytesIO(data), len(data), None)
        assert (shape.format, shape.columns) == (fmt, artifacts.COLUMNS)


def test_a_truncated_parquet_file_is_refused():
    data = artifacts.parquet_bytes()[:-10]
    with pytest.raises(sniffing.Refused, match="PAR1"):
        sniffing.detect_dataset(io.BytesIO(data), len(data), None)


def test_the_web_process_never_imports_the_model_runtimes():
    # given: a fresh interpreter that loads the settings, the URLs and the registry's web code
    code = (
        "import django, sys; django.setup();"
        "import controlplane.urls, apps.registry.services, apps.registry.api.views, apps.registry.sniffing;"
        "heavy = [m for m in ('onnxruntime', 'skops', 'xgboost', 'lightgbm', 'onnx', 'sklearn') if m in sys.modules];"
        "print(','.join(heavy))"
    )
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "controlplane.settings", "PYTHONPATH": str(root)}
    # when
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=root, env=env, capture_output=True, text=True, timeout=120
    )
    # then
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""
