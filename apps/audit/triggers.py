"""Database triggers that keep the audit trail append-only, on SQLite and PostgreSQL.

- ``audit_event``: INSERT only. Every UPDATE and DELETE is refused (TRUNCATE too on
  PostgreSQL): an event is written once and never touched again, sealing included.
  Each insert puts the event's id on the sealer's work list (``audit_pending``).
- ``audit_seal``: INSERT only, likewise.
- ``audit_tree_node``: INSERT only (the stored Merkle subtree hashes, ``apps.audit.tree``);
  its triggers are installed once the table exists (migration 0006).
- ``audit_pending``: INSERT, and DELETE of an entry whose event has a seal (the
  sealer's step) or does not exist; UPDATE, an early DELETE (which would keep an
  event out of the chain) and TRUNCATE are refused.
"""

from __future__ import annotations

MESSAGE = "audit_event is append-only"
SEAL_MESSAGE = "audit_seal is append-only"
PENDING_MESSAGE = "audit_pending: an entry leaves only once its event is sealed"
TREE_MESSAGE = "audit_tree_node is append-only"
TREE_TABLE = "audit_tree_node"

# Older names, dropped by ``drop`` so that an upgrade from any earlier version starts clean.
_OLD_SQLITE = ("audit_event_no_update", "audit_event_no_delete")


def _sqlite_install() -> list[str]:
    return [
        f"""CREATE TRIGGER IF NOT EXISTS audit_event_no_update BEFORE UPDATE ON audit_event
        BEGIN SELECT RAISE(ABORT, '{MESSAGE}: UPDATE refused'); END""",
        f"""CREATE TRIGGER IF NOT EXISTS audit_event_no_delete BEFORE DELETE ON audit_event
        BEGIN SELECT RAISE(ABORT, '{MESSAGE}: DELETE refused'); END""",
        """CREATE TRIGGER IF NOT EXISTS audit_event_enqueue AFTER INSERT ON audit_event
        BEGIN INSERT INTO audit_pending (event_pk) VALUES (NEW.id); END""",
        f"""CREATE TRIGGER IF NOT EXISTS audit_seal_no_update BEFORE UPDATE ON audit_seal
        BEGIN SELECT RAISE(ABORT, '{SEAL_MESSAGE}: UPDATE refused'); END""",
        f"""CREATE TRIGGER IF NOT EXISTS audit_seal_no_delete BEFORE DELETE ON audit_seal
        BEGIN SELECT RAISE(ABORT, '{SEAL_MESSAGE}: DELETE refused'); END""",
        f"""CREATE TRIGGER IF NOT EXISTS audit_pending_no_update BEFORE UPDATE ON audit_pending
        BEGIN SELECT RAISE(ABORT, '{PENDING_MESSAGE}: UPDATE refused'); END""",
        f"""CREATE TRIGGER IF NOT EXISTS audit_pending_no_early_delete BEFORE DELETE ON audit_pending
        WHEN EXISTS (SELECT 1 FROM audit_event WHERE id = OLD.event_pk)
        AND NOT EXISTS (SELECT 1 FROM audit_seal WHERE event_pk = OLD.event_pk)
        BEGIN SELECT RAISE(ABORT, '{PENDING_MESSAGE}: the event has no seal'); END""",
    ]


def _sqlite_drop() -> list[str]:
    names = (
        *_OLD_SQLITE,
        "audit_event_enqueue",
        "audit_seal_no_update",
        "audit_seal_no_delete",
        "audit_pending_no_update",
        "audit_pending_no_early_delete",
    )
    return [f"DROP TRIGGER IF EXISTS {name}" for name in names]


