"""The permission triad for every route of the URL conf, from one table.

Each row: the route's URL name and method, the role that may use it (bound on the team that owns
the objects, or ``@global``), a role that may not, what a signed-in person without a role gets,
and the right role's status. ``test_the_table_covers_every_route`` fails, naming the route, when
the URL conf serves a route and method that has no row. How to add a row: docs/testing.md.
"""

from __future__ import annotations

import itertools
from dataclasses import replace

import pytest

from apps.audit.chain import seal_pending
from apps.audit.models import AuditEvent
from tests.support.routes import served_routes
from tests.support.triad import (
    ANON,
    NOBODY,
    RIGHT,
    WRITE_METHODS,
    WRONG,
    Route,
    call,
    client_for,
    decided_review,
    denied_write_left_only_its_denial,
    download_token,
    fingerprint,
    finished_delivery,
    halted_deployment,
    is_problem,
    last_event_id,
    made_up,
    open_review,
    pending_facts_change,
    report_signer,
    report_token,
    result_file,
    row,
    serving_deployment,
    stored_dataset,
    stored_report,
    team_schedule,
)

pytestmark = pytest.mark.django_db

# URL keyword arguments, by the object they address.
MODEL = lambda w: {"name": w.model.name}  # noqa: E731
VERSION = lambda w: {"name": w.model.name, "number": w.version.number}  # noqa: E731
VERSION3 = lambda w: {"name": w.model.name, "number": 3}  # noqa: E731  (an invalid version)
VERSION2 = lambda w: {"name": w.model.name, "number": 2}  # noqa: E731
DATASET = lambda w: {"dataset_id": w.dataset.pk}  # noqa: E731
STUCK = lambda w: {"dataset_id": w.stuck.pk}  # noqa: E731
PII = lambda w: {"run_id": w.pii.public_id}  # noqa: E731
RUN = lambda w: {"run_id": w.run.public_id}  # noqa: E731
RELEASE = lambda w: {"release_id": w.release.public_id}  # noqa: E731
FACTS_CHANGE = lambda w: {"change_id": w.given.public_id}  # noqa: E731  (``given=pending_facts_change``)
EMERGENCY = lambda w: {"release_id": w.emergency.public_id}  # noqa: E731  (a break-glass release)
PACK = lambda w: {"name": w.pack.name}  # noqa: E731
TEAM = lambda w: {"name": w.team.name}  # noqa: E731
HOOK = lambda w: {"webhook_id": w.webhook.public_id}  # noqa: E731
DEPLOYMENT = lambda w: {"deployment_id": w.deployment.public_id}  # noqa: E731
TARGET = lambda w: {"target_id": w.spare_target.public_id}  # noqa: E731
DEPLOYMENT_ID = lambda w: str(w.deployment.public_id)  # noqa: E731
SCHEDULE = lambda w: {"schedule_id": w.given.public_id}  # noqa: E731  (``given=team_schedule``)
REVIEW = lambda w: {"review_id": w.given.public_id}  # noqa: E731  (``given=open_review``)
REPORT = lambda w: {"report_id": w.given.public_id}  # noqa: E731  (``given=stored_report``)
SEALED = lambda w: seal_pending(blocking=True)  # noqa: E731  (proofs are over the sealed trail)
DOWNLOAD_LINK = lambda w: {"token": download_token(w, "contributor")}  # noqa: E731  (``given=stored_dataset``)

# What a list must not show a person without a role (and does show the right role).
MODEL_NAME = lambda w: w.model.name  # noqa: E731
DATASET_NAME = lambda w: w.dataset.name  # noqa: E731
RELEASE_ID = lambda w: str(w.release.public_id)  # noqa: E731

CSV_SCHEMA = '[{"name": "x", "type": "double", "role": "feature"}, {"name": "label", "type": "int", "role": "label"}]'


def csv_upload():
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile("fresh.csv", b"x,label\n0.5,1\n0.25,0\n", content_type="text/csv")


ADMIN = "admin@global"
AUDITOR = "auditor@global"
OFFICER = "compliance_officer@global"

