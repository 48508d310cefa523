"""version_url() builds a version's path from a template; it must be what reverse() answers."""

from __future__ import annotations

from django.urls import reverse, set_script_prefix

from apps.registry.services.versions import version_url


def test_a_version_path_is_what_reverse_gives_under_any_script_prefix():
    cases = [("churn", 1), ("credit-scoring_v2", 12345), ("x", 987654321)]
    try:
        for prefix in ("/", "/assay/", "/with space/"):
            set_script_prefix(prefix)
            for name, number in cases:
                expected = reverse("api:registry-version-detail", kwargs={"name": name, "number": number})
                assert version_url(name, number) == expected, (prefix, name, number)
    finally:
        set_script_prefix("/")