def _postgres_install() -> list[str]:
    return [
        f"""CREATE OR REPLACE FUNCTION audit_event_guard() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION '{MESSAGE}: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
        END $$""",
        f"""CREATE OR REPLACE FUNCTION audit_seal_guard() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION '{SEAL_MESSAGE}: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
        END $$""",
        # Row-level: an event is usually inserted alone, and a row trigger's statement keeps its plan
        # (a statement trigger's transition table is planned again on every call).
        """CREATE OR REPLACE FUNCTION audit_event_enqueue() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO audit_pending (event_pk) VALUES (NEW.id);
            RETURN NULL;
        END $$""",
        f"""CREATE OR REPLACE FUNCTION audit_pending_guard() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP = 'DELETE' AND (
                EXISTS (SELECT 1 FROM audit_seal WHERE event_pk = OLD.event_pk)
                OR NOT EXISTS (SELECT 1 FROM audit_event WHERE id = OLD.event_pk)
            ) THEN
                RETURN OLD;
            END IF;
            RAISE EXCEPTION '{PENDING_MESSAGE}: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
        END $$""",
        "DROP TRIGGER IF EXISTS audit_event_append_only ON audit_event",
        """CREATE TRIGGER audit_event_append_only BEFORE UPDATE OR DELETE ON audit_event
        FOR EACH ROW EXECUTE FUNCTION audit_event_guard()""",
        "DROP TRIGGER IF EXISTS audit_event_no_truncate ON audit_event",
        """CREATE TRIGGER audit_event_no_truncate BEFORE TRUNCATE ON audit_event
        FOR EACH STATEMENT EXECUTE FUNCTION audit_event_guard()""",
        "DROP TRIGGER IF EXISTS audit_event_enqueue ON audit_event",
        """CREATE TRIGGER audit_event_enqueue AFTER INSERT ON audit_event
        FOR EACH ROW EXECUTE FUNCTION audit_event_enqueue()""",
        "DROP TRIGGER IF EXISTS audit_seal_append_only ON audit_seal",
        """CREATE TRIGGER audit_seal_append_only BEFORE UPDATE OR DELETE ON audit_seal
        FOR EACH ROW EXECUTE FUNCTION audit_seal_guard()""",
        "DROP TRIGGER IF EXISTS audit_seal_no_truncate ON audit_seal",
        """CREATE TRIGGER audit_seal_no_truncate BEFORE TRUNCATE ON audit_seal
        FOR EACH STATEMENT EXECUTE FUNCTION audit_seal_guard()""",
        "DROP TRIGGER IF EXISTS audit_pending_guard ON audit_pending",
        """CREATE TRIGGER audit_pending_guard BEFORE UPDATE OR DELETE ON audit_pending
        FOR EACH ROW EXECUTE FUNCTION audit_pending_guard()""",
        "DROP TRIGGER IF EXISTS audit_pending_no_truncate ON audit_pending",
        """CREATE TRIGGER audit_pending_no_truncate BEFORE TRUNCATE ON audit_pending
        FOR EACH STATEMENT EXECUTE FUNCTION audit_pending_guard()""",
    ]


def _postgres_drop() -> list[str]:
    return [
        "DROP TRIGGER IF EXISTS audit_event_append_only ON audit_event",
        "DROP TRIGGER IF EXISTS audit_event_no_truncate ON audit_event",
        "DROP TRIGGER IF EXISTS audit_event_enqueue ON audit_event",
        "DROP TRIGGER IF EXISTS audit_seal_append_only ON audit_seal",
        "DROP TRIGGER IF EXISTS audit_seal_no_truncate ON audit_seal",
        "DROP TRIGGER IF EXISTS audit_pending_guard ON audit_pending",
        "DROP TRIGGER IF EXISTS audit_pending_no_truncate ON audit_pending",
        "DROP FUNCTION IF EXISTS audit_event_guard()",
        "DROP FUNCTION IF EXISTS audit_seal_guard()",
        "DROP FUNCTION IF EXISTS audit_event_enqueue()",
        "DROP FUNCTION IF EXISTS audit_pending_guard()",
    ]


def _postgres_drop_old() -> list[str]:
    return [
        "DROP TRIGGER IF EXISTS audit_event_append_only ON audit_event",
        "DROP TRIGGER IF EXISTS audit_event_no_truncate ON audit_event",
        "DROP FUNCTION IF EXISTS audit_event_guard()",
    ]


