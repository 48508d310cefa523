"""Every function that changes state writes its audit events, in its own transaction: one table.

``WRITERS`` lists every function in ``apps/`` and ``worker/`` that opens a transaction (``@transaction.atomic``,
``with transaction.atomic()``, ``written_together``) and every public function of a services
module, with the exact audit actions one call writes. ``test_the_table_covers_every_writer``
fails, naming the function, when a new one has no row. How to add a row: docs/testing.md.

For each row with a call:
- the call writes exactly the listed actions, in order (``test_writer_audits``);
- when the database refuses its audit event, the whole change fails: no row of any table changes
  and no event is written (``test_writer_is_one_transaction_with_its_audit``; a trigger created
  inside the test's transaction refuses the insert, on SQLite and PostgreSQL alike).
"""

from __future__ import annotations

import ast
import pathlib
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from django.conf import settings
from django.db import DatabaseError, connection, transaction

from apps.audit.models import AuditEvent
from apps.core.errors import DomainError
from tests.support.triad import (
    World,
    changes,
    decided_review,
    fingerprint,
    finished_delivery,
    halted_deployment,
    last_event_id,
    open_review,
    pending_facts_change,
    result_file,
    serving_deployment,
    stored_dataset,
    stored_report,
    team_schedule,
)

pytestmark = pytest.mark.django_db


@dataclass(frozen=True)
class Writer:
    """One state-changing function: what one call of it writes to the audit trail.

    ``call`` takes the triad's ``World``; ``given`` (optional) prepares it first, outside what is
    measured, and leaves its result in ``world.given``; ``actions`` are the audit actions it writes, in order
    (empty, with ``why``, for writers whose change is bookkeeping nobody accounts for).
    ``exempt`` says why a function found by the scan writes nothing (a read, a pure helper).
    ``covered_by`` names the test that drives a writer needing a worker's real output.
    """

    name: str
    actions: tuple[str, ...] = ()
    call: Callable[[World], Any] | None = None
    given: Callable[[World], Any] | None = None
    why: str = ""
    exempt: str = ""
    covered_by: str = ""


def writes(
    name: str, actions: tuple[str, ...] | str, call: Callable[[World], Any], why: str = "", given=None
) -> Writer:
    actions = (actions,) if isinstance(actions, str) else tuple(actions)
    return Writer(name=name, actions=actions, call=call, given=given, why=why)


def exempt(name: str, why: str) -> Writer:
    return Writer(name=name, exempt=why)


def elsewhere(name: str, actions: tuple[str, ...] | str, test: str) -> Writer:
    return Writer(name=name, actions=(actions,) if isinstance(actions, str) else tuple(actions), covered_by=test)


def _now():
    from django.utils import timezone

    return timezone.now()


def _root(w: World):
    from apps.accounts.principals import principal_for_user

    return principal_for_user(w.admin)


def _as(w: World, role: str):
    from apps.accounts.principals import principal_for_user

    return principal_for_user(w.person(role))


def _in_tx(fn: Callable[[], Any]) -> Any:
    with transaction.atomic():
        return fn()


def _started(w: World):
    from apps.evidence import runs

    runs.evidence_run_start(run_id=w.run.pk)
    return w.run.pk


def _chunks(w: World):
    from apps.evidence import runs
    from apps.evidence.models import EvidenceChunk

    run_id = _started(w)
    runs.evidence_run_plan_chunks(run_id=run_id, ranges=[(0, 5), (5, 10)])
    return list(EvidenceChunk.objects.filter(run_id=run_id).order_by("pk"))


def _merge(partials):
    from apps.evidence.runs import Merged

    return Merged(summary={"schema": "assay.bias/v1", "parts": len(partials)}, engine_versions={"numpy": "0"})


def _one_chunk_left(w: World):
    """Two chunks planned; the first stored its partial (which audits nothing). Returns the second."""
    first, second = _chunks(w)
    S(RUNS).evidence_chunk_complete(chunk_id=first.pk, partial={"rows": 5}, merge=_merge)
    return second


def _queued(w: World):
    from apps.jobs import services as jobs

    with transaction.atomic():
        return jobs.job_enqueue(kind="registry.verify_version", target=w.version, params={"version_id": w.version.pk})


def _claim(w: World):
    from apps.jobs import services as jobs

    return jobs.job_claim(_queued(w).pk)


def _upload(data: bytes, name: str):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile(name, data, content_type="text/csv")


def _pending_version(w: World):
    from apps.registry.choices import VersionStatus
    from tests.factories.registry import ModelVersionFactory

    return ModelVersionFactory(model=w.model, number=9, status=VersionStatus.PENDING_VERIFICATION, sha256="e" * 64)


def _expired_release(w: World):
    from datetime import timedelta

    from django.utils import timezone

    from apps.releases.models import ReleaseRequest

    ReleaseRequest.objects.filter(pk=w.release.pk).update(expires_at=timezone.now() - timedelta(days=1))


# Service modules imported lazily inside the calls keep this table importable before Django is set up.
def S(module: str):  # noqa: N802 - reads like a module path in the table
    import importlib

    return importlib.import_module(module)


