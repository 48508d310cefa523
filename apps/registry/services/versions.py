"""Model versions: register (upload, s3:// reference or predictions only), retire, verify again."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, connections, router, transaction
from django.urls import get_script_prefix, reverse

from apps.audit import services as audit
from apps.core import fastpath
from apps.core.errors import Conflict, InvalidTransition, NotFound, ValidationFailed
from apps.core.models import first_or_none
from apps.core.principals import Principal
from apps.core.storage import Stored, parse_reference
from apps.jobs import services as jobs
from apps.jobs.models import Job
from apps.rbac import services as rbac

from .. import sniffing
from ..choices import ArtifactFormat, ColumnRole, VersionStatus
from ..models import ModelVersion, RegisteredModel
from ..uploads import Spooled, spool
from .common import (
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


_model_by_name = fastpath.RowByUniqueField(RegisteredModel, "name")
# The model's next version number, refused when the model has a live version with the digest; on
# PostgreSQL also the ids of the version row and of its job, so the version can point at its job as
# both are inserted in one statement. See apps.core.fastpath.numbering.
_next_number = fastpath.NumberDraw(
    parent=RegisteredModel,
    counter="last_version_number",
    child=ModelVersion,
    parent_field="model",
    number="number",
    digest="sha256",
    dead=("status", VersionStatus.INVALID.value),
    ids_for=(ModelVersion, Job),
)
_new_version = fastpath.PreparedInsert(ModelVersion)
_new_version_with_id = fastpath.PreparedInsert(ModelVersion, with_pk=True)


def _visible_model_for(actor: Principal, model_name: str, permission: str, audit_action: str) -> RegisteredModel:
    # Prebuilt SQL (see RowByUniqueField); no owner_team join: rbac needs only owner_team_id.
    model = _model_by_name.get(model_name)
    if model is None:
        raise NotFound(f"No model named {model_name!r}.")
    rbac.require(actor, permission, model, audit_action=audit_action)
    return model


@dataclass
class _Registration:
    """A registration's checked input: what it registers (upload, reference or predictions only) and with what."""

    format: str | None
    expected_sha256: str
    metrics: dict
    model_card: dict
    training: list
    evaluation: Any
    reference_uri: str = ""
    spooled: Spooled | None = None
    sha256: str = ""
    size: int | None = None

    def close(self) -> None:
        if self.spooled is not None:
            self.spooled.close()


def _registration_checked(
    actor: Principal,
    *,
    artifact: Any,
    artifact_uri: str,
    sha256: str,
    format: str,
    metrics: dict | None,
    model_card: dict | None,
    training_dataset_ids: list[int] | tuple,
    evaluation_dataset_id: int | None,
) -> _Registration:
    """The input checked before anything is stored: 400 for what is wrong, an upload spooled to disk."""
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
    checked = _Registration(fmt, expected, metrics, model_card, training, evaluation, sha256=expected)

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
        checked.reference_uri = parse_reference(artifact_uri).uri
        if fmt is None:
            raise ValidationFailed(
                "format is required with artifact_uri (the bytes are not fetched until a worker verifies them).",
                errors={"format": ["Required with artifact_uri."]},
            )
        # No check here: the number's draw refuses a taken digest (nothing is stored for a reference).
    else:
        checked.spooled = spool(artifact)
    return checked


def _artifact_stored(model: RegisteredModel, registration: _Registration) -> Stored | None:
    """Store an upload once its bytes pass: the format sniffed (415), the digest as expected, not taken (409)."""
    spooled = registration.spooled
    if spooled is None:
        return None
    with spooled.open() as fh:
        registration.format = sniffing.check_model(fh, spooled.size, registration.format)
    if registration.expected_sha256 and registration.expected_sha256 != spooled.sha256:
        raise ValidationFailed(
            f"The uploaded artifact's sha256 is {spooled.sha256}, not the expected {registration.expected_sha256}.",
            errors={"sha256": ["Does not match the upload."]},
        )
    registration.sha256, registration.size = spooled.sha256, spooled.size
    _refuse_duplicate(model, spooled.sha256)
    return save_bytes(spooled, kind="artifacts")


