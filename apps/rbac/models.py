"""Role bindings: subject -> role -> scope; environments, the scope of releases."""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from apps.accounts.models import ServiceAccount, Team, User
from apps.core.models import TimestampedModel

from .roles import Role


class Environment(TimestampedModel):
    """Where a version is released to: ``staging`` and ``production`` ship; admins define more.

    ``production`` environments get production policy rules and approvals that need revalidation;
    ``requires_change_reference`` makes a change reference (a ticket) mandatory on requests.
    An environment is a scope (a role bound to one applies to releases into it), so it sits here,
    below every app that reads it; ``apps.releases`` creates them. Its table keeps its first name.
    """

    name = models.SlugField(max_length=50, unique=True)
    production = models.BooleanField(default=False)
    requires_change_reference = models.BooleanField(default=False)
    description = models.TextField(blank=True)

    class Meta:
        db_table = "releases_environment"
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def audit_ref(self) -> tuple[str, str, str]:
        return ("environment", str(self.pk), self.name)

    def as_policy_input(self) -> dict:
        return {"name": self.name, "production": self.production}


class SubjectType(models.TextChoices):
    USER = "user", "User"
    TEAM = "team", "Team"
    SERVICE_ACCOUNT = "service_account", "Service account"


class ScopeType(models.TextChoices):
    GLOBAL = "global", "Global"
    TEAM = "team", "Team"
    MODEL = "model", "Model"
    ENVIRONMENT = "environment", "Environment"


class RoleBinding(models.Model):
    """Grants ``role`` to a user, a team's members or a service account: globally, on one team or model,
    or on one environment (releases into that environment, whichever team owns the model)."""

    subject_type = models.CharField(max_length=16, choices=SubjectType.choices)
    user = models.ForeignKey(User, null=True, blank=True, on_delete=models.CASCADE, related_name="role_bindings")
    team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.CASCADE, related_name="role_bindings")
    service_account = models.ForeignKey(
        ServiceAccount, null=True, blank=True, on_delete=models.CASCADE, related_name="role_bindings"
    )
    role = models.CharField(max_length=32, choices=Role.choices)
    scope_type = models.CharField(max_length=16, choices=ScopeType.choices, default=ScopeType.GLOBAL)
    scope_team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    scope_model = models.ForeignKey(
        "registry.RegisteredModel", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    # Releases (and later deployments) into one environment only, whichever team owns the model.
    scope_environment = models.ForeignKey(
        Environment, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    granted_by = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=(Q(subject_type="user", user__isnull=False, team__isnull=True, service_account__isnull=True))
                | (Q(subject_type="team", user__isnull=True, team__isnull=False, service_account__isnull=True))
                | (
                    Q(
                        subject_type="service_account",
                        user__isnull=True,
                        team__isnull=True,
                        service_account__isnull=False,
                    )
                ),
                name="binding_subject_matches_type",
            ),
            models.CheckConstraint(
                condition=(
                    Q(
                        scope_type="global",
                        scope_team__isnull=True,
                        scope_model__isnull=True,
                        scope_environment__isnull=True,
                    )
                )
                | Q(
                    scope_type="team",
                    scope_team__isnull=False,
                    scope_model__isnull=True,
                    scope_environment__isnull=True,
                )
                | Q(
                    scope_type="model",
                    scope_team__isnull=True,
                    scope_model__isnull=False,
                    scope_environment__isnull=True,
                )
                | Q(
                    scope_type="environment",
                    scope_team__isnull=True,
                    scope_model__isnull=True,
                    scope_environment__isnull=False,
                ),
                name="binding_scope_matches_type",
            ),
        ]

    def __str__(self) -> str:
        """Read by people (the access page's messages, the audit trail's target): labels, not slugs."""
        return f"{self.subject_label} is {self.get_role_display()} on {self.scope_label}"

    @property
    def subject_label(self) -> str:
        return f"{self.get_subject_type_display().lower()} {self.user or self.team or self.service_account}"

    @property
    def scope_label(self) -> str:
        if self.scope_type == ScopeType.TEAM:
            return f"team {self.scope_team}"
        if self.scope_type == ScopeType.MODEL:
            return f"model {self.scope_model}"
        if self.scope_type == ScopeType.ENVIRONMENT:
            return f"environment {self.scope_environment}"
        return "everything"

    def audit_ref(self) -> tuple[str, str, str]:
        return ("role_binding", str(self.pk), str(self))
