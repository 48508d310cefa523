"""Dashboard URLs for notifications."""

app_name = "notifications"

urlpatterns: list = []
