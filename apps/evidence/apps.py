from django.apps import AppConfig


class EvidenceConfig(AppConfig):
    name = "apps.evidence"
    label = "evidence"

    def ready(self) -> None:
        from . import history, subscribers

        subscribers.subscribe()
        history.register()
