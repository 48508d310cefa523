"""Registry API shapes. Serializers check shape only; the services decide what is allowed."""

from __future__ import annotations

import copy
import json

from django.core.validators import MaxLengthValidator, MinLengthValidator, ProhibitNullCharactersValidator
from django.utils.functional import cached_property
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.reverse import reverse
from rest_framework.utils.serializer_helpers import BindingDict
from rest_framework.validators import ProhibitSurrogateCharactersValidator

from apps.core.api import fields as api_fields
from apps.core.api.strict import StrictInput
from apps.core.models import MAX_ID
from apps.evidence.choices import EvidenceKind
from apps.evidence.selectors import version_accuracy_check
from apps.rbac import services as rbac
from apps.registry.choices import ArtifactFormat, ColumnRole, DataCategory, DatasetFormat, RiskTier
from apps.registry.models import Dataset, FactsChange, ModelVersion, RegisteredModel
from apps.registry.services.versions import version_url

# ---------------------------------------------------------------------------------------------
# Speed


class FieldsBuiltOnce:
    """Build a serializer class's fields once per process, then give each instance shallow copies.

    DRF builds every serializer instance's fields from scratch (a deepcopy of the declared
    fields, which re-runs each field's ``__init__``, plus, for a ModelSerializer, mapping the
    model's fields): about 2 ms of CPU per version registration for the input, the output and
    the job status. A shallow copy of an unbound field is enough because binding (name, parent,
    source) happens on the copy and fields keep no other per-request state. Only for
    serializers without nested serializers (a nested one would be shared between requests).
    """

    @cached_property
    def fields(self):
        cls = type(self)
        template = cls.__dict__.get("_fields_template")  # the class's own, never a base class's
        if template is None:
            template = self.get_fields()
            cls._fields_template = template
        fields = BindingDict(self)
        for name, field in template.items():
            fields[name] = copy.copy(field)
        return fields


class PlainJsonFastPath:
    """Validate a plain JSON body without DRF's field-by-field walk, or decline.

    ``fast_validated(data)`` returns what ``is_valid()`` would put in ``validated_data`` when
    every value is of the plainest kind the field takes (a printable ASCII string without outer
    spaces within the field's lengths, a choice, an int in range, a JSON object, a null where
    allowed, or absent), and ``None`` for anything else, which then goes through DRF as before:
    every error message still comes from DRF. On a version registration DRF's walk over the
    fields was about a tenth of the request's CPU. ``tests/registry/test_fast_validation.py``
    holds the two to each other. Only for serializers without ``validate`` methods.
    """

    @classmethod
    def fast_validated(cls, data) -> dict | None:
        plan = cls.__dict__.get("_fast_plan")
        if plan is None:
            plan = cls._fast_plan = _fast_plan(cls())
        if type(data) is not dict:
            return None
        out = {}
        for name, check, default in plan:
            value = data.get(name, _ABSENT)
            if value is _ABSENT:
                if default is _DECLINE:
                    return None
                if default is not _ABSENT:
                    out[name] = default() if callable(default) else default
                continue
            value = check(value)
            if value is _DECLINE:
                return None
            out[name] = value
        return out


_ABSENT, _DECLINE = object(), object()
# What DRF gives every CharField, all kept by a printable ASCII string within the lengths.
_LENGTH_VALIDATORS = (
    MaxLengthValidator,
    MinLengthValidator,
    ProhibitNullCharactersValidator,
    ProhibitSurrogateCharactersValidator,
)


def _fast_plan(serializer) -> list:
    """Per writable field: (name, check of a present value, what an absent one becomes)."""
    plan = []
    for name, field in serializer.fields.items():
        if field.read_only:
            continue
        if field.required:
            absent = _DECLINE  # DRF says what is missing
        elif field.default is not serializers.empty:
            absent = field.default
        else:
            absent = _ABSENT
        plan.append((name, _fast_check(field), absent))
    return plan