TABLE: list[Route] = [
    # --- public
    row("api:health", "GET", None, nobody=200, note="503 when a dependency is down"),
    row("api:schema", "GET", None, nobody=200),
    row("api:docs", "GET", None, nobody=200),
    row("accounts:login", "GET", None, nobody=200),
    row(
        "accounts:login",
        "POST",
        None,
        nobody=200,
        body=lambda w: {"username": "x", "password": "y"},
        note="wrong credentials: the form again",
    ),
    *[
        row("api:not_found", m, "viewer", nobody=404, ok=404, audited=False, note="any other /api/v1/ path")
        for m in ("GET", "POST", "PUT", "PATCH", "DELETE")
    ],
    # --- accounts: your own session and tokens (any signed-in person)
    row(
        "accounts:logout",
        "POST",
        "viewer",
        nobody=302,
        ok=302,
        audited=False,
        note="signing out without a session changes nothing: no denial to record",
    ),
    row("accounts:tokens", "GET", "viewer", nobody=200),
    row(
        "accounts:tokens",
        "POST",
        "viewer",
        nobody=200,
        body=lambda w: {"name": "ci", "scopes": ["read"], "expires_in_days": "30"},
    ),
    row(
        "accounts:token_revoke",
        "POST",
        ADMIN,
        ok=302,
        kwargs=lambda w: {"token_id": w.token_id},
        note="an admin may revoke anyone's token",
    ),
    row("api:token-list", "GET", "viewer", nobody=200),
    row("api:token-list", "POST", "viewer", nobody=201, ok=201, body=lambda w: {"name": "ci", "scopes": ["read"]}),
    row(
        "api:token-revoke",
        "POST",
        ADMIN,
        kwargs=lambda w: {"token_id": w.token_id},
        note="an admin may revoke anyone's token",
    ),
    # --- accounts: people, teams, roles (admins; auditors read)
    row("accounts:access", "GET", AUDITOR, "viewer", nobody=403),
    row(
        "accounts:access_user_create",
        "POST",
        ADMIN,
        AUDITOR,
        nobody=403,
        ok=302,
        body=lambda w: {"user-username": "newbie", "user-email": "n@example.test"},
    ),
    row(
        "accounts:access_user_active",
        "POST",
        ADMIN,
        AUDITOR,
        nobody=403,
        ok=302,
        kwargs=lambda w: {"username": w.member.username},
        body=lambda w: {"is_active": "0"},
    ),
    row(
        "accounts:access_team_create", "POST", ADMIN, AUDITOR, nobody=403, ok=302, body=lambda w: {"team-name": "fraud"}
    ),
    row(
        "accounts:access_member_add",
        "POST",
        ADMIN,
        AUDITOR,
        nobody=403,
        ok=302,
        body=lambda w: {"member-team": w.team.name, "member-username": w.admin.username},
    ),
    row(
        "accounts:access_member_remove",
        "POST",
        ADMIN,
        AUDITOR,
        nobody=403,
        ok=302,
        kwargs=lambda w: {"name": w.team.name, "username": w.member.username},
    ),
    row(
        "accounts:access_service_account_create",
        "POST",
        ADMIN,
        AUDITOR,
        nobody=403,
        ok=302,
        body=lambda w: {"account-name": "ci-x", "account-owner": w.member.username},
    ),
    row(
        "accounts:access_role_grant",
        "POST",
        ADMIN,
        AUDITOR,
        nobody=403,
        ok=302,
        body=lambda w: {
            "grant-subject_type": "user",
            "grant-subject": w.member.username,
            "grant-role": "reviewer",
            "grant-scope": "team",
            "grant-team": w.team.name,
        },
    ),
    row(
        "accounts:access_role_revoke",
        "POST",
        ADMIN,
        AUDITOR,
        nobody=403,
        ok=302,
        kwargs=lambda w: {"binding_id": w.role_binding.pk},
    ),
    row("api:accounts-user-list", "GET", AUDITOR, "viewer", nobody=403),
    row(
        "api:accounts-user-list",
        "POST",
        ADMIN,
        AUDITOR,
        nobody=403,
        ok=201,
        body=lambda w: {"username": "newbie", "email": "n@example.test"},
    ),
    row(
        "api:accounts-user-detail",
        "GET",
        AUDITOR,
        "viewer",
        nobody=403,
        kwargs=lambda w: {"username": w.member.username},
    ),
    row(
        "api:accounts-user-detail",
        "PATCH",
        ADMIN,
        AUDITOR,
        nobody=403,
        kwargs=lambda w: {"username": w.member.username},
        body=lambda w: {"email": "m@example.test"},
    ),
    row("api:accounts-team-list", "GET", AUDITOR, "viewer", nobody=403),
    row("api:accounts-team-list", "POST", ADMIN, AUDITOR, nobody=403, ok=201, body=lambda w: {"name": "fraud"}),
    row("api:accounts-team-detail", "GET", AUDITOR, "viewer", nobody=403, kwargs=TEAM),
    row(
        "api:accounts-team-members",
        "POST",
        ADMIN,
        AUDITOR,
        nobody=403,
        ok=201,
        kwargs=TEAM,
        body=lambda w: {"username": w.admin.username},
    ),
    row(
        "api:accounts-team-member",
        "DELETE",
        ADMIN,
        AUDITOR,
        nobody=403,
        ok=204,
        kwargs=lambda w: {"name": w.team.name, "username": w.member.username},
    ),
    row("api:accounts-service-account-list", "GET", AUDITOR, "viewer", nobody=403),
    row(
        "api:accounts-service-account-list",
        "POST",
        ADMIN,
        AUDITOR,
        nobody=403,
        ok=201,
        body=lambda w: {"name": "ci-x", "owner": w.member.username},
    ),
    row("api:accounts-role-binding-list", "GET", AUDITOR, "viewer", nobody=403),
    row(
        "api:accounts-role-binding-list",
        "POST",
        ADMIN,
        AUDITOR,
        nobody=403,
        ok=201,
        body=lambda w: {
            "subject_type": "user",
            "subject": w.member.username,
            "role": "reviewer",
            "scope_team": w.team.name,
        },
    ),
    row(
        "api:accounts-role-binding-detail",
        "GET",
        AUDITOR,
        "viewer",
        nobody=403,
        kwargs=lambda w: {"binding_id": w.role_binding.pk},
    ),
    row(
        "api:accounts-role-binding-detail",
        "DELETE",
        ADMIN,
        AUDITOR,
        nobody=403,
        ok=204,
        kwargs=lambda w: {"binding_id": w.role_binding.pk},
    ),
    # --- registry
    row("registry:model_list", "GET", "viewer", nobody=200, hides=MODEL_NAME),
    row("registry:model_detail", "GET", "viewer", kwargs=MODEL),
    row("registry:version_detail", "GET", "viewer", kwargs=VERSION),
    row("registry:version_verify", "POST", "contributor", "viewer", ok=302, kwargs=VERSION3),
    row("registry:dataset_list", "GET", "viewer", nobody=200, hides=DATASET_NAME),
    row("registry:dataset_detail", "GET", "viewer", kwargs=DATASET),
    row("registry:dataset_verify", "POST", "contributor", "viewer", ok=302, kwargs=STUCK),
    row(
        "registry:version_download",
        "POST",
        "contributor",
        "viewer",
        ok=303,
        kwargs=VERSION,
        note="See Other: on to the signed link, which streams the file",
    ),
    row("registry:dataset_download", "POST", AUDITOR, "viewer", ok=303, kwargs=DATASET, given=stored_dataset),
    row("api:registry-model-list", "GET", "viewer", nobody=200, hides=MODEL_NAME),
    row(
        "api:registry-model-list",
        "POST",
        "contributor",
        "viewer",
        ok=201,
        body=lambda w: {"name": "fraud-score", "owner_team": w.team.name},
    ),
    row("api:registry-model-detail", "GET", "viewer", kwargs=MODEL),
    row(
        "api:registry-model-detail",
        "PATCH",
        "contributor",
        "viewer",
        kwargs=MODEL,
        body=lambda w: {"risk_tier": "high"},
    ),
    row("api:registry-version-list", "GET", "viewer", kwargs=MODEL),
    row(
        "api:registry-version-list",
        "POST",
        "contributor",
        "viewer",
        ok=201,
        kwargs=MODEL,
        body=lambda w: {"format": "predictions_only", "evaluation_dataset": w.dataset.pk},
    ),
    row("api:registry-version-detail", "GET", "viewer", kwargs=VERSION),
    row(
        "api:registry-version-retire",
        "POST",
        "contributor",
        "viewer",
        kwargs=VERSION2,
        body=lambda w: {"reason": "superseded"},
    ),
    row("api:registry-version-verify", "POST", "contributor", "viewer", ok=202, kwargs=VERSION3),
    row("api:registry-dataset-list", "GET", "viewer", nobody=200, hides=DATASET_NAME),
    row(
        "api:registry-dataset-list",
        "POST",
        "contributor",
        "viewer",
        ok=201,
        body=lambda w: {"name": "fresh", "owner_team": w.team.name, "file": csv_upload(), "schema": CSV_SCHEMA},
        multipart=True,
    ),
    row("api:registry-dataset-detail", "GET", "viewer", kwargs=DATASET),
    row("api:registry-dataset-verify", "POST", "contributor", "viewer", ok=202, kwargs=STUCK),
    row("api:registry-version-artifact-download", "POST", "contributor", "viewer", ok=303, kwargs=VERSION),
    row("api:registry-dataset-download", "POST", OFFICER, "viewer", ok=303, kwargs=DATASET, given=stored_dataset),
    row(
        "api:registry-download",
        "GET",
        "contributor",
        "viewer",
        nobody=403,
        kwargs=DOWNLOAD_LINK,
        given=stored_dataset,
        note="the link names the contributor: anyone else is refused",
    ),
    row(
        "api:registry-facts-change-list",
        "GET",
        "viewer",
        nobody=200,
        given=pending_facts_change,
        hides=lambda w: str(w.given.public_id),
    ),
    row("api:registry-facts-change-detail", "GET", "viewer", kwargs=FACTS_CHANGE, given=pending_facts_change),
    row(
        "api:registry-facts-change-approve",
        "POST",
        "compliance_officer",
        "reviewer",
        kwargs=FACTS_CHANGE,
        given=pending_facts_change,
        body=lambda w: {"reason": "the wider use is covered by the DPIA"},
    ),
    row(
        "api:registry-facts-change-reject",
        "POST",
        "compliance_officer",
        "reviewer",
        kwargs=FACTS_CHANGE,
        given=pending_facts_change,
        body=lambda w: {"reason": "not covered"},
    ),
    row(
        "api:registry-facts-change-cancel",
        "POST",
        "contributor",
        "viewer",
        kwargs=FACTS_CHANGE,
        given=pending_facts_change,
        body=lambda w: {"reason": "withdrawn"},
    ),
    row(
        "registry:facts_change_decide",
        "POST",
        "compliance_officer",
        "reviewer",
        ok=302,
        kwargs=lambda w: {"name": w.model.name, "change_id": w.given.public_id, "command": "approve"},
        given=pending_facts_change,
        body=lambda w: {"reason": "the wider use is covered by the DPIA"},
    ),
    # --- evidence
    row("evidence:run_detail", "GET", "viewer", kwargs=RUN),
    row("evidence:run_cancel", "POST", "contributor", "viewer", ok=302, kwargs=RUN),
    row(
        "evidence:finding_review",
        "POST",
        "reviewer",
        "viewer",
        ok=302,
        kwargs=PII,
        body=lambda w: {"finding": "email:EMAIL_ADDRESS", "verdict": "confirmed", "reason": "real"},
    ),
    row(
        "evidence:file_download",
        "GET",
        "viewer",
        kwargs=lambda w: {"run_id": w.pii.public_id, "name": w.given.name},
        given=result_file,
    ),
    row(
        "evidence:version_evidence_request",
        "POST",
        "contributor",
        "viewer",
        ok=302,
        kwargs=lambda w: {"name": w.model.name, "number": w.version.number, "kind": "bias"},
    ),
    row(
        "evidence:dataset_evidence_request",
        "POST",
        "contributor",
        "viewer",
        ok=302,
        kwargs=lambda w: {"dataset_id": w.dataset.pk, "kind": "pii_scan"},
    ),
    row("api:evidence-version-list", "GET", "viewer", kwargs=VERSION),
    row(
        "api:evidence-version-list",
        "POST",
        "contributor",
        "viewer",
        ok=202,
        kwargs=VERSION,
        body=lambda w: {"kind": "bias", "dataset_id": w.dataset.pk},
    ),
    row("api:evidence-dataset-list", "GET", "viewer", kwargs=DATASET),
    row(
        "api:evidence-dataset-list",
        "POST",
        "contributor",
        "viewer",
        ok=202,
        kwargs=DATASET,
        body=lambda w: {"kind": "pii_scan"},
    ),
    row("api:evidence-run-detail", "GET", "viewer", kwargs=RUN),
    row("api:evidence-run-cancel", "POST", "contributor", "viewer", kwargs=RUN),
    row("api:evidence-run-reviews", "GET", "viewer", kwargs=PII),
    row(
        "api:evidence-run-reviews",
        "POST",
        "reviewer",
        "viewer",
        ok=201,
        kwargs=PII,
        body=lambda w: {"finding": "email:EMAIL_ADDRESS", "verdict": "confirmed", "reason": "real"},
    ),
    row(
        "api:evidence-file-download",
        "GET",
        "viewer",
        kwargs=lambda w: {"run_id": w.pii.public_id, "name": w.given.name},
        given=result_file,
    ),
    # --- policies
    row("policies:pack_list", "GET", "viewer", nobody=403),
    row("policies:pack_detail", "GET", "viewer", nobody=403, kwargs=PACK),
    row("policies:pack_new", "GET", OFFICER, "reviewer", nobody=403),
    row(
        "policies:pack_new",
        "POST",
        OFFICER,
        "reviewer",
        nobody=403,
        ok=302,
        body=lambda w: {"name": "new-pack", "source": w.pack_source("new_pack")},
    ),
    row(
        "policies:pack_version_new",
        "POST",
        OFFICER,
        "reviewer",
        nobody=403,
        ok=302,
        kwargs=PACK,
        body=lambda w: {"source": w.pack_source("loan_limits") + "\n# v2\n", "note": "v2"},
    ),
    row(
        "policies:binding_new",
        "POST",
        OFFICER,
        "reviewer",
        nobody=403,
        ok=302,
        kwargs=PACK,
        body=lambda w: {"scope": "all", "environment": "staging"},
    ),
    row(
        "policies:binding_delete",
        "POST",
        OFFICER,
        "reviewer",
        nobody=403,
        ok=302,
        kwargs=lambda w: {"name": w.pack.name, "binding_id": w.binding.pk},
    ),
    row("api:policies-list", "GET", "viewer", nobody=403),
    row(
        "api:policies-list",
        "POST",
        OFFICER,
        "reviewer",
        nobody=403,
        ok=201,
        body=lambda w: {"name": "new-pack", "source": w.pack_source("new_pack")},
    ),
    row(
        "api:policies-dry-run",
        "POST",
        "viewer",
        writes=False,
        body=lambda w: {"model": "churn", "version": 1, "environment": "staging"},
    ),
    row("api:policies-detail", "GET", "viewer", nobody=403, kwargs=PACK),
    row("api:policies-versions", "GET", "viewer", nobody=403, kwargs=PACK),
    row(
        "api:policies-versions",
        "POST",
        OFFICER,
        "reviewer",
        nobody=403,
        ok=201,
        kwargs=PACK,
        body=lambda w: {"source": w.pack_source("loan_limits") + "\n# v2\n"},
    ),
    row("api:policies-version", "GET", "viewer", nobody=403, kwargs=lambda w: {"name": w.pack.name, "number": 1}),
    row("api:policies-bindings", "GET", "viewer", nobody=403, kwargs=PACK),
    row(
        "api:policies-bindings",
        "POST",
        OFFICER,
        "reviewer",
        nobody=403,
        ok=201,
        kwargs=PACK,
        body=lambda w: {"team": w.team.name},
    ),
    row(
        "api:policies-binding-detail",
        "DELETE",
        OFFICER,
        "reviewer",
        nobody=403,
        ok=204,
        kwargs=lambda w: {"binding_id": w.binding.pk},
    ),
    row("api:policies-version-decision", "GET", "viewer", kwargs=VERSION, query="?environment=staging"),
    # --- releases
    row("releases:approval_queue", "GET", "reviewer", nobody=200, hides=RELEASE_ID),
    row("releases:release_list", "GET", "viewer", nobody=200, hides=RELEASE_ID),
    row("releases:release_detail", "GET", "viewer", kwargs=RELEASE),
    row(
        "releases:release_decide",
        "POST",
        "reviewer",
        "viewer",
        ok=302,
        kwargs=RELEASE,
        body=lambda w: {"decision": "approve", "comment": "fine"},
    ),
    row("releases:release_cancel", "POST", "release_manager", "viewer", ok=302, kwargs=RELEASE),
    row(
        "releases:review_close",
        "POST",
        "compliance_officer",
        "viewer",
        ok=302,
        kwargs=EMERGENCY,
        body=lambda w: {"findings": "Root cause fixed."},
    ),
    row(
        "releases:release_request",
        "POST",
        "contributor",
        "viewer",
        ok=302,
        kwargs=VERSION2,
        body=lambda w: {"environment": "staging", "justification": "refresh"},
    ),
    row("api:environment-list", "GET", "viewer", nobody=200),
    row(
        "api:environment-list", "POST", ADMIN, "release_manager", nobody=403, ok=201, body=lambda w: {"name": "canary"}
    ),
    row("api:release-list", "GET", "viewer", nobody=200, hides=RELEASE_ID),
    row(
        "api:release-list",
        "POST",
        "contributor",
        "viewer",
        ok=201,
        body=lambda w: {"model": "churn", "version": 2, "environment": "staging", "justification": "refresh"},
    ),
    row("api:release-detail", "GET", "viewer", kwargs=RELEASE),
    row(
        "api:release-approvals",
        "POST",
        "reviewer",
        "viewer",
        ok=201,
        kwargs=RELEASE,
        body=lambda w: {"decision": "approve"},
    ),
    row("api:release-cancel", "POST", "release_manager", "viewer", kwargs=RELEASE),
    row(
        "api:release-review-close",
        "POST",
        "compliance_officer",
        "viewer",
        kwargs=EMERGENCY,
        body=lambda w: {"findings": "Root cause fixed."},
    ),
    row(
        "api:version-gate",
        "GET",
        "viewer",
        kwargs=lambda w: {"name": "churn", "number": 1},
        query="?environment=staging",
    ),
    # --- deployments
    row("api:target-list", "GET", ADMIN, "viewer", nobody=403),
    row(
        "api:target-list",
        "POST",
        ADMIN,
        AUDITOR,
        nobody=403,
        ok=201,
        body=lambda w: {"name": "new-lab", "kind": "local", "environment": "staging"},
    ),
    row("api:target-detail", "GET", ADMIN, "viewer", nobody=403, kwargs=TARGET),
    row(
        "api:target-detail",
        "PATCH",
        ADMIN,
        AUDITOR,
        nobody=403,
        kwargs=TARGET,
        body=lambda w: {"description": "GPU pool"},
    ),
    row("api:target-detail", "DELETE", ADMIN, AUDITOR, nobody=403, ok=204, kwargs=TARGET),
    row(
        "api:release-deploy",
        "POST",
        "release_manager",
        "viewer",
        ok=202,
        kwargs=EMERGENCY,
        body=lambda w: {"target": "prod-spare"},
        note="the break-glass release deploys to the spare production target",
    ),
    row("api:deployment-list", "GET", "viewer", nobody=200, hides=DEPLOYMENT_ID),
    row("api:deployment-detail", "GET", "viewer", kwargs=DEPLOYMENT),
    row("api:model-deployments", "GET", "viewer", kwargs=MODEL),
    row(
        "api:deployment-halt",
        "POST",
        "compliance_officer",
        "viewer",
        ok=202,
        kwargs=DEPLOYMENT,
        body=lambda w: {"reason": "oversight"},
    ),
    row(
        "api:deployment-resume",
        "POST",
        "release_manager",
        "compliance_officer",
        ok=202,
        kwargs=DEPLOYMENT,
        given=halted_deployment,
        body=lambda w: {"reason": "cause found"},
    ),
    row(
        "api:deployment-rollback",
        "POST",
        "release_manager",
        "compliance_officer",
        ok=202,
        kwargs=DEPLOYMENT,
        body=lambda w: {"reason": "wrong build"},
    ),
    row(
        "api:deployment-undeploy",
        "POST",
        "release_manager",
        "viewer",
        ok=202,
        kwargs=DEPLOYMENT,
        given=serving_deployment,
        body=lambda w: {"reason": "retired"},
    ),
    # dashboard pages
    row("deployments:release_deploy", "GET", "release_manager", "compliance_officer", kwargs=EMERGENCY),
    row(
        "deployments:release_deploy",
        "POST",
        "release_manager",
        "compliance_officer",
        ok=302,
        kwargs=EMERGENCY,
        body=lambda w: {"target": "prod-spare", "strategy": "direct", "kind": "online"},
        note="the break-glass release deploys to the spare production target; a refusal is the form again (400)",
    ),
    row("deployments:target_list", "GET", ADMIN, "viewer", nobody=403),
    row(
        "deployments:target_list",
        "POST",
        ADMIN,
        AUDITOR,
        nobody=403,
        ok=302,
        body=lambda w: {"name": "page-lab", "kind": "local", "environment": "staging"},
    ),
    row(
        "deployments:target_edit",
        "GET",
        ADMIN,
        "viewer",
        nobody=403,
        kwargs=lambda w: {"target_id": w.target.public_id},
    ),
    row(
        "deployments:target_edit",
        "POST",
        ADMIN,
        AUDITOR,
        nobody=403,
        ok=302,
        kwargs=lambda w: {"target_id": w.target.public_id},
        body=lambda w: {"environment": "production", "enabled": "on", "description": "changed"},
    ),
    row(
        "deployments:target_delete",
        "POST",
        ADMIN,
        AUDITOR,
        nobody=403,
        ok=302,
        kwargs=lambda w: {"target_id": w.spare_target.public_id},
        note="the spare target has no deployment: it goes",
    ),
    row("deployments:deployment_list", "GET", "viewer", nobody=200, hides=DEPLOYMENT_ID),
    row("deployments:deployment_detail", "GET", "viewer", kwargs=DEPLOYMENT),
    row(
        "deployments:deployment_command",
        "POST",
        "compliance_officer",
        "viewer",
        ok=302,
        kwargs=lambda w: {"deployment_id": w.deployment.public_id, "action": "halt"},
        body=lambda w: {"reason": "oversight"},
        note="one route for halt, resume, roll back and undeploy; each service decides who may",
    ),
    # --- notifications
    row("notifications:webhook_list", "GET", "compliance_officer", nobody=404),
    row(
        "notifications:webhook_create",
        "POST",
        "compliance_officer",
        "auditor",
        ok=200,
        kwargs=lambda w: {"team": "credit"},
        body=lambda w: {"url": "http://127.0.0.1:9/new", "events": ["release.approved"]},
        note="the page shows the new webhook's secret once",
    ),
    row(
        "notifications:webhook_action",
        "POST",
        "compliance_officer",
        "auditor",
        ok=200,
        kwargs=lambda w: {"webhook_id": w.webhook.public_id, "action": "rotate"},
        note="the page shows the new secret once",
    ),
    row("api:team-webhooks", "GET", "compliance_officer", kwargs=TEAM),
    row(
        "api:team-webhooks",
        "POST",
        "compliance_officer",
        "auditor",
        ok=201,
        kwargs=TEAM,
        body=lambda w: {"url": "http://127.0.0.1:9/new", "events": ["release.approved"]},
    ),
    row("api:webhook-detail", "GET", "compliance_officer", kwargs=HOOK),
    row(
        "api:webhook-detail",
        "PATCH",
        "compliance_officer",
        "auditor",
        kwargs=HOOK,
        body=lambda w: {"description": "changed"},
    ),
    row("api:webhook-detail", "DELETE", "compliance_officer", "auditor", ok=204, kwargs=HOOK),
    row("api:webhook-rotate", "POST", "compliance_officer", "auditor", kwargs=HOOK),
    row("api:webhook-test", "POST", "compliance_officer", "auditor", ok=202, kwargs=HOOK),
    row("api:webhook-deliveries", "GET", "compliance_officer", kwargs=HOOK),
    row(
        "api:webhook-redeliver",
        "POST",
        "compliance_officer",
        "auditor",
        ok=202,
        kwargs=lambda w: {"webhook_id": w.webhook.public_id, "delivery_id": w.delivery.public_id},
        given=finished_delivery,
    ),
    row("api:webhook-allowed-hosts", "GET", ADMIN, "viewer", nobody=403),
    row(
        "api:webhook-allowed-hosts",
        "POST",
        ADMIN,
        OFFICER,
        nobody=403,
        ok=201,
        body=lambda w: {"host": "other.example.test"},
    ),
    row(
        "api:webhook-allowed-host",
        "DELETE",
        ADMIN,
        OFFICER,
        nobody=403,
        ok=204,
        kwargs=lambda w: {"host_id": w.host.pk},
    ),
    # --- audit
    row("audit:event_list", "GET", AUDITOR, "viewer", nobody=403),
    row("audit:export", "GET", AUDITOR, "viewer", nobody=403, kwargs=lambda w: {"fmt": "csv"}),
    row("audit:verify", "GET", AUDITOR, "viewer", nobody=403),
    row("api:audit-events", "GET", AUDITOR, "viewer", nobody=403),
    row("api:audit-export", "GET", AUDITOR, "viewer", nobody=403, query="?format=csv"),
    row("api:audit-verify", "GET", AUDITOR, "viewer", nobody=403),
    row("api:audit-checkpoint", "GET", AUDITOR, "viewer", nobody=403),
    # --- reports
    row("reports:report_list", "GET", "release_manager", "viewer", nobody=403),
    row("reports:report_detail", "GET", "release_manager", "viewer", kwargs=REPORT, given=stored_report),
    row(
        "reports:report_download",
        "POST",
        "release_manager",
        "viewer",
        ok=303,
        kwargs=lambda w: {"report_id": w.given.public_id, "fmt": "pdf"},
        given=stored_report,
    ),
    row("reports:release_report", "POST", "release_manager", "viewer", ok=302, kwargs=RELEASE),
    row("reports:model_report", "POST", "compliance_officer", "release_manager", ok=302, kwargs=MODEL),
    row(
        "reports:period_report",
        "POST",
        OFFICER,
        "viewer",
        nobody=403,
        ok=302,
        body=lambda w: {"since": "2026-01-01", "until": "2026-12-31"},
        note="every team's period needs a global binding: a team's people are refused with a 403",
    ),
    row("api:reports", "GET", AUDITOR, "viewer", nobody=403),
    row(
        "api:reports",
        "POST",
        "release_manager",
        "viewer",
        ok=202,
        body=lambda w: {"kind": "release", "release": str(w.release.public_id)},
        note="nobody: the release is out of their sight, 404",
    ),
    row("api:report-detail", "GET", "release_manager", "viewer", kwargs=REPORT, given=stored_report),
    row(
        "api:report-download",
        "POST",
        OFFICER,
        "viewer",
        ok=303,
        kwargs=lambda w: {"report_id": w.given.public_id, "fmt": "pdf"},
        given=stored_report,
    ),
    row(
        "api:report-file",
        "GET",
        "release_manager",
        "viewer",
        nobody=403,
        kwargs=lambda w: {"token": report_token(w, "release_manager")},
        given=stored_report,
        note="the link names the release manager: anyone else is refused",
    ),
    row("api:report-certificate", "GET", "release_manager", "viewer", nobody=403, given=report_signer),
    row(
        "reports:trail_report",
        "POST",
        AUDITOR,
        "viewer",
        nobody=403,
        ok=302,
        body=lambda w: {"action": "model.*"},
        note="an audit trail extract needs audit.export, a global binding",
    ),
    row(
        "reports:schedule_create",
        "POST",
        OFFICER,
        "viewer",
        nobody=403,
        ok=302,
        body=lambda w: {"kind": "period", "cadence": "monthly"},
    ),
    row(
        "reports:schedule_delete",
        "POST",
        "compliance_officer",
        "viewer",
        ok=302,
        kwargs=SCHEDULE,
        given=team_schedule,
    ),
    row("api:report-schedules", "GET", AUDITOR, "viewer", nobody=403),
    row(
        "api:report-schedules",
        "POST",
        OFFICER,
        AUDITOR,
        nobody=403,
        ok=201,
        body=lambda w: {"kind": "period", "cadence": "monthly"},
        note="auditors generate and read reports; they do not schedule them",
    ),
    row("api:report-schedule", "DELETE", "compliance_officer", "viewer", ok=204, kwargs=SCHEDULE, given=team_schedule),
    # --- access reviews
    row("reports:review_list", "GET", OFFICER, "viewer", nobody=403),
    row("reports:review_start", "POST", OFFICER, "viewer", nobody=403, ok=302),
    row("reports:review_detail", "GET", OFFICER, "viewer", nobody=403, kwargs=REVIEW, given=open_review),
    row(
        "reports:review_decide",
        "POST",
        OFFICER,
        "viewer",
        nobody=403,
        ok=302,
        kwargs=lambda w: {"review_id": w.given.public_id, "item_id": w.given.items.get().pk},
        body=lambda w: {"decision": "attest"},
        given=open_review,
    ),
    row("reports:review_close", "POST", OFFICER, "viewer", nobody=403, ok=302, kwargs=REVIEW, given=decided_review),
    row("reports:review_report", "POST", OFFICER, "viewer", nobody=403, ok=302, kwargs=REVIEW, given=open_review),
    row("api:access-reviews", "GET", AUDITOR, "viewer", nobody=403),
    row("api:access-reviews", "POST", OFFICER, "viewer", nobody=403, ok=201, body=lambda w: {"title": "Q1"}),
    row("api:access-review-detail", "GET", AUDITOR, "viewer", nobody=403, kwargs=REVIEW, given=open_review),
    row(
        "api:access-review-decide",
        "POST",
        OFFICER,
        AUDITOR,
        nobody=403,
        kwargs=lambda w: {"review_id": w.given.public_id, "item_id": w.given.items.get().pk},
        body=lambda w: {"decision": "attest"},
        given=open_review,
        note="auditors read reviews; only reviewers decide",
    ),
    row("api:access-review-close", "POST", OFFICER, AUDITOR, nobody=403, kwargs=REVIEW, given=decided_review),
    row("api:audit-proof-consistency", "GET", AUDITOR, "viewer", nobody=403, query="?from=1", given=SEALED),
    row("api:audit-proof-inclusion", "GET", AUDITOR, "viewer", nobody=403, query="?seq=1", given=SEALED),
]

