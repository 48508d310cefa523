"""Report API shapes."""

from __future__ import annotations

from rest_framework import serializers

from ..choices import ReportFormat, ReportKind


class ReportCreateInput(serializers.Serializer):
    kind = serializers.ChoiceField(choices=ReportKind.choices)
    release = serializers.CharField(required=False, help_text="The release's id (kind `release`).")
    model = serializers.CharField(required=False, help_text="The model's name (kind `model`).")
    team = serializers.CharField(
        required=False,
        help_text="A team's name (kind `period`; leave it out for every team, which needs a global role).",
    )
    review = serializers.CharField(required=False, help_text="The access review's id (kind `access_review`).")
    filters = serializers.DictField(
        child=serializers.CharField(allow_blank=True),
        required=False,
        help_text="Kind `trail`: the audit trail's filters (`actor`, `action`, `outcome`, `target_type`, `target_id`, "
        "`related`, `since`, `until`), as on `GET /api/v1/audit/events/`.",
    )
    since = serializers.CharField(required=False, help_text="Start of the period (ISO 8601 date or time, inclusive).")
    until = serializers.CharField(
        required=False, help_text="End of the period (ISO 8601, exclusive; a bare date includes that day)."
    )
    formats = serializers.ListField(
        child=serializers.ChoiceField(choices=ReportFormat.choices),
        required=False,
        help_text="Default: `pdf` and `pack`.",
    )


class ReportFileOutput(serializers.Serializer):
    format = serializers.CharField()
    name = serializers.CharField()
    sha256 = serializers.CharField()
    size = serializers.IntegerField()
    download = serializers.CharField(help_text="POST here for a download link (the download is audited).")


class ReportOutput(serializers.Serializer):
    id = serializers.UUIDField(source="public_id")
    url = serializers.SerializerMethodField()
    kind = serializers.CharField()
    title = serializers.CharField()
    subject = serializers.CharField()
    formats = serializers.ListField(child=serializers.CharField())
    status = serializers.CharField()
    progress = serializers.IntegerField()
    message = serializers.CharField()
    error = serializers.CharField()
    requested_by = serializers.CharField(source="requested_by_name")
    since = serializers.DateTimeField(allow_null=True)
    until = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)
    checkpoint = serializers.SerializerMethodField()
    events = serializers.IntegerField(allow_null=True)
    files = serializers.SerializerMethodField()

    def get_url(self, obj) -> str:
        request = self.context.get("request")
        path = f"/api/v1/reports/{obj.public_id}/"
        return request.build_absolute_uri(path) if request else path

    def get_checkpoint(self, obj) -> dict | None:
        if obj.checkpoint_size is None:
            return None
        return {"tree_size": obj.checkpoint_size, "root": obj.checkpoint_root}

    def get_files(self, obj) -> list[dict]:
        request = self.context.get("request")
        out = []
        for fmt in ReportFormat.values:
            stored = obj.files.get(fmt)
            if stored:
                path = f"/api/v1/reports/{obj.public_id}/download/{fmt}/"
                out.append(
                    {
                        "format": fmt,
                        "name": stored["name"],
                        "sha256": stored["sha256"],
                        "size": stored["size"],
                        "download": request.build_absolute_uri(path) if request else path,
                    }
                )
        return out


class AccessReviewStartInput(serializers.Serializer):
    team = serializers.CharField(required=False, allow_blank=True, help_text="One team's grants; leave out for all.")
    title = serializers.CharField(required=False, allow_blank=True, max_length=200)


class AccessReviewDecideInput(serializers.Serializer):
    decision = serializers.ChoiceField(choices=["attest", "revoke"])
    reason = serializers.CharField(required=False, allow_blank=True, help_text="Required to revoke.")


class AccessReviewItemOutput(serializers.Serializer):
    id = serializers.IntegerField(source="pk")
    subject = serializers.CharField()
    role = serializers.CharField()
    scope = serializers.CharField()
    granted_by = serializers.CharField()
    granted_at = serializers.DateTimeField(allow_null=True)
    last_used_at = serializers.DateTimeField(allow_null=True)
    decision = serializers.CharField()
    decided_by = serializers.CharField(source="decided_by_name")
    decided_at = serializers.DateTimeField(allow_null=True)
    reason = serializers.CharField()


class AccessReviewOutput(serializers.Serializer):
    id = serializers.UUIDField(source="public_id")
    title = serializers.CharField()
    team = serializers.CharField(source="team.name", allow_null=True, default=None)
    status = serializers.CharField()
    started_by = serializers.CharField(source="started_by_name")
    created_at = serializers.DateTimeField()
    closed_at = serializers.DateTimeField(allow_null=True)
    items = AccessReviewItemOutput(many=True, source="items.all")


class ScheduleInput(serializers.Serializer):
    kind = serializers.ChoiceField(choices=["period", "model"])
    cadence = serializers.ChoiceField(choices=["weekly", "monthly"])
    team = serializers.CharField(required=False, allow_blank=True, help_text="A period report's team; out: every team.")
    model = serializers.CharField(required=False, allow_blank=True, help_text="A model report's model.")
    formats = serializers.ListField(child=serializers.ChoiceField(choices=ReportFormat.choices), required=False)


class ScheduleOutput(serializers.Serializer):
    id = serializers.UUIDField(source="public_id")
    kind = serializers.CharField()
    cadence = serializers.CharField()
    team = serializers.CharField(source="team.name", allow_null=True, default=None)
    model = serializers.CharField(source="model.name", allow_null=True, default=None)
    formats = serializers.ListField(child=serializers.CharField())
    next_run_at = serializers.DateTimeField()
    created_by = serializers.CharField(source="created_by_name")
