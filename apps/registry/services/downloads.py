"""Downloads: a person or a pipeline asks for a version's artifact or a dataset, and the request is on the trail.

Each service checks ``registry.download`` on the object, refuses an object whose bytes are not
known-good (409 saying why), writes its audit event and returns a signed link that only the same
principal can follow for a few minutes (``apps.registry.downloads``). Following the link streams the
bytes and writes nothing, so every download is recorded once, by the request that started it.
"""

from __future__ import annotations

from django.db import transaction

from apps.audit import services as audit
from apps.core.errors import NotFound
from apps.core.principals import Principal
from apps.rbac import services as rbac

from ..downloads import PERMISSION, DownloadLink, check_downloadable, link_issue
from ..models import Dataset, ModelVersion


def _event(link: DownloadLink) -> dict:
    # What was handed out, never the link itself (its signature is what lets its holder fetch the bytes).
    return {
        "filename": link.filename,
        "sha256": link.sha256,
        "size": link.size,
        "expires_at": link.expires_at.isoformat(),
    }


@transaction.atomic
def version_artifact_download(*, actor: Principal, model_name: str, number: int) -> DownloadLink:
    """Start the download of a verified version's artifact: audited ``model_version.artifact_downloaded``
    (who, which version, its sha256 and size); returns a link for ``actor`` alone.

    404 when the version is missing or out of the actor's scope, 403 without ``registry.download``
    (both audited as denials), 409 when the version has no verified bytes.
    """
    version = ModelVersion.objects.select_related("model").filter(model__name=model_name, number=number).first()
    if version is None:
        raise NotFound(f"No version {number} of model {model_name!r}.")
    rbac.require(actor, PERMISSION, version, audit_action="model_version.artifact_downloaded")
    check_downloadable(version)
    link = link_issue(actor=actor, obj=version)
    audit.record(
        action="model_version.artifact_downloaded",
        actor=actor,
        target=version,
        related=version.model,
        after=_event(link),
        artifact_sha256=version.sha256,
    )
    return link


@transaction.atomic
def dataset_download(*, actor: Principal, dataset_id: int) -> DownloadLink:
    """Start the download of a verified dataset: audited ``dataset.downloaded`` (who, which dataset, its
    sha256 and size); returns a link for ``actor`` alone. Refusals as ``version_artifact_download``'s.
    """
    dataset = Dataset.objects.filter(pk=dataset_id).first()
    if dataset is None:
        raise NotFound(f"No dataset {dataset_id}.")
    rbac.require(actor, PERMISSION, dataset, audit_action="dataset.downloaded")
    check_downloadable(dataset)
    link = link_issue(actor=actor, obj=dataset)
    audit.record(
        action="dataset.downloaded", actor=actor, target=dataset, after=_event(link), artifact_sha256=dataset.sha256
    )
    return link