def _fast_check(field):
    allow_null = field.allow_null

    def null_or(check):
        def checked(value):
            if value is None:
                return None if allow_null else _DECLINE
            return check(value)

        return checked

    kind = type(field)
    if kind is serializers.CharField and field.trim_whitespace:
        if not all(isinstance(v, _LENGTH_VALIDATORS) for v in field.validators):  # a check of its own
            return lambda value: _DECLINE
        longest, shortest, blank = field.max_length, field.min_length or 0, field.allow_blank

        def text(value):
            if type(value) is not str or not value.isascii() or not value.isprintable() or value.strip() != value:
                return _DECLINE
            if (not value and not blank) or (longest is not None and len(value) > longest) or len(value) < shortest:
                return _DECLINE
            return value

        return null_or(text)
    if kind is serializers.ChoiceField or kind is api_fields.ChoiceField:
        choices, blank = field.choice_strings_to_values, field.allow_blank

        def choice(value):
            if type(value) is not str:
                return _DECLINE
            if value == "":
                return "" if blank else _DECLINE
            return choices.get(value, _DECLINE)

        return null_or(choice)
    if kind is serializers.IntegerField:
        lowest, highest = field.min_value, field.max_value

        def integer(value):
            if type(value) is not int or (lowest is not None and value < lowest):
                return _DECLINE
            return value if highest is None or value <= highest else _DECLINE

        return null_or(integer)
    if kind is JSONObjectField:
        return null_or(lambda value: value if type(value) is dict else _DECLINE)
    return lambda value: _DECLINE  # any other field: DRF decides


# ---------------------------------------------------------------------------------------------
# Fields


class _JSONInForm:
    """Accept a JSON value, or (in a multipart form) a string holding JSON."""

    def _decode(self, data):
        if isinstance(data, str):
            if not data.strip():
                return None
            try:
                return json.loads(data)
            except json.JSONDecodeError:
                self.fail("invalid_json")
        return data


@extend_schema_field(OpenApiTypes.OBJECT)
class JSONObjectField(_JSONInForm, serializers.Field):
    """A JSON object; in multipart forms, a string holding one."""

    default_error_messages = {"invalid_json": "Not valid JSON.", "not_object": "Expected a JSON object."}

    def to_internal_value(self, data):
        value = self._decode(data)
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.fail("not_object")
        return value

    def to_representation(self, value):
        return value


class ColumnSerializer(serializers.Serializer):
    """One declared column of a dataset."""

    name = serializers.CharField(max_length=200)
    type = serializers.CharField(max_length=64, required=False, allow_blank=True, default="")
    role = api_fields.ChoiceField(choices=ColumnRole.choices, default=ColumnRole.FEATURE)


class SchemaField(_JSONInForm, serializers.ListField):
    """A list of columns; in multipart forms, a string holding the JSON list."""

    default_error_messages = {"invalid_json": "Not valid JSON."}

    def __init__(self, **kwargs):
        super().__init__(child=ColumnSerializer(), **kwargs)

    def get_value(self, dictionary):
        if hasattr(dictionary, "getlist") and self.field_name in dictionary:
            values = dictionary.getlist(self.field_name)
            return values[0] if len(values) == 1 else values
        return super().get_value(dictionary)

    def to_internal_value(self, data):
        value = self._decode(data)
        return super().to_internal_value(value if value is not None else [])


class IdListField(serializers.ListField):
    """A list of ids: a JSON list, repeated form fields, or one comma-separated form field."""

    def __init__(self, **kwargs):
        super().__init__(child=serializers.IntegerField(min_value=1, max_value=MAX_ID), **kwargs)

    def to_internal_value(self, data):
        if isinstance(data, str):
            data = [part for part in data.replace(" ", "").split(",") if part]
        elif isinstance(data, list) and len(data) == 1 and isinstance(data[0], str) and "," in data[0]:
            data = [part for part in data[0].replace(" ", "").split(",") if part]
        return super().to_internal_value(data)


# ---------------------------------------------------------------------------------------------
# Output


class JobStatusOutput(FieldsBuiltOnce, serializers.Serializer):
    """The verification job: its status and progress (0-100)."""

    id = serializers.UUIDField(source="public_id")
    status = serializers.CharField()
    progress = serializers.IntegerField()
    message = serializers.CharField()
    error = serializers.CharField()
    updated_at = serializers.DateTimeField()


class AuthorOutput(serializers.Serializer):
    """Who registered it: the accountable person, and the service account they acted through, if any."""

    user = serializers.CharField(allow_null=True)
    service_account = serializers.CharField(allow_null=True)


_datetime = serializers.DateTimeField().to_representation  # DRF's own format (ISO 8601, time zone)


def _author(obj) -> dict:
    return {
        "user": obj.created_by.username if obj.created_by_id else None,
        "service_account": obj.created_by_service_account.name if obj.created_by_service_account_id else None,
    }


