"""Strict input: a field a client sends that the endpoint does not take is refused by name, never ignored,
and a value of the wrong JSON type is refused rather than converted.

Every ``PATCH``/``PUT`` input serializer of the API mixes in ``StrictInput`` (``tests/core/test_strict_input.py``
walks the URL conf to hold every such endpoint to it). A field the endpoint's output shows but does not
take (an id, a timestamp, the owning team) is *read-only*; any other is *unknown*. Either is a 400
problem naming each field, and nothing is changed.
"""

from __future__ import annotations

import sys

from apps.core.errors import ValidationFailed


class StrictInput:
    """Mix into a DRF input serializer (before ``serializers.Serializer``) to refuse fields it does not take.

    ``output`` is the serializer of the endpoint's response (or its name in the same module, when
    it is defined further down); its fields that this one does not take are reported as read-only
    rather than unknown.
    """

    output: type | str | None = None

    @classmethod
    def read_only_names(cls) -> frozenset[str]:
        names = cls.__dict__.get("_read_only_names")
        if names is None:
            output = cls.output
            if isinstance(output, str):
                output = getattr(sys.modules[cls.__module__], output)
            names = frozenset(output().fields) if output is not None else frozenset()
            cls._read_only_names = names
        return names

    def to_internal_value(self, data):
        if hasattr(data, "keys"):
            writable = {name for name, f in self.fields.items() if not f.read_only}
            refused = [name for name in data if name not in writable]
            if refused:
                read_only = sorted(n for n in refused if n in self.read_only_names() or n in self.fields)
                unknown = sorted(n for n in refused if n not in read_only)
                parts = []
                if read_only:
                    parts.append(f"read-only: {', '.join(read_only)}")
                if unknown:
                    parts.append(f"unknown: {', '.join(unknown)}")
                raise ValidationFailed(
                    f"Fields this endpoint does not change ({'; '.join(parts)}). Nothing was changed.",
                    errors={
                        **{n: ["Read-only field."] for n in read_only},
                        **{n: ["Unknown field."] for n in unknown},
                    },
                    extra={"read_only_fields": read_only, "unknown_fields": unknown},
                )
        return super().to_internal_value(data)


def refuse_coerced_strings() -> None:
    """Make every DRF string field (``CharField`` and its subclasses: e-mail, slug, URL, regex, IP
    address) refuse a value that is not a string, as the published schema says (``type: string``).

    DRF's own ``CharField`` turns a JSON number into its text (``"host": 12`` became ``"12"``), so a
    request the schema calls invalid was accepted. Form and multipart bodies carry only strings, so
    they are unaffected. Called once, from ``CoreConfig.ready()``.
    """
    from rest_framework import serializers

    original = serializers.CharField.to_internal_value
    if getattr(original, "assay_strict", False):
        return

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")  # "Not a valid string."
        return original(self, data)

    to_internal_value.assay_strict = True
    serializers.CharField.to_internal_value = to_internal_value
