"""Names, labels and annotations of the objects the Kubernetes driver creates.

Every object carries the plan's labels (``Member.labels``), the service's label and the fence annotation.
Label values are limited to 63 characters of ``[A-Za-z0-9._-]``, so values that may be longer or carry other
characters (the 64-hex digest, a model's name, a version's public id) are also written in full as annotations,
and the driver reads the annotations back; the labels are for selecting.
"""

from __future__ import annotations

import hashlib
import re

from apps.deployments.plans import (
    LABEL_DEPLOYMENT_ID,
    LABEL_DIGEST,
    LABEL_FENCE,
    LABEL_MANAGED_BY,
    LABEL_MODEL,
    LABEL_RELEASE_ID,
    LABEL_VERSION,
    LABEL_VERSION_ID,
    MANAGED_BY,
    Member,
)

# The model's service on the target (the plan's ``service``): every object of it carries this label.
LABEL_SERVICE = "assay.dev/service"
# On pod templates: "live" pods sit behind the Service, "shadow" pods get no Service traffic.
LABEL_TRAFFIC = "assay.dev/traffic"
# Annotations the driver writes and reads back (full values; see the module docstring).
ANNOTATION_FENCE = LABEL_FENCE
ANNOTATION_DIGEST = LABEL_DIGEST
ANNOTATION_MODEL = LABEL_MODEL
ANNOTATION_VERSION_ID = LABEL_VERSION_ID
ANNOTATION_IMAGE = "assay.dev/image"  # the image the driver rendered, to see a hand-edited one
ANNOTATION_REPLICAS = "assay.dev/replicas"  # the replica count the driver rendered, to see a hand-edited one
ANNOTATION_AUTOSCALED = "assay.dev/autoscaled"  # "true" when an HPA owns the replica count
ANNOTATION_STABLE = "assay.dev/stable-version-id"  # KServe/Argo: the version the canary is measured against
ANNOTATION_WEIGHT = "assay.dev/weight"

_LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?)?$")
_NOT_LABEL_CHAR = re.compile(r"[^A-Za-z0-9._-]+")
_NOT_DNS_CHAR = re.compile(r"[^a-z0-9-]+")


def label_value(value: str) -> str:
    """``value`` if it is a valid label value, else a valid one derived from it (kept distinct by a hash)."""
    if _LABEL_VALUE.match(value):
        return value
    cleaned = _NOT_LABEL_CHAR.sub("-", value).strip("-_.")
    suffix = hashlib.sha256(value.encode()).hexdigest()[:8]
    return f"{cleaned[:54].rstrip('-_.')}-{suffix}".lstrip("-")


def service_labels(service: str, model: str) -> dict[str, str]:
    """The labels of the service-wide objects (the Service, the anchor, an InferenceService, a Rollout)."""
    return {LABEL_MANAGED_BY: MANAGED_BY, LABEL_MODEL: label_value(model), LABEL_SERVICE: service}


def service_selector_labels(service: str) -> dict[str, str]:
    return {LABEL_MANAGED_BY: MANAGED_BY, LABEL_SERVICE: service}


def service_selector(service: str) -> str:
    """The label selector of everything the driver created for ``service``."""
    return f"{LABEL_MANAGED_BY}={MANAGED_BY},{LABEL_SERVICE}={service}"


ASSAY_SELECTOR = f"{LABEL_MANAGED_BY}={MANAGED_BY},{LABEL_SERVICE}"


def member_labels(service: str, model: str, member: Member) -> dict[str, str]:
    """``Member.labels`` made valid as Kubernetes labels (the digest shortened to 63 characters), the service's
    label, and whether the member's pods take live traffic."""
    labels = {key: label_value(value) for key, value in member.labels(model).items() if key != LABEL_DIGEST}
    labels[LABEL_DIGEST] = member.digest[:63]
    labels[LABEL_SERVICE] = service
    labels[LABEL_TRAFFIC] = "shadow" if member.shadow else "live"
    return labels


def member_selector(service: str, member: Member) -> dict[str, str]:
    """The immutable selector of one member's Deployment (its version never changes under one name)."""
    return {LABEL_MANAGED_BY: MANAGED_BY, LABEL_SERVICE: service, LABEL_VERSION_ID: label_value(member.version_id)}


def member_annotations(model: str, member: Member) -> dict[str, str]:
    """The full values the labels may have shortened, on the object and on its pod template."""
    return {
        ANNOTATION_DIGEST: member.digest,
        ANNOTATION_MODEL: model,
        ANNOTATION_VERSION_ID: member.version_id,
        LABEL_VERSION: member.version,
        LABEL_RELEASE_ID: member.release_id,
        LABEL_DEPLOYMENT_ID: member.deployment_id,
    }


def member_name(service: str, member: Member) -> str:
    """``<service>-v<version>``: a DNS label of at most 63 characters, the same for the same version."""
    slug = _NOT_DNS_CHAR.sub("-", member.version.lower()).strip("-")
    name = f"{service}-v{slug}"
    if slug and len(name) <= 63:
        return name
    return f"{service}-{hashlib.sha256(member.version_id.encode()).hexdigest()[:10]}"


def anchor_name(service: str) -> str:
    """The ConfigMap that holds the service's fence and the plan last applied."""
    return f"{service}-assay-plan"
