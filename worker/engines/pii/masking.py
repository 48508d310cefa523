"""Masked examples for reports, value fingerprints, and the scrub operators' text transforms.

A report never holds a raw value: examples are masked by ``mask_example`` so that a reader can
see what kind of value was found (``j***@g****.com``, ``**** **** **** 1111``, ``J*** S****``)
without learning it.
"""

from __future__ import annotations

import hashlib
import hmac

import regex as re

HASH_LENGTH = 16  # hex characters of HMAC-SHA256 kept in a hash token (64 bits)
_FINGERPRINT_KEY = b"assay.pii.v1"
_ALNUM = re.compile(r"[\p{L}\p{N}]")


def fingerprint(value: str) -> int:
    """A 64-bit keyed BLAKE2b of ``value``: orders samples and examples the same way in every chunk."""
    digest = hashlib.blake2b(value.encode("utf-8", "surrogatepass"), key=_FINGERPRINT_KEY, digest_size=8).digest()
    return int.from_bytes(digest, "big")


def _stars_keep_last(value: str, keep: int) -> str:
    """Every letter and digit becomes ``*`` except the last ``keep`` of them; separators stay."""
    positions = [m.start() for m in _ALNUM.finditer(value)]
    hidden = set(positions[: max(0, len(positions) - keep)])
    return "".join("*" if i in hidden else ch for i, ch in enumerate(value))


def _first_letter_per_word(value: str) -> str:
    """Each word keeps its first letter, every other letter and every digit becomes ``*``."""
    out, start_of_word = [], True
    for ch in value:
        if _ALNUM.match(ch):
            out.append(ch if start_of_word and not ch.isdigit() else "*")
            start_of_word = False
        else:
            out.append(ch)
            start_of_word = True
    return "".join(out)


def mask_example(value: str, entity_type: str) -> str:
    """``value`` masked for a report: enough shape to recognize the kind of value, never the value.

    E-mail: first letter of the local part and of the domain, the top-level domain
    (``j***@g****.com``); card, IBAN, SSN: all but the last four characters starred (the
    IBAN also keeps its country code); phone: all but the last two digits; IP: the first
    group; person, location, date and anything else: the first letter of each word, digits starred.
    """
    value = value.strip()
    if entity_type == "EMAIL_ADDRESS" and "@" in value:
        local, _, domain = value.rpartition("@")
        host, dot, tld = domain.rpartition(".")
        if not dot:
            host, tld = domain, ""
        masked_host = (host[:1] + "*" * max(len(host) - 1, 1)) if host else "*"
        return f"{local[:1]}***@{masked_host}{dot}{tld}"
    if entity_type in ("CREDIT_CARD", "US_SSN"):
        return _stars_keep_last(value, 4)
    if entity_type == "IBAN_CODE":
        return value[:2] + _stars_keep_last(value[2:], 4)
    if entity_type == "PHONE_NUMBER":
        return _stars_keep_last(value, 2)
    if entity_type == "IP_ADDRESS":
        sep = "." if "." in value else ":"
        head, _, rest = value.partition(sep)
        return head + sep + re.sub(r"[0-9a-fA-F]+", "*", rest)
    return _first_letter_per_word(value)


def mask_operator(value: str) -> str:
    """The ``mask`` scrub operator: every letter and digit but the last four becomes ``*``; separators stay."""
    return _stars_keep_last(value, 4)


def hash_token(value: str, salt: bytes) -> str:
    """The ``hash`` scrub operator: HMAC-SHA256(salt, value), hex, first ``HASH_LENGTH`` characters."""
    return hmac.new(salt, value.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()[:HASH_LENGTH]


def hash_int(value: int, salt: bytes) -> int:
    """The ``hash`` operator for an integer column: the HMAC's first 63 bits as a non-negative int64."""
    digest = hmac.new(salt, str(value).encode(), hashlib.sha256).digest()
    return int.from_bytes(digest[:8], "big") >> 1