class ModelOutput(serializers.ModelSerializer):
    """A registered model."""

    owner_team = serializers.SlugRelatedField(slug_field="name", read_only=True)
    data_categories = serializers.ListField(child=api_fields.ChoiceField(choices=DataCategory.choices))
    jurisdictions = serializers.ListField(child=serializers.CharField())
    default_evidence = serializers.ListField(child=api_fields.ChoiceField(choices=EvidenceKind.choices))
    version_count = serializers.SerializerMethodField()
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)
    url = serializers.SerializerMethodField()
    versions_url = serializers.SerializerMethodField()

    class Meta:
        model = RegisteredModel
        fields = [
            "name",
            "owner_team",
            "description",
            "intended_use",
            "limitations",
            "risk_tier",
            "data_categories",
            "jurisdictions",
            "default_evidence",
            "automated_decisions",
            "human_review_path",
            "dpia_reference",
            "human_oversight",
            "minimisation_justification",
            "fairness_thresholds",
            "version_count",
            "created_by",
            "created_at",
            "updated_at",
            "url",
            "versions_url",
        ]
        read_only_fields = fields

    def get_version_count(self, obj) -> int:
        return getattr(obj, "version_count", 0)

    def get_url(self, obj) -> str:
        return reverse("api:registry-model-detail", kwargs={"name": obj.name}, request=self.context.get("request"))

    def get_versions_url(self, obj) -> str:
        return reverse("api:registry-version-list", kwargs={"name": obj.name}, request=self.context.get("request"))


class FactsChangeOutput(serializers.ModelSerializer):
    """A proposed change of a model's policy facts: each field's value before and after, who proposed
    it and why, and the decision (``pending`` until a compliance officer approves or rejects it)."""

    id = serializers.UUIDField(source="public_id", read_only=True)
    model = serializers.CharField(source="model.name", read_only=True)
    changes = JSONObjectField(help_text='{"risk_tier": {"before": "high", "after": "limited"}, ...}')
    proposed_by = serializers.SerializerMethodField()
    decided_by = serializers.CharField(source="decided_by_name", read_only=True)
    url = serializers.SerializerMethodField()
    model_url = serializers.SerializerMethodField()

    class Meta:
        model = FactsChange
        fields = [
            "id",
            "model",
            "status",
            "changes",
            "reason",
            "proposed_by",
            "created_at",
            "decided_by",
            "decided_at",
            "decision_reason",
            "url",
            "model_url",
        ]
        read_only_fields = fields

    @extend_schema_field(AuthorOutput)
    def get_proposed_by(self, obj) -> dict:
        return {
            "user": obj.proposed_by.username if obj.proposed_by_id else None,
            "service_account": obj.proposed_by_service_account.name if obj.proposed_by_service_account_id else None,
        }

    def get_url(self, obj) -> str:
        return reverse(
            "api:registry-facts-change-detail", kwargs={"change_id": obj.public_id}, request=self.context.get("request")
        )

    def get_model_url(self, obj) -> str:
        return reverse(
            "api:registry-model-detail", kwargs={"name": obj.model.name}, request=self.context.get("request")
        )


class ModelUpdateSummary(serializers.Serializer):
    """What a PATCH did: the fields applied now, those waiting for approval, and the change they wait in."""

    applied = serializers.ListField(child=serializers.CharField())
    pending = serializers.ListField(child=serializers.CharField())
    facts_change = FactsChangeOutput(allow_null=True)


class ModelUpdateOutput(ModelOutput):
    """The model as it now is, and ``update``: which fields applied and which wait for approval."""

    update = serializers.SerializerMethodField()

    class Meta(ModelOutput.Meta):
        fields = [*ModelOutput.Meta.fields, "update"]
        read_only_fields = fields

    @extend_schema_field(ModelUpdateSummary)
    def get_update(self, obj) -> dict:
        result = self.context["update"]
        change = result.facts_change
        return {
            "applied": result.applied,
            "pending": result.pending,
            "facts_change": FactsChangeOutput(change, context=self.context).data if change is not None else None,
        }


class FactsChangeDecisionInput(serializers.Serializer):
    reason = serializers.CharField(max_length=2000, help_text="Why the change is approved, rejected or cancelled.")


class FactsChangeCancelInput(serializers.Serializer):
    reason = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")