ROWS = {r.key: r for r in TABLE}


def test_the_table_has_one_row_per_route_and_method():
    keys = [r.key for r in TABLE]
    assert len(keys) == len(set(keys)), sorted(k for k in keys if keys.count(k) > 1)


def test_the_table_covers_every_route():
    # given every route and method the URL conf serves
    served = served_routes()

    # then each has a row, and each row is a served route
    missing = sorted(f"{m} {n}" for n, m in served - ROWS.keys())
    stale = sorted(f"{m} {n}" for n, m in ROWS.keys() - served)
    assert not missing, "routes without a row in tests/core/test_triad.py TABLE: " + ", ".join(missing)
    assert not stale, "rows for routes the URL conf no longer serves: " + ", ".join(stale)


_addresses = itertools.count(1)


def _anonymous(route: Route, world) -> None:
    client = client_for(route, None)
    client.defaults["REMOTE_ADDR"] = f"2001:db8:7:1::{next(_addresses):x}"  # each attempt is audited
    before, mark = fingerprint(), last_event_id()
    response = call(route, world, None, client=client)
    if route.right is None:
        assert response.status_code == route.nobody, f"{route} as {ANON}: {response.status_code}"
        return
    if route.api:
        assert response.status_code == 401, f"{route} as {ANON}: {response.status_code}"
        assert is_problem(response), f"{route} as {ANON}: {response['Content-Type']}"
        assert response["WWW-Authenticate"] == 'Bearer realm="assay"', route
        if route.method in WRITE_METHODS:
            denied_write_left_only_its_denial(route, before, mark, ANON)
    else:
        assert response.status_code == 302, f"{route} as {ANON}: {response.status_code}"
        assert response["Location"].startswith("/login/"), f"{route} as {ANON}: {response['Location']}"
        if route.method in WRITE_METHODS and route.audited:
            denied_write_left_only_its_denial(route, before, mark, ANON)


