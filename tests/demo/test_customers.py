"""The synthetic customer table: deterministic, realistic values, and a truth list that matches the cells."""

import pyarrow.csv as pacsv
import pyarrow.json as pajson
import pyarrow.parquet as pq
import pytest

from apps.demo.customers import (
    COLUMN_ROLES,
    ENTITY_TYPES,
    TEXT_COLUMNS,
    column_schema,
    customer_table,
    iban_valid,
    luhn_valid,
    write_table,
)


def test_the_same_seed_gives_the_same_table_and_truth():
    # given / when
    a, truth_a = customer_table(300, seed=4)
    b, truth_b = customer_table(300, seed=4)
    c, _ = customer_table(300, seed=5)
    # then
    assert a.equals(b) and truth_a == truth_b
    assert not a.equals(c)
    assert a.column_names == list(COLUMN_ROLES)


def test_every_seeded_value_is_in_its_cell_and_valid():
    # given
    table, truth = customer_table(2000, seed=1)
    # when
    cells = {name: table.column(name).to_pylist() for name in table.column_names}
    # then
    for item in truth:
        assert item.entity_type in ENTITY_TYPES
        if item.column in TEXT_COLUMNS:
            assert item.value in cells[item.column][item.row]
        else:
            assert cells[item.column][item.row] == item.value
        if item.entity_type == "CREDIT_CARD":
            assert luhn_valid(item.value)
        if item.entity_type == "IBAN_CODE":
            assert iban_valid(item.value)
        if item.entity_type == "US_SSN":
            area = item.value[:3]
            assert area not in ("000", "666") and not area.startswith("9") and item.value != "078-05-1120"
        if item.entity_type == "PHONE_NUMBER":
            exchange = "".join(ch for ch in item.value if ch.isdigit())[-7:-4]
            assert exchange != "555" and exchange[1:] != "11"
    with_pii = {t.row for t in truth if t.column in TEXT_COLUMNS}
    assert 0.28 < len(with_pii) / table.num_rows < 0.4


@pytest.mark.parametrize("fmt", ["csv", "parquet", "jsonl"])
def test_the_table_writes_as_each_format(tmp_path, fmt):
    # given
    table, _ = customer_table(50, seed=2)
    # when
    path = write_table(table, tmp_path / f"customers.{fmt}")
    # then
    read = {"csv": pacsv.read_csv, "parquet": pq.read_table, "jsonl": pajson.read_json}[fmt](path)
    assert read.num_rows == 50
    assert read.column("email").to_pylist() == table.column("email").to_pylist()
    assert [c["name"] for c in column_schema()] == table.column_names
