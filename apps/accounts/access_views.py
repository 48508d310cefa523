"""The dashboard's Access page: people, teams, service accounts and role bindings.

Admins and auditors (global ``accounts.view``) see the tables; admins (``accounts.manage``)
also get the forms. Thin: selectors read (and refuse anyone else), services write, check
the admin permission and audit. A refused attempt reaches ``DomainErrorMiddleware``,
which audits it and renders the 403 page; a rule a service refuses (a duplicate, an unknown
name, a weak password) is shown next to the form that asked for it.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Page
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST, require_safe

from apps.core.errors import Conflict, Denied, DomainError
from apps.core.totals import BoundedPaginator
from apps.rbac import services as rbac

from . import selectors, services
from .access_forms import MemberAddForm, RoleGrantForm, ServiceAccountCreateForm, TeamCreateForm, UserCreateForm
from .models import Team
from .principals import principal_for_user

PAGE_SIZE = 50

# context name -> (element id, heading) of each form, to point at the one that needs correcting
_FORMS = {
    "user_form": ("user-create-form", "Create a user"),
    "team_form": ("team-create-form", "Create a team"),
    "member_form": ("member-add-form", "Add a member"),
    "account_form": ("service-account-create-form", "Create a service account"),
    "grant_form": ("role-grant-form", "Grant a role"),
}


def _paged(request, queryset, param: str) -> Page:
    """One table's page, read from its own query parameter, with links that keep the other tables' pages."""
    page = BoundedPaginator(queryset, PAGE_SIZE).get_page(request.GET.get(param))

    def link(number: int) -> str:
        query = request.GET.copy()
        query[param] = str(number)
        return f"?{query.urlencode()}"

    page.previous_url = link(page.previous_page_number()) if page.has_previous() else ""
    page.next_url = link(page.next_page_number()) if page.has_next() else ""
    return page


def _access_page(request, *, action: str = "", **bound_forms):
    """Render the page; ``bound_forms`` replaces the blank form of the same name (to show its errors).

    A form that failed its shape check never reached its service, so a non-admin is refused
    here instead, recorded under the service's ``action``, as the service would have.
    """
    actor = principal_for_user(request.user)
    can_manage = rbac.has_global(actor, "accounts.manage")
    if bound_forms and not can_manage:
        rbac.require(actor, "accounts.manage", audit_action=action)
    context = {
        "users": _paged(request, selectors.user_list(actor=actor), "users_page"),
        "teams": _paged(request, selectors.team_list(actor=actor), "teams_page"),
        "service_accounts": _paged(request, selectors.service_account_list(actor=actor), "accounts_page"),
        "bindings": _paged(request, selectors.role_binding_list(actor=actor), "bindings_page"),
        "can_manage": can_manage,
    }
    if context["can_manage"]:
        context.update(
            user_form=UserCreateForm(),
            team_form=TeamCreateForm(),
            member_form=MemberAddForm(),
            account_form=ServiceAccountCreateForm(),
            grant_form=RoleGrantForm(),
            team_suggestions=_team_suggestions(),
        )
        context.update(bound_forms)
        context["form_with_errors"] = next((_FORMS[name] for name in bound_forms if name in _FORMS), None)
    response = render(request, "accounts/access.html", context)
    response["Cache-Control"] = "no-store"
    return response


# The team fields suggest at most this many names (typing any other team's name works the same).
TEAM_SUGGESTIONS = 200


def _team_suggestions() -> list[str]:
    return list(Team.objects.order_by("name").values_list("name", flat=True)[:TEAM_SUGGESTIONS])


def _show_error(form, exc: DomainError) -> None:
    """Put a service's refusal next to the fields it names, or above the form."""
    placed = False
    for field, errors in exc.errors.items():
        if field in form.fields:
            for error in errors if isinstance(errors, list) else [errors]:
                form.add_error(field, str(error))
            placed = True
    if not placed:
        form.add_error(None, exc.detail)


def _done(request, message: str):
    # Back to the top of the page, where the message shows.
    messages.success(request, message)
    return redirect("accounts:access")


@login_required
@require_safe
def access(request):
    """Tables of people, teams with members, service accounts with owners, role bindings with scopes."""
    return _access_page(request)


