"""The SageMaker target driver: a model's service is one real-time endpoint whose production variants are
the plan's live versions and whose shadow variants are its shadows (``driver``); the target's settings
(``settings``), the requests a plan turns into (``desired``), SageMaker's statuses (``states``), auto
scaling (``scaling``) and the AWS calls (``aws``) each have a module of their own."""

from .driver import EndpointBusy, SageMakerDriver

__all__ = ["EndpointBusy", "SageMakerDriver"]
