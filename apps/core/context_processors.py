"""Template context shared by every dashboard page."""

from django.conf import settings


def assay(request) -> dict:
    from apps.accounts.principals import principal_for_user
    from apps.rbac import services as rbac

    user = getattr(request, "user", None)
    nav = {}
    if user is not None and user.is_authenticated:
        principal = principal_for_user(user)
        nav = {
            "can_view_audit": rbac.has_global(principal, "audit.view"),
            "is_admin": rbac.has_global(principal, "accounts.manage"),
            "can_view_access": rbac.has_global(principal, "accounts.view"),
            "can_view_webhooks": rbac.has_anywhere(principal, "notifications.view"),
        }
    return {"assay_nav": nav, "assay_debug": settings.DEBUG}