class _VersionWritten:
    """The registration's one write seam: the number drawn, then the version and its job written at once.

    Created after the bytes are stored, it draws the model's next number in a statement of its own
    (``NumberDraw``), so no lock is held across the registration's transaction; a digest the model
    already has is 409 before anything is written. Inside its block, ``version(**fields)`` adds the
    version row and the job that verifies it. On PostgreSQL, without training datasets (whose rows
    need queries of their own), the job, the version and the audit event recorded in the block are
    one INSERT statement when the block ends, atomic by itself: no BEGIN or COMMIT round trip
    (``written_together``). Elsewhere they are one transaction. An identical registration that
    commits between the draw and the insert is refused by the unique index on (model, sha256) and
    answered 409 as the draw would have.
    """

    def __init__(self, *, actor: Principal, model: RegisteredModel, sha256: str, training: list) -> None:
        drawn = _next_number.draw(model.pk, sha256)
        if drawn is None:
            _refuse_duplicate(model, sha256)  # names the version and its status
            raise NotFound(f"No model named {model.name!r}.")  # deleted meanwhile
        self.actor, self.model, self.sha256, self.training = actor, model, sha256, training
        self.number = drawn[0]
        self.version_id, self.job_id = (drawn[1], drawn[2]) if len(drawn) > 2 else (None, None)
        together = self.version_id is not None and not training
        self._block = fastpath.written_together() if together else transaction.atomic()

    def __enter__(self) -> _VersionWritten:
        self._block.__enter__()
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        try:
            suppressed = self._block.__exit__(exc_type, exc, tb)
        except IntegrityError:  # refused as the rows were written (written_together)
            _refuse_duplicate(self.model, self.sha256)
            raise
        if exc_type is not None and issubclass(exc_type, IntegrityError):  # refused inside the block
            _refuse_duplicate(self.model, self.sha256)
        return suppressed

    def version(self, **fields) -> ModelVersion:
        """Write the version and queue the job that verifies it (workers are woken after commit)."""
        actor, model = self.actor, self.model
        if self.version_id is not None:  # PostgreSQL: the ids are known, so the job goes first
            job = jobs.job_enqueue(
                kind=VERIFY_VERSION,
                target=("model_version", self.version_id),
                params={"version_id": self.version_id},
                actor=actor,
                job_id=self.job_id,
            )
            version = _new_version_with_id.create(
                id=self.version_id, verification_job=job, model=model, number=self.number, **fields
            )
        else:
            version = _new_version.create(model=model, number=self.number, **fields)
            job = jobs.job_enqueue(kind=VERIFY_VERSION, target=version, params={"version_id": version.pk}, actor=actor)
            _set_verification_job(version.pk, job.pk)
            version.verification_job = job
        version.model = model
        if self.training:
            version.training_datasets.set(self.training)
        version._prefetched_objects_cache = {"training_datasets": self.training}  # the response needs no query
        return version


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
    statement of its own (see ``_VersionWritten``), so no lock is held during an
    upload or across the registration's transaction.
    """
    model = _visible_model_for(actor, model_name, "registry.version_create", "model_version.created")
    registration = _registration_checked(
        actor,
        artifact=artifact,
        artifact_uri=artifact_uri,
        sha256=sha256,
        format=format,
        metrics=metrics,
        model_card=model_card,
        training_dataset_ids=training_dataset_ids,
        evaluation_dataset_id=evaluation_dataset_id,
    )
    stored: Stored | None = None
    try:
        stored = _artifact_stored(model, registration)
        digest, training, evaluation = registration.sha256, registration.training, registration.evaluation
        with _VersionWritten(actor=actor, model=model, sha256=digest, training=training) as write:
            version = write.version(
                status=VersionStatus.PENDING_VERIFICATION,
                format=registration.format,
                artifact_uri=stored.key if stored else registration.reference_uri,
                artifact_is_reference=bool(registration.reference_uri),
                sha256=digest,
                size=registration.size,
                description=description or "",
                metrics=registration.metrics,
                source_repository=source_repository or "",
                source_commit=source_commit or "",
                ci_run_url=ci_run_url or "",
                evaluation_dataset=evaluation,
                model_card=registration.model_card,
                **author(actor),
            )
            audit.record(
                action="model_version.created",
                actor=actor,
                target=version,
                related=model,
                after={
                    "number": version.number,
                    "format": version.format,
                    "artifact_uri": version.artifact_uri,
                    "artifact_is_reference": version.artifact_is_reference,
                    "sha256": digest,
                    "size": version.size,
                    "training_datasets": [d.pk for d in training],
                    "evaluation_dataset": evaluation.pk if evaluation else None,
                    "source_commit": version.source_commit,
                },
                artifact_sha256=digest,
            )
    except BaseException:
        if stored is not None:
            delete_quietly(stored.key)
        raise
    finally:
        registration.close()
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
