"""Dashboard URLs for policies."""

app_name = "policies"

urlpatterns: list = []
