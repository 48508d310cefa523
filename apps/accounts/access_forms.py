"""Dashboard forms of the Access page: shape only; the rules (and the admin check) live in services."""

from __future__ import annotations

from django import forms
from django.contrib.auth.validators import UnicodeUsernameValidator

from apps.rbac.models import SubjectType
from apps.rbac.roles import Role

_NAME = {"autocomplete": "off", "spellcheck": "false"}


# Team fields are typed, with the page's one list of suggestions (``<datalist id="team-names">``): a page with
# a thousand teams stays the size of a page with ten, and the services refuse an unknown name by name.
_TEAM = {"list": "team-names", **_NAME}


def _team_field(label: str = "Team", *, required: bool = True, help_text: str = "") -> forms.CharField:
    return forms.CharField(
        label=label, max_length=64, required=required, help_text=help_text, widget=forms.TextInput(attrs=_TEAM)
    )


class UserCreateForm(forms.Form):
    """A new person."""

    prefix = "user"

    username = forms.CharField(
        max_length=150,
        validators=[UnicodeUsernameValidator()],
        help_text="Permanent. Letters, digits and @ . + - _.",
        widget=forms.TextInput(attrs=_NAME),
    )
    first_name = forms.CharField(label="First name", max_length=150, required=False)
    last_name = forms.CharField(label="Last name", max_length=150, required=False)
    email = forms.EmailField(
        label="E-mail address", required=False, widget=forms.TextInput(attrs={"inputmode": "email", **_NAME})
    )
    password = forms.CharField(
        max_length=4096,
        strip=False,
        required=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text="Leave empty and the person cannot sign in until an operator sets one; API tokens still work.",
    )


class TeamCreateForm(forms.Form):
    """A new team."""

    prefix = "team"

    name = forms.SlugField(
        max_length=64, help_text="Permanent. Letters, digits, '-' and '_'.", widget=forms.TextInput(attrs=_NAME)
    )
    display_name = forms.CharField(label="Display name", max_length=128, required=False)
    description = forms.CharField(required=False)


class MemberAddForm(forms.Form):
    """A person joining a team."""

    prefix = "member"

    team = _team_field()
    username = forms.CharField(label="Username", max_length=150, widget=forms.TextInput(attrs=_NAME))


class ServiceAccountCreateForm(forms.Form):
    """A new CI service account with its accountable owner."""

    prefix = "account"

    name = forms.SlugField(max_length=64, widget=forms.TextInput(attrs={"placeholder": "ci-credit", **_NAME}))
    owner = forms.CharField(
        label="Owner (username)",
        max_length=150,
        help_text="The active person accountable for what the account does.",
        widget=forms.TextInput(attrs=_NAME),
    )
    team = _team_field(required=False)
    description = forms.CharField(required=False)


class RoleGrantForm(forms.Form):
    """A role for a user, a team or a service account: globally, on a team, or on one model."""

    prefix = "grant"

    subject_type = forms.ChoiceField(label="Grant to", choices=SubjectType.choices)
    subject = forms.CharField(
        label="Name", max_length=150, help_text="The username, team or service account.", widget=forms.TextInput(_NAME)
    )
    role = forms.ChoiceField(choices=Role.choices)
    scope_team = _team_field("On team", required=False)
    scope_model = forms.CharField(
        label="On model",
        max_length=100,
        required=False,
        help_text="Give a team, a model or an environment to narrow the role; none means everywhere.",
        widget=forms.TextInput(attrs={"placeholder": "model name", **_NAME}),
    )
    scope_environment = forms.CharField(
        label="On environment",
        max_length=50,
        required=False,
        help_text="Releases into this environment only (e.g. a release manager for staging).",
        widget=forms.TextInput(attrs={"placeholder": "environment name", **_NAME}),
    )

    def clean(self):
        data = super().clean()
        if sum(bool(data.get(f)) for f in ("scope_team", "scope_model", "scope_environment")) > 1:
            raise forms.ValidationError("A role is scoped to one team, model or environment, not both.")
        return data