class LineageOutput(serializers.Serializer):
    """Where a version came from."""

    source_repository = serializers.CharField()
    source_commit = serializers.CharField()
    ci_run_url = serializers.CharField()
    training_datasets = serializers.ListField(child=serializers.IntegerField(allow_null=True))
    evaluation_dataset = serializers.IntegerField(allow_null=True)


class AccuracyCheckOutput(serializers.Serializer):
    """The accuracy a version declared in ``metrics`` against the accuracy its latest bias report measured."""

    declared = serializers.FloatField()
    measured = serializers.FloatField()
    difference = serializers.FloatField(help_text="measured - declared")
    tolerance = serializers.FloatField(help_text="ASSAY_METRIC_TOLERANCE (absolute)")
    mismatch = serializers.BooleanField(help_text="|difference| > tolerance")
    run = serializers.UUIDField(help_text="The bias report that measured it.")
    text = serializers.CharField()


class VersionOutput(FieldsBuiltOnce, serializers.ModelSerializer):
    """A model version: its artifact (digest, size, format), status, metrics, lineage, model card and author."""

    model = serializers.CharField(source="model.name", read_only=True)
    lineage = serializers.SerializerMethodField()
    author = serializers.SerializerMethodField()
    verification = serializers.SerializerMethodField()
    accuracy_check = serializers.SerializerMethodField()
    url = serializers.SerializerMethodField()
    metrics = JSONObjectField()
    model_card = JSONObjectField()

    class Meta:
        model = ModelVersion
        fields = [
            "model",
            "number",
            "status",
            "status_reason",
            "format",
            "sha256",
            "size",
            "artifact_uri",
            "artifact_is_reference",
            "description",
            "metrics",
            "lineage",
            "model_card",
            "author",
            "verification",
            "accuracy_check",
            "created_at",
            "updated_at",
            "url",
        ]
        read_only_fields = fields

    @extend_schema_field(AccuracyCheckOutput(allow_null=True))
    def get_accuracy_check(self, obj) -> dict | None:
        """Declared against measured accuracy: on the version's own endpoint only (null in lists)."""
        actor = self.context.get("accuracy_actor")
        if actor is None:
            return None
        return version_accuracy_check(actor=actor, version=obj)

    @extend_schema_field(LineageOutput)
    def get_lineage(self, obj) -> dict:
        """Dataset ids; a dataset outside the reader's scope (another team's) is null, so the count stays honest."""
        actor = getattr(self.context.get("request"), "principal", None)

        def shown(dataset):
            return dataset.pk if rbac.allows(actor, "registry.view", dataset) else None

        return {
            "source_repository": obj.source_repository,
            "source_commit": obj.source_commit,
            "ci_run_url": obj.ci_run_url,
            "training_datasets": [shown(d) for d in obj.training_datasets.all()],
            "evaluation_dataset": shown(obj.evaluation_dataset) if obj.evaluation_dataset_id else None,
        }

    @extend_schema_field(AuthorOutput)
    def get_author(self, obj) -> dict:
        return _author(obj)

    @extend_schema_field(JobStatusOutput(allow_null=True))
    def get_verification(self, obj) -> dict | None:
        return JobStatusOutput(obj.verification_job).data if obj.verification_job_id else None

    def to_representation(self, obj) -> dict:
        """The fields above, built directly: DRF's field-by-field walk was about a tenth of a
        registration's CPU. ``tests/registry/test_api_versions.py`` holds this to DRF's own
        ``to_representation`` of the same fields, so the two cannot drift apart."""
        job = obj.verification_job if obj.verification_job_id else None
        return {
            "model": obj.model.name,
            "number": obj.number,
            "status": obj.status,
            "status_reason": obj.status_reason,
            "format": obj.format,
            "sha256": obj.sha256,
            "size": obj.size,
            "artifact_uri": obj.artifact_uri,
            "artifact_is_reference": obj.artifact_is_reference,
            "description": obj.description,
            "metrics": obj.metrics,
            "lineage": self.get_lineage(obj),
            "model_card": obj.model_card,
            "author": _author(obj),
            "verification": None
            if job is None
            else {
                "id": str(job.public_id),
                "status": job.status,
                "progress": job.progress,
                "message": job.message,
                "error": job.error,
                "updated_at": _datetime(job.updated_at),
            },
            "accuracy_check": self.get_accuracy_check(obj),
            "created_at": _datetime(obj.created_at),
            "updated_at": _datetime(obj.updated_at),
            "url": self.get_url(obj),
        }

    def get_url(self, obj) -> str:
        path = version_url(obj.model.name, obj.number)
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request is not None else path


