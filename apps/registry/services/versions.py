"""Model versions: register (upload, s3:// reference or predictions only), retire, verify again."""

from __future__ import annotations

import re
from typing import Any

from django.db import IntegrityError, connections, router, transaction
from django.urls import get_script_prefix, reverse

from apps.audit import services as audit
from apps.core.errors import Conflict, InvalidTransition, NotFound, ValidationFailed
from apps.core.models import PreparedInsert, first_or_none, hot_cursor, written_together
from apps.core.principals import Principal
from apps.jobs import services as jobs
from apps.jobs.models import Job
from apps.rbac import services as rbac

from .. import sniffing
from ..choices import ArtifactFormat, ColumnRole, VersionStatus
from ..models import ModelVersion, RegisteredModel
from ..storage import Stored, parse_reference
from ..uploads import Spooled, spool
from .common import (
    RowByUniqueField,
    author,
    clean_sha256,
    delete_quietly,
    ensure_json_object,
    save_bytes,
    visible_datasets,
)
from .retry import refuse_unless_stuck, restart_verification

VERIFY_VERSION = "registry.verify_version"
_SLUG = re.compile(r"[-a-zA-Z0-9_]+")


class DuplicateArtifact(Conflict):
    """The model already has a version with this artifact digest (409): CI retries are safe."""

    code = "duplicate_artifact"
    title = "Artifact already registered"


_NAME_MARK, _NUMBER_MARK = "assay-name-mark", 987654321
_version_paths: dict[str, tuple[str, str, str]] = {}  # script prefix -> the path around name and number


def version_url(model_name: str, number: int) -> str:
    """The API path of a version: ``reverse()``'s answer, from a template built once per script
    prefix (each registration answers with it twice). Model names are slugs, which the path
    carries as they are; any other name takes ``reverse()`` itself."""
    prefix = get_script_prefix()
    parts = _version_paths.get(prefix)
    if parts is None:
        marked = reverse("api:registry-version-detail", kwargs={"name": _NAME_MARK, "number": _NUMBER_MARK})
        head, rest = marked.split(_NAME_MARK)
        middle, tail = rest.split(str(_NUMBER_MARK))
        parts = _version_paths[prefix] = (head, middle, tail)
    if not _SLUG.fullmatch(model_name) or type(number) is not int:
        return reverse("api:registry-version-detail", kwargs={"name": model_name, "number": number})
    head, middle, tail = parts
    return f"{head}{model_name}{middle}{number}{tail}"


def _refuse_duplicate(model: RegisteredModel, sha256: str) -> None:
    if not sha256:
        return
    existing = first_or_none(
        ModelVersion.objects.filter(model=model, sha256=sha256)
        .exclude(status=VersionStatus.INVALID)
        .values_list("number", "status")
    )
    if existing is not None:
        number, status = existing
        url = version_url(model.name, number)
        raise DuplicateArtifact(
            f"This artifact (sha256 {sha256}) is already version {number} of model {model.name!r} "
            f"(status {status}): {url}",
            extra={"existing_version": number, "existing_version_url": url, "sha256": sha256},
        )


def _clean_metrics(metrics: Any) -> dict:
    metrics = metrics or {}
    if not isinstance(metrics, dict):
        raise ValidationFailed("metrics: expected an object of name -> number.", errors={"metrics": ["Not an object."]})
    bad = [k for k, v in metrics.items() if isinstance(v, bool) or not isinstance(v, int | float)]
    if bad:
        raise ValidationFailed(
            f"metrics: values must be numbers ({', '.join(map(str, bad))}).",
            errors={"metrics": [f"not a number: {k}" for k in bad]},
        )
    return {str(k): v for k, v in metrics.items()}


_model_by_name = RowByUniqueField(RegisteredModel, "name")
_new_version = PreparedInsert(ModelVersion)
_new_version_with_id = PreparedInsert(ModelVersion, with_pk=True)


def _visible_model_for(actor: Principal, model_name: str, permission: str, audit_action: str) -> RegisteredModel:
    # Prebuilt SQL (see RowByUniqueField); no owner_team join: rbac needs only owner_team_id.
    model = _model_by_name.get(model_name)
    if model is None:
        raise NotFound(f"No model named {model_name!r}.")
    rbac.require(actor, permission, model, audit_action=audit_action)
    return model


