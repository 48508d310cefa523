"""Database triggers that make ``audit_event`` append-only, on SQLite and PostgreSQL.

Allowed: INSERT; and one UPDATE per row, the sealer's, which only fills
``seq``, ``prev_hash``, ``hash`` and ``sealed_at`` on a row whose ``seq`` is
still NULL. Refused: any other UPDATE, every DELETE, TRUNCATE (PostgreSQL).
"""

from __future__ import annotations

# Every column the sealer must leave untouched.
IMMUTABLE_COLUMNS = (
    "id",
    "event_id",
    "occurred_at",
    "actor_type",
    "actor_id",
    "actor_name",
    "token_id",
    "source",
    "client_ip",
    "request_id",
    "action",
    "outcome",
    "target_type",
    "target_id",
    "target_name",
    "related_type",
    "related_id",
    "before",
    "after",
    "reason",
    "artifact_sha256",
)

MESSAGE = "audit_event is append-only"


def _sqlite_install() -> list[str]:
    changed = " OR ".join(f"NEW.{c} IS NOT OLD.{c}" for c in IMMUTABLE_COLUMNS)
    return [
        f"""CREATE TRIGGER IF NOT EXISTS audit_event_no_update BEFORE UPDATE ON audit_event
        WHEN OLD.seq IS NOT NULL OR NEW.seq IS NULL OR NEW.hash = '' OR {changed}
        BEGIN SELECT RAISE(ABORT, '{MESSAGE}: only the sealer may fill seq and hash, once'); END""",
        f"""CREATE TRIGGER IF NOT EXISTS audit_event_no_delete BEFORE DELETE ON audit_event
        BEGIN SELECT RAISE(ABORT, '{MESSAGE}: DELETE refused'); END""",
    ]


def _sqlite_drop() -> list[str]:
    return ["DROP TRIGGER IF EXISTS audit_event_no_update", "DROP TRIGGER IF EXISTS audit_event_no_delete"]


def _postgres_install() -> list[str]:
    changed = " OR ".join(f"NEW.{c} IS DISTINCT FROM OLD.{c}" for c in IMMUTABLE_COLUMNS)
    return [
        f"""CREATE OR REPLACE FUNCTION audit_event_guard() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP = 'UPDATE' THEN
                IF OLD.seq IS NULL AND NEW.seq IS NOT NULL AND NEW.hash <> '' AND NOT ({changed}) THEN
                    RETURN NEW;
                END IF;
                RAISE EXCEPTION '{MESSAGE}: only the sealer may fill seq and hash, once'
                    USING ERRCODE = 'insufficient_privilege';
            END IF;
            RAISE EXCEPTION '{MESSAGE}: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
        END $$""",
        "DROP TRIGGER IF EXISTS audit_event_append_only ON audit_event",
        """CREATE TRIGGER audit_event_append_only BEFORE UPDATE OR DELETE ON audit_event
        FOR EACH ROW EXECUTE FUNCTION audit_event_guard()""",
        "DROP TRIGGER IF EXISTS audit_event_no_truncate ON audit_event",
        """CREATE TRIGGER audit_event_no_truncate BEFORE TRUNCATE ON audit_event
        FOR EACH STATEMENT EXECUTE FUNCTION audit_event_guard()""",
    ]


def _postgres_drop() -> list[str]:
    return [
        "DROP TRIGGER IF EXISTS audit_event_append_only ON audit_event",
        "DROP TRIGGER IF EXISTS audit_event_no_truncate ON audit_event",
        "DROP FUNCTION IF EXISTS audit_event_guard()",
    ]


def install_statements(vendor: str) -> list[str]:
    return {"sqlite": _sqlite_install, "postgresql": _postgres_install}[vendor]()


def drop_statements(vendor: str) -> list[str]:
    return {"sqlite": _sqlite_drop, "postgresql": _postgres_drop}[vendor]()


def _connection_of(schema_editor_or_connection):
    # A schema editor has .connection (the wrapper); a wrapper's own .connection is the raw DB-API one.
    if hasattr(schema_editor_or_connection, "vendor"):
        return schema_editor_or_connection
    return schema_editor_or_connection.connection


def install(schema_editor_or_connection) -> None:
    connection = _connection_of(schema_editor_or_connection)
    with connection.cursor() as cursor:
        for sql in install_statements(connection.vendor):
            cursor.execute(sql)


def drop(schema_editor_or_connection) -> None:
    connection = _connection_of(schema_editor_or_connection)
    with connection.cursor() as cursor:
        for sql in drop_statements(connection.vendor):
            cursor.execute(sql)
