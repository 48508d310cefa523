"""The API's JSON parser: bounded in size and in nesting depth.

A JSON body larger than ``ASSAY_MAX_JSON_BYTES`` is refused with 413 before it is parsed, and one
nested deeper than ``ASSAY_MAX_JSON_DEPTH`` levels with 400; both name the limit. Without these a
body of a few thousand ``[`` characters exhausted Python's recursion limit (a 500 on every
endpoint) and a body of any size was read into memory.
"""

from __future__ import annotations

from django.conf import settings
from rest_framework import parsers
from rest_framework.exceptions import ParseError
from rest_framework.settings import api_settings
from rest_framework.utils import json


def json_depth_exceeds(data: object, limit: int) -> bool:
    """True when ``data`` nests lists and objects more than ``limit`` levels deep (walked without recursion)."""
    stack: list[tuple[object, int]] = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            children = value.values()
        elif isinstance(value, list):
            children = value
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser with a size and a depth limit (``ASSAY_MAX_JSON_BYTES``, ``ASSAY_MAX_JSON_DEPTH``)."""

    def parse(self, stream, media_type=None, parser_context=None):
        # Here, not at the top: DRF imports this class while apps.core.errors is still importing DRF.
        from apps.core.errors import JsonTooDeep, PayloadTooLarge

        parser_context = parser_context or {}
        encoding = parsers.get_encoding(parser_context)
        max_bytes = settings.ASSAY_MAX_JSON_BYTES
        max_depth = settings.ASSAY_MAX_JSON_DEPTH
        request = parser_context.get("request")
        declared = request.META.get("CONTENT_LENGTH") if request is not None else None
        if declared and declared.isdigit() and int(declared) > max_bytes:
            raise PayloadTooLarge(_too_large(max_bytes))
        raw = stream.read(max_bytes + 1) if stream is not None else b""
        if len(raw) > max_bytes:
            raise PayloadTooLarge(_too_large(max_bytes))
        try:
            text = raw.decode(encoding)
            parse_constant = json.strict_constant if api_settings.STRICT_JSON else None
            data = json.loads(text, parse_constant=parse_constant)
        except RecursionError:
            raise JsonTooDeep(_too_deep(max_depth))
        except ValueError as exc:  # UnicodeDecodeError is a ValueError too
            raise ParseError(f"JSON parse error - {exc}")
        if json_depth_exceeds(data, max_depth):
            raise JsonTooDeep(_too_deep(max_depth))
        return data


def _too_large(limit: int) -> str:
    return f"JSON body larger than {limit} bytes (ASSAY_MAX_JSON_BYTES)."


def _too_deep(limit: int) -> str:
    return f"JSON nested deeper than {limit} levels (ASSAY_MAX_JSON_DEPTH)."
