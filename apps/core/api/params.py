"""Query parameters read the same way everywhere: a value outside a declared set is a 400, never ignored."""

from __future__ import annotations

from collections.abc import Iterable

from apps.core.errors import ValidationFailed


def query_choice(request, name: str, choices: Iterable[str]) -> str:
    """The query parameter ``name`` (``""`` when absent); any other value not in ``choices`` (an empty
    one too: the schema publishes the set) is a 400 naming them."""
    value = request.query_params.get(name, "")
    allowed = list(choices)
    if name in request.query_params and value not in allowed:
        raise ValidationFailed(
            f"{name}: {value!r} is not one of {', '.join(allowed)}.",
            errors={name: [f"Use one of: {', '.join(allowed)}."]},
            extra={"valid_values": {name: allowed}},
        )
    return value
