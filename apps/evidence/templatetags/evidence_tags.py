"""Template helpers for evidence lists: a run's verdict as its badge shows it."""

from __future__ import annotations

from django import template

from apps.evidence.verdicts import run_outcome

register = template.Library()


@register.simple_tag
def evidence_outcome(run):
    """The run's ``Outcome`` ("PII: 3 unresolved", "Bias: all 6 checks pass"), or None while it is not done."""
    return run_outcome(run)
