"""Make audit_event append-only with database triggers (SQLite and PostgreSQL).

The triggers of the single-table trail, in which the sealer filled ``seq`` and
``hash`` with one UPDATE per event; frozen here as they were installed then.
Migration 0004 replaces them (``apps.audit.triggers``).
"""

from django.db import migrations

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


def _statements(vendor: str) -> list[str]:
    return {"sqlite": _sqlite_install, "postgresql": _postgres_install}[vendor]()


def install(apps, schema_editor):
    with schema_editor.connection.cursor() as cursor:
        for sql in _statements(schema_editor.connection.vendor):
            cursor.execute(sql)


def drop(apps, schema_editor):
    from apps.audit import triggers

    triggers.drop_old(schema_editor)


class Migration(migrations.Migration):
    dependencies = [("audit", "0001_initial")]
    operations = [migrations.RunPython(install, drop)]
