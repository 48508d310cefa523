"""SageMaker's endpoint statuses, and what each means for the versions behind the endpoint.

``MemberStatus.state`` carries SageMaker's own word; this table says whether the endpoint answers requests
in that state (so a variant's current instances count as ready), whether a change is under way (apply
cannot start another one), and whether it needs a person.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EndpointState:
    serving: bool  # the endpoint answers requests: a variant's current instances are ready
    busy: bool  # SageMaker is changing the endpoint: no update, weight change or scaling registration now
    failed: bool  # a person must look: the last change did not take and nothing is retrying it
    meaning: str


ENDPOINT_STATES: dict[str, EndpointState] = {
    "Creating": EndpointState(False, True, False, "SageMaker is creating the endpoint"),
    "Updating": EndpointState(
        True, True, False, "SageMaker is updating the endpoint; the previous fleet serves until traffic shifts"
    ),
    "SystemUpdating": EndpointState(True, True, False, "SageMaker is maintaining or scaling the endpoint"),
    "RollingBack": EndpointState(
        True,
        True,
        False,
        "SageMaker is rolling the last update back (an auto-rollback alarm fired or the update failed)",
    ),
    "InService": EndpointState(True, False, False, "the endpoint is in service"),
    "OutOfService": EndpointState(False, False, True, "the endpoint is out of service"),
    "Deleting": EndpointState(False, True, False, "SageMaker is deleting the endpoint"),
    "Failed": EndpointState(False, False, True, "the endpoint failed"),
    "UpdateRollbackFailed": EndpointState(
        True,
        False,
        True,
        "the last update failed and so did its rollback: the endpoint serves, but not what either "
        "config says; update it again or delete it",
    ),
}

UNKNOWN = EndpointState(False, True, False, "SageMaker reports a status this driver does not know")


def endpoint_state(status: str) -> EndpointState:
    return ENDPOINT_STATES.get(status, UNKNOWN)


def ready_instances(status: str, current_instances: int | None, serverless: bool) -> int:
    """How many of a variant's instances answer requests now: its current count while the endpoint serves,
    none otherwise. A serverless variant counts as one when it serves (it has no instances to count)."""
    if not endpoint_state(status).serving:
        return 0
    if serverless:
        return 1
    return int(current_instances or 0)
