"""Datasets: register an upload or an s3:// reference, with a role per column; verify again."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from apps.accounts.models import Team
from apps.audit import services as audit
from apps.core.errors import NotFound, ValidationFailed
from apps.core.principals import Principal
from apps.core.storage import Stored, parse_reference
from apps.jobs import services as jobs
from apps.jobs.models import Job
from apps.rbac import services as rbac

from .. import sniffing
from ..choices import ColumnRole, DatasetFormat, DatasetStatus
from ..models import Dataset
from ..uploads import Spooled, spool
from .common import author, clean_sha256, delete_quietly, resolve_team, save_bytes, visible_datasets
from .retry import refuse_unless_stuck, restart_verification

VERIFY_DATASET = "registry.verify_dataset"
_COLUMN_TYPE_MAX = 64


def _clean_schema(schema: Any) -> list[dict]:
    if schema is None:
        return []
    if not isinstance(schema, list):
        raise ValidationFailed("schema: expected a list of {name, type, role}.", errors={"schema": ["Not a list."]})
    out, seen = [], set()
    for i, column in enumerate(schema):
        if not isinstance(column, dict) or not isinstance(column.get("name"), str) or not column["name"].strip():
            raise ValidationFailed(f"schema[{i}]: each column needs a name.", errors={"schema": [f"item {i}"]})
        name = column["name"].strip()
        role = column.get("role") or ColumnRole.FEATURE
        if role not in ColumnRole.values:
            raise ValidationFailed(
                f"schema[{i}] ({name}): role must be one of {', '.join(ColumnRole.values)}.",
                errors={"schema": [f"{name}: unknown role {role!r}"]},
            )
        column_type = str(column.get("type") or "")[:_COLUMN_TYPE_MAX]
        if name in seen:
            raise ValidationFailed(f"schema: column {name!r} is declared twice.", errors={"schema": [name]})
        seen.add(name)
        out.append({"name": name, "type": column_type, "role": role})
    return out


def _dataset_format_from_key(key: str) -> str | None:
    lowered = key.lower()
    for suffix, fmt in ((".csv", "csv"), (".parquet", "parquet"), (".pq", "parquet"), (".jsonl", "jsonl")):
        if lowered.endswith(suffix):
            return fmt
    if lowered.endswith(".ndjson"):
        return "jsonl"
    return None


def dataset_create(
    *,
    actor: Principal,
    name: str,
    owner_team: Team | str,
    file: Any = None,
    uri: str = "",
    format: str = "",
    schema: list[dict] | None = None,
    description: str = "",
    sha256: str = "",
    source_id: int | None = None,
) -> Dataset:
    """Register a dataset from an upload or an ``s3://`` reference, with a role per column.

    An upload's format and columns are checked here (415 for unknown bytes, 400
    naming declared columns missing from the file); a worker then reads it fully
    (job ``registry.verify_dataset``). Audited ``dataset.created``.
    """
    team = resolve_team(owner_team, actor=actor)
    rbac.require(actor, "registry.dataset_create", team, audit_action="dataset.created")
    name = (name or "").strip()
    if not name or len(name) > 200:
        raise ValidationFailed("name: required, at most 200 characters.", errors={"name": ["Required."]})
    fmt = (format or "").strip() or None
    if fmt is not None and fmt not in DatasetFormat.values:
        raise ValidationFailed(
            f"format must be one of {', '.join(DatasetFormat.values)}.", errors={"format": ["Unknown format."]}
        )
    if (file is None) == (not uri):
        raise ValidationFailed("Send either a file or a uri (s3://), not both and not neither.")
    columns = _clean_schema(schema)
    expected = clean_sha256(sha256)
    source = visible_datasets(actor, [source_id], "source")[0] if source_id else None

    spooled: Spooled | None = None
    ref_uri = ""
    if uri:
        ref = parse_reference(uri, field="uri")
        ref_uri = ref.uri
        fmt = fmt or _dataset_format_from_key(ref.key)
        if fmt is None:
            raise ValidationFailed(
                "format is required for a uri whose name does not end in .csv, .parquet or .jsonl.",
                errors={"format": ["Required."]},
            )
    else:
        spooled = spool(file)

    stored: Stored | None = None
    try:
        digest, size = expected, None
        if spooled is not None:
            with spooled.open() as fh:
                shape = sniffing.detect_dataset(fh, spooled.size, fmt)
            fmt = shape.format
            if columns:
                sniffing.check_declared_columns(shape.columns, columns)
            else:
                columns = [
                    {"name": c, "type": shape.types.get(c, ""), "role": ColumnRole.FEATURE} for c in shape.columns
                ]
            if expected and expected != spooled.sha256:
                raise ValidationFailed(
                    f"The uploaded file's sha256 is {spooled.sha256}, not the expected {expected}.",
                    errors={"sha256": ["Does not match the upload."]},
                )
            digest, size = spooled.sha256, spooled.size
            stored = save_bytes(spooled, kind="datasets")
        with transaction.atomic():
            dataset = Dataset.objects.create(
                name=name,
                owner_team=team,
                description=description or "",
                uri=stored.key if stored else ref_uri,
                is_reference=bool(ref_uri),
                format=fmt,
                sha256=digest,
                size=size,
                schema=columns,
                source=source,
                **author(actor),
            )
            audit.record(
                action="dataset.created",
                actor=actor,
                target=dataset,
                related=team,
                after={
                    "name": name,
                    "format": fmt,
                    "uri": dataset.uri,
                    "is_reference": dataset.is_reference,
                    "sha256": digest,
                    "size": size,
                    "schema": columns,
                },
                artifact_sha256=digest,
            )
            dataset.verification_job = jobs.job_enqueue(
                kind=VERIFY_DATASET, target=dataset, params={"dataset_id": dataset.pk}, actor=actor
            )
            Dataset.objects.filter(pk=dataset.pk).update(verification_job=dataset.verification_job)
    except BaseException:
        if stored is not None:
            delete_quietly(stored.key)
        raise
    finally:
        if spooled is not None:
            spooled.close()
    return dataset


@transaction.atomic
def dataset_reverify(*, actor: Principal, dataset_id: int) -> Dataset:
    """Verify a dataset again whose verification job failed without deciding it (storage unreachable, ...).

    The same rules as ``version_reverify``: pending with a failed or cancelled job, else 409;
    row locked, so concurrent retries create one job. Same permission as registering.
    Audited ``dataset.verification_requested``; the new job is sent after commit. Once it
    settles the dataset, predictions-only versions waiting on it are settled too.
    """
    dataset = Dataset.objects.select_for_update(of=("self",)).select_related("owner_team").filter(pk=dataset_id).first()
    if dataset is None:
        raise NotFound(f"No dataset {dataset_id}.")
    rbac.require(actor, "registry.dataset_create", dataset, audit_action="dataset.verification_requested")
    previous = Job.objects.filter(pk=dataset.verification_job_id).first()  # read under the lock
    refuse_unless_stuck(dataset, previous, label=f"dataset {dataset.pk} ({dataset.name})")
    restart_verification(
        dataset,
        previous,
        actor=actor,
        kind=VERIFY_DATASET,
        params={"dataset_id": dataset.pk},
        action="dataset.verification_requested",
        related=dataset.owner_team,
    )
    return dataset


def dataset_create_derived(
    *,
    actor: Principal,
    source: Dataset,
    name: str,
    stored: Stored,
    format: str,
    row_count: int,
    schema: list[dict],
    description: str,
    reason: str,
) -> Dataset:
    """Register a dataset a worker wrote from ``source`` (a scrubbed copy): ready at once, linked to its source.

    Runs in the caller's transaction (the worker's, which records what produced it). The bytes
    were written and hashed by the worker, so there is nothing left to verify. Same team as
    the source, so it is visible exactly where the source is. Audited ``dataset.created``.
    """
    dataset = Dataset.objects.create(
        name=name[:200],
        owner_team_id=source.owner_team_id,
        description=description,
        uri=stored.key,
        is_reference=False,
        format=format,
        status=DatasetStatus.READY,
        sha256=stored.sha256,
        size=stored.size,
        row_count=row_count,
        schema=schema,
        source=source,
        **author(actor),
    )
    audit.record(
        action="dataset.created",
        actor=actor,
        target=dataset,
        related=source,
        after={
            "name": dataset.name,
            "format": format,
            "uri": dataset.uri,
            "sha256": stored.sha256,
            "size": stored.size,
            "row_count": row_count,
            "source": source.pk,
            "status": DatasetStatus.READY,
        },
        reason=reason,
        artifact_sha256=stored.sha256,
    )
    return dataset
