"""DATABASE_URL turns into Django's DATABASES entry the way docs/operations.md says."""

from __future__ import annotations

from controlplane.settings import database_from_url


def test_a_postgres_url_gives_the_project_backend_with_health_checks_and_typed_options():
    db = database_from_url(
        "postgres://assay:s%40cret@db.internal:6432/assay?sslmode=require&server_side_binding=true&prepare_threshold=5"
    )
    assert db["ENGINE"] == "apps.core.fastpath.postgresql"
    assert (db["USER"], db["PASSWORD"], db["HOST"], db["PORT"], db["NAME"]) == (
        "assay",
        "s@cret",
        "db.internal",
        "6432",
        "assay",
    )
    assert db["CONN_HEALTH_CHECKS"] is True
    # psycopg and Django need real booleans and integers, not the strings of the URL
    assert db["OPTIONS"] == {"sslmode": "require", "server_side_binding": True, "prepare_threshold": 5}


def test_health_checks_can_be_turned_off(monkeypatch):
    monkeypatch.setenv("DATABASE_CONN_HEALTH_CHECKS", "0")
    assert database_from_url("postgres://postgres@127.0.0.1/assay")["CONN_HEALTH_CHECKS"] is False
