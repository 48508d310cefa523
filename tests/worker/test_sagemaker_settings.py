"""A SageMaker target's settings (worker/drivers/sagemaker/settings.py): what cannot work is refused when
the driver is built, with the setting named. No server: the check runs before any AWS call."""

from __future__ import annotations

import pytest

from apps.deployments.plans import DriverError
from tests.worker.sagemaker_fixtures import ALARMS, driver


@pytest.mark.parametrize(
    "overrides, reason",
    [
        (
            {
                "serverless": {"memory_mb": 2048, "max_concurrency": 4},
                "autoscaling": {"max_capacity": 3, "target_invocations_per_instance": 10},
            },
            "a serverless endpoint scales itself",
        ),
        ({"serverless": {"memory_mb": 1500, "max_concurrency": 4}}, "steps of 1024"),
        ({"images": {"pickle": "registry/pickle:1"}}, "formats Assay does not serve"),
        ({"instance_type": "g5.xlarge"}, "instance_type"),
        ({"traffic": {"mode": "blue"}}, "traffic.mode"),
        ({"traffic": {"mode": "canary", "size_percent": 0}, "alarms": ALARMS}, "size_percent"),
        ({"execution_role_arn": ""}, "execution_role_arn"),
        ({"alarms": "credit-scoring-5xx"}, "alarms must be a list"),
    ],
)
def test_settings_that_cannot_work_are_refused_when_the_driver_is_built(overrides, reason):
    """The driver's own settings check (worker/drivers/sagemaker/settings.py); no server."""
    with pytest.raises(DriverError, match=reason):
        driver(None, **overrides)