def _submit(request, form, *, form_name: str, action: str, write):
    """Hand a valid form's values to ``write`` (which calls the service and returns the success
    message), then back to the top of the page; otherwise the page again, with the form showing
    its own errors or the service's refusal. A denial goes on to the middleware (audited, 403)."""
    if form.is_valid():
        try:
            message = write(form.cleaned_data)
        except Denied:
            raise
        except DomainError as exc:
            _show_error(form, exc)
        else:
            return _done(request, message)
    return _access_page(request, action=action, **{form_name: form})


@login_required
@require_POST
def user_create(request):
    """Create a person (admins)."""

    def write(values) -> str:
        user = services.user_create(
            actor=principal_for_user(request.user),
            username=values["username"],
            password=values["password"] or None,
            email=values["email"],
            first_name=values["first_name"],
            last_name=values["last_name"],
        )
        return f"User “{user.username}” created."

    return _submit(request, UserCreateForm(request.POST), form_name="user_form", action="user.created", write=write)


@login_required
@require_POST
def user_set_active(request, username: str):
    """Deactivate a person (their tokens are revoked, their access ends) or reactivate them (admins)."""
    active = request.POST.get("is_active") == "1"
    try:
        user = services.user_update(
            actor=principal_for_user(request.user), user=username, changes={"is_active": active}
        )
    except Denied:
        raise
    except DomainError as exc:
        if exc.status_code == 404:
            raise
        messages.error(request, exc.errors.get("is_active", [exc.detail])[0])
        return redirect("accounts:access")
    if active:
        return _done(request, f"User “{user.username}” is active again.")
    return _done(
        request, f"User “{user.username}” is deactivated: their tokens are revoked and they can no longer sign in."
    )


@login_required
@require_POST
def team_create(request):
    """Create a team (admins)."""

    def write(values) -> str:
        team = services.team_create(actor=principal_for_user(request.user), **values)
        return f"Team “{team.name}” created."

    return _submit(request, TeamCreateForm(request.POST), form_name="team_form", action="team.created", write=write)


@login_required
@require_POST
def member_add(request):
    """Add a person to a team (admins)."""

    def write(values) -> str:
        team, username = values["team"], values["username"]
        services.team_member_add(actor=principal_for_user(request.user), team=team, user=username, exists_ok=False)
        return f"“{username}” is now a member of team “{team}”."

    form = MemberAddForm(request.POST)
    return _submit(request, form, form_name="member_form", action="team.member_added", write=write)


@login_required
@require_POST
def member_remove(request, name: str, username: str):
    """Remove a person from a team (admins); they lose the team's roles at once."""
    try:
        services.team_member_remove(actor=principal_for_user(request.user), team=name, user=username)
    except Conflict as exc:  # e.g. the last admin: said on the page, nothing changed
        messages.error(request, exc.detail)
        return redirect("accounts:access")
    return _done(request, f"“{username}” is no longer a member of team “{name}”.")


@login_required
@require_POST
def service_account_create(request):
    """Create a CI service account with its owner (admins)."""

    def write(values) -> str:
        account = services.service_account_create(
            actor=principal_for_user(request.user),
            name=values["name"],
            owner=values["owner"],
            team=values["team"] or None,
            description=values["description"],
        )
        return f"Service account “{account.name}” created, owned by “{account.owner.username}”."

    form = ServiceAccountCreateForm(request.POST)
    return _submit(request, form, form_name="account_form", action="service_account.created", write=write)


@login_required
@require_POST
def role_grant(request):
    """Grant a role (admins)."""

    def write(values) -> str:
        binding = services.role_binding_create(
            actor=principal_for_user(request.user),
            subject_type=values["subject_type"],
            subject=values["subject"],
            role=values["role"],
            scope_team=values["scope_team"] or None,
            scope_model=values["scope_model"] or None,
            scope_environment=values.get("scope_environment") or None,
        )
        return f"Granted: {binding}."

    form = RoleGrantForm(request.POST)
    return _submit(request, form, form_name="grant_form", action="role_binding.created", write=write)


@login_required
@require_POST
def role_revoke(request, binding_id: int):
    """Revoke a role binding (admins); the role stops applying at once."""
    try:
        binding = rbac.role_revoke(actor=principal_for_user(request.user), binding_id=binding_id)
    except Conflict as exc:  # e.g. the last admin's role: said on the page, nothing changed
        messages.error(request, exc.detail)
        return redirect("accounts:access")
    return _done(request, f"Revoked: {binding}.")
