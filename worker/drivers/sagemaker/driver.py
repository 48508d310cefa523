"""``SageMakerDriver``: a model's service on a SageMaker target is one endpoint, named after the service.

``apply`` creates a model per member and an endpoint config per distinct plan (both named after their
content, so applying again finds them), then creates the endpoint, or moves it to the new config with
``UpdateEndpoint`` and the target's deployment config (blue/green with canary, linear or all-at-once
traffic shifting, rolled back by CloudWatch alarms), or, when only the live weights or instance counts
differ, changes those in place with ``UpdateEndpointWeightsAndCapacities``. It never waits for the
endpoint to be in service: the rollout job observes later.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from typing import Any

from apps.deployments.plans import (
    LABEL_DIGEST,
    LABEL_FENCE,
    LABEL_MANAGED_BY,
    LABEL_MODEL,
    LABEL_VERSION_ID,
    MANAGED_BY,
    DigestMismatch,
    DriverError,
    MemberStatus,
    Observed,
    Plan,
    StaleFence,
)

from .aws import Aws, Missing, tag_list
from .batch import apply_batch
from .desired import ENV_DIGEST, LABEL_SERVICE, ModelSpec, endpoint_config_request, model_spec, shape
from .metrics import Figures, read_figures
from .scaling import deregister_scaling, register_scaling
from .settings import parse_settings
from .states import endpoint_state, ready_instances


class EndpointBusy(DriverError):
    """SageMaker is changing the endpoint and takes no other change until it is done: apply again later."""


def _fence_of(tags: dict[str, str]) -> int | None:
    value = tags.get(LABEL_FENCE, "")
    return int(value) if value.isdigit() else None


class SageMakerDriver:
    """Runs a plan's versions as the production and shadow variants of one SageMaker endpoint."""

    kind = "sagemaker"

    def __init__(self, settings: dict, secrets: dict) -> None:
        self.settings = parse_settings(settings)
        self.aws = Aws(self.settings, secrets or {})

    def __repr__(self) -> str:  # never the credentials
        return f"<SageMakerDriver region={self.settings.region}>"

    # -- apply ------------------------------------------------------------------------------------

    def apply(self, plan: Plan) -> None:
        if plan.kind == "batch":
            apply_batch(self.aws, self.settings, plan)  # an AWS Batch job definition, not an endpoint
            return
        if plan.kind != "online":
            raise DriverError(f"the SageMaker driver runs online and batch plans, not {plan.kind!r} plans")
        deployment = self.settings.deployment_config()  # refuses canary/linear without alarms, before any call
        models = [model_spec(plan, member, self.settings) for member in plan.members]  # refuses non-S3 artifacts
        endpoint = self._endpoint(plan.service)
        if endpoint is not None:
            tags = self._check_fence(endpoint, plan.fence)
            if tags.get(LABEL_MODEL, plan.model) != plan.model:
                raise DriverError(
                    f"endpoint {plan.service} serves model {tags[LABEL_MODEL]}, not {plan.model}: "
                    "it will not be taken over"
                )
            if _fence_of(tags) != plan.fence:  # first, so a predecessor checking from now on is refused
                arn = endpoint["EndpointArn"]
                self.aws.call(
                    self.aws.sagemaker, "add_tags", ResourceArn=arn, Tags=tag_list({LABEL_FENCE: str(plan.fence)})
                )
        for spec in models:
            self._ensure_model(spec, plan.fence)
        sm = self.aws.sagemaker
        if endpoint is None:
            config = endpoint_config_request(plan, models, self.settings, None)
            self._ensure_config(config)
            self.aws.call(
                sm,
                "create_endpoint",
                EndpointName=plan.service,
                EndpointConfigName=config["EndpointConfigName"],
                Tags=config["Tags"],
            )
            self._register_scaling(plan.service, config)
            return
        state = endpoint_state(endpoint["EndpointStatus"])
        pending = (endpoint.get("PendingDeploymentSummary") or {}).get("EndpointConfigName")
        current = self._config(pending or endpoint["EndpointConfigName"])
        config = endpoint_config_request(plan, models, self.settings, current)
        if shape(config) == shape(current):
            if not (state.busy and pending):  # a pending deployment of this very shape is already under way
                calls = self._capacity_updates(endpoint, config)
                if calls:  # the first; the endpoint is Updating after it, so a later apply makes the next
                    self._refuse_busy(plan.service, endpoint, state)
                    self.aws.call(
                        sm,
                        "update_endpoint_weights_and_capacities",
                        EndpointName=plan.service,
                        DesiredWeightsAndCapacities=calls[0],
                    )
        else:
            self._refuse_busy(plan.service, endpoint, state)
            kept = shape(config) & shape(current)
            replaced = [v[1] for v in shape(current) - kept if v[0] == "ProductionVariants"]
            deregister_scaling(self.aws, plan.service, replaced)  # SageMaker refuses to replace a scaled variant
            self._ensure_config(config)
            params: dict[str, Any] = {"EndpointName": plan.service, "EndpointConfigName": config["EndpointConfigName"]}
            if deployment is not None:
                params["DeploymentConfig"] = deployment
            self.aws.call(sm, "update_endpoint", **params)
        self._register_scaling(plan.service, config)

    def _endpoint(self, name: str) -> dict[str, Any] | None:
        try:
            return self.aws.call(self.aws.sagemaker, "describe_endpoint", EndpointName=name)
        except Missing:
            return None

    def _config(self, name: str) -> dict[str, Any]:
        return self.aws.call(self.aws.sagemaker, "describe_endpoint_config", EndpointConfigName=name)

    def _check_fence(self, endpoint: dict[str, Any], fence: int) -> dict[str, str]:
        name = endpoint["EndpointName"]
        tags = self.aws.tags(endpoint["EndpointArn"])
        if tags.get(LABEL_MANAGED_BY) != MANAGED_BY:
            raise DriverError(f"endpoint {name} exists but Assay did not make it: it will not be taken over")
        stored = _fence_of(tags)
        if stored is not None and stored > fence:
            raise StaleFence(f"endpoint {name} was applied under fence {stored}; this plan's fence {fence} is older")
        return tags

    def _refuse_busy(self, service: str, endpoint: dict[str, Any], state) -> None:
        if state.busy:
            raise EndpointBusy(
                f"endpoint {service} is {endpoint['EndpointStatus']} ({state.meaning}); SageMaker takes no "
                "other change until it is done: apply again later"
            )

    def _ensure_model(self, spec: ModelSpec, fence: int) -> None:
        sm = self.aws.sagemaker
        try:
            model = self.aws.call(sm, "describe_model", ModelName=spec.name)
        except Missing:
            self.aws.call(sm, "create_model", **spec.request)
            return
        digest = (model.get("PrimaryContainer") or {}).get("Environment", {}).get(ENV_DIGEST)
        if digest != spec.member.digest:
            raise DigestMismatch(
                f"model {spec.name} exists with digest {digest}, not version {spec.member.version}'s approved "
                f"{spec.member.digest}"
            )
        tags = self.aws.tags(model["ModelArn"])
        if (_fence_of(tags) or 0) < fence:  # so remove() under an older fence leaves it alone
            self.aws.call(sm, "add_tags", ResourceArn=model["ModelArn"], Tags=tag_list({LABEL_FENCE: str(fence)}))

    def _ensure_config(self, request: dict[str, Any]) -> None:
        try:
            self._config(request["EndpointConfigName"])
        except Missing:
            self.aws.call(self.aws.sagemaker, "create_endpoint_config", **request)

    def _capacity_updates(self, endpoint: dict[str, Any], config: dict[str, Any]) -> list[list[dict[str, Any]]]:
        """The ``UpdateEndpointWeightsAndCapacities`` calls that bring the endpoint to the config: one with
        every live variant's weight when one differs, then one per variant whose instance count differs
        (SageMaker changes the capacity of one variant per call). Counts are left to Application Auto
        Scaling where it is configured."""
        now = {v["VariantName"]: v for v in endpoint.get("ProductionVariants", [])}
        calls = []
        weights = [
            {"VariantName": v["VariantName"], "DesiredWeight": v["InitialVariantWeight"]}
            for v in config["ProductionVariants"]
        ]
        for variant in config["ProductionVariants"]:
            current = now.get(variant["VariantName"], {})
            weight = current.get("DesiredWeight", current.get("CurrentWeight"))
            if weight is None or abs(float(weight) - variant["InitialVariantWeight"]) > 1e-6:
                calls.append(weights)
                break
        if self.settings.autoscaling is None:
            for variant in config["ProductionVariants"]:
                current = now.get(variant["VariantName"], {})
                count = current.get("DesiredInstanceCount")
                count = current.get("CurrentInstanceCount") if count is None else count
                if "InitialInstanceCount" in variant and count is not None and count != variant["InitialInstanceCount"]:
                    calls.append(
                        [
                            {
                                "VariantName": variant["VariantName"],
                                "DesiredInstanceCount": variant["InitialInstanceCount"],
                            }
                        ]
                    )
        return calls

    def _register_scaling(self, service: str, config: dict[str, Any]) -> None:
        if self.settings.autoscaling is None:
            return
        endpoint = self._endpoint(service)
        if endpoint is None or endpoint["EndpointStatus"] != "InService":
            return  # SageMaker registers scalable targets only on an endpoint in service: a later apply will
        variants = [v["VariantName"] for v in config["ProductionVariants"] if "InstanceType" in v]
        register_scaling(self.aws, self.settings.autoscaling, service, variants)

    # -- observe ----------------------------------------------------------------------------------

    def observe(self, service: str) -> Observed:
        endpoint = self._endpoint(service)
        if endpoint is None:
            return Observed(service=service, exists=False)
        tags = self.aws.tags(endpoint["EndpointArn"])
        status = endpoint["EndpointStatus"]
        state = endpoint_state(status)
        notes = [f"{status}: {state.meaning}"]
        if endpoint.get("FailureReason"):
            notes.append(f"failure: {endpoint['FailureReason']}")
        try:
            config = self._config(endpoint["EndpointConfigName"])
        except Missing:
            config = {}
            notes.append(f"endpoint config {endpoint['EndpointConfigName']} is gone")
        notes += self._alarm_notes()
        message = "; ".join(notes)
        variants = self._variants(endpoint, config)
        live_total = sum(float(v.get("CurrentWeight") or 0) for v, shadow in variants if not shadow)
        members = []
        identities = self._identities(config)
        created = {name: identity[3] for name, identity in identities.items() if identity[3] is not None}
        figures = read_figures(self.aws, service, created, datetime.now(UTC))
        for variant, shadow in variants:
            member = self._member(status, variant, shadow, config, message, identities, figures)
            # shares of the live weights: a shadow's is the share of live traffic mirrored to it
            member.weight = round(100 * float(variant.get("CurrentWeight") or 0) / live_total) if live_total else 0
            members.append(member)
        return Observed(
            service=service,
            exists=True,
            fence=_fence_of(tags),
            model=tags.get(LABEL_MODEL, ""),
            members=members,
            message=message,
        )

    @staticmethod
    def _variants(endpoint: dict[str, Any], config: dict[str, Any]) -> list[tuple[dict[str, Any], bool]]:
        """The endpoint's variants as it reports them, or (while it has none to report, e.g. Creating) as its
        config declares them, with no weight or instance serving yet."""
        out = []
        for kind, shadow in (("ProductionVariants", False), ("ShadowProductionVariants", True)):
            reported = endpoint.get(kind)
            if reported:
                out += [(v, shadow) for v in reported]
            else:
                out += [
                    ({"VariantName": v["VariantName"], "DesiredInstanceCount": v.get("InitialInstanceCount")}, shadow)
                    for v in config.get(kind, [])
                ]
        return out

    @staticmethod
    def _declared(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
        return {
            v["VariantName"]: v
            for kind in ("ProductionVariants", "ShadowProductionVariants")
            for v in config.get(kind, [])
        }

    def _identities(self, config: dict[str, Any]) -> dict[str, tuple[str, str, list[str], datetime | None]]:
        """Each declared variant's model identity: version id, digest, notes, and its model's creation time."""
        return {
            name: self._model_identity(declared["ModelName"])
            for name, declared in self._declared(config).items()
            if declared.get("ModelName")
        }

    def _member(
        self,
        status: str,
        variant: dict[str, Any],
        shadow: bool,
        config: dict[str, Any],
        message: str,
        identities: dict[str, tuple[str, str, list[str], datetime | None]],
        figures: dict[str, Figures],
    ) -> MemberStatus:
        name = variant["VariantName"]
        declared = self._declared(config).get(name, {})
        serverless = bool(declared.get("ServerlessConfig") or variant.get("CurrentServerlessConfig"))
        version_id, digest, notes, _ = identities.get(name, ("", "", [], None))
        seen = figures.get(name, Figures())
        notes = [*notes, *seen.missing]
        desired = (
            variant.get("DesiredInstanceCount") or declared.get("InitialInstanceCount") or (1 if serverless else 0)
        )
        return MemberStatus(
            version_id=version_id,
            digest=digest,
            weight=0,
            shadow=shadow,
            desired_replicas=int(desired),
            ready_replicas=ready_instances(status, variant.get("CurrentInstanceCount"), serverless),
            requests=seen.requests,
            errors=seen.errors,
            latency_p99_ms=seen.latency_p99_ms,
            state=status,
            message="; ".join([f"variant {variant['VariantName']}", message, *notes]),
        )

    def _model_identity(self, model_name: str) -> tuple[str, str, list[str], datetime | None]:
        """A model's version id and digest: the digest the container is told to check (its environment),
        a note when its tags say otherwise, and when the model was created (its counters count from then)."""
        try:
            model = self.aws.call(self.aws.sagemaker, "describe_model", ModelName=model_name)
        except Missing:
            return "", "", [f"model {model_name} is gone"], None
        tags = self.aws.tags(model["ModelArn"])
        env = (model.get("PrimaryContainer") or {}).get("Environment", {})
        digest = env.get(ENV_DIGEST) or tags.get(LABEL_DIGEST, "")
        notes = []
        if tags.get(LABEL_DIGEST) and env.get(ENV_DIGEST) and tags[LABEL_DIGEST] != env[ENV_DIGEST]:
            notes.append(f"model {model_name}'s digest tag and environment disagree")
        return tags.get(LABEL_VERSION_ID, ""), digest, notes, model.get("CreationTime")

    def _alarm_notes(self) -> list[str]:
        """The health of the auto-rollback alarms: any in ALARM, short of data, or missing."""
        names = list(self.settings.alarms)
        if not names:
            return []
        alarms = self.aws.call(self.aws.cloudwatch, "describe_alarms", AlarmNames=names).get("MetricAlarms", [])
        found = {a["AlarmName"]: a for a in alarms}
        notes = []
        for name in names:
            alarm = found.get(name)
            if alarm is None:
                notes.append(f"alarm {name} does not exist: SageMaker cannot roll back on it")
            elif alarm.get("StateValue") == "ALARM":
                notes.append(f"alarm {name} is in ALARM ({alarm.get('StateReason', '')[:200]})")
            elif alarm.get("StateValue") == "INSUFFICIENT_DATA":
                notes.append(f"alarm {name} has insufficient data")
        return notes

    # -- remove and list --------------------------------------------------------------------------

    def remove(self, service: str, fence: int) -> None:
        """Delete the endpoint, then every endpoint config and model Assay made for the service, except
        those a newer fence has tagged since (a successor's, not yet behind the endpoint)."""
        sm = self.aws.sagemaker
        endpoint = self._endpoint(service)
        if endpoint is not None:
            self._check_fence(endpoint, fence)
            variants = [v["VariantName"] for v in endpoint.get("ProductionVariants", [])]
            deregister_scaling(self.aws, service, variants)
            if endpoint["EndpointStatus"] != "Deleting":
                self.aws.call(sm, "delete_endpoint", EndpointName=service)
        for operation, key, name_key, arn_key, delete in (
            (
                "list_endpoint_configs",
                "EndpointConfigs",
                "EndpointConfigName",
                "EndpointConfigArn",
                "delete_endpoint_config",
            ),
            ("list_models", "Models", "ModelName", "ModelArn", "delete_model"),
        ):
            for item in list(self.aws.pages(sm, operation, key, NameContains=service)):
                name = item[name_key]
                if not name.startswith(f"{service}-") or len(name) != len(service) + 11:
                    continue
                tags = self.aws.tags(item[arn_key])
                if tags.get(LABEL_SERVICE) != service or tags.get(LABEL_MANAGED_BY) != MANAGED_BY:
                    continue
                if (_fence_of(tags) or 0) > fence:
                    continue
                with contextlib.suppress(Missing):
                    self.aws.call(sm, delete, **{name_key: name})

    def services(self) -> list[Observed]:
        out = []
        for item in self.aws.pages(self.aws.sagemaker, "list_endpoints", "Endpoints"):
            tags = self.aws.tags(item["EndpointArn"])
            if tags.get(LABEL_MANAGED_BY) == MANAGED_BY:
                observed = self.observe(item["EndpointName"])
                if observed.exists:
                    out.append(observed)
        return out
