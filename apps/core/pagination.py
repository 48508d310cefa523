"""API pagination: page-number pages with a bounded size and a total that costs the same at any table size."""

from rest_framework.pagination import PageNumberPagination
from rest_framework.response import Response

from apps.core.errors import ValidationFailed
from apps.core.totals import BoundedPaginator


def _is_number(raw: str) -> bool:
    """ASCII digits only (``str.isdigit`` also takes "²", which ``int`` refuses)."""
    return raw.isascii() and raw.isdigit()


def _positive_int(raw: str, name: str, *, at_most: int) -> int:
    """``raw`` as a whole number from 1 up to ``at_most`` (larger ones are cut to it), or a 400 naming it."""
    if not _is_number(raw) or not raw.strip("0"):
        raise ValidationFailed(f"{name}: {raw!r} is not a whole number of at least 1.", errors={name: ["Not a size."]})
    return at_most if len(raw.lstrip("0")) > 9 else min(int(raw), at_most)


class Pagination(PageNumberPagination):
    """``?page=`` (from 1; ``last`` for the last) and ``?page_size=`` (1 to 500, default 50).

    A ``page`` or ``page_size`` that is not a whole number is a 400; a page that does not exist
    (``page=0``, or past the end) is a 404. Both are declared in the schema (``apps.core.api.schema``).

    ``count`` is exact up to 10,000 rows; above that it is the table's row estimate (a list of
    everything) or 10,000 (a filtered list), and ``count_exact`` is false (``apps.core.totals``).
    """

    django_paginator_class = BoundedPaginator
    page_size_query_param = "page_size"
    max_page_size = 500

    def get_page_size(self, request):
        if self.page_size_query_param in request.query_params:
            raw = request.query_params[self.page_size_query_param]
            return _positive_int(raw, self.page_size_query_param, at_most=self.max_page_size)
        return self.page_size

    def paginate_queryset(self, queryset, request, view=None):
        raw = request.query_params.get(self.page_query_param)
        if raw is not None and raw not in self.last_page_strings and not _is_number(raw.removeprefix("-")):
            # A number (0 and negatives included) is a page that exists or a 404; anything else is malformed.
            raise ValidationFailed(
                f"{self.page_query_param}: {raw!r} is not a page number.",
                errors={self.page_query_param: ["Not a page."]},
            )
        return super().paginate_queryset(queryset, request, view)

    def get_paginated_response(self, data):
        return Response(
            {
                "count": self.page.paginator.count,
                "count_exact": self.page.paginator.total.exact,
                "next": self.get_next_link(),
                "previous": self.get_previous_link(),
                "results": data,
            }
        )

    def get_paginated_response_schema(self, schema):
        paginated = super().get_paginated_response_schema(schema)
        paginated["properties"]["count_exact"] = {
            "type": "boolean",
            "description": "False when the list holds more than 10,000 rows: count is then an estimate or a floor.",
        }
        paginated["required"] = ["count", "count_exact", "results"]
        return paginated
