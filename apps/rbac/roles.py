"""Roles, the permissions they grant, and the token scope each permission needs.

This table is the whole access policy: ``apps.rbac.services`` is the only code
that reads it.
"""

from __future__ import annotations

from django.db import models


class Role(models.TextChoices):
    VIEWER = "viewer", "Viewer"
    CONTRIBUTOR = "contributor", "Contributor (ML engineer)"
    REVIEWER = "reviewer", "Reviewer"
    COMPLIANCE_OFFICER = "compliance_officer", "Compliance officer"
    RELEASE_MANAGER = "release_manager", "Release manager"
    AUDITOR = "auditor", "Auditor"
    ADMIN = "admin", "Admin"


class Scope(models.TextChoices):
    """What a token may be used for; a token's scopes narrow its owner's roles, never widen them."""

    READ = "read", "Read models, versions, datasets, evidence and releases"
    REGISTRY_WRITE = "registry:write", "Register models, versions and datasets"
    EVIDENCE_WRITE = "evidence:write", "Request and review evidence"
    RELEASES_WRITE = "releases:write", "Request, approve and deploy releases"
    POLICIES_WRITE = "policies:write", "Manage policies"
    NOTIFICATIONS_WRITE = "notifications:write", "Manage a team's outbound webhooks"
    AUDIT_READ = "audit:read", "Read and export the audit trail"
    REPORTS = "reports", "Generate and download audit reports and evidence packs"
    ADMIN = "admin", "Manage users, teams, roles and service accounts"


# permission -> token scope it needs
PERMISSIONS: dict[str, str] = {
    "registry.view": Scope.READ,
    # fetch the bytes of a version's artifact or of a dataset (audited; docs: "Downloads")
    "registry.download": Scope.READ,
    "registry.model_create": Scope.REGISTRY_WRITE,
    "registry.model_edit": Scope.REGISTRY_WRITE,
    "registry.version_create": Scope.REGISTRY_WRITE,
    "registry.version_retire": Scope.REGISTRY_WRITE,
    "registry.dataset_create": Scope.REGISTRY_WRITE,
    # approve a change that loosens the facts a model's gate reads (docs/governance-facts.md)
    "registry.approve_facts": Scope.REGISTRY_WRITE,
    "evidence.view": Scope.READ,
    "evidence.request": Scope.EVIDENCE_WRITE,
    "evidence.review": Scope.EVIDENCE_WRITE,
    "releases.view": Scope.READ,
    "releases.request": Scope.RELEASES_WRITE,
    "releases.approve": Scope.RELEASES_WRITE,
    "releases.deploy": Scope.RELEASES_WRITE,
    "releases.emergency": Scope.RELEASES_WRITE,
    "releases.review": Scope.RELEASES_WRITE,  # close the post-release review of a break-glass release
    "deployments.view": Scope.READ,
    "deployments.deploy": Scope.RELEASES_WRITE,  # start, resume, roll back, undeploy a deployment
    "deployments.halt": Scope.RELEASES_WRITE,  # halt a rollout (human oversight: compliance officers too)
    "deployments.manage_targets": Scope.ADMIN,  # targets and their credentials
    "policies.view": Scope.READ,
    "policies.manage": Scope.POLICIES_WRITE,
    "notifications.view": Scope.READ,
    "notifications.manage": Scope.NOTIFICATIONS_WRITE,
    "notifications.allow_host": Scope.ADMIN,
    "audit.view": Scope.AUDIT_READ,
    "audit.export": Scope.AUDIT_READ,
    # see and download reports (a report belongs to its subject's model and team)
    "reports.view": Scope.REPORTS,
    # generate a release's report and evidence pack
    "reports.release": Scope.REPORTS,
    # generate a model's report or a period's (a team's, or every team's with a global binding)
    "reports.generate": Scope.REPORTS,
    # schedule reports (compliance officers; auditors generate and read, they do not schedule)
    "reports.schedule": Scope.REPORTS,
    "accounts.view": Scope.READ,
    "accounts.manage": Scope.ADMIN,
    # run the periodic access review: attest or revoke each role binding (compliance officers, admins)
    "accounts.review": Scope.ADMIN,
}

_VIEW = {"registry.view", "evidence.view", "releases.view", "policies.view", "deployments.view"}
_CONTRIBUTE = {
    "registry.model_create",
    "registry.model_edit",
    "registry.version_create",
    "registry.version_retire",
    "registry.dataset_create",
    "evidence.request",
    "releases.request",
}
_REVIEW = {"releases.approve", "evidence.review"}
_AUDIT = {"audit.view", "audit.export"}
_REPORTS = {"reports.view", "reports.release"}
_REPORTS_ALL = _REPORTS | {"reports.generate"}  # release managers report on releases only
# Seeing a model's record is not holding its bytes: a dataset may carry personal data and an artifact
# is the team's work. The people who build, review or examine a model may download it; a viewer and a
# release manager (whose deployments the control plane carries out) may not.
_DOWNLOAD = {"registry.download"}

ROLE_PERMISSIONS: dict[str, frozenset[str]] = {
    Role.VIEWER: frozenset(_VIEW),
    Role.CONTRIBUTOR: frozenset(_VIEW | _CONTRIBUTE | _DOWNLOAD),
    Role.REVIEWER: frozenset(_VIEW | _REVIEW | _DOWNLOAD),
    Role.COMPLIANCE_OFFICER: frozenset(
        _VIEW
        | _REVIEW
        | _DOWNLOAD
        | _AUDIT
        | _REPORTS_ALL
        | {
            "policies.manage",
            "releases.review",
            "notifications.view",
            "notifications.manage",
            "registry.approve_facts",
            "deployments.halt",
            "accounts.review",
            "reports.schedule",
        }
    ),
    Role.RELEASE_MANAGER: frozenset(
        _VIEW | _REPORTS | {"releases.deploy", "releases.emergency", "deployments.deploy", "deployments.halt"}
    ),
    Role.AUDITOR: frozenset(_VIEW | _AUDIT | _REPORTS_ALL | _DOWNLOAD | {"accounts.view", "notifications.view"}),
    Role.ADMIN: frozenset(PERMISSIONS),
}

# Roles that may never approve anything, whatever else they hold at the same time.
NEVER_APPROVES = frozenset({Role.AUDITOR})

# Permissions that only a global binding grants (the audit trail and the accounts span every team).
# An allowed webhook host lifts the SSRF guard for every team, so only a global admin may add one.
GLOBAL_ONLY = frozenset(
    {
        "audit.view",
        "audit.export",
        "accounts.view",
        "accounts.manage",
        "accounts.review",
        "policies.manage",
        "notifications.allow_host",
        "deployments.manage_targets",
    }
)

VIEW_PERMISSION_FOR = {
    "registry": "registry.view",
    "evidence": "evidence.view",
    "releases": "releases.view",
    "policies": "policies.view",
    "audit": "audit.view",
    "accounts": "accounts.view",
    "notifications": "notifications.view",
    "deployments": "deployments.view",
    # a report is about releases: whoever may see them learns a report exists (403), anyone else gets a 404
    "reports": "releases.view",
}


def view_permission(permission: str) -> str:
    return VIEW_PERMISSION_FOR.get(permission.split(".")[0], "registry.view")
