"""People, teams, CI service accounts and their API tokens."""

from __future__ import annotations

from django.contrib.auth.models import AbstractUser
from django.db import models
from django.db.models import Q
from django.utils import timezone

from apps.core.models import TimestampedModel


class User(AbstractUser):
    """A person who signs in to the dashboard or owns API tokens and service accounts."""

    failed_login_count = models.PositiveIntegerField(default=0)
    locked_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "accounts_user"

    def __str__(self) -> str:
        return self.username

    def audit_ref(self) -> tuple[str, str, str]:
        return ("user", str(self.pk), self.username)

    @property
    def display_name(self) -> str:
        return self.get_full_name() or self.username

    def is_locked(self) -> bool:
        return self.locked_until is not None and self.locked_until > timezone.now()


class Team(TimestampedModel):
    """A group that owns models and datasets; its members inherit the team's role bindings."""

    name = models.SlugField(max_length=64, unique=True)
    display_name = models.CharField(max_length=128, blank=True)
    description = models.TextField(blank=True)
    members = models.ManyToManyField(User, through="TeamMembership", related_name="teams")

    # A team is in scope for whoever holds a permission on the team (or globally): its name is
    # then shown; elsewhere it is "a team you cannot see" (``rbac.visible_pks``).
    RBAC_PATHS = {"team": "id", "model": None}

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.display_name or self.name

    def audit_ref(self) -> tuple[str, str, str]:
        return ("team", str(self.pk), self.name)

    def rbac_scope(self) -> tuple[int | None, int | None]:
        return (self.pk, None)


class TeamMembership(models.Model):
    """A user's membership of a team."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE)
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="memberships")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["team", "user"], name="uniq_team_member")]

    def __str__(self) -> str:
        return f"{self.user} in {self.team}"


class ServiceAccount(TimestampedModel):
    """A non-human principal for CI pipelines; what it does counts as done by its owner."""

    name = models.SlugField(max_length=64, unique=True)
    description = models.TextField(blank=True)
    team = models.ForeignKey(Team, on_delete=models.PROTECT, related_name="service_accounts", null=True, blank=True)
    owner = models.ForeignKey(User, on_delete=models.PROTECT, related_name="owned_service_accounts")
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def audit_ref(self) -> tuple[str, str, str]:
        return ("service_account", str(self.pk), self.name)


class ApiTokenQuerySet(models.QuerySet):
    def active(self):
        now = timezone.now()
        return self.filter(revoked_at__isnull=True).filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))


class ApiToken(models.Model):
    """A bearer token. Only a SHA-256 of its secret is stored; the token is shown once at creation.

    Wire format: ``assay_<token_id>_<secret>``; ``token_id`` (12 chars) finds the row,
    the 256-bit secret is compared by hash. Scopes can only narrow the owner's roles.
    """

    token_id = models.CharField(max_length=16, unique=True)
    secret_hash = models.CharField(max_length=64)
    name = models.CharField(max_length=128)
    user = models.ForeignKey(User, null=True, blank=True, on_delete=models.CASCADE, related_name="api_tokens")
    service_account = models.ForeignKey(
        ServiceAccount, null=True, blank=True, on_delete=models.CASCADE, related_name="api_tokens"
    )
    scopes = models.JSONField(default=list)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    last_used_ip = models.CharField(max_length=64, blank=True)

    objects = ApiTokenQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=(Q(user__isnull=False) & Q(service_account__isnull=True))
                | (Q(user__isnull=True) & Q(service_account__isnull=False)),
                name="token_has_exactly_one_owner",
            )
        ]

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.name})"

    @property
    def prefix(self) -> str:
        return f"assay_{self.token_id}"

    def audit_ref(self) -> tuple[str, str, str]:
        return ("api_token", self.token_id, self.name)

    @property
    def status(self) -> str:
        if self.revoked_at:
            return "revoked"
        if self.expires_at and self.expires_at <= timezone.now():
            return "expired"
        return "active"

    @property
    def owner_label(self) -> str:
        return f"service account {self.service_account}" if self.service_account_id else f"user {self.user}"
