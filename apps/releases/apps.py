from django.apps import AppConfig


class ReleasesConfig(AppConfig):
    name = "apps.releases"
    label = "releases"

    def ready(self) -> None:
        from . import history, subscribers

        subscribers.subscribe()
        history.register()
