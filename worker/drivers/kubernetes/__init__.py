"""The Kubernetes deployment driver (only workers import it): ``KubernetesDriver`` in ``driver``; connecting
in ``connection``; objects as dicts in ``objects``; fenced writes in ``fencing``; what it renders in
``manifests`` (built-in kinds) and ``custom`` (KServe, Argo Rollouts); reading back in ``observing``."""

from .driver import KubernetesDriver

__all__ = ["KubernetesDriver"]
