"""Dashboard forms for sign-in and personal API tokens: shape only, the rules live in services."""

from __future__ import annotations

from django import forms
from django.conf import settings

from apps.rbac.roles import Scope


class LoginForm(forms.Form):
    """Username and password; the lockout rule is ``services.login_attempt``'s."""

    username = forms.CharField(
        max_length=150, widget=forms.TextInput(attrs={"autocomplete": "username", "autofocus": True})
    )
    password = forms.CharField(
        max_length=4096, strip=False, widget=forms.PasswordInput(attrs={"autocomplete": "current-password"})
    )


class TokenCreateForm(forms.Form):
    """A new personal token: its name, scopes and lifetime."""

    name = forms.CharField(
        max_length=128,
        help_text="What the token is for, e.g. “GitHub Actions: credit-scoring”.",
        widget=forms.TextInput(attrs={"placeholder": "ci-pipeline"}),
    )
    scopes = forms.MultipleChoiceField(
        choices=Scope.choices,
        initial=[Scope.READ.value],
        widget=forms.CheckboxSelectMultiple,
        help_text="Scopes narrow what your roles allow; they never add a permission your roles do not give.",
        error_messages={"required": "Choose at least one scope."},
    )
    expires_in_days = forms.IntegerField(label="Expires in (days)", min_value=1, initial=90)

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        max_days = settings.ASSAY_TOKEN_MAX_DAYS  # the service enforces it; the form says it
        field = self.fields["expires_in_days"]
        field.help_text = f"Between 1 and {max_days} days." if max_days else "At least 1 day."
        if max_days:
            field.widget.attrs["max"] = max_days