ACC, EV, RUNS = "apps.accounts.services", "apps.evidence.services", "apps.evidence.runs"
NOTE, POL, REL = "apps.notifications.services", "apps.policies.services", "apps.releases.services"
REG, VER, JOBS = "apps.registry.services", "apps.registry.verification", "apps.jobs.services"
DEP = "apps.deployments.services"
REP = "apps.reports.services"
NEW_ONLY = {"stable": None, "new": 100, "shadow": False}


def _report(w: World, status: str = "running"):
    report = stored_report(w)
    report.status = status
    report.save(update_fields=["status"])
    return report


def _taken(w: World):
    """The world's deployment taken by a worker (its fence grows): what a worker holds before it records."""
    return S(DEP).rollout_take(deployment_id=w.deployment.pk)


def _applied(w: World):
    taken = _taken(w)
    S(DEP).rollout_applied(deployment_id=w.deployment.pk, fence=taken.fence, traffic=NEW_ONLY)
    return taken


def _ready(w: World):
    taken = _applied(w)
    S(DEP).rollout_ready(deployment_id=w.deployment.pk, fence=taken.fence, baseline={"requests": 0})
    return taken


def _rolling_back(w: World):
    taken = _applied(w)
    S(DEP).rollout_rollback(deployment_id=w.deployment.pk, fence=taken.fence, reason="errors")
    return taken


FIGURES = {"requests": 100, "errors": 0, "error_rate": 0.0, "p99_ms": 12.0, "restarts": 0}

