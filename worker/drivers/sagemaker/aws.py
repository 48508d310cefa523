"""The AWS side of the SageMaker driver: clients built from the target's credentials, one call wrapper that
turns every AWS failure into a ``DriverError`` without a credential in it, and tag and paging helpers.

Credentials come from the target's secrets (``access_key_id``, ``secret_access_key``, optional
``session_token``) or, when there are none, from boto3's default chain (environment, instance role). They
live only inside the boto3 session: never in an attribute of the driver, a message or a log line.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from apps.deployments.plans import DriverError

from .settings import TargetSettings

# How SageMaker (and moto) say that a named model, endpoint config or endpoint does not exist.
_MISSING = ("could not find", "does not exist", "not found")


class Missing(DriverError):
    """The named resource does not exist (the one AWS refusal that callers look for)."""


class Aws:
    """The three clients a SageMaker target needs, and the one way to call them."""

    def __init__(self, settings: TargetSettings, secrets: dict[str, str]) -> None:
        secrets = secrets or {}
        # Every secret value is scrubbed from messages, whatever AWS or botocore puts in them.
        self._hidden = tuple(v for v in secrets.values() if isinstance(v, str) and len(v) >= 4)
        session = boto3.session.Session(
            aws_access_key_id=secrets.get("access_key_id") or None,
            aws_secret_access_key=secrets.get("secret_access_key") or None,
            aws_session_token=secrets.get("session_token") or None,
            region_name=settings.region,
        )
        config = Config(
            retries={"max_attempts": 4, "mode": "standard"},
            connect_timeout=5,
            read_timeout=30,
            user_agent_extra="assay-sagemaker-driver",
        )
        endpoint = settings.endpoint_url or None
        self.sagemaker = session.client("sagemaker", endpoint_url=endpoint, config=config)
        self.autoscaling = session.client("application-autoscaling", endpoint_url=endpoint, config=config)
        self.cloudwatch = session.client("cloudwatch", endpoint_url=endpoint, config=config)
        self._session = session
        self._config = config
        self._endpoint = endpoint
        self._others: dict[str, Any] = {}

    def client(self, service: str):
        """Another client of the same session (AWS Batch for batch plans), made once."""
        if service not in self._others:
            self._others[service] = self._session.client(service, endpoint_url=self._endpoint, config=self._config)
        return self._others[service]

    def redact(self, text: str) -> str:
        for value in self._hidden:
            text = text.replace(value, "***")
        return text

    def call(self, client, operation: str, **params: Any) -> dict[str, Any]:
        """``client.<operation>(**params)``; any failure becomes a DriverError (``Missing`` for a resource
        that does not exist) whose message names the operation and AWS's reason, never a credential."""
        try:
            return getattr(client, operation)(**params)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code, message = str(error.get("Code", "")), str(error.get("Message", ""))
            name = exc.operation_name or operation
            text = self.redact(f"AWS {name} failed: {code}: {message}".strip())
            if code in ("ResourceNotFound", "ResourceNotFoundException") or (
                code == "ValidationException" and any(m in message.lower() for m in _MISSING)
            ):
                raise Missing(text) from None
            raise DriverError(text) from None
        except BotoCoreError as exc:
            # e.g. no credentials in the default chain, an unreachable endpoint, a parameter botocore refused
            raise DriverError(self.redact(f"AWS {operation} failed: {type(exc).__name__}: {exc}")) from None

    def pages(self, client, operation: str, key: str, **params: Any) -> Iterator[dict[str, Any]]:
        """Every item under ``key`` of a paged list call, following ``NextToken``."""
        while True:
            answer = self.call(client, operation, **params)
            yield from answer.get(key, [])
            token = answer.get("NextToken")
            if not token:
                return
            params["NextToken"] = token

    def tags(self, arn: str) -> dict[str, str]:
        return {t["Key"]: t["Value"] for t in self.pages(self.sagemaker, "list_tags", "Tags", ResourceArn=arn)}


def tag_list(tags: dict[str, str]) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in sorted(tags.items())]
