"""A Parquet file's columns and their types, read from its footer without pyarrow.

The web process checks an uploaded dataset's columns before it stores it (a missing declared
column is a 400 at once), but it never imports the worker's libraries (pyarrow among them): a
Parquet footer is a Thrift structure in the compact protocol, and its schema (the first fields of
``FileMetaData``) is all the check needs. The worker reads the whole file with pyarrow when it
verifies the dataset.

``read_schema(fh, size)`` returns the top-level columns in order, each with a type named as
pyarrow names it for the common cases (``int64``, ``double``, ``string``, ``bool``, ``date32[day]``,
``timestamp[us]``, ...) and by its physical type otherwise. A footer that does not parse is a
``FooterError``.
"""

from __future__ import annotations

import struct
from typing import IO

MAGIC = b"PAR1"
MAX_FOOTER = 64 << 20  # a footer larger than this is refused rather than read into memory

# Thrift compact protocol type ids.
_STOP, _TRUE, _FALSE, _BYTE, _I16, _I32, _I64, _DOUBLE, _BINARY, _LIST, _SET, _MAP, _STRUCT = range(13)

# Parquet physical types -> pyarrow's name for a column of that type without a logical type.
_PHYSICAL = {0: "bool", 1: "int32", 2: "int64", 3: "timestamp[ns]", 4: "float", 5: "double", 6: "binary"}
_UNITS = {1: "ms", 2: "us", 3: "ns"}  # TimeUnit union field ids: MILLIS, MICROS, NANOS


class FooterError(ValueError):
    """The bytes are not a readable Parquet footer."""


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def byte(self) -> int:
        if self.pos >= len(self.data):
            raise FooterError("the footer ends too early")
        value = self.data[self.pos]
        self.pos += 1
        return value

    def varint(self) -> int:
        shift = result = 0
        while True:
            b = self.byte()
            result |= (b & 0x7F) << shift
            if not b & 0x80:
                return result
            shift += 7
            if shift > 70:
                raise FooterError("a number in the footer is too long")

    def zigzag(self) -> int:
        n = self.varint()
        return (n >> 1) ^ -(n & 1)

    def binary(self) -> bytes:
        length = self.varint()
        if length > len(self.data) - self.pos:
            raise FooterError("a string runs past the footer")
        value = self.data[self.pos : self.pos + length]
        self.pos += length
        return value

    def fields(self):
        """Yield (field id, type) of a struct's fields until its STOP; the caller reads or skips each value."""
        last = 0
        while True:
            header = self.byte()
            kind = header & 0x0F
            if kind == _STOP:
                return
            delta = header >> 4
            last = last + delta if delta else self.zigzag()
            yield last, kind

    def list_header(self) -> tuple[int, int]:
        header = self.byte()
        size = header >> 4
        if size == 15:
            size = self.varint()
        return size, header & 0x0F

    def skip(self, kind: int, depth: int = 0) -> None:
        if depth > 64:
            raise FooterError("the footer nests too deeply")
        if kind in (_TRUE, _FALSE):
            return
        if kind == _BYTE:
            self.byte()
        elif kind in (_I16, _I32, _I64):
            self.varint()
        elif kind == _DOUBLE:
            self.pos += 8
        elif kind == _BINARY:
            self.binary()
        elif kind in (_LIST, _SET):
            size, inner = self.list_header()
            for _ in range(size):
                if inner in (_TRUE, _FALSE):
                    self.byte()  # a bool inside a list is a whole byte
                else:
                    self.skip(inner, depth + 1)
        elif kind == _MAP:
            size = self.varint()
            if size:
                kinds = self.byte()
                for _ in range(size):
                    self.skip(kinds >> 4, depth + 1)
                    self.skip(kinds & 0x0F, depth + 1)
        elif kind == _STRUCT:
            for _, inner in self.fields():
                self.skip(inner, depth + 1)
        else:
            raise FooterError(f"unknown Thrift type {kind} in the footer")


def _logical(reader: _Reader) -> tuple[int, dict]:
    """A LogicalType union: (which member, the member's fields that name a type)."""
    member, detail = 0, {}
    for fid, kind in reader.fields():
        member = fid
        if kind != _STRUCT:
            reader.skip(kind)
            continue
        for inner, inner_kind in reader.fields():
            if fid == 10 and inner == 1 and inner_kind == _BYTE:  # IntType.bitWidth
                detail["bits"] = reader.byte()
            elif fid == 10 and inner == 2 and inner_kind in (_TRUE, _FALSE):  # IntType.isSigned
                detail["signed"] = inner_kind == _TRUE
            elif fid == 8 and inner == 2 and inner_kind == _STRUCT:  # TimestampType.unit
                for unit, unit_kind in reader.fields():
                    detail["unit"] = _UNITS.get(unit, "us")
                    reader.skip(unit_kind)
            else:
                reader.skip(inner_kind)
    return member, detail