def _tree_install(vendor: str) -> list[str]:
    if vendor == "sqlite":
        return [
            f"""CREATE TRIGGER IF NOT EXISTS audit_tree_node_no_update BEFORE UPDATE ON audit_tree_node
            BEGIN SELECT RAISE(ABORT, '{TREE_MESSAGE}: UPDATE refused'); END""",
            f"""CREATE TRIGGER IF NOT EXISTS audit_tree_node_no_delete BEFORE DELETE ON audit_tree_node
            BEGIN SELECT RAISE(ABORT, '{TREE_MESSAGE}: DELETE refused'); END""",
        ]
    return [
        f"""CREATE OR REPLACE FUNCTION audit_tree_node_guard() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION '{TREE_MESSAGE}: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
        END $$""",
        "DROP TRIGGER IF EXISTS audit_tree_node_append_only ON audit_tree_node",
        """CREATE TRIGGER audit_tree_node_append_only BEFORE UPDATE OR DELETE ON audit_tree_node
        FOR EACH ROW EXECUTE FUNCTION audit_tree_node_guard()""",
        "DROP TRIGGER IF EXISTS audit_tree_node_no_truncate ON audit_tree_node",
        """CREATE TRIGGER audit_tree_node_no_truncate BEFORE TRUNCATE ON audit_tree_node
        FOR EACH STATEMENT EXECUTE FUNCTION audit_tree_node_guard()""",
    ]


def _tree_drop(vendor: str) -> list[str]:
    if vendor == "sqlite":
        return ["DROP TRIGGER IF EXISTS audit_tree_node_no_update", "DROP TRIGGER IF EXISTS audit_tree_node_no_delete"]
    return [
        "DROP TRIGGER IF EXISTS audit_tree_node_append_only ON audit_tree_node",
        "DROP TRIGGER IF EXISTS audit_tree_node_no_truncate ON audit_tree_node",
        "DROP FUNCTION IF EXISTS audit_tree_node_guard()",
    ]


def install_statements(vendor: str, *, tree: bool = True) -> list[str]:
    """The triggers' statements; ``tree``: also those of the tree's table (which exists from migration 0006)."""
    out = {"sqlite": _sqlite_install, "postgresql": _postgres_install}[vendor]()
    return out + _tree_install(vendor) if tree else out


def drop_statements(vendor: str, *, tree: bool = True) -> list[str]:
    out = {"sqlite": _sqlite_drop, "postgresql": _postgres_drop}[vendor]()
    return out + _tree_drop(vendor) if tree else out


def drop_old_statements(vendor: str) -> list[str]:
    """The triggers of the single-table trail (events sealed by UPDATE), before the seal table."""
    return {"sqlite": lambda: [f"DROP TRIGGER IF EXISTS {n}" for n in _OLD_SQLITE], "postgresql": _postgres_drop_old}[
        vendor
    ]()


def _connection_of(schema_editor_or_connection):
    # A schema editor has .connection (the wrapper); a wrapper's own .connection is the raw DB-API one.
    if hasattr(schema_editor_or_connection, "vendor"):
        return schema_editor_or_connection
    return schema_editor_or_connection.connection


def _has_tree(connection) -> bool:
    with connection.cursor() as cursor:
        return TREE_TABLE in connection.introspection.table_names(cursor)


def install(schema_editor_or_connection) -> None:
    """Install the triggers of every audit table there is (an older migration runs before the tree's table)."""
    connection = _connection_of(schema_editor_or_connection)
    statements = install_statements(connection.vendor, tree=_has_tree(connection))
    with connection.cursor() as cursor:
        for sql in statements:
            cursor.execute(sql)


def drop(schema_editor_or_connection) -> None:
    connection = _connection_of(schema_editor_or_connection)
    statements = drop_statements(connection.vendor, tree=_has_tree(connection))
    with connection.cursor() as cursor:
        for sql in statements:
            cursor.execute(sql)


def drop_old(schema_editor_or_connection) -> None:
    connection = _connection_of(schema_editor_or_connection)
    with connection.cursor() as cursor:
        for sql in drop_old_statements(connection.vendor):
            cursor.execute(sql)


def drop_tree(schema_editor_or_connection) -> None:
    """Drop the tree table's triggers alone (migration 0006 reversed)."""
    connection = _connection_of(schema_editor_or_connection)
    with connection.cursor() as cursor:
        for sql in _tree_drop(connection.vendor):
            cursor.execute(sql)
