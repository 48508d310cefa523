"""Dashboard URLs for releases."""

app_name = "releases"

urlpatterns: list = []
