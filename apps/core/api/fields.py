"""Serializer fields whose refusals tell the client what would have been accepted."""

from __future__ import annotations

from rest_framework import serializers


class ChoiceField(serializers.ChoiceField):
    """DRF's ``ChoiceField``, whose refusal lists the valid values:
    ``risk_tier: "severe" is not a valid choice; valid values: minimal, limited, high, unacceptable.``"""

    default_error_messages = {"invalid_choice": '"{input}" is not a valid choice; valid values: {valid}.'}

    def to_internal_value(self, data):
        if data == "" and self.allow_blank:
            return ""
        try:
            return self.choice_strings_to_values[str(data)]
        except KeyError:
            self.fail("invalid_choice", input=data, valid=", ".join(self.choice_strings_to_values) or "none")
