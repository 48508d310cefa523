from tests.worker.sagemaker_fixtures import moto, moto_process  # noqa: F401 - moto_server as a real process