WRITERS: list[Writer] = [
    # --- report schedules
    writes(
        "apps.reports.schedules.schedule_create",
        "report_schedule.created",
        lambda w: S("apps.reports.schedules").schedule_create(actor=_root(w), kind="period", cadence="weekly"),
    ),
    writes(
        "apps.reports.schedules.schedule_delete",
        "report_schedule.deleted",
        lambda w: S("apps.reports.schedules").schedule_delete(actor=_root(w), schedule_id=w.given.public_id),
        given=team_schedule,
    ),
    writes(
        "apps.reports.schedules.schedules_run_due",
        "report.requested",
        lambda w: S("apps.reports.schedules").schedules_run_due(),
        given=team_schedule,
    ),
    # --- access reviews
    writes(
        "apps.reports.reviews.access_review_start",
        "access_review.started",
        lambda w: S("apps.reports.reviews").access_review_start(actor=_root(w), team_name=w.team.name),
    ),
    writes(
        "apps.reports.reviews.access_review_decide",
        "access_review.attested",
        lambda w: S("apps.reports.reviews").access_review_decide(
            actor=_root(w), review_id=w.given.public_id, item_id=w.given.items.get().pk, decision="attest"
        ),
        given=open_review,
    ),
    writes(
        "apps.reports.reviews.access_review_close",
        "access_review.closed",
        lambda w: S("apps.reports.reviews").access_review_close(actor=_root(w), review_id=w.given.public_id),
        given=decided_review,
    ),
    # --- reports
    writes(
        f"{REP}.report_request",
        "report.requested",
        lambda w: S(REP).report_request(actor=_root(w), kind="release", release_id=w.release.public_id),
    ),
    writes(
        f"{REP}.report_started",
        (),
        lambda w: S(REP).report_started(report_id=w.given.pk),
        given=lambda w: _report(w, "queued"),
        why="a report's start is its progress; its request and its outcome are audited",
    ),
    writes(
        f"{REP}.report_progress",
        (),
        lambda w: S(REP).report_progress(report_id=w.given.pk, percent=50, message="half"),
        given=_report,
        why="progress on the page, not a change anyone accounts for",
    ),
    writes(
        f"{REP}.report_completed",
        "report.generated",
        lambda w: S(REP).report_completed(
            report_id=w.given.pk, files=w.given.files, checkpoint_size=3, checkpoint_root="ab" * 32, events=2
        ),
        given=_report,
    ),
    writes(
        f"{REP}.report_failed",
        "report.failed",
        lambda w: S(REP).report_failed(report_id=w.given.pk, reason="no key"),
        given=_report,
    ),
    writes(
        f"{REP}.report_download_start",
        "report.downloaded",
        lambda w: S(REP).report_download_start(actor=_root(w), report_id=w.given.public_id, fmt="pdf"),
        given=lambda w: _report(w, "succeeded"),
    ),
    # --- accounts
    writes(
        f"{ACC}.user_create",
        "user.created",
        lambda w: S(ACC).user_create(actor=_root(w), username="newbie", password=None),
    ),
    writes(
        f"{ACC}.user_update",
        "user.updated",
        lambda w: S(ACC).user_update(actor=_root(w), user=w.member, changes={"email": "m@example.test"}),
    ),
    writes(f"{ACC}.team_create", "team.created", lambda w: S(ACC).team_create(actor=_root(w), name="fraud")),
    writes(
        f"{ACC}.team_member_add",
        "team.member_added",
        lambda w: S(ACC).team_member_add(actor=_root(w), team=w.team, user=w.admin),
    ),
    writes(
        f"{ACC}.team_member_remove",
        "team.member_removed",
        lambda w: S(ACC).team_member_remove(actor=_root(w), team=w.team, user=w.member),
    ),
    writes(
        f"{ACC}.service_account_create",
        "service_account.created",
        lambda w: S(ACC).service_account_create(actor=_root(w), name="ci-x", owner=w.member),
    ),
    writes(
        f"{ACC}.role_binding_create",
        "role_binding.created",
        lambda w: S(ACC).role_binding_create(
            actor=_root(w), subject_type="user", subject=w.member.username, role="reviewer", scope_team=w.team.name
        ),
    ),
    writes(
        f"{ACC}.token_create",
        "api_token.created",
        lambda w: S(ACC).token_create(actor=_root(w), name="ci", user=w.admin, scopes=["read"]),
    ),
    writes(
        f"{ACC}.token_revoke", "api_token.revoked", lambda w: S(ACC).token_revoke(actor=_root(w), token_id=w.token_id)
    ),
    writes(
        f"{ACC}.login_attempt",
        "user.login_failed",
        lambda w: S(ACC).login_attempt(username=w.member.username, password="wrong"),
    ),
    writes(f"{ACC}.user_logout", "user.logged_out", lambda w: S(ACC).user_logout(actor=_root(w))),
    # --- rbac
    writes(
        "apps.rbac.services.role_grant",
        "role_binding.created",
        lambda w: S("apps.rbac.services").role_grant(actor=_root(w), subject=w.member, role="reviewer", team=w.team),
    ),
    writes(
        "apps.rbac.services.role_revoke",
        "role_binding.deleted",
        lambda w: S("apps.rbac.services").role_revoke(actor=_root(w), binding_id=w.role_binding.pk),
    ),
    *[
        exempt(f"apps.rbac.services.{n}", "reads grants or decides; writes nothing")
        for n in (
            "token_grants_join",
            "remember_grants",
            "grants_for",
            "forget_cached_grants",
            "scope_of",
            "allows",
            "has_global",
            "has_anywhere",
            "teams_with",
            "require",
            "refusal",
            "roles_granting",
            "describe",
            "restrict",
            "get_visible",
            "visible",
            "visible_pks",
            "can_approve",
            "roles_with",
            "keep_an_admin",
        )
    ],
    # --- registry
    writes(
        f"{REG}.models.model_create",
        "model.created",
        lambda w: S(f"{REG}.models").model_create(actor=_root(w), name="fraud-score", owner_team=w.team),
    ),
    writes(
        f"{REG}.models.model_update",
        "model.updated",
        lambda w: S(f"{REG}.models").model_update(actor=_root(w), name="churn", changes={"risk_tier": "high"}),
    ),
    exempt(f"{REG}.models.facts_change_url", "formats a URL"),
    writes(
        f"{REG}.facts.facts_change_approve",
        ("facts_change.approved", "model.updated"),
        lambda w: S(f"{REG}.facts").facts_change_approve(
            actor=w.given[1], change_id=w.given[0].public_id, reason="covered by the DPIA"
        ),
        given=lambda w: (pending_facts_change(w), _as(w, "compliance_officer")),
    ),
    writes(
        f"{REG}.facts.facts_change_reject",
        "facts_change.rejected",
        lambda w: S(f"{REG}.facts").facts_change_reject(
            actor=w.given[1], change_id=w.given[0].public_id, reason="not covered"
        ),
        given=lambda w: (pending_facts_change(w), _as(w, "compliance_officer")),
    ),
    writes(
        f"{REG}.facts.facts_change_cancel",
        "facts_change.cancelled",
        lambda w: S(f"{REG}.facts").facts_change_cancel(
            actor=_as(w, "contributor"), change_id=w.given.public_id, reason="withdrawn"
        ),
        given=pending_facts_change,
    ),
    writes(
        f"{REG}.versions.version_create",
        "model_version.created",
        lambda w: S(f"{REG}.versions").version_create(
            actor=_root(w), model_name="churn", format="predictions_only", evaluation_dataset_id=w.dataset.pk
        ),
    ),
    writes(
        f"{REG}.versions.version_retire",
        "model_version.retired",
        lambda w: S(f"{REG}.versions").version_retire(actor=_root(w), model_name="churn", number=2),
    ),
    writes(
        f"{REG}.versions.version_reverify",
        "model_version.verification_requested",
        lambda w: S(f"{REG}.versions").version_reverify(actor=_root(w), model_name="churn", number=3),
    ),
    writes(
        f"{REG}.datasets.dataset_create",
        "dataset.created",
        lambda w: S(f"{REG}.datasets").dataset_create(
            actor=_root(w), name="ref", owner_team=w.team, file=_upload(b"x,label\n1,0\n", "ref.csv")
        ),
    ),
    writes(
        f"{REG}.datasets.dataset_reverify",
        "dataset.verification_requested",
        lambda w: S(f"{REG}.datasets").dataset_reverify(actor=_root(w), dataset_id=w.stuck.pk),
    ),
    writes(
        f"{REG}.downloads.version_artifact_download",
        "model_version.artifact_downloaded",
        lambda w: S(f"{REG}.downloads").version_artifact_download(actor=_root(w), model_name="churn", number=1),
    ),
    writes(
        f"{REG}.downloads.dataset_download",
        "dataset.downloaded",
        lambda w: S(f"{REG}.downloads").dataset_download(actor=_root(w), dataset_id=w.dataset.pk),
        given=stored_dataset,
    ),
    elsewhere(
        f"{REG}.datasets.dataset_create_derived",
        "dataset.created",
        "tests/evidence/test_pii.py (the scrubbed copy a PII scan writes)",
    ),
    *[
        exempt(f"{REG}.common.{n}", "a helper of the registry's services; writes no row")
        for n in (
            "author",
            "resolve_team",
            "clean_sha256",
            "visible_datasets",
            "save_bytes",
            "delete_quietly",
            "ensure_json_object",
        )
    ],
    exempt(f"{REG}.retry.verification_stuck", "reads"),
    exempt(f"{REG}.retry.job_ref", "formats a job for an audit event"),
    exempt(f"{REG}.retry.refuse_unless_stuck", "a guard: raises or returns"),
    exempt(
        f"{REG}.retry.restart_verification",
        "writes inside version_reverify / dataset_reverify, whose rows assert its event",
    ),
    exempt(f"{REG}.versions.version_url", "formats a URL"),
    writes(
        f"{VER}.version_mark_ready",
        "model_version.verified",
        lambda w: S(VER).version_mark_ready(version_id=w.given.pk),
        given=_pending_version,
    ),
    writes(
        f"{VER}.version_mark_invalid",
        "model_version.invalidated",
        lambda w: S(VER).version_mark_invalid(version_id=w.given.pk, reason="bad bytes"),
        given=_pending_version,
    ),
    writes(
        f"{VER}.dataset_mark_ready",
        "dataset.verified",
        lambda w: S(VER).dataset_mark_ready(dataset_id=w.stuck.pk, sha256="f" * 64, size=10, row_count=2),
    ),
    writes(
        f"{VER}.dataset_mark_invalid",
        "dataset.invalidated",
        lambda w: S(VER).dataset_mark_invalid(dataset_id=w.stuck.pk, reason="bad bytes"),
    ),
    # --- evidence
    writes(
        f"{EV}.requests.evidence_request",
        "evidence_run.requested",
        lambda w: S(EV).evidence_request(actor=_root(w), kind="pii_scan", dataset_id=w.dataset.pk),
    ),
    writes(
        f"{EV}.cancellation.evidence_run_cancel",
        "evidence_run.cancelled",
        lambda w: S(EV).evidence_run_cancel(actor=_root(w), run_id=w.run.public_id),
    ),
    writes(
        f"{EV}.findings.evidence_finding_review",
        "evidence_finding.reviewed",
        lambda w: S(EV).evidence_finding_review(
            actor=_root(w), run_id=w.pii.public_id, finding="email:EMAIL_ADDRESS", verdict="confirmed", reason="real"
        ),
    ),
    writes(
        f"{EV}.files.evidence_file_download",
        "evidence_file.downloaded",
        lambda w: S(EV).evidence_file_download(actor=_root(w), run_id=w.pii.public_id, name=w.given.name)[1].close(),
        given=result_file,
    ),
    writes(
        f"{EV}.requests.default_evidence_request",
        (),
        lambda w: S(EV).default_evidence_request(version_id=w.version.pk),
        why="the world's model asks for no default evidence: nothing to request",
    ),
    exempt(f"{EV}.requests.reuse_key", "computes a key"),
    writes(f"{RUNS}.evidence_run_start", "evidence_run.started", _started),
    writes(
        f"{RUNS}.evidence_run_succeed",
        "evidence_run.succeeded",
        lambda w: S(RUNS).evidence_run_succeed(
            run_id=w.given, summary={"schema": "assay.bias/v1"}, engine_versions={"fairlearn": "0"}
        ),
        given=_started,
    ),
    writes(
        f"{RUNS}.evidence_run_fail",
        "evidence_run.failed",
        lambda w: S(RUNS).evidence_run_fail(run_id=w.run.pk, reason="no rows"),
    ),
    writes(
        f"{RUNS}.evidence_run_plan_chunks",
        "evidence_run.chunked",
        lambda w: S(RUNS).evidence_run_plan_chunks(run_id=w.given, ranges=[(0, 5), (5, 10)]),
        given=_started,
    ),
    writes(
        f"{RUNS}.evidence_chunk_start",
        (),
        lambda w: S(RUNS).evidence_chunk_start(chunk_id=w.given[0].pk),
        given=_chunks,
        why="a chunk's start is the run's progress, not a change anyone accounts for",
    ),
    writes(
        f"{RUNS}.evidence_chunk_complete",
        "evidence_run.succeeded",
        lambda w: S(RUNS).evidence_chunk_complete(chunk_id=w.given.pk, partial={"rows": 5}, merge=_merge),
        given=_one_chunk_left,
    ),
    # --- policies
    writes(
        f"{POL}.policy_pack_create",
        ("policy_pack.created", "policy_pack.version_created"),
        lambda w: S(POL).policy_pack_create(actor=_root(w), name="new-pack", source=w.pack_source("new_pack")),
    ),
    writes(
        f"{POL}.policy_pack_version_create",
        "policy_pack.version_created",
        lambda w: S(POL).policy_pack_version_create(
            actor=_root(w), name="loan-limits", source=w.pack_source("loan_limits") + "\n# v2\n"
        ),
    ),
    writes(
        f"{POL}.policy_binding_create",
        "policy_binding.created",
        lambda w: S(POL).policy_binding_create(actor=_root(w), pack_name="loan-limits", team=w.team),
    ),
    writes(
        f"{POL}.policy_binding_delete",
        "policy_binding.deleted",
        lambda w: S(POL).policy_binding_delete(actor=_root(w), binding_id=w.binding.pk),
    ),
    exempt(f"{POL}.source_check", "compiles a pack's source; writes nothing"),
    writes(
        f"{POL}.shipped_versions_store",
        (),
        lambda w: _in_tx(lambda: S(POL).shipped_versions_store([], descriptions={})),
        why="nothing changed: no shipped pack file differs from its stored version",
    ),
    writes(
        f"{POL}.shipped_packs_sync",
        (),
        lambda w: S(POL).shipped_packs_sync(),
        why="the shipped packs are stored already by the migrations",
    ),
    # --- releases
    writes(
        f"{REL}.requests.release_request_create",
        "release.requested",
        lambda w: S(REL).release_request_create(
            actor=w.given, model_name="churn", number=2, environment="staging", justification="refresh"
        ),
        given=lambda w: _as(w, "contributor"),
    ),
    writes(
        f"{REL}.approvals.approval_decide",
        ("release.approval_recorded", "release.approved"),
        lambda w: S(REL).approval_decide(actor=w.given, release_id=w.release.public_id, decision="approve"),
        given=lambda w: _as(w, "reviewer"),
    ),
    writes(
        f"{REL}.approvals._approval_decide",
        ("release.approval_recorded", "release.approved"),
        lambda w: S(REL).approval_decide(actor=w.given, release_id=w.release.public_id, decision="approve"),
        given=lambda w: _as(w, "reviewer"),
        why="called by approval_decide after the re-judging step",
    ),
    writes(
        f"{REL}.requests.release_cancel",
        "release.cancelled",
        lambda w: S(REL).release_cancel(actor=_root(w), release_id=w.release.public_id),
    ),
    writes(
        f"{REL}.expiry.releases_expire_due",
        "release.expired",
        lambda w: S(REL).releases_expire_due(),
        given=_expired_release,
    ),
    writes(
        f"{REL}.evaluation.releases_reevaluate",
        "release.expired",
        lambda w: S(REL).releases_reevaluate(reason="test"),
        given=_expired_release,
    ),
    writes(
        f"{REL}.evaluation._rejudge",
        "release.expired",
        lambda w: S(f"{REL}.evaluation")._rejudge(w.release.public_id, reason="test"),
        given=_expired_release,
    ),
    writes(
        f"{REL}.environments.environment_create",
        "environment.created",
        lambda w: S(REL).environment_create(actor=_root(w), name="canary"),
    ),
    writes(
        "apps.releases.gate_decisions._refresh_version",
        ("release.gate_decided", "release.gate_decided"),
        lambda w: S("apps.releases.gate_decisions")._refresh_version(
            w.version,
            list(S("apps.releases.models").Environment.objects.filter(name__in=["staging", "production"])),
            reason="test",
            actor=S(f"{REL}.common").SYSTEM,
        ),
    ),
    writes(
        "apps.releases.subscribers._stale_in_batches",
        (),
        lambda w: S("apps.releases.subscribers")._stale_in_batches(reason="test"),
        why="queues the gate_decisions.stale reactions (job rows); each job's stored decisions are audited",
    ),
    writes(
        f"{REL}.reviews.post_release_review_close",
        "post_release_review.closed",
        lambda w: S(REL).post_release_review_close(actor=w.given, release_id=w.emergency.public_id, findings="ok"),
        given=lambda w: _as(w, "compliance_officer"),
    ),
    exempt(f"{REL}.common.revalidation_date", "computes a date"),
    exempt(f"{REL}.common.required_approvals", "reads"),
    exempt(f"{REL}.common.blocking", "reads"),
    exempt(f"{REL}.common.approval_matching", "reads"),
    # --- deployments
    writes(
        f"{DEP}.targets.target_create",
        "deployment_target.created",
        lambda w: S(DEP).target_create(
            actor=_root(w), name="lab", kind="kubernetes", environment="staging", credentials={"token": "t"}
        ),
    ),
    writes(
        f"{DEP}.targets.target_update",
        "deployment_target.updated",
        lambda w: S(DEP).target_update(actor=_root(w), target_id=w.spare_target.public_id, enabled=False),
    ),
    writes(
        f"{DEP}.targets.target_delete",
        "deployment_target.deleted",
        lambda w: S(DEP).target_delete(actor=_root(w), target_id=w.spare_target.public_id),
    ),
    exempt(f"{DEP}.targets.credentials_of", "decrypts for a worker; writes nothing"),
    exempt(f"{DEP}.common.service_name", "names a service"),
    writes(
        f"{DEP}.starting.deployment_start",
        "deployment.started",
        lambda w: S(DEP).deployment_start(
            actor=w.given, release_id=w.emergency.public_id, target=w.spare_target.name, reason="outage"
        ),
        given=lambda w: _as(w, "release_manager"),
    ),
    writes(
        f"{DEP}.starting._deployment_start",
        "deployment.started",
        lambda w: S(DEP).deployment_start(actor=w.given, release_id=w.emergency.public_id, target="prod-spare"),
        given=lambda w: _as(w, "release_manager"),
        why="called by deployment_start, which raises a refusal after its audit event commits",
    ),
    writes(
        f"{DEP}.deployments.deployment_halt",
        "deployment.halted",
        lambda w: S(DEP).deployment_halt(actor=_root(w), deployment_id=w.deployment.public_id, reason="stop"),
    ),
    writes(
        f"{DEP}.deployments.deployment_resume",
        "deployment.resumed",
        lambda w: S(DEP).deployment_resume(actor=_root(w), deployment_id=w.deployment.public_id, reason="go on"),
        given=halted_deployment,
    ),
    writes(
        f"{DEP}.deployments.deployment_rollback",
        ("deployment.rollback_started", "deployment.rolled_back"),
        lambda w: S(DEP).deployment_rollback(actor=_root(w), deployment_id=w.deployment.public_id, reason="bad"),
    ),
    writes(
        f"{DEP}.deployments.deployment_undeploy",
        "deployment.undeployed",
        lambda w: S(DEP).deployment_undeploy(actor=_root(w), deployment_id=w.deployment.public_id, reason="old"),
        given=serving_deployment,
    ),
    writes(
        f"{DEP}.rollouts.rollout_take",
        (),
        lambda w: _taken(w),
        why="taking a rollout over (its fence grows) is bookkeeping; the worker's moves are audited",
    ),
    writes(
        f"{DEP}.rollouts.rollout_applied",
        "deployment.step_applied",
        lambda w: S(DEP).rollout_applied(deployment_id=w.deployment.pk, fence=w.given.fence, traffic=NEW_ONLY),
        given=_taken,
    ),
    writes(
        f"{DEP}.rollouts.rollout_ready",
        "deployment.step_ready",
        lambda w: S(DEP).rollout_ready(deployment_id=w.deployment.pk, fence=w.given.fence, baseline={"requests": 3}),
        given=_applied,
    ),
    writes(
        f"{DEP}.rollouts.rollout_passed",
        "deployment.step_completed",
        lambda w: S(DEP).rollout_passed(
            deployment_id=w.deployment.pk, fence=w.given.fence, figures=FIGURES, then="promote"
        ),
        given=_ready,
    ),
    writes(
        f"{DEP}.rollouts.rollout_unjudged",
        "deployment.paused",
        lambda w: S(DEP).rollout_unjudged(
            deployment_id=w.deployment.pk, fence=w.given.fence, figures=FIGURES, reason="too little traffic"
        ),
        given=_ready,
    ),
    writes(
        f"{DEP}.rollouts.rollout_rollback",
        "deployment.rollback_started",
        lambda w: S(DEP).rollout_rollback(deployment_id=w.deployment.pk, fence=w.given.fence, reason="errors"),
        given=_applied,
    ),
    writes(
        f"{DEP}.rollouts.rollout_refused",
        ("deployment.refused", "deployment.failed"),
        lambda w: S(DEP).rollout_refused(deployment_id=w.deployment.pk, fence=w.given.fence, reason="expired"),
        given=_taken,
    ),
    writes(
        f"{DEP}.rollouts.rollout_failed",
        "deployment.failed",
        lambda w: S(DEP).rollout_failed(deployment_id=w.deployment.pk, fence=w.given.fence, error="refused"),
        given=_taken,
    ),
    writes(
        f"{DEP}.rollouts.rollout_converged",
        "deployment.rolled_back",
        lambda w: S(DEP).rollout_converged(deployment_id=w.deployment.pk, fence=w.given.fence, traffic={}),
        given=_rolling_back,
    ),
    writes(
        f"{DEP}.scheduling.rollout_wait",
        (),
        lambda w: S(DEP).rollout_wait(deployment_id=w.deployment.pk, fence=w.given.fence, at=_now()),
        given=_taken,
        why="when to look again is a bookmark, not a state change",
    ),
    writes(
        f"{DEP}.reconcile.target_reconciled",
        "deployment.drift_detected",
        lambda w: S(DEP).target_reconciled(
            target_id=w.target.pk,
            findings=[
                {"key": "traffic_changed:churn:1", "kind": "traffic_changed", "service": "churn", "message": "by hand"}
            ],
        ),
    ),
    writes(
        f"{DEP}.scheduling.deployments_enqueue_due",
        (),
        lambda w: S(DEP).deployments_enqueue_due(),
        why="queues rollout jobs (job rows); each job's moves are audited",
    ),
    # --- notifications
    writes(
        f"{NOTE}.webhook_create",
        "webhook.created",
        lambda w: S(NOTE).webhook_create(
            actor=_root(w), team=w.team, url="http://127.0.0.1:9/new", events=["release.approved"]
        ),
    ),
    writes(
        f"{NOTE}.webhook_update",
        "webhook.updated",
        lambda w: S(NOTE).webhook_update(actor=_root(w), webhook_id=w.webhook.public_id, description="x"),
    ),
    writes(
        f"{NOTE}.webhook_delete",
        "webhook.deleted",
        lambda w: S(NOTE).webhook_delete(actor=_root(w), webhook_id=w.webhook.public_id),
    ),
    writes(
        f"{NOTE}.webhook_secret_rotate",
        "webhook.secret_rotated",
        lambda w: S(NOTE).webhook_secret_rotate(actor=_root(w), webhook_id=w.webhook.public_id),
    ),
    writes(
        f"{NOTE}.webhook_ping",
        "webhook.pinged",
        lambda w: S(NOTE).webhook_ping(actor=_root(w), webhook_id=w.webhook.public_id),
    ),
    writes(
        f"{NOTE}.delivery_redeliver",
        "webhook_delivery.redelivered",
        lambda w: S(NOTE).delivery_redeliver(
            actor=_root(w), webhook_id=w.webhook.public_id, delivery_id=w.delivery.public_id
        ),
        given=finished_delivery,
    ),
    writes(
        f"{NOTE}.allowed_host_create",
        "webhook_host.allowed",
        lambda w: S(NOTE).allowed_host_create(actor=_root(w), host="other.example.test"),
    ),
    writes(
        f"{NOTE}.allowed_host_delete",
        "webhook_host.removed",
        lambda w: S(NOTE).allowed_host_delete(actor=_root(w), host_id=w.host.pk),
    ),
    writes(
        "apps.notifications.deliveries.delivery_begin",
        (),
        lambda w: S("apps.notifications.deliveries").delivery_begin(delivery_id=str(w.delivery.public_id)),
        why="an attempt's start; delivery_record audits its outcome",
    ),
    elsewhere(
        "apps.notifications.subscribers.on_event",
        (),
        "tests/releases/test_reactions.py (a published event's deliveries; their sending is audited by "
        "delivery_record)",
    ),
    elsewhere(
        "apps.notifications.deliveries.delivery_record",
        "webhook_delivery.succeeded",
        "tests/notifications/test_delivery.py (a real HTTP receiver answers)",
    ),
    writes(
        "apps.notifications.deliveries.deliveries_dispatch_due",
        (),
        lambda w: S("apps.notifications.deliveries").deliveries_dispatch_due(),
        why="hands due deliveries to jobs; no delivery changes state",
    ),
    # --- jobs (the runner's bookkeeping, and its finishing functions)
    writes(
        f"{JOBS}.job_enqueue",
        (),
        lambda w: _in_tx(lambda: S(JOBS).job_enqueue(kind="registry.verify_version")),
        why="a queued job is part of the change that asked for it, which is audited",
    ),
    writes(f"{JOBS}.job_claim", "job.started", lambda w: S(JOBS).job_claim(w.given.pk), given=_queued),
    writes(f"{JOBS}.job_claim_next", "job.started", lambda w: S(JOBS).job_claim_next(), given=_queued),
    writes(f"{JOBS}.job_finish", "job.succeeded", lambda w: S(JOBS).job_finish(w.given, ok=True), given=_claim),
    writes(
        f"{JOBS}.job_cancel",
        "job.cancelled",
        lambda w: _in_tx(lambda: S(JOBS).job_cancel(job_id=S(JOBS).job_enqueue(kind="x.y").pk, reason="no")),
    ),
    writes(
        f"{JOBS}.job_sweep",
        (),
        lambda w: S(JOBS).job_sweep(),
        why="no job's lease expired: queued jobs are only sent again, which changes no state",
    ),
    writes(
        f"{JOBS}.job_report",
        (),
        lambda w: S(JOBS).job_report(w.given, progress=50),
        given=_claim,
        why="progress is not a state change anyone accounts for",
    ),
    exempt(f"{JOBS}.worker_name", "names this worker"),
    exempt(f"{JOBS}.brokerless", "reads a setting"),
    writes(
        f"{JOBS}.worker_heartbeat",
        (),
        lambda w: S(JOBS).worker_heartbeat(name="host:1", kind="database", beat=False, started_at=_now()),
        why="a heartbeat is an operational signal (read by /api/v1/health/), not a change anyone accounts for",
    ),
    writes(
        f"{JOBS}.worker_stopped",
        (),
        lambda w: S(JOBS).worker_stopped(name="host:1"),
        why="a stopping worker removes its heartbeat: an operational signal",
    ),
    exempt(f"{JOBS}.act_for", "sets the audit context"),
    exempt(f"{JOBS}.jobs_waiting", "reads"),
    # --- audit: the trail's own writers
    exempt("apps.audit.services.record", "the one writer of audit events"),
    exempt("apps.audit.services.record_denial", "writes the denial of a refused change (tests/core/test_triad.py)"),
    exempt("apps.audit.services.record_unauthenticated", "writes auth.rejected (tests/core/test_api_access.py)"),
    exempt(
        "apps.audit.services.record_summarised",
        "writes one event per address and window for a flood of refusals (tests/core/test_throttling.py)",
    ),
    writes(
        "apps.audit.trail.export_start",
        "audit.exported",
        lambda w: S("apps.audit.trail").export_start(actor=_root(w), filters=_no_filter(), fmt="csv"),
    ),
    exempt("apps.audit.services.redact", "formats a value"),
    exempt("apps.audit.services.describe", "formats a target"),
    exempt("apps.audit.chain.seal_pending", "seals events already written: the chain's own bookkeeping"),
    exempt("apps.core.fastpath.rows.written_together", "the seam that writes a change's rows in one statement"),
]


