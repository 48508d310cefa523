"""Dashboard input for deployments: the new-target and edit-target forms and the release page's Deploy form.

Shape only: the JSON boxes must hold JSON objects. Which keys a kind takes, whether the environment exists and
whether the name is free are decided by ``services.target_create`` (with ``target_settings``, as for the API);
``TargetForm.add_service_errors`` puts its refusal next to the fields it names.
"""

from __future__ import annotations

import json

from django import forms

from apps.core.errors import ValidationFailed
from apps.core.templatetags.words import environment_text

from .choices import DeploymentKind, Strategy, TargetKind

_JSON_HELP = 'A JSON object, e.g. {"namespace": "models"}; see docs/deployments.md for each kind\'s keys.'


class _JsonField(forms.CharField):
    """A textarea holding JSON of one shape: an object (empty: ``{}``), or a list (empty: ``None``, the default)."""

    widget = forms.Textarea(attrs={"rows": 4, "spellcheck": "false", "class": "mono"})
    shape: type = dict

    def to_python(self, value):
        text = (super().to_python(value) or "").strip()
        if not text:
            return {} if self.shape is dict else None
        try:
            parsed = json.loads(text)
        except json.JSONDecodeError as exc:
            raise forms.ValidationError(f"Not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno}).") from None
        if not isinstance(parsed, self.shape):
            raise forms.ValidationError(
                "Expected a JSON object ({...})." if self.shape is dict else "Expected a JSON list ([...])."
            )
        return parsed


class _JsonObjectField(_JsonField):
    shape = dict


class _JsonListField(_JsonField):
    shape = list


def _place_service_errors(form: forms.Form, exc: ValidationFailed) -> None:
    """The service's refusal, each message next to the field it names (``settings.port`` -> settings)."""
    placed = False
    for key, messages in (exc.errors or {}).items():
        field = key.partition(".")[0].partition("[")[0]  # settings.port -> settings, steps[1].weight -> steps
        if field not in form.fields:
            continue
        detail = key[len(field) :].lstrip(".")
        for message in messages:
            form.add_error(field, f"{detail}: {message}" if detail else message)
        placed = True
    if not placed:
        form.add_error(None, exc.detail)


class _TargetFields(forms.Form):
    """What a new target and a target's page both ask: environment, settings, credentials (never shown back,
    not even after a refusal), enabled flag and description."""

    environment = forms.ChoiceField(choices=(), help_text="The environment whose approved releases it serves.")
    settings = _JsonObjectField(required=False, help_text=_JSON_HELP)
    credentials = _JsonObjectField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "spellcheck": "false", "autocomplete": "off", "class": "mono"}),
        help_text="Encrypted at rest and never shown again; after a refusal, enter them again.",
    )
    enabled = forms.BooleanField(required=False, initial=True)
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))

    def __init__(self, *args, environments, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["environment"].choices = [(env.name, environment_text(env)) for env in environments]

    def add_service_errors(self, exc: ValidationFailed) -> None:
        _place_service_errors(self, exc)

    def render_credentials_blank(self) -> None:
        """Drop what was typed as credentials from the form shown again (a secret never goes back to a page)."""
        if self.is_bound:
            data = self.data.copy()
            data["credentials"] = ""
            self.data = data


class TargetForm(_TargetFields):
    """A new deployment target."""

    name = forms.SlugField(max_length=50, help_text="Letters, digits and hyphens: how deployments name the target.")
    kind = forms.ChoiceField(choices=TargetKind.choices)
    field_order = ["name", "kind"]


class TargetEditForm(_TargetFields):
    """A target's changes: everything but its name and kind. Credentials typed here replace the stored ones;
    left empty they are kept, unless *clear* is ticked."""

    clear_credentials = forms.BooleanField(required=False, label="Clear the stored credentials")
    field_order = ["environment", "settings", "credentials", "clear_credentials"]

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["environment"].help_text = "Refused while a deployment on it is active."
        self.fields[
            "credentials"
        ].help_text = "Empty: the stored ones are kept. Never shown; after a refusal, enter again."

    def changes(self) -> dict:
        """What ``target_update`` takes: credentials only when typed or cleared."""
        values = dict(self.cleaned_data)
        clear = values.pop("clear_credentials")
        if clear:
            values["credentials"] = {}
        elif not values["credentials"]:
            del values["credentials"]
        return values


class DeployForm(forms.Form):
    """Deploy an approved release to one of its environment's targets (the release page; ``deployments.deploy``).

    Which steps a strategy allows, whether the target is free and whether governance lets the version go are
    decided by ``services.deployment_start``, as for the API."""

    target = forms.ChoiceField(choices=())
    strategy = forms.ChoiceField(choices=Strategy.choices, initial=Strategy.DIRECT)
    kind = forms.ChoiceField(choices=DeploymentKind.choices, initial=DeploymentKind.ONLINE)
    schedule = forms.CharField(required=False, max_length=100, help_text="Batch only: a cron schedule, e.g. 0 2 * * *.")
    steps = _JsonListField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2, "spellcheck": "false", "class": "mono"}),
        help_text='Empty: the strategy\'s own. E.g. [{"weight": 10, "analysis": 120}, {"weight": 100}]',
    )
    reason = forms.CharField(required=False, max_length=500)

    def __init__(self, *args, targets, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["target"].choices = [(t.name, f"{t.name} ({t.get_kind_display()})") for t in targets]

    def add_service_errors(self, exc: ValidationFailed) -> None:
        _place_service_errors(self, exc)