def _element(reader: _Reader) -> dict:
    element = {"type": None, "name": "", "children": 0, "converted": None, "logical": (0, {})}
    for fid, kind in reader.fields():
        if fid == 1 and kind == _I32:
            element["type"] = reader.zigzag()
        elif fid == 4 and kind == _BINARY:
            element["name"] = reader.binary().decode("utf-8", errors="replace")
        elif fid == 5 and kind == _I32:
            element["children"] = reader.zigzag()
        elif fid == 6 and kind == _I32:
            element["converted"] = reader.zigzag()
        elif fid == 10 and kind == _STRUCT:
            element["logical"] = _logical(reader)
        else:
            reader.skip(kind)
    return element


def _type_name(element: dict) -> str:
    member, detail = element["logical"]
    converted = element["converted"]
    if element["children"]:
        return {2: "map", 3: "list"}.get(member) or {1: "map", 3: "list"}.get(converted, "struct")
    if member in (1, 4, 12) or converted in (0, 4, 19):  # STRING, ENUM, JSON / UTF8, ENUM, JSON
        return "string"
    if member == 6 or converted == 6:
        return "date32[day]"
    if member == 8 or converted in (9, 10):
        unit = detail.get("unit") or ("ms" if converted == 9 else "us")
        return f"timestamp[{unit}]"
    if member == 5 or converted == 5:
        return "decimal"
    if member == 10 and "bits" in detail:
        return f"{'' if detail.get('signed', True) else 'u'}int{detail['bits']}"
    if element["type"] == 7:
        return "fixed_size_binary"
    return _PHYSICAL.get(element["type"], "unknown")


def read_schema(fh: IO[bytes], size: int) -> dict[str, str]:
    """The file's top-level columns, in order, with their types (``{"age": "int64", ...}``)."""
    return read_footer(fh, size)[0]


def read_footer(fh: IO[bytes], size: int) -> tuple[dict[str, str], int]:
    """The top-level columns with their types, and the uncompressed bytes the row groups declare.

    The second figure is the sum of every row group's ``total_byte_size`` (its column data before
    compression): what reading the file would inflate to, checked against the archive bounds.
    """
    if size < 12:
        raise FooterError("the file is too short to be Parquet")
    fh.seek(size - 8)
    tail = fh.read(8)
    if len(tail) != 8 or tail[4:] != MAGIC:
        raise FooterError("no PAR1 footer")
    length = struct.unpack("<I", tail[:4])[0]
    if length > min(MAX_FOOTER, size - 12):
        raise FooterError("the footer length is larger than the file")
    fh.seek(size - 8 - length)
    reader = _Reader(fh.read(length))
    elements: list[dict] | None = None
    uncompressed = 0
    for fid, kind in reader.fields():
        if fid == 2 and kind == _LIST:
            count, inner = reader.list_header()
            if inner != _STRUCT:
                raise FooterError("the footer's schema is not a list of elements")
            elements = [_element(reader) for _ in range(count)]
        elif fid == 4 and kind == _LIST:  # row_groups: list<RowGroup>
            count, inner = reader.list_header()
            if inner != _STRUCT:
                raise FooterError("the footer's row groups are not a list of structs")
            for _ in range(count):
                for group_fid, group_kind in reader.fields():
                    if group_fid == 2 and group_kind == _I64:  # RowGroup.total_byte_size
                        uncompressed += max(0, reader.zigzag())
                    else:
                        reader.skip(group_kind)
        else:
            reader.skip(kind)
    if not elements:
        raise FooterError("the footer holds no schema")
    columns: dict[str, str] = {}
    position = 1
    for _ in range(elements[0]["children"]):  # the root's children are the columns
        if position >= len(elements):
            raise FooterError("the schema ends before its last column")
        column = elements[position]
        columns[column["name"]] = _type_name(column)
        position += 1 + _descendants(elements, position)
    return columns, uncompressed


def _descendants(elements: list[dict], index: int) -> int:
    """How many schema elements below ``elements[index]`` (its whole subtree, depth first)."""
    total, pending = 0, elements[index]["children"]
    cursor = index + 1
    while pending:
        if cursor >= len(elements):
            raise FooterError("the schema ends inside a nested column")
        pending -= 1
        total += 1
        pending += elements[cursor]["children"]
        cursor += 1
    return total
