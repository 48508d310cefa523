"""The audit page's filter form: shape only; ``apps.audit.filters.parse_filters`` checks the values."""

from __future__ import annotations

from django import forms

from .choices import Outcome


class EventFilterForm(forms.Form):
    """Actor, action, outcome, target, a related subject and a time range, as on the API."""

    actor = forms.CharField(
        required=False,
        max_length=255,
        widget=forms.TextInput(attrs={"placeholder": "name or user:7"}),
    )
    action = forms.CharField(
        required=False,
        max_length=128,
        widget=forms.TextInput(attrs={"placeholder": "model.created or model.*"}),
    )
    outcome = forms.ChoiceField(required=False, choices=[("", "Any outcome"), *Outcome.choices])
    target = forms.CharField(
        required=False,
        max_length=200,
        widget=forms.TextInput(attrs={"placeholder": "model or model:42"}),
    )
    related = forms.CharField(
        required=False,
        max_length=300,
        widget=forms.TextInput(attrs={"placeholder": "model:credit-scoring, release:<id>, person:alice"}),
    )
    since = forms.CharField(
        required=False, max_length=40, widget=forms.TextInput(attrs={"placeholder": "2026-01-31 or ISO time"})
    )
    until = forms.CharField(
        required=False, max_length=40, widget=forms.TextInput(attrs={"placeholder": "2026-01-31 or ISO time"})
    )
