"""Fixtures for the SageMaker driver's tests: a real moto_server process, plans and target settings, and a
recorder of the requests the driver's real botocore clients make (botocore's own event system)."""

from __future__ import annotations

import copy
import hashlib
import json
import shutil
import sys
from pathlib import Path

import boto3
import pytest
from botocore.config import Config

from apps.deployments.plans import Member, Plan
from tests.support.moto_server import MotoServer
from worker.drivers.sagemaker import SageMakerDriver

REGION = "eu-west-1"
ROLE = "arn:aws:iam::123456789012:role/assay-sagemaker"
IMAGES = {
    "onnx": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/assay-serve-onnx:1.4",
    "xgboost": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/assay-serve-xgboost:1.4",
}
SECRETS = {"access_key_id": "AKIAASSAYTESTKEY0001", "secret_access_key": "assay-test-secret-d41d8cd98f00b204"}
ALARMS = ["credit-scoring-5xx", "credit-scoring-p99-latency"]


@pytest.fixture(scope="module")
def moto_process(tmp_path_factory):
    """One moto_server process for the module, stopped at its end."""
    if not Path(sys.executable).with_name("moto_server").exists() and not shutil.which("moto_server"):
        pytest.skip("moto_server is not installed: pip install -r requirements-dev.txt (moto[server])")
    server = MotoServer(tmp_path_factory.mktemp("moto") / "moto_server.log").start()
    yield server
    server.stop()


@pytest.fixture
def moto(moto_process):
    """The moto_server process, emptied before each test."""
    moto_process.reset()
    return moto_process


def aws_client(moto: MotoServer, service: str, retries: int = 3):
    """A plain boto3 client on moto_server, for a test to look at what the driver made."""
    return boto3.client(
        service,
        config=Config(retries={"max_attempts": retries, "mode": "standard"}),
        region_name=REGION,
        endpoint_url=moto.url,
        aws_access_key_id=SECRETS["access_key_id"],
        aws_secret_access_key=SECRETS["secret_access_key"],
    )


def target(moto: MotoServer | None, **overrides) -> dict:
    settings = {
        "region": REGION,
        "endpoint_url": moto.url if moto else "http://127.0.0.1:9",
        "execution_role_arn": ROLE,
        "images": dict(IMAGES),
        "instance_type": "ml.g4dn.xlarge",  # a GPU type (NVIDIA T4) moto_server knows; it refuses ml.g5.*
    }
    settings.update(overrides)
    return {k: v for k, v in settings.items() if v is not None}


def driver(moto: MotoServer | None, **overrides) -> SageMakerDriver:
    return SageMakerDriver(target(moto, **overrides), dict(SECRETS))


def member(version: str, weight: int = 100, *, shadow: bool = False, replicas: int = 1, uri: str = "") -> Member:
    return Member(
        deployment_id=f"dep{version}",
        release_id=f"rel{version}",
        version_id=f"ver{version}",
        version=version,
        digest=hashlib.sha256(f"credit-scoring model {version}".encode()).hexdigest(),
        artifact_uri=uri or f"s3://assay-models/credit-scoring/{version}/model.onnx",
        format="onnx",
        weight=weight,
        shadow=shadow,
        replicas=replicas,
    )


def plan(*members: Member, fence: int = 1, service: str = "credit-scoring") -> Plan:
    return Plan(service=service, model="credit-scoring", members=tuple(members), fence=fence)


class NotSent(Exception):
    """Raised from botocore's ``before-call`` event: the request was built and validated, and kept here."""


class Requests:
    """Every call the driver's real botocore clients were asked to make, as (operation, parameters), from
    botocore's ``provide-client-params`` event; ``hold(operation)`` stops that operation at ``before-call``
    (after botocore validated and serialized it, before anything is sent) and keeps the serialized request."""

    CHANGING = ("Create", "Update", "Delete", "Add", "Register", "Put", "Deregister")

    def __init__(self, drv: SageMakerDriver) -> None:
        self.calls: list[tuple[str, dict]] = []
        self.held: list[tuple[str, dict]] = []
        self._clients = (drv.aws.sagemaker, drv.aws.autoscaling, drv.aws.cloudwatch, drv.aws.client("batch"))
        for client in self._clients:
            client.meta.events.register("provide-client-params", self._record)

    def _record(self, params, model, **kwargs) -> None:
        self.calls.append((model.name, copy.deepcopy(params)))

    def hold(self, operation: str) -> None:
        def stop(model, params, **kwargs):
            self.held.append((model.name, {"body": json.loads(params["body"]), "headers": dict(params["headers"])}))
            raise NotSent(f"{model.name} held before sending")

        self._clients[0].meta.events.register(f"before-call.sagemaker.{operation}", stop)

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]

    def changing(self) -> list[str]:
        return [name for name in self.names() if name.startswith(self.CHANGING)]

    def params(self, operation: str) -> list[dict]:
        return [p for name, p in self.calls if name == operation]
