"""The interface every deployment target driver implements (Kubernetes, SageMaker, local).

A driver is built from the target's settings (plain JSON the admin entered) and its decrypted credentials
(never logged, never put in an error message), and answers four calls:

- ``apply(plan)``: make the target run exactly ``plan`` (declarative, idempotent, refuses a stale fence);
- ``observe(service)``: read back what the service runs now (``Observed``; ``exists=False`` if nothing);
- ``remove(service, fence)``: delete everything the service consists of (idempotent; refuses a stale fence);
- ``services()``: every service on the target that carries Assay's labels, for the reconciler.

Every call is short: a driver never waits for readiness. The rollout job applies, records when it should
look again, and a later job observes.
"""

from __future__ import annotations

from typing import Protocol

from apps.deployments.plans import Observed, Plan


class Driver(Protocol):
    kind: str  # "kubernetes" | "sagemaker" | "local"

    def apply(self, plan: Plan) -> None: ...

    def observe(self, service: str) -> Observed: ...

    def remove(self, service: str, fence: int) -> None: ...

    def services(self) -> list[Observed]: ...