# Numbering. Each model keeps the last number it handed out (``last_version_number``); a
# registration draws the next one with a single UPDATE ... RETURNING, which also refuses the draw
# when the model already has a live version with the artifact's digest (so a CI retry, answered
# 409, uses no number). Outside a transaction (every API request) the draw commits on its own, so
# the model's row is locked for that one statement only, never across the registration's inserts
# and their commit; registrations to one model then run side by side. The price: a registration
# that fails after its draw (a database error, or an identical registration racing it, which the
# unique index on (model, sha256) turns into a 409) leaves its number unused. Inside an outer
# transaction (tests, scripts) the draw is part of it and rolls back with it.
#
# The draw commits with synchronous_commit off: it saves a WAL flush per registration, and it is
# safe because no one sees a drawn number until the version row that uses it commits, and that
# commit's synchronous flush covers the earlier draw in the WAL. A crash before then forgets both.
#
# GREATEST(..., MAX(number)) keeps the counter ahead of any row written without a draw (fixtures,
# imports). These statements are plain SQL, built once per database, because they run on every
# registration; the registry tests exercise them on SQLite and PostgreSQL.


def _draw_sql(connection, *, own_transaction: bool) -> str:
    quote = connection.ops.quote_name
    models_table, versions_table = quote(RegisteredModel._meta.db_table), quote(ModelVersion._meta.db_table)
    postgresql = connection.vendor == "postgresql"
    greatest = "GREATEST" if postgresql else "MAX"  # SQLite's scalar MAX
    relaxed = own_transaction and postgresql
    # PostgreSQL also hands out the ids of the version row and of its job from their sequences, so
    # the version row can point at its job as both are inserted, in one statement (no UPDATE after).
    version_id = ""
    if postgresql:
        sequences = []
        with connection.cursor() as cursor:
            for model in (ModelVersion, Job):
                cursor.execute("SELECT pg_get_serial_sequence(%s, %s)", [model._meta.db_table, "id"])
                sequences.append(cursor.fetchone()[0])
        if all(sequences):
            version_id = "".join(f", nextval('{seq.replace(chr(39), chr(39) * 2)}'::regclass)" for seq in sequences)
    return (
        f"UPDATE {models_table} SET last_version_number = {greatest}(last_version_number,"
        f" COALESCE((SELECT MAX(v.number) FROM {versions_table} v WHERE v.model_id = {models_table}.id), 0)) + 1"
        + (" FROM (SELECT set_config('synchronous_commit', 'off', true)) AS relaxed" if relaxed else "")
        + f" WHERE {models_table}.id = %s AND NOT EXISTS (SELECT 1 FROM {versions_table} d"
        # The status is written out, not a parameter: the prepared statement's generic plan can then
        # use the partial unique index on (model, sha256), whose condition names that status.
        f" WHERE d.model_id = %s AND d.sha256 = %s AND d.sha256 <> '' AND d.status <> '{VersionStatus.INVALID.value}')"
        f" RETURNING last_version_number{version_id}"
    )


_draw_statements: dict[tuple[str, bool], str] = {}


def _draw_number(model: RegisteredModel, digest: str) -> tuple[int, int | None, int | None]:
    """The model's next version number and, on PostgreSQL, the ids of the new version and of its job;
    or DuplicateArtifact (409) when the digest is taken."""
    connection = connections[router.db_for_write(ModelVersion)]
    own_transaction = not connection.in_atomic_block
    key = (connection.alias, own_transaction)
    sql = _draw_statements.get(key)
    if sql is None:
        sql = _draw_statements[key] = _draw_sql(connection, own_transaction=own_transaction)
    with hot_cursor(connection) as cursor:
        cursor.execute(sql, [model.pk, model.pk, digest or ""])
        row = cursor.fetchone()
    if row is None:
        _refuse_duplicate(model, digest)  # names the version and its status
        raise NotFound(f"No model named {model.name!r}.")  # deleted meanwhile
    return (row[0], row[1], row[2]) if len(row) > 2 else (row[0], None, None)


