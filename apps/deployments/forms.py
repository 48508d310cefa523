"""Dashboard input for deployments: the new-target form and the reason a rollout command asks for.

Shape only: the JSON boxes must hold JSON objects. Which keys a kind takes, whether the environment exists and
whether the name is free are decided by ``services.target_create`` (with ``target_settings``, as for the API);
``TargetForm.add_service_errors`` puts its refusal next to the fields it names.
"""

from __future__ import annotations

import json

from django import forms

from apps.core.errors import ValidationFailed
from apps.core.templatetags.words import environment_text

from .choices import TargetKind

_JSON_HELP = 'A JSON object, e.g. {"namespace": "models"}; see docs/deployments.md for each kind\'s keys.'


class _JsonObjectField(forms.CharField):
    """A textarea holding a JSON object (empty: ``{}``)."""

    widget = forms.Textarea(attrs={"rows": 4, "spellcheck": "false", "class": "mono"})

    def to_python(self, value):
        text = (super().to_python(value) or "").strip()
        if not text:
            return {}
        try:
            parsed = json.loads(text)
        except json.JSONDecodeError as exc:
            raise forms.ValidationError(f"Not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno}).") from None
        if not isinstance(parsed, dict):
            raise forms.ValidationError("Expected a JSON object ({...}).")
        return parsed


class TargetForm(forms.Form):
    """A new deployment target; the credentials are never shown back (not even after a refusal)."""

    name = forms.SlugField(max_length=50, help_text="Letters, digits and hyphens: how deployments name the target.")
    kind = forms.ChoiceField(choices=TargetKind.choices)
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
        """The service's refusal, each message next to the field it names (``settings.port`` -> settings)."""
        placed = False
        for key, messages in (exc.errors or {}).items():
            field, _, sub = key.partition(".")
            if field not in self.fields:
                continue
            for message in messages:
                self.add_error(field, f"{sub}: {message}" if sub else message)
            placed = True
        if not placed:
            self.add_error(None, exc.detail)

    def render_credentials_blank(self) -> None:
        """Drop what was typed as credentials from the form shown again (a secret never goes back to a page)."""
        if self.is_bound:
            data = self.data.copy()
            data["credentials"] = ""
            self.data = data