def _no_filter():
    from apps.audit.filters import EventFilter

    return EventFilter()


ROWS = {r.name: r for r in WRITERS}
CALLED = [r for r in WRITERS if r.call is not None]


# ---------------------------------------------------------------------------------------------
# Completeness: every writer found in the source has a row.


def _writers_in_source() -> set[str]:
    """Functions in apps/ and worker/ that open a transaction, and every public function of a services module."""
    root = pathlib.Path(settings.BASE_DIR)
    found: set[str] = set()
    for path in sorted([*(root / "apps").rglob("*.py"), *(root / "worker").rglob("*.py")]):
        if "migrations" in path.parts:
            continue
        module = ".".join(path.relative_to(root).with_suffix("").parts)
        services = path.name == "services.py" or path.parent.name == "services"
        for node in ast.parse(path.read_text()).body:
            if not isinstance(node, ast.FunctionDef):
                continue
            decorators = " ".join(ast.unparse(d) for d in node.decorator_list)
            opens = "atomic" in decorators or any(
                isinstance(n, ast.With)
                and any(w in ast.unparse(i.context_expr) for i in n.items for w in ("atomic", "written_together("))
                for n in ast.walk(node)
            )
            if opens or (services and not node.name.startswith("_")):
                found.add(f"{module}.{node.name}")
    return found


