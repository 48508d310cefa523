"""Releases API shapes. Serializers check shape only; the services decide what is allowed."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.reverse import reverse

from apps.core.api import fields as api_fields
from apps.releases.choices import ApprovalDecision, ReleaseStatus
from apps.releases.models import Environment, ReleaseRequest


def release_url(release: ReleaseRequest, request) -> str:
    return reverse("api:release-detail", kwargs={"release_id": release.public_id}, request=request)


class EnvironmentOutput(serializers.ModelSerializer):
    class Meta:
        model = Environment
        fields = ["name", "production", "requires_change_reference", "description", "created_at"]
        read_only_fields = fields


class EnvironmentInput(serializers.Serializer):
    name = serializers.SlugField(max_length=50)
    production = serializers.BooleanField(required=False, default=False)
    requires_change_reference = serializers.BooleanField(required=False, default=False)
    description = serializers.CharField(required=False, allow_blank=True, default="")


class ReleaseRequestInput(serializers.Serializer):
    model = serializers.SlugField(max_length=100)
    version = serializers.IntegerField(min_value=1)
    environment = serializers.SlugField(max_length=50)
    justification = serializers.CharField(allow_blank=True, help_text="Why this version should be released.")
    change_reference = serializers.CharField(
        required=False, allow_blank=True, default="", help_text="A ticket; required where the environment says so."
    )
    emergency = serializers.BooleanField(
        required=False, default=False, help_text="Break-glass (release managers only): opens a post-release review."
    )


class ApprovalInput(serializers.Serializer):
    decision = api_fields.ChoiceField(choices=ApprovalDecision.choices)
    comment = serializers.CharField(required=False, allow_blank=True, default="", help_text="Required to reject.")
    binding_digest = serializers.CharField(
        required=False,
        allow_blank=True,
        default="",
        help_text="The decision digest you reviewed; if the decision changed since, the approval is refused (409).",
    )


class CancelInput(serializers.Serializer):
    reason = serializers.CharField(required=False, allow_blank=True, default="")


class ReviewCloseInput(serializers.Serializer):
    findings = serializers.CharField(allow_blank=True)


class RequiredApprovalOutput(serializers.Serializer):
    role = serializers.CharField()
    count = serializers.IntegerField()
    reason = serializers.CharField()
    filled = serializers.IntegerField()


class ReceivedApprovalOutput(serializers.Serializer):
    person = serializers.CharField()
    service_account = serializers.CharField(allow_null=True)
    roles = serializers.ListField(child=serializers.CharField())
    decision = api_fields.ChoiceField(choices=ApprovalDecision.choices)
    comment = serializers.CharField()
    at = serializers.DateTimeField()
    void = serializers.BooleanField(help_text="Voided: the decision changed after it; it no longer counts.")
    fills = serializers.CharField(allow_null=True, help_text="The required role this approval fills, if any.")
    revalidate_at = serializers.DateTimeField(allow_null=True)


class ApprovalsOutput(serializers.Serializer):
    required = RequiredApprovalOutput(many=True)
    received = ReceivedApprovalOutput(many=True)


class ReviewOutput(serializers.Serializer):
    status = serializers.CharField()
    findings = serializers.CharField()
    closed_by = serializers.CharField(allow_null=True, source="closed_by.username", default=None)
    closed_at = serializers.DateTimeField(allow_null=True)


class RuleOutput(serializers.Serializer):
    """One rule as the release reads it; an approval rule is ``pending`` until its slots are filled."""

    rule = serializers.CharField()
    pack = serializers.CharField()
    clause = serializers.CharField()
    title = serializers.CharField()
    result = api_fields.ChoiceField(choices=["fail", "pending", "warning", "pass", "not_applicable"])
    message = serializers.CharField()
    measured = serializers.JSONField(required=False, help_text="The measured value, where the rule compares one.")
    threshold = serializers.JSONField(required=False, help_text="The threshold it was compared with.")


def _rules(release: ReleaseRequest, decision: dict) -> list[dict]:
    from apps.releases.selectors import approvals_summary, release_rules

    return release_rules(decision, approvals_summary(release, decision))


class ReleaseOutput(serializers.ModelSerializer):
    """A release request, its stored policy decision and its approvals."""

    id = serializers.UUIDField(source="public_id", read_only=True)
    url = serializers.SerializerMethodField()
    model = serializers.CharField(source="model.name")
    version = serializers.IntegerField(source="version.number")
    environment = serializers.CharField(source="environment.name")
    status = api_fields.ChoiceField(choices=ReleaseStatus.choices)
    requested_by = serializers.SerializerMethodField()
    approvals = serializers.SerializerMethodField()
    review = serializers.SerializerMethodField()
    decision = serializers.JSONField(
        help_text="The policy decision (packs, rules, evidence, digests) as stored when it was last made "
        "(``evaluated_at``); its rules read as in ``rules``."
    )
    rules = serializers.SerializerMethodField()

    class Meta:
        model = ReleaseRequest
        fields = [
            "id",
            "url",
            "model",
            "version",
            "environment",
            "status",
            "emergency",
            "justification",
            "change_reference",
            "requested_by",
            "binding_digest",
            "decision",
            "rules",
            "approvals",
            "review",
            "created_at",
            "evaluated_at",
            "expires_at",
            "approved_at",
            "revalidate_at",
            "closed_at",
            "closed_reason",
        ]
        read_only_fields = fields

    @extend_schema_field(OpenApiTypes.URI)
    def get_url(self, obj) -> str:
        return release_url(obj, self.context.get("request"))

    @extend_schema_field(
        {
            "type": "object",
            "properties": {
                "user": {"type": "string", "nullable": True},
                "service_account": {"type": "string", "nullable": True},
            },
        }
    )
    def get_requested_by(self, obj) -> dict:
        return {
            "user": obj.requested_by.username if obj.requested_by_id else None,
            "service_account": obj.requested_by_service_account.name if obj.requested_by_service_account_id else None,
        }

    def to_representation(self, obj) -> dict:
        from apps.policies.disclosure import decision_for_reader

        data = super().to_representation(obj)
        actor = getattr(self.context.get("request"), "principal", None)
        visible = self.context.get("visible_datasets")  # a list's page: read once for all its releases
        # Datasets outside the reader's scope are hidden in the decision, and so in its rules' messages.
        shown = decision_for_reader(actor=actor, decision=obj.decision, visible_ids=visible)
        data["rules"] = _rules(obj, shown)
        # The stored decision says "pass" for a rule that asks for approvals; the release reads it honestly.
        data["decision"] = {**(shown or {}), "rules": data["rules"]}
        return data

    @extend_schema_field(RuleOutput(many=True))
    def get_rules(self, obj) -> list[dict]:
        """Failing rules first; a rule that asks for approvals is pending until they are given."""
        return _rules(obj, obj.decision)

    @extend_schema_field(ApprovalsOutput)
    def get_approvals(self, obj) -> dict:
        from apps.releases.selectors import approvals_summary

        return approvals_summary(obj, obj.decision)

    @extend_schema_field(ReviewOutput(allow_null=True))
    def get_review(self, obj) -> dict | None:
        review = getattr(obj, "review", None) if obj.emergency else None
        return ReviewOutput(review).data if review is not None else None


class DutyPreviewOutput(serializers.Serializer):
    """Whether the caller may take a step of the release (request it, approve it), why not, and who may."""

    caller_may = serializers.BooleanField(help_text="True when the caller's identity and token may take the step now.")
    code = serializers.CharField(
        allow_null=True,
        help_text="null when the caller may; else why not: token_scope_missing | permission_denied | "
        "live_release_exists | version_not_ready | policy_not_satisfied | segregation_of_duties (requesting); "
        "token_scope_missing | permission_denied | auditor_never_approves | four_eyes | nothing_to_approve | "
        "already_decided | approval_not_needed (approving).",
    )
    reason = serializers.CharField(help_text="One sentence for a pipeline log.")
    who = serializers.CharField(help_text="Who may take the step: the roles, scopes and people excluded.")


class GateOutput(serializers.Serializer):
    """The gate's answer: may this version go to this environment now, and if not, why."""

    allowed = serializers.BooleanField()
    status = serializers.CharField(
        help_text="allowed | emergency | blocked | missing_evidence | release_required | pending_evidence | "
        "pending_approval | revalidation_due | rejected | expired | cancelled | evaluating (no stored decision yet)"
    )
    model = serializers.CharField(source="version.model.name")
    version = serializers.IntegerField(source="version.number")
    environment = serializers.CharField(source="environment.name")
    violations = serializers.ListField(child=serializers.DictField())
    missing_evidence = serializers.ListField(child=serializers.DictField())
    approvals = ApprovalsOutput()

    def to_representation(self, gate) -> dict:
        from apps.policies.disclosure import decision_for_reader

        data = super().to_representation(gate)
        actor = getattr(self.context.get("request"), "principal", None)
        shown = decision_for_reader(actor=actor, decision=gate.decision)
        data["violations"] = list(shown.get("violations", []))
        data["missing_evidence"] = list(shown.get("missing_evidence", []))
        return data

    binding_digest = serializers.CharField(source="decision.binding_digest", allow_null=True)
    evaluated_at = serializers.DateTimeField(
        allow_null=True,
        help_text="When this decision was made (the request's, or the stored gate decision the reacting jobs "
        "made); null while the gate is evaluating.",
    )
    reasons = serializers.ListField(
        child=serializers.CharField(),
        help_text="Why, in sentences for a pipeline log; to the version's author, who may request and approve instead.",
    )
    revalidate_at = serializers.DateTimeField(allow_null=True)
    release = serializers.SerializerMethodField()
    wait_outcome = api_fields.ChoiceField(
        choices=["not_asked", "final", "changed", "timeout"],
        help_text="How a ?wait= ended: not_asked (no wait), final (the first answer was final: returned at once), "
        "changed (allowed or status changed while waiting), timeout (the wait ended; this is the answer of then).",
    )
    waited = serializers.FloatField(help_text="Seconds the request waited (0 without ?wait=).")
    request_preview = DutyPreviewOutput(
        help_text="May the caller request this release (the check the release request applies), and who may."
    )
    approval_preview = DutyPreviewOutput(
        help_text="May the caller approve it (four eyes, roles, open slots, as the approval applies them), and who may."
    )

    @extend_schema_field({"type": "string", "format": "uri", "nullable": True})  # null: no current request
    def get_release(self, gate) -> str | None:
        return release_url(gate.release, self.context.get("request")) if gate.release is not None else None


