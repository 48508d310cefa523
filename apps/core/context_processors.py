"""Template context shared by every dashboard page."""

from django.conf import settings

from apps.core import health


def assay(request) -> dict:
    from apps.accounts.principals import principal_for_user
    from apps.rbac import services as rbac

    user = getattr(request, "user", None)
    nav = {}
    if user is not None and user.is_authenticated:
        principal = principal_for_user(user)
        nav = {
            "can_view_audit": rbac.has_global(principal, "audit.view"),
            "can_view_reports": rbac.has_anywhere(principal, "reports.view"),
            "is_admin": rbac.has_global(principal, "accounts.manage"),
            "can_view_access": rbac.has_global(principal, "accounts.view"),
            "can_view_webhooks": rbac.has_anywhere(principal, "notifications.view"),
            "can_view_deployments": rbac.has_anywhere(principal, "deployments.view"),
            "can_manage_targets": rbac.has_global(principal, "deployments.manage_targets"),
        }
    # Admins see why the control plane is degraded (no worker alive, jobs waiting too long) on every page:
    # the checks of apps.core.health, two indexed queries, only for admins.
    degraded = health.run_checks()[1] if nav.get("is_admin") else []
    return {"assay_nav": nav, "assay_debug": settings.DEBUG, "assay_degraded": degraded}
