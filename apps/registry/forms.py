"""Dashboard filter forms for the registry pages: shape only."""

from __future__ import annotations

from django import forms

from .choices import DataCategory, RiskTier


def _with_any(choices, label: str) -> list[tuple[str, str]]:
    return [("", label), *choices]


class ModelFilterForm(forms.Form):
    """The inventory's search box and filters (team, risk tier, data category)."""

    q = forms.CharField(
        required=False,
        max_length=200,
        label="Search",
        widget=forms.TextInput(attrs={"type": "search", "placeholder": "Name or description"}),
    )
    team = forms.ChoiceField(required=False, choices=())
    risk_tier = forms.ChoiceField(required=False, choices=_with_any(RiskTier.choices, "Any tier"), label="Risk tier")
    data_category = forms.ChoiceField(
        required=False, choices=_with_any(DataCategory.choices, "Any category"), label="Data category"
    )

    def __init__(self, *args, teams: list[str] = (), **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["team"].choices = _with_any([(t, t) for t in teams], "Any team")

    def filters(self) -> dict:
        """Keyword arguments for ``selectors.model_inventory``; invalid input filters nothing."""
        if not self.is_bound or not self.is_valid():
            return {}
        data = self.cleaned_data
        return {
            "search": data["q"].strip(),
            "team": data["team"],
            "risk_tier": data["risk_tier"],
            "data_category": data["data_category"],
        }

    @property
    def active(self) -> bool:
        return any(self.filters().values())


class DatasetFilterForm(forms.Form):
    """The datasets list's search box."""

    q = forms.CharField(
        required=False,
        max_length=200,
        label="Search",
        widget=forms.TextInput(attrs={"type": "search", "placeholder": "Dataset name"}),
    )

    def filters(self) -> dict:
        if not self.is_bound or not self.is_valid():
            return {}
        return {"search": self.cleaned_data["q"].strip()}