# The gate is asked on every CI run. Building ``GateOutput`` deep-copies its fields and its nested
# serializers' on every call (DRF copies declared fields per instance), about a third of the gate's
# CPU; ``gate_payload`` builds the same document directly. ``GateOutput`` stays the schema, and
# tests/releases/test_gate_payload.py holds the two equal for every status the gate answers.
_DATETIME = serializers.DateTimeField()


def _moment(value) -> str | None:
    return None if value is None else _DATETIME.to_representation(value)


def _preview(preview: dict) -> dict:
    code = preview["code"]
    return {
        "caller_may": bool(preview["caller_may"]),
        "code": None if code is None else str(code),
        "reason": str(preview["reason"]),
        "who": str(preview["who"]),
    }


def gate_payload(gate, request) -> dict:
    """``GateOutput(gate).data``, built without a serializer: the gate API's answer."""
    from apps.policies.disclosure import decision_for_reader

    approvals = gate.approvals
    shown = decision_for_reader(actor=getattr(request, "principal", None), decision=gate.decision)
    return {
        "allowed": bool(gate.allowed),
        "status": str(gate.status),
        "model": str(gate.version.model.name),
        "version": int(gate.version.number),
        "environment": str(gate.environment.name),
        "violations": list(shown.get("violations", [])),
        "missing_evidence": list(shown.get("missing_evidence", [])),
        "approvals": {
            "required": [
                {
                    "role": str(r["role"]),
                    "count": int(r["count"]),
                    "reason": str(r["reason"]),
                    "filled": int(r["filled"]),
                }
                for r in approvals["required"]
            ],
            "received": [
                {
                    "person": str(a["person"]),
                    "service_account": None if a["service_account"] is None else str(a["service_account"]),
                    "roles": [str(role) for role in a["roles"]],
                    "decision": str(a["decision"]),
                    "comment": str(a["comment"]),
                    "at": _moment(a["at"]),
                    "void": bool(a["void"]),
                    "fills": None if a["fills"] is None else str(a["fills"]),
                    "revalidate_at": _moment(a["revalidate_at"]),
                }
                for a in approvals["received"]
            ],
        },
        "binding_digest": gate.decision.get("binding_digest"),
        "evaluated_at": _moment(gate.evaluated_at),
        "reasons": [str(r) for r in gate.reasons],
        "revalidate_at": _moment(gate.revalidate_at),
        "release": release_url(gate.release, request) if gate.release is not None else None,
        "wait_outcome": str(gate.wait_outcome),
        "waited": float(gate.waited),
        "request_preview": _preview(gate.request_preview),
        "approval_preview": _preview(gate.approval_preview),
    }
