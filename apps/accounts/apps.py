from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "apps.accounts"
    label = "accounts"

    def ready(self) -> None:
        from . import history, schema  # noqa: F401  (schema registers the OpenAPI authentication extensions)

        history.register()
