"""Which driver serves a target: one module per target kind (``worker/drivers/<kind>.py``), built here.

``driver_for(target)`` imports the kind's module (or package, whose ``__init__`` exports its driver class),
decrypts the target's credentials (only here, in a worker; never logged) and builds the driver from the
target's settings and those credentials. A module offers either a ``build_driver(settings, credentials)``
function, or one class whose ``kind`` is the target's kind and that implements ``Driver`` (``apply``,
``observe``, ``remove``, ``services``); the class is called with the keyword arguments its constructor names
among ``settings``, ``credentials`` (or ``secrets``), ``name`` and ``target``. A local target's driver is
named after the target unless its settings name it (its state folder is per name, so two local targets
never share one).
"""

from __future__ import annotations

import inspect
import re
from importlib import import_module
from typing import Any

from apps.deployments.models import DeploymentTarget
from apps.deployments.plans import DriverError
from apps.deployments.services import credentials_of

from .base import Driver

MODULES = {
    "local": "worker.drivers.local",
    "kubernetes": "worker.drivers.kubernetes",
    "sagemaker": "worker.drivers.sagemaker",
}


class NoDriver(DriverError):
    """This installation has no driver for the target's kind (its module is missing or offers none)."""


def _driver_class(module: Any, kind: str) -> type | None:
    for value in vars(module).values():
        if (
            inspect.isclass(value)
            and (value.__module__ == module.__name__ or value.__module__.startswith(module.__name__ + "."))
            and getattr(value, "kind", None) == kind
            and all(callable(getattr(value, name, None)) for name in ("apply", "observe", "remove", "services"))
        ):
            return value
    return None


def _dns_label(name: str) -> str:
    return re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")[:52].strip("-") or "local"


def driver_for(target: DeploymentTarget) -> Driver:
    """The driver for ``target``, with its settings and decrypted credentials; ``NoDriver`` when there is none."""
    name = MODULES.get(target.kind)
    if name is None:
        raise NoDriver(f"no driver for target kind {target.kind!r}")
    try:
        module = import_module(name)
    except ImportError as exc:
        raise NoDriver(f"the {target.kind} driver is not installed here ({exc.name or name})") from None
    settings = dict(target.settings or {})
    if target.kind == "local":
        settings.setdefault("name", _dns_label(target.name))
    try:
        credentials = credentials_of(target)
    except ValueError as exc:
        raise DriverError(f"target {target.name}: {exc}") from None
    build = getattr(module, "build_driver", None)
    if callable(build):
        return build(settings, credentials)
    cls = _driver_class(module, target.kind)
    if cls is None:
        raise NoDriver(f"{name} offers no driver class of kind {target.kind!r}")
    offered = {
        "settings": settings,
        "credentials": credentials,
        "secrets": credentials,
        "name": target.name,
        "target": target.name,
    }
    accepted = inspect.signature(cls).parameters
    return cls(**{key: value for key, value in offered.items() if key in accepted})
