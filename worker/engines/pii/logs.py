"""Keep scanned values out of the worker's log: presidio's and spaCy's loggers, redacted.

presidio logs the text it was given in some of its messages: its IBAN recognizer logs
``Failed to validate text <the candidate>`` at ERROR when a value does not compute (a letter
outside A-Z that matches its case-insensitive pattern, such as the Kelvin sign), and its
context enhancer logs the words around a finding at DEBUG. A dataset's cells are personal data,
so these libraries' records keep their level, logger and source line (an operator still sees
that something happened, and where) but lose their message, arguments and traceback.

``redact_library_logs()`` is called whenever the PII engine is imported, before presidio or
spaCy is, and is idempotent.
"""

from __future__ import annotations

import logging

# The loggers of the libraries that see cell values. presidio logs under its distribution names;
# spaCy and its thinc backend under their package names.
LIBRARY_LOGGERS = ("presidio-analyzer", "presidio-anonymizer", "presidio_analyzer", "presidio_anonymizer", "spacy")
WITHHELD = "message withheld: it may quote values from the scanned data"


class WithholdValues(logging.Filter):
    """Replace a library record's message with its origin (module, function, line); drop args and traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        where = f"{record.module}.{record.funcName} line {record.lineno}"
        record.msg = f"{record.levelname.lower()} in {where} ({WITHHELD})"
        record.args = None
        record.exc_info = None
        record.exc_text = None
        record.stack_info = None
        return True


_FILTER = WithholdValues()


def redact_library_logs(level: int = logging.WARNING) -> None:
    """Redact every record of the libraries that see scanned values, and drop those below ``level``.

    A logger's filter runs for records logged on that very logger, so each library logger (and
    any child it already has) gets the filter; records of a child created later are still cut to
    ``level`` by the parent's level, and presidio and spaCy log on the top-level names only.
    """
    names = list(LIBRARY_LOGGERS)
    names += [
        name
        for name in list(logging.root.manager.loggerDict)
        if any(name.startswith(f"{parent}.") for parent in LIBRARY_LOGGERS)
    ]
    for name in names:
        logger = logging.getLogger(name)
        if logger.level < level:
            logger.setLevel(level)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
