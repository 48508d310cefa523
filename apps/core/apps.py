import os

from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "apps.core"
    label = "core"

    def ready(self) -> None:
        from django.conf import settings

        from apps.core.api.strict import refuse_coerced_strings

        refuse_coerced_strings()  # the API's string fields take JSON strings only, as the schema says

        # The filesystem broker needs its folders before any process sends or receives a task.
        if settings.CELERY_BROKER_URL.startswith("filesystem"):
            options = settings.CELERY_BROKER_TRANSPORT_OPTIONS
            for key in ("data_folder_in", "data_folder_out", "control_folder", "processed_folder"):
                if options.get(key):
                    os.makedirs(options[key], exist_ok=True)