class DatasetOutput(serializers.ModelSerializer):
    """A dataset: where it is, its digest and row count, and the role of each column."""

    owner_team = serializers.SlugRelatedField(slug_field="name", read_only=True)
    schema = ColumnSerializer(many=True)
    author = serializers.SerializerMethodField()
    verification = serializers.SerializerMethodField()
    url = serializers.SerializerMethodField()

    class Meta:
        model = Dataset
        fields = [
            "id",
            "name",
            "owner_team",
            "description",
            "format",
            "uri",
            "is_reference",
            "status",
            "status_reason",
            "sha256",
            "size",
            "row_count",
            "schema",
            "source",
            "author",
            "verification",
            "created_at",
            "updated_at",
            "url",
        ]
        read_only_fields = fields

    @extend_schema_field(AuthorOutput)
    def get_author(self, obj) -> dict:
        return _author(obj)

    @extend_schema_field(JobStatusOutput(allow_null=True))
    def get_verification(self, obj) -> dict | None:
        return JobStatusOutput(obj.verification_job).data if obj.verification_job_id else None

    def get_url(self, obj) -> str:
        return reverse(
            "api:registry-dataset-detail", kwargs={"dataset_id": obj.pk}, request=self.context.get("request")
        )

    def to_representation(self, obj) -> dict:
        """``source`` is null when the parent dataset is outside the reader's scope."""
        data = super().to_representation(obj)
        if obj.source_id is not None:
            actor = getattr(self.context.get("request"), "principal", None)
            if not rbac.allows(actor, "registry.view", obj.source):
                data["source"] = None
        return data


# ---------------------------------------------------------------------------------------------
# Input


class ModelCreateInput(serializers.Serializer):
    name = serializers.SlugField(max_length=100, help_text="Unique and permanent: the model's key in URLs.")
    owner_team = serializers.SlugField(max_length=64, help_text="Name of the owning team.")
    description = serializers.CharField(required=False, allow_blank=True, default="")
    intended_use = serializers.CharField(required=False, allow_blank=True, default="")
    limitations = serializers.CharField(required=False, allow_blank=True, default="")
    risk_tier = api_fields.ChoiceField(choices=RiskTier.choices, default=RiskTier.LIMITED)
    data_categories = serializers.ListField(
        child=api_fields.ChoiceField(choices=DataCategory.choices), required=False, default=list
    )
    jurisdictions = serializers.ListField(
        child=serializers.CharField(max_length=64), required=False, default=list, help_text='e.g. ["EU", "US-CA"]'
    )
    default_evidence = serializers.ListField(
        child=api_fields.ChoiceField(choices=EvidenceKind.choices),
        required=False,
        default=list,
        help_text='Evidence requested for every version once it is verified, e.g. ["bias", "explainability"].',
    )


class ModelUpdateInput(StrictInput, serializers.Serializer):
    """The editable fields; ``name`` is accepted only to be refused, since a model's name never changes.

    Any other field (``owner_team``, ``created_at``, a typo) is a 400 naming it.
    """

    output = ModelOutput

    name = serializers.CharField(required=False, help_text="Immutable: sending a different name is refused.")
    description = serializers.CharField(required=False, allow_blank=True)
    intended_use = serializers.CharField(required=False, allow_blank=True)
    limitations = serializers.CharField(required=False, allow_blank=True)
    risk_tier = api_fields.ChoiceField(choices=RiskTier.choices, required=False)
    data_categories = serializers.ListField(child=api_fields.ChoiceField(choices=DataCategory.choices), required=False)
    jurisdictions = serializers.ListField(child=serializers.CharField(max_length=64), required=False)
    default_evidence = serializers.ListField(child=api_fields.ChoiceField(choices=EvidenceKind.choices), required=False)
    automated_decisions = serializers.BooleanField(
        required=False, help_text="Decides about people with legal or similarly significant effect (GDPR Art. 22)."
    )
    human_review_path = serializers.CharField(
        required=False, allow_blank=True, help_text="How a person obtains human review (GDPR Art. 22(3))."
    )
    dpia_reference = serializers.CharField(
        required=False, allow_blank=True, max_length=300, help_text="DPIA reference (GDPR Art. 35)."
    )
    human_oversight = serializers.CharField(
        required=False, allow_blank=True, help_text="Human-oversight note (EU AI Act Art. 14)."
    )
    minimisation_justification = serializers.CharField(
        required=False, allow_blank=True, help_text="Why direct identifiers are training features (GDPR Art. 5(1)(c))."
    )
    fairness_thresholds = serializers.DictField(
        child=serializers.FloatField(min_value=0, max_value=1),
        required=False,
        help_text='e.g. {"demographic_parity_difference": 0.1, "equalized_odds_difference": 0.1}',
    )
    reason = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=2000,
        help_text="Why: required when a change loosens the model's policy facts (it then waits for approval).",
    )


