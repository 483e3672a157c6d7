"""The piccolo model (``support/hive_tables.py``) and the SQL migrations describe one schema.

Read from a freshly migrated database's catalog, for every table: the column set, each column's
exact type (PG enums by type name, with their labels), nullability, the primary key, every foreign
key (target table/column, ON DELETE, ON UPDATE), the unique constraints (columns and NULLS NOT
DISTINCT) and the check constraints' names. Each must equal what the piccolo class declares, and
every table of the public schema (daily ``activity`` partitions and ``schema_migrations`` aside)
must have a piccolo class. So a migration that changes a table without its class (or the reverse)
fails here.

A second test runs ``ddl_for`` (piccolo's own CREATE TABLE output) for every class in a scratch
schema and reads it back the same way: piccolo's DDL is valid and yields the declared model, with
only the documented differences (enum columns are TEXT; composite-PK tables get piccolo's ``id``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

import asyncpg
import pytest
from piccolo.columns import (
    JSONB,
    UUID,
    BigInt,
    BigSerial,
    Boolean,
    Column,
    ForeignKey,
    Integer,
    Serial,
    Text,
    Timestamptz,
    Varchar,
)
from piccolo.constraints import Check, Unique
from piccolo.table import Table

from support.hive_tables import COMPOSITE_PRIMARY_KEYS, PG_ENUMS, TABLES, ddl_for

# pg_constraint.confdeltype / confupdtype codes.
_FK_ACTIONS = {
    "a": "NO ACTION",
    "r": "RESTRICT",
    "c": "CASCADE",
    "n": "SET NULL",
    "d": "SET DEFAULT",
}

_ENUM_TYPE_NAMES: dict[type[Enum], str] = {enum: name for name, enum in PG_ENUMS.items()}


@dataclass
class TableShape:
    """What a table looks like, comparable between the piccolo model and the catalog."""

    columns: dict[str, tuple[str, bool]] = field(default_factory=dict)  # name -> (type, not null)
    primary_key: tuple[str, ...] = ()
    # column -> (target table, target column, on delete, on update)
    foreign_keys: dict[str, tuple[str, str, str, str]] = field(default_factory=dict)
    uniques: set[tuple[tuple[str, ...], bool]] = field(
        default_factory=set
    )  # (cols, nulls distinct)
    checks: set[str] = field(default_factory=set)


# --- the piccolo side -----------------------------------------------------------------------------


def _pg_type(column: Column, *, as_piccolo_ddl: bool) -> str:
    """The ``format_type`` the column must have in the database."""
    if isinstance(column, ForeignKey):
        target = column._foreign_key_meta.resolved_target_column
        if isinstance(target, BigSerial):
            return "bigint"
        if isinstance(target, Serial):
            return "integer"
        return _pg_type(target, as_piccolo_ddl=as_piccolo_ddl)
    if isinstance(column, Text) and column._meta.choices in _ENUM_TYPE_NAMES:
        return "text" if as_piccolo_ddl else _ENUM_TYPE_NAMES[column._meta.choices]
    if isinstance(column, Varchar):
        return f"character varying({column.length})"
    simple: list[tuple[type[Column], str]] = [
        (BigSerial, "bigint"),
        (Serial, "integer"),
        (BigInt, "bigint"),
        (Integer, "integer"),
        (UUID, "uuid"),
        (Text, "text"),
        (Boolean, "boolean"),
        (Timestamptz, "timestamp with time zone"),
        (JSONB, "jsonb"),
    ]
    for kind, pg_type in simple:
        if isinstance(column, kind):
            return pg_type
    raise AssertionError(f"no PG type known for piccolo column {column!r}")


def _model_shape(table: type[Table], *, as_piccolo_ddl: bool) -> TableShape:
    """The shape ``table`` declares: as the migrations must build it, or as ``ddl_for`` does."""
    composite = None if as_piccolo_ddl else COMPOSITE_PRIMARY_KEYS.get(table)
    shape = TableShape()
    for column in table._meta.columns:
        name = column._meta.db_column_name
        if composite is not None and column is table._meta.primary_key:
            continue  # piccolo's synthetic id; the database has the composite key instead
        shape.columns[name] = (
            _pg_type(column, as_piccolo_ddl=as_piccolo_ddl),
            not column._meta.null,
        )
        if column._meta.unique:
            shape.uniques.add(((name,), True))
        if isinstance(column, ForeignKey):
            meta = column._foreign_key_meta
            shape.foreign_keys[name] = (
                meta.resolved_references._meta.tablename,
                meta.resolved_target_column._meta.db_column_name,
                meta.on_delete.value,
                meta.on_update.value,
            )
    shape.primary_key = composite or (table._meta.primary_key._meta.db_column_name,)
    for constraint in table._meta.constraints:
        if isinstance(constraint, Unique):
            columns = tuple(
                c if isinstance(c, str) else c._meta.db_column_name for c in constraint.columns
            )
            shape.uniques.add((columns, constraint.nulls_distinct))
        elif isinstance(constraint, Check):
            shape.checks.add(constraint._meta.name)
        else:
            raise AssertionError(f"unhandled piccolo constraint {constraint!r}")
    return shape


# --- the catalog side -----------------------------------------------------------------------------

_TABLES_SQL = """
SELECT c.oid, c.relname
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') AND NOT c.relispartition
  AND c.relname <> 'schema_migrations'