def _set_verification_job(version_id: int, job_id: int) -> None:
    """Point the new version at its verification job (the job row needs the version's id first)."""
    connection = connections[router.db_for_write(ModelVersion)]
    table = connection.ops.quote_name(ModelVersion._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {table} SET verification_job_id = %s WHERE id = %s", [job_id, version_id])


def version_create(
    *,
    actor: Principal,
    model_name: str,
    artifact: Any = None,
    artifact_uri: str = "",
    sha256: str = "",
    format: str = "",
    description: str = "",
    metrics: dict | None = None,
    source_repository: str = "",
    source_commit: str = "",
    ci_run_url: str = "",
    training_dataset_ids: list[int] | tuple = (),
    evaluation_dataset_id: int | None = None,
    model_card: dict | None = None,
) -> ModelVersion:
    """Register the next version of a model: an uploaded artifact, an ``s3://`` reference, or predictions only.

    Refusals leave nothing behind: bad bytes are 415 before storing, a digest the
    model already has is 409 naming that version, and stored bytes are removed if
    the transaction fails. Audited ``model_version.created``; a worker verifies the
    version after commit (job ``registry.verify_version``).

    The bytes are stored before the number is drawn, and the number is drawn in a
    statement of its own (see ``_draw_number``), so no lock is held during an upload
    or across the registration's transaction.
    """
    model = _visible_model_for(actor, model_name, "registry.version_create", "model_version.created")
    fmt = (format or "").strip() or None
    if fmt is not None and fmt not in ArtifactFormat.values:
        raise ValidationFailed(
            f"format must be one of {', '.join(ArtifactFormat.values)}.", errors={"format": ["Unknown format."]}
        )
    if artifact is not None and artifact_uri:
        raise ValidationFailed("Send either an artifact file or an artifact_uri, not both.")
    expected = clean_sha256(sha256)
    metrics = _clean_metrics(metrics)
    model_card = ensure_json_object(model_card, "model_card")
    training = visible_datasets(actor, list(training_dataset_ids or []), "training_datasets")
    evaluation = (
        visible_datasets(actor, [evaluation_dataset_id], "evaluation_dataset")[0] if evaluation_dataset_id else None
    )

    ref_uri = ""
    spooled: Spooled | None = None
    if fmt == ArtifactFormat.PREDICTIONS_ONLY or (artifact is None and not artifact_uri):
        if artifact is not None or artifact_uri:
            raise ValidationFailed("A predictions_only version has no artifact.")
        if fmt != ArtifactFormat.PREDICTIONS_ONLY:
            raise ValidationFailed(
                "Send an artifact file, an artifact_uri (s3://), "
                "or format=predictions_only with an evaluation dataset.",
                errors={"artifact": ["Required."]},
            )
        if evaluation is None:
            raise ValidationFailed(
                "A predictions_only version needs an evaluation dataset with a prediction column.",
                errors={"evaluation_dataset": ["Required for predictions_only."]},
            )
        if not any(c.get("role") == ColumnRole.PREDICTION for c in evaluation.schema):
            raise ValidationFailed(
                f"Evaluation dataset {evaluation.pk} has no column with role 'prediction'.",
                errors={"evaluation_dataset": ["No prediction column."]},
            )
        if evaluation.status == "invalid":
            raise ValidationFailed(f"Evaluation dataset {evaluation.pk} is invalid: {evaluation.status_reason}")
        if expected:
            raise ValidationFailed("sha256 applies to an artifact; a predictions_only version has none.")
    elif artifact_uri:
        ref_uri = parse_reference(artifact_uri).uri
        if fmt is None:
            raise ValidationFailed(
                "format is required with artifact_uri (the bytes are not fetched until a worker verifies them).",
                errors={"format": ["Required with artifact_uri."]},
            )
        # No check here: the number's draw below refuses a taken digest (nothing is stored for a reference).
    else:
        spooled = spool(artifact)

    stored: Stored | None = None
    try:
        digest, size = expected, None
        if spooled is not None:
            with spooled.open() as fh:
                fmt = sniffing.check_model(fh, spooled.size, fmt)
            if expected and expected != spooled.sha256:
                raise ValidationFailed(
                    f"The uploaded artifact's sha256 is {spooled.sha256}, not the expected {expected}.",
                    errors={"sha256": ["Does not match the upload."]},
                )
            digest, size = spooled.sha256, spooled.size
            _refuse_duplicate(model, digest)
            stored = save_bytes(spooled, kind="artifacts")
        number, version_id, job_id = _draw_number(model, digest)
        fields = dict(
            model=model,
            number=number,
            status=VersionStatus.PENDING_VERIFICATION,
            format=fmt,
            artifact_uri=stored.key if stored else ref_uri,
            artifact_is_reference=bool(ref_uri),
            sha256=digest,
            size=size,
            description=description or "",
            metrics=metrics,
            source_repository=source_repository or "",
            source_commit=source_commit or "",
            ci_run_url=ci_run_url or "",
            evaluation_dataset=evaluation,
            model_card=model_card,
            **author(actor),
        )
        # On PostgreSQL, without training datasets (whose rows need queries of their own), the job,
        # the version and its audit event are one INSERT statement, atomic by itself: no BEGIN or
        # COMMIT round trip (see written_together). Elsewhere they are one transaction.
        together = written_together() if version_id is not None and not training else transaction.atomic()
        try:
            with together:
                if version_id is not None:  # PostgreSQL: the ids are known, so the job goes first
                    job = jobs.job_enqueue(
                        kind=VERIFY_VERSION,
                        target=("model_version", version_id),
                        params={"version_id": version_id},
                        actor=actor,
                        job_id=job_id,
                    )
                    version = _new_version_with_id.create(id=version_id, verification_job=job, **fields)
                else:
                    version = _new_version.create(**fields)
                    job = jobs.job_enqueue(
                        kind=VERIFY_VERSION, target=version, params={"version_id": version.pk}, actor=actor
                    )
                    _set_verification_job(version.pk, job.pk)
                    version.verification_job = job
                version.model = model
                if training:
                    version.training_datasets.set(training)
                audit.record(
                    action="model_version.created",
                    actor=actor,
                    target=version,
                    related=model,
                    after={
                        "number": number,
                        "format": fmt,
                        "artifact_uri": version.artifact_uri,
                        "artifact_is_reference": version.artifact_is_reference,
                        "sha256": digest,
                        "size": size,
                        "training_datasets": [d.pk for d in training],
                        "evaluation_dataset": evaluation.pk if evaluation else None,
                        "source_commit": version.source_commit,
                    },
                    artifact_sha256=digest,
                )
        except IntegrityError:
            # An identical registration committed between the draw and this insert: the unique
            # index on (model, sha256) refused the second; answer as the draw would have.
            _refuse_duplicate(model, digest)
            raise
        version._prefetched_objects_cache = {"training_datasets": training}  # the response needs no query
    except BaseException:
        if stored is not None:
            delete_quietly(stored.key)
        raise
    finally:
        if spooled is not None:
            spooled.close()
    return version


@transaction.atomic
def version_retire(*, actor: Principal, model_name: str, number: int, reason: str = "") -> ModelVersion:
    """Retire a version: it stays on record but is no longer offered. Audited ``model_version.retired``."""
    version = (
        ModelVersion.objects.select_for_update()
        .select_related("model", "model__owner_team")
        .filter(model__name=model_name, number=number)
        .first()
    )
    if version is None:
        raise NotFound(f"No version {number} of model {model_name!r}.")
    rbac.require(actor, "registry.version_retire", version, audit_action="model_version.retired")
    if version.status == VersionStatus.RETIRED:
        raise InvalidTransition(f"{version} is already retired.")
    before = version.status
    version.status = VersionStatus.RETIRED
    version.status_reason = reason or "retired"
    version.save(update_fields=["status", "status_reason", "updated_at"])
    audit.record(
        action="model_version.retired",
        actor=actor,
        target=version,
        related=version.model,
        before={"status": before},
        after={"status": version.status},
        reason=reason,
        artifact_sha256=version.sha256,
    )
    return version


@transaction.atomic
def version_reverify(*, actor: Principal, model_name: str, number: int) -> ModelVersion:
    """Verify a version again whose verification job failed without deciding it (storage unreachable, ...).

    Only a version still pending whose job failed or was cancelled qualifies; anything else is
    409 saying why. The version's row is locked, so of two retries at once one creates the job
    and the other finds it queued (409). Same permission as registering. Audited
    ``model_version.verification_requested`` with the old and new job and the old job's error;
    the new job is sent after commit.
    """
    version = (
        ModelVersion.objects.select_for_update(of=("self",))
        .select_related("model")
        .filter(model__name=model_name, number=number)
        .first()
    )
    if version is None:
        raise NotFound(f"No version {number} of model {model_name!r}.")
    rbac.require(actor, "registry.version_create", version, audit_action="model_version.verification_requested")
    previous = Job.objects.filter(pk=version.verification_job_id).first()  # read under the lock
    waiting = ""
    if version.format == ArtifactFormat.PREDICTIONS_ONLY and version.evaluation_dataset_id:
        waiting = (
            f"Version {number} of {model_name} waits for its evaluation dataset {version.evaluation_dataset_id} "
            "to be verified; if that dataset's verification failed, retry it there."
        )
    refuse_unless_stuck(version, previous, label=f"version {number} of {model_name}", waiting_note=waiting)
    restart_verification(
        version,
        previous,
        actor=actor,
        kind=VERIFY_VERSION,
        params={"version_id": version.pk},
        action="model_version.verification_requested",
        related=version.model,
    )
    return version