def _refused(route: Route, world, role: str | None, expected: int, who: str) -> None:
    user = world.person(role)
    client = client_for(route, user)
    before, mark = fingerprint(), last_event_id()
    response = call(route, world, user, client=client)
    assert response.status_code == expected, f"{route} as {who}: {response.status_code} {response.content[:300]}"
    if expected in (403, 404) and route.api:
        assert is_problem(response), f"{route} as {who}: {response['Content-Type']}"
    if expected in (403, 404) and route.method in WRITE_METHODS and route.audited:
        denied_write_left_only_its_denial(route, before, mark, who)


def _same_as_missing(route: Route, world) -> None:
    """An object the person may not see answers exactly as one that does not exist: nothing to tell apart."""
    user = world.person(None)
    hidden = call(route, world, user, client=client_for(route, user))
    ghost_kwargs = made_up(route.kwargs(world))
    ghost = replace(route, kwargs=lambda w: ghost_kwargs)
    missing = call(ghost, world, user, client=client_for(ghost, user))
    assert missing.status_code == hidden.status_code, (
        f"{route} as {NOBODY}: {hidden.status_code}, missing: {missing.status_code}"
    )
    if route.api:  # the same problem document, but for where and when it was asked
        per_request = ("instance", "request_id")
        said = {k: v for k, v in hidden.json().items() if k not in per_request}
        assert {k: v for k, v in missing.json().items() if k not in per_request} == said, f"{route} as {NOBODY}"


