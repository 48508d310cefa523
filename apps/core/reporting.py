"""The error report shown (with ``DJANGO_DEBUG=1``) or mailed for an unhandled exception.

Django's own technical 500 page lists the settings, ``request.META`` (under Granian that holds the
whole process environment), cookies and every frame's local variables: a debug instance reachable
by anyone would hand out its secrets. This report names the exception, the request and the
traceback's code lines, and nothing else: no settings, no headers or environment, no variables.
"""

from __future__ import annotations

import traceback

from django.utils.html import escape
from django.views.debug import ExceptionReporter, SafeExceptionReporterFilter


class RevealNothingFilter(SafeExceptionReporterFilter):
    """Hides every setting, request parameter and local variable from any report that asks."""

    def get_safe_settings(self):
        return {}

    def get_safe_request_meta(self, request):
        return {}

    def get_post_parameters(self, request):
        return {}

    def get_traceback_frame_variables(self, request, tb_frame):
        return []

    def is_active(self, request):
        return True


class PlainExceptionReporter(ExceptionReporter):
    """The exception, the request line and the traceback: never settings, environment or variables."""

    def _summary(self) -> tuple[str, str, str]:
        title = "Report" if self.exc_type is None else self.exc_type.__name__
        message = str(self.exc_value) if self.exc_value is not None else ""
        request_line = f"{self.request.method} {self.request.path}" if self.request is not None else ""
        return title, message, request_line

    def _stack(self) -> str:
        if self.exc_value is None:
            return ""
        frames = traceback.extract_tb(self.tb) if self.tb is not None else []
        lines = traceback.format_list(frames)
        lines += traceback.format_exception_only(self.exc_type, self.exc_value)
        return "Traceback (most recent call last):\n" + "".join(lines)

    def get_traceback_text(self) -> str:
        title, message, request_line = self._summary()
        return f"{title}: {message}\n{request_line}\n\n{self._stack()}\n"

    def get_traceback_html(self) -> str:
        title, message, request_line = self._summary()
        return (
            '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Server error: '
            f"{escape(title)}</title></head><body><h1>{escape(title)}</h1><p>{escape(message)}</p>"
            f"<p><code>{escape(request_line)}</code></p><pre>{escape(self._stack())}</pre>"
            "<p>Shown because DJANGO_DEBUG is on. Settings, headers, environment and variables are never shown.</p>"
            "</body></html>"
        )
