"""Root URLs: the dashboard at /, the REST API at /api/v1/."""

from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from apps.core.api.views import ApiNotFoundView, HealthView

api_v1 = [
    path("health/", HealthView.as_view(), name="health"),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    # The split view serves its start-up script as a file (?script): no inline script for the CSP.
    path("docs/", SpectacularSwaggerSplitView.as_view(url_name="api:schema"), name="docs"),
    path("", include("apps.accounts.api.urls")),
    path("", include("apps.registry.api.urls")),
    path("", include("apps.evidence.api.urls")),
    path("", include("apps.policies.api.urls")),
    path("", include("apps.releases.api.urls")),
    path("", include("apps.deployments.api.urls")),
    path("", include("apps.notifications.api.urls")),
    path("", include("apps.audit.api.urls")),
    path("", include("apps.reports.api.urls")),
    # Keep last: any other /api/v1/ path is a problem+json 401 (anonymous) or 404.
    re_path(r"^[\s\S]*$", ApiNotFoundView.as_view(), name="not_found"),  # [\s\S]: a newline in the path too
]

urlpatterns = [
    path("api/v1/", include((api_v1, "api"))),
    path("", include("apps.accounts.urls")),
    path("", include("apps.registry.urls")),
    path("", include("apps.evidence.urls")),
    path("", include("apps.policies.urls")),
    path("", include("apps.releases.urls")),
    path("", include("apps.deployments.urls")),
    path("", include("apps.notifications.urls")),
    path("", include("apps.audit.urls")),
    path("", include("apps.reports.urls")),
]

handler403 = "apps.core.views.forbidden"
handler404 = "apps.core.views.not_found"
handler500 = "apps.core.views.server_error"