"""

_COLUMNS_SQL = """
SELECT a.attname, format_type(a.atttypid, a.atttypmod) AS type, a.attnotnull
FROM pg_attribute a
WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped
"""

_CONSTRAINTS_SQL = """
SELECT con.contype::text AS contype, con.conname, con.confdeltype::text AS confdeltype,
       con.confupdtype::text AS confupdtype,
       ft.relname AS target_table, i.indnullsnotdistinct,
       ARRAY(SELECT a.attname FROM unnest(con.conkey) WITH ORDINALITY AS k(num, ord)
             JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.num
             ORDER BY k.ord) AS columns,
       ARRAY(SELECT a.attname FROM unnest(con.confkey) WITH ORDINALITY AS k(num, ord)
             JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.num
             ORDER BY k.ord) AS target_columns
FROM pg_constraint con
LEFT JOIN pg_class ft ON ft.oid = con.confrelid
LEFT JOIN pg_index i ON i.indexrelid = con.conindid
WHERE con.conrelid = $1 AND con.contype IN ('p', 'f', 'u', 'c')
"""


async def _catalog_shapes(conn: asyncpg.Connection, schema: str) -> dict[str, TableShape]:
    """Every table of ``schema`` (partitions and ``schema_migrations`` aside), as built."""
    shapes: dict[str, TableShape] = {}
    for table in await conn.fetch(_TABLES_SQL, schema):
        shape = TableShape()
        for col in await conn.fetch(_COLUMNS_SQL, table["oid"]):
            shape.columns[col["attname"]] = (col["type"], col["attnotnull"])
        for con in await conn.fetch(_CONSTRAINTS_SQL, table["oid"]):
            columns = tuple(con["columns"])
            if con["contype"] == "p":
                shape.primary_key = columns
            elif con["contype"] == "f":
                assert len(columns) == 1, f"{table['relname']}: multi-column FK {con['conname']}"
                shape.foreign_keys[columns[0]] = (
                    con["target_table"],
                    con["target_columns"][0],
                    _FK_ACTIONS[con["confdeltype"]],
                    _FK_ACTIONS[con["confupdtype"]],
                )
            elif con["contype"] == "u":
                shape.uniques.add((columns, not con["indnullsnotdistinct"]))
            else:
                shape.checks.add(con["conname"])
        shapes[table["relname"]] = shape
    return shapes


# --- tests ----------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_piccolo_tables_match_the_migrated_schema(hive_dsn: str) -> None:
    """Every piccolo class equals its migrated table, and every migrated table has a class."""
    conn = await asyncpg.connect(hive_dsn)
    try:
        catalog = await _catalog_shapes(conn, "public")
        enums = {
            row["typname"]: list(row["labels"])
            for row in await conn.fetch(
                "SELECT t.typname, array_agg(e.enumlabel ORDER BY e.enumsortorder) AS labels "
                "FROM pg_type t JOIN pg_enum e ON e.enumtypid = t.oid "
                "JOIN pg_namespace n ON n.oid = t.typnamespace "
                "WHERE n.nspname = 'public' GROUP BY t.typname"
            )
        }
    finally:
        await conn.close()

    modelled = {table._meta.tablename for table in TABLES}
    assert len(modelled) == len(TABLES), "two piccolo classes share a tablename"
    assert set(catalog) == modelled, (
        f"tables without a piccolo class: {sorted(set(catalog) - modelled)}; "
        f"piccolo classes without a table: {sorted(modelled - set(catalog))}"
    )
    # One comparison for all tables, so a failure lists every mismatching table at once.
    expected = {t._meta.tablename: _model_shape(t, as_piccolo_ddl=False) for t in TABLES}
    assert {name: catalog[name] for name in expected} == expected

    assert enums == {name: [m.value for m in enum] for name, enum in PG_ENUMS.items()}


@pytest.mark.asyncio
async def test_piccolo_ddl_builds_the_declared_tables(hive_dsn: str) -> None:
    """``ddl_for`` of every class, run in dependency order, builds exactly the declared model."""
    conn = await asyncpg.connect(hive_dsn)
    try:
        async with conn.transaction():
            await conn.execute("CREATE SCHEMA piccolo_ddl")
            # References in piccolo's DDL are unqualified: resolve them in the scratch schema.
            await conn.execute("SET LOCAL search_path TO piccolo_ddl, public")
            for table in TABLES:
                for statement in ddl_for(table):
                    await conn.execute(statement)
            built = await _catalog_shapes(conn, "piccolo_ddl")
            # Leave the fixture's database as migrated.
            await conn.execute("RESET search_path")
            await conn.execute("DROP SCHEMA piccolo_ddl CASCADE")
    finally:
        await conn.close()

    expected = {t._meta.tablename: _model_shape(t, as_piccolo_ddl=True) for t in TABLES}
    assert built == expected
