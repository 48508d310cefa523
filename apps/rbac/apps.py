from django.apps import AppConfig


class RbacConfig(AppConfig):
    name = "apps.rbac"
    label = "rbac"

    def ready(self) -> None:
        from . import history

        history.register()