class _VersionFields(serializers.Serializer):
    format = api_fields.ChoiceField(
        choices=ArtifactFormat.choices,
        required=False,
        allow_blank=True,
        help_text="Detected from the bytes when omitted for an upload; required with artifact_uri.",
    )
    sha256 = serializers.CharField(
        required=False, allow_blank=True, max_length=71, help_text="Expected SHA-256 of the artifact (hex)."
    )
    description = serializers.CharField(required=False, allow_blank=True, default="")
    metrics = JSONObjectField(required=False, help_text='Numbers by name, e.g. {"auc": 0.91}.')
    source_repository = serializers.CharField(required=False, allow_blank=True, default="", max_length=500)
    source_commit = serializers.CharField(required=False, allow_blank=True, default="", max_length=64)
    ci_run_url = serializers.CharField(required=False, allow_blank=True, default="", max_length=500)
    training_datasets = IdListField(required=False, default=list, help_text="Dataset ids.")
    evaluation_dataset = serializers.IntegerField(required=False, allow_null=True, min_value=1, max_value=MAX_ID)
    model_card = JSONObjectField(required=False)


class VersionUploadInput(_VersionFields):
    """Multipart: the artifact file plus fields (JSON values such as metrics may be sent as JSON strings)."""

    artifact = serializers.FileField(required=False, help_text="ONNX, skops, XGBoost JSON/UBJ or LightGBM text.")


class VersionReferenceInput(_VersionFields):
    """JSON: an artifact referenced by s3:// URI (verified by a worker), or a predictions_only version."""

    artifact_uri = serializers.CharField(
        required=False, allow_blank=True, max_length=1024, help_text="s3://bucket/key in an allowed bucket."
    )


class VersionCreateInput(PlainJsonFastPath, FieldsBuiltOnce, VersionUploadInput, VersionReferenceInput):
    """What the service receives, whichever way the version came in."""


class VersionRetireInput(serializers.Serializer):
    reason = serializers.CharField(required=False, allow_blank=True, default="", max_length=2000)


class _DatasetFields(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    owner_team = serializers.SlugField(max_length=64)
    format = api_fields.ChoiceField(choices=DatasetFormat.choices, required=False, allow_blank=True)
    schema = SchemaField(required=False, help_text="Columns [{name, type, role}]; all features when omitted.")
    description = serializers.CharField(required=False, allow_blank=True, default="")
    sha256 = serializers.CharField(required=False, allow_blank=True, max_length=71)
    source = serializers.IntegerField(
        required=False, allow_null=True, min_value=1, max_value=MAX_ID, help_text="Parent dataset id."
    )


class DatasetUploadInput(_DatasetFields):
    """Multipart: the file plus fields (schema as a JSON string)."""

    file = serializers.FileField(required=False, help_text="CSV, JSON Lines or Parquet.")


class DatasetReferenceInput(_DatasetFields):
    """JSON: a dataset referenced by s3:// URI."""

    uri = serializers.CharField(required=False, allow_blank=True, max_length=1024)


class DatasetCreateInput(DatasetUploadInput, DatasetReferenceInput):
    """What the service receives, whichever way the dataset came in."""


class DownloadLinkOutput(serializers.Serializer):
    """A download's link: follow ``url`` (same credentials) before ``expires_at`` to receive the bytes."""

    url = serializers.CharField(help_text="Absolute URL of the bytes; it works only for the caller who asked.")
    expires_at = serializers.DateTimeField()
    filename = serializers.CharField()
    sha256 = serializers.CharField()
    size = serializers.IntegerField()