def test_the_table_covers_every_writer():
    found = _writers_in_source()
    missing = sorted(found - ROWS.keys())
    stale = sorted(ROWS.keys() - found)
    assert not missing, "writers without a row in tests/audit/test_coverage.py WRITERS: " + ", ".join(missing)
    assert not stale, "rows for functions that are gone: " + ", ".join(stale)


def test_every_row_is_called_or_says_why_not():
    for r in WRITERS:
        assert (r.call is not None) + bool(r.exempt) + bool(r.covered_by) == 1, r.name
        if r.call is not None and not r.actions:
            assert r.why, f"{r.name}: a writer that audits nothing says why"


# ---------------------------------------------------------------------------------------------
# Behaviour: the exact events, and one transaction with them.


@pytest.mark.parametrize("writer", CALLED, ids=lambda r: r.name.removeprefix("apps."))
def test_writer_audits(writer: Writer, world):
    # given the triad's world
    world.given = writer.given(world) if writer.given else None
    mark = last_event_id()

    # when the writer is called once
    writer.call(world)

    # then it wrote exactly its events
    actions = list(AuditEvent.objects.filter(id__gt=mark).order_by("id").values_list("action", flat=True))
    assert tuple(actions) == writer.actions, f"{writer.name} wrote {actions}"


@contextmanager
def audit_inserts_refused():
    """The database refuses every new audit event (a trigger, created and dropped in the test's transaction)."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "CREATE FUNCTION assay_test_refuse_audit() RETURNS trigger LANGUAGE plpgsql AS "
                "$$ BEGIN RAISE EXCEPTION 'audit write refused'; END $$"
            )
            cursor.execute(
                "CREATE TRIGGER assay_test_refuse_audit BEFORE INSERT ON audit_event "
                "FOR EACH ROW EXECUTE FUNCTION assay_test_refuse_audit()"
            )
        else:
            cursor.execute(
                "CREATE TRIGGER assay_test_refuse_audit BEFORE INSERT ON audit_event "
                "BEGIN SELECT RAISE(ABORT, 'audit write refused'); END"
            )
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                cursor.execute("DROP TRIGGER assay_test_refuse_audit ON audit_event")
                cursor.execute("DROP FUNCTION assay_test_refuse_audit()")
            else:
                cursor.execute("DROP TRIGGER assay_test_refuse_audit")


@pytest.mark.parametrize("writer", [r for r in CALLED if r.actions], ids=lambda r: r.name.removeprefix("apps."))
def test_writer_is_one_transaction_with_its_audit(writer: Writer, world):
    # given the triad's world, and a database that refuses audit events
    world.given = writer.given(world) if writer.given else None
    before, mark = fingerprint(), last_event_id()

    # when the writer is called
    with audit_inserts_refused(), pytest.raises((DatabaseError, DomainError)):
        writer.call(world)

    # then nothing of its change is left
    assert AuditEvent.objects.filter(id__gt=mark).count() == 0, writer.name
    changed = changes(before, fingerprint())
    assert not changed, f"{writer.name}: the audit write failed but the change stayed: {changed}"
