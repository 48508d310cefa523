"""Nobody can take away the last global admin: access could then no longer be managed from the
dashboard or the API (only by an operator at the command line)."""

from __future__ import annotations

import pytest

from apps.accounts import services as accounts
from apps.accounts.models import User
from apps.rbac import services as rbac
from apps.rbac.models import RoleBinding

pytestmark = pytest.mark.django_db


@pytest.fixture
def only_admin(make_user):
    return make_user("admin", username="root")


def admin_binding(user) -> RoleBinding:
    return RoleBinding.objects.get(user=user, role="admin", scope_type="global")


def test_the_last_admins_role_cannot_be_revoked(api_client_for, only_admin, audit_mark):
    # given: one admin, whose own token tries to revoke their admin binding
    client = api_client_for(only_admin, scopes=["read", "admin"])
    binding = admin_binding(only_admin)
    mark = audit_mark()
    # when
    response = client.delete(f"/api/v1/role-bindings/{binding.pk}/")
    # then: refused, named, nothing changed or written
    assert response.status_code == 409, response.json()
    assert response.json()["code"] == "last_admin"
    assert RoleBinding.objects.filter(pk=binding.pk).exists()
    assert mark.actions() == []


def test_the_last_admin_cannot_be_deactivated(system, only_admin):
    with pytest.raises(rbac.LastAdmin):
        accounts.user_update(actor=system, user=only_admin, changes={"is_active": False})
    assert User.objects.get(pk=only_admin.pk).is_active


def test_an_admin_by_team_cannot_be_taken_off_that_team_when_last(system, make_user, team):
    # given: the only admin holds the role through a team's global binding
    person = make_user(member_of=[team])
    rbac.role_grant(actor=system, subject=team, role="admin")
    # when / then
    with pytest.raises(rbac.LastAdmin):
        accounts.team_member_remove(actor=system, team=team, user=person)


def test_with_a_second_admin_the_first_can_go(system, only_admin, make_user):
    # given: a second, active admin
    make_user("admin", username="deputy")
    # when: the first admin's role is revoked and they are deactivated
    rbac.role_revoke(actor=system, binding_id=admin_binding(only_admin).pk)
    accounts.user_update(actor=system, user=only_admin, changes={"is_active": False})
    # then
    assert not User.objects.get(pk=only_admin.pk).is_active


def test_an_inactive_admin_does_not_count(system, only_admin, make_user):
    # given: the other admin is deactivated already
    other = make_user("admin", username="former")
    accounts.user_update(actor=system, user=other, changes={"is_active": False})
    # then: the remaining active admin is the last one
    with pytest.raises(rbac.LastAdmin):
        rbac.role_revoke(actor=system, binding_id=admin_binding(only_admin).pk)


def test_on_the_access_page_the_last_admin_refusal_is_a_message_and_nothing_changes(client, only_admin, team, system):
    # given: the only admin, signed in, also a member of a team
    accounts.team_member_add(actor=system, team=team, user=only_admin)
    client.force_login(only_admin)
    binding = admin_binding(only_admin)
    # when: they revoke their own admin role on the page
    page = client.post(f"/access/role-bindings/{binding.pk}/revoke/", follow=True).content.decode()
    # then: the page says why, and the role is still there
    assert "no active person with the global admin role" in page
    assert RoleBinding.objects.filter(pk=binding.pk).exists()