@pytest.mark.parametrize("route", TABLE, ids=str)
def test_triad(route: Route, world):
    # given the world's objects, owned by the team 'credit'

    world.given = route.given(world) if route.given else None

    # then anonymous callers are sent to sign in
    _anonymous(route, world)
    if route.right is None:
        return
    # and a person without any role sees nothing of the team's
    if route.nobody in (403, 404):
        _refused(route, world, None, route.nobody, NOBODY)
        if route.nobody == 404 and route.kwargs(world):
            _same_as_missing(route, world)
    else:
        user = world.person(None)
        response = call(route, world, user, client=client_for(route, user))
        assert response.status_code == route.nobody, f"{route} as {NOBODY}: {response.status_code}"
        if route.hides is not None:
            assert route.hides(world) not in response.content.decode(), f"{route} as {NOBODY} shows the team's"
    # and a wrong role is refused
    if route.wrong is not None:
        _refused(route, world, route.wrong, 403, WRONG)
    # and the right role gets through; a write that succeeds is on the trail
    user = world.person(route.right)
    client = client_for(route, user)
    mark = last_event_id()
    response = call(route, world, user, client=client)
    assert response.status_code == route.ok, f"{route} as {RIGHT}: {response.status_code} {response.content[:400]}"
    if route.hides is not None:
        assert route.hides(world) in response.content.decode(), f"{route} as {RIGHT} does not show the team's"
    if route.method in WRITE_METHODS and route.ok < 400 and route.writes:
        outcomes = list(AuditEvent.objects.filter(id__gt=mark).values_list("action", "outcome"))
        assert any(outcome == "success" for _, outcome in outcomes), f"{route} as {RIGHT}: audit events {outcomes}"
