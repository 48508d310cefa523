"""Evidence fixtures: a ready scored dataset with real bytes, a predictions-only version on it, role clients."""

from __future__ import annotations

import random

import pytest

import worker.tasks  # noqa: F401 - registers every job handler
from apps.demo import artifacts as demo
from apps.registry import services as registry
from tests.registry import fixtures
from tests.registry.fixtures import job_of, upload
from worker.runner import run_job

# The registry's fixtures: cora, contributor on the 'credit' team, and her model 'churn'.
contributor = fixtures.contributor
contributor_principal = fixtures.contributor_principal
model = fixtures.model

COLUMNS = ["id", "sex", "region", "income", "label", "prediction"]
SCHEMA = [
    {"name": "id", "type": "int", "role": "identifier"},
    {"name": "sex", "type": "string", "role": "sensitive"},
    {"name": "region", "type": "string", "role": "sensitive"},
    {"name": "income", "type": "double", "role": "feature"},
    {"name": "label", "type": "int", "role": "label"},
    {"name": "prediction", "type": "int", "role": "prediction"},
]


def scored_rows(n: int = 400, seed: int = 7, labels=(0, 1)) -> list[dict]:
    """Rows with two sensitive columns whose groups are scored differently (so disparities are not zero)."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        sex = rng.choice(["F", "M"])
        region = rng.choice(["north", "south", "east"])
        truth = rng.random() < 0.4
        hit = rng.random() < (0.8 if sex == "M" else 0.6)
        predicted = truth if hit else not truth
        rows.append(
            {
                "id": i,
                "sex": sex,
                "region": region,
                "income": round(rng.uniform(1000, 9000), 2),
                "label": labels[int(truth)],
                "prediction": labels[int(predicted)],
            }
        )
    return rows


def csv_of(rows: list[dict], columns: list[str] = COLUMNS) -> bytes:
    lines = [",".join(columns)] + [",".join(str(r[c]) for c in columns) for r in rows]
    return ("\n".join(lines) + "\n").encode()


@pytest.fixture
def run(django_capture_on_commit_callbacks):
    """run(job_id) -> runs a job as a worker would, after-commit work included."""

    def go(job_id: int) -> str:
        with django_capture_on_commit_callbacks(execute=True):
            return run_job(job_id)

    return go


@pytest.fixture
def make_dataset(contributor_principal, team, run):
    """make_dataset(rows, schema=..., verify=True) -> a dataset registered with real CSV bytes (verified: ready)."""

    def make(rows: list[dict] | None = None, *, schema=SCHEMA, columns=COLUMNS, verify: bool = True, name="scored"):
        dataset = registry.dataset_create(
            actor=contributor_principal,
            name=name,
            owner_team=team,
            file=upload(csv_of(rows if rows is not None else scored_rows(), columns), "scored.csv"),
            schema=schema,
        )
        if verify:
            assert run(job_of(dataset).pk) == "succeeded"
            dataset.refresh_from_db()
            assert dataset.status == "ready", dataset.status_reason
        return dataset

    return make


@pytest.fixture
def dataset(make_dataset):
    return make_dataset()


@pytest.fixture
def version(contributor_principal, model, dataset, run):
    """Version 1 of 'churn': predictions only, evaluated on the scored dataset; ready."""
    version = registry.version_create(
        actor=contributor_principal, model_name="churn", format="predictions_only", evaluation_dataset_id=dataset.pk
    )
    run(job_of(version).pk)
    version.refresh_from_db()
    assert version.status == "ready", version.status_reason
    return version


@pytest.fixture
def unscored(contributor_principal, team, run):
    """unscored(data, name) -> a ready dataset with feature, sensitive and label columns and no prediction column."""

    def make(data: demo.DemoData, name: str = "unscored"):
        dataset = registry.dataset_create(
            actor=contributor_principal,
            name=name,
            owner_team=team,
            file=upload(data.csv_bytes(), f"{name}.csv"),
            schema=data.schema(),
        )
        assert run(job_of(dataset).pk) == "succeeded"
        dataset.refresh_from_db()
        assert dataset.status == "ready", dataset.status_reason
        return dataset

    return make


@pytest.fixture
def loaded_version(contributor_principal, model, run):
    """loaded_version(artifact, fmt, dataset) -> the next ready version of 'churn' holding a real artifact."""

    def make(artifact: bytes, fmt: str, dataset):
        version = registry.version_create(
            actor=contributor_principal,
            model_name="churn",
            artifact=upload(artifact, f"model.{fmt}"),
            format=fmt,
            evaluation_dataset_id=dataset.pk,
        )
        assert run(job_of(version).pk) == "succeeded"
        version.refresh_from_db()
        assert version.status == "ready", version.status_reason
        return version

    return make


def read_download(body: bytes) -> tuple[dict[str, str], list[dict]]:
    """A downloaded evidence table: its preamble (``# name: value`` lines) and its rows as dicts.

    The first line says how many comment lines come before the header row; exactly those are skipped.
    """
    import csv
    import io
    import re

    text = body.decode()
    first = text.split("\n", 1)[0]
    match = re.fullmatch(r"# assay\.evidence-csv/v1: (\d+) comment lines, then the table's header row", first)
    assert match, first
    lines = text.split("\n")
    count = int(match.group(1))
    preamble = dict(line[2:].split(": ", 1) for line in lines[1:count])
    assert all(line.startswith("# ") for line in lines[:count])
    return preamble, list(csv.DictReader(io.StringIO("\n".join(lines[count:]))))
