"""The Tableau workbook against the warehouse it reads.

dashboards/streaming_warehouse.twb is read as XML (the checked-in file, not its generator):
every table of a datasource relation and every column of its metadata records, column
declarations and worksheet dependencies must exist in a built warehouse with a type Tableau
can read as the declared datatype, and the reporting role must be able to select it. So a
model change that breaks a dashboard fails here. The last tests break copies of the workbook
(a renamed column, a changed type, a missing table) and expect the check to say so.

The database (3,000 generated sessions, dbt models, ab analyze, train when present) is shared
with the other consumer tests of the session: python_jobs.report_demo.shared.
"""

from __future__ import annotations

import importlib.util
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pandas as pd
import pytest

from python_jobs import config, db, report_demo

WORKBOOK = config.ROOT / "dashboards" / "streaming_warehouse.twb"
GENERATOR = config.ROOT / "dashboards" / "build_workbook.py"

# Tableau datatype -> PostgreSQL types (information_schema.columns.data_type) it reads as such
COMPATIBLE = {
    "string": {"text", "character varying", "character"},
    "integer": {"bigint", "integer", "smallint"},
    "real": {"double precision", "real", "numeric", "bigint", "integer", "smallint"},
    "date": {"date"},
    "datetime": {"timestamp without time zone", "timestamp with time zone"},
    "boolean": {"boolean"},
}
# metadata-record remote-type codes Tableau writes for PostgreSQL columns
REMOTE_TYPES = {"130": "string", "129": "string", "20": "integer", "3": "integer",
                "2": "integer", "5": "real", "4": "real", "131": "real", "7": "date",
                "135": "datetime", "11": "boolean"}
INSTANCE = re.compile(r"\[(?P<ds>federated\.[^\]]+)\]\.\[(?P<agg>[a-z]+):(?P<col>[^:\]]+):"
                      r"(?P<suffix>[a-z]+)\]")


def workbook_references(path: Path) -> tuple[dict[tuple[str, str], dict[str, str]], list[str]]:
    """({(schema, table): {column: tableau datatype}}, structural problems) of a workbook."""
    root = ET.parse(path).getroot()
    tables: dict[tuple[str, str], dict[str, str]] = {}
    problems: list[str] = []
    calculated: dict[str, set[str]] = {}
    declared: dict[str, dict[str, str]] = {}
    for ds in root.iter("datasource"):
        if ds.find("connection") is None:  # a worksheet's reference, not a definition
            continue
        name = ds.get("name")
        relation = ds.find("./connection/relation")
        match = re.fullmatch(r"\[(\w+)\]\.\[(\w+)\]", relation.get("table", ""))
        if not match:
            problems.append(f"{name}: relation table {relation.get('table')!r} is not "
                            "[schema].[table]")
            continue
        key = (match.group(1), match.group(2))
        columns = tables.setdefault(key, {})
        for rec in ds.iterfind("./connection/metadata-records/metadata-record[@class='column']"):
            column = rec.findtext("remote-name")
            columns[column] = REMOTE_TYPES.get(rec.findtext("remote-type"), "unknown")
            if rec.findtext("local-type") != columns[column]:
                problems.append(f"{name}.{column}: remote-type and local-type disagree")
        calculated[name] = set()
        declared[name] = {}
        for col in ds.iterfind("column"):
            column = col.get("name").strip("[]")
            declared[name][column] = col.get("datatype")
            if col.find("calculation") is not None:
                calculated[name].add(column)
                for ref in re.findall(r"\[([^\]]+)\]", col.find("calculation").get("formula")):
                    if ref not in columns:
                        problems.append(f"{name}: calculation {column} reads unknown [{ref}]")
            elif column not in columns:
                problems.append(f"{name}: column {column} has no metadata record")
            elif columns[column] != col.get("datatype"):
                problems.append(f"{name}.{column}: declared {col.get('datatype')}, "
                                f"metadata {columns[column]}")
    for ws in root.iter("worksheet"):
        sheet = ws.get("name")
        for deps in ws.iter("datasource-dependencies"):
            name = deps.get("datasource")
            if name not in declared:
                problems.append(f"{sheet}: unknown datasource {name}")
                continue
            for col in deps.iterfind("column"):
                column = col.get("name").strip("[]")
                if declared[name].get(column) != col.get("datatype"):
                    problems.append(f"{sheet}: {column} is not a {col.get('datatype')} column "
                                    f"of {name}")
        text = ET.tostring(ws, encoding="unicode").replace("&quot;", '"')
        for ref in INSTANCE.finditer(text):
            if ref["col"] not in declared.get(ref["ds"], {}):
                problems.append(f"{sheet}: field {ref['col']} is not in {ref['ds']}")
    sheets = {ws.get("name") for ws in root.iter("worksheet")}
    for dash in root.iter("dashboard"):
        for zone in dash.iter("zone"):
            if zone.get("name") and zone.get("type-v2") is None and zone.get("name") not in sheets:
                problems.append(f"dashboard {dash.get('name')}: no worksheet {zone.get('name')}")
    return tables, problems


def database_problems(tables: dict[tuple[str, str], dict[str, str]],
                      catalog: pd.DataFrame) -> list[str]:
    """What the workbook reads that the warehouse (information_schema rows) lacks."""
    types = {(r.table_schema, r.table_name, r.column_name): r.data_type
             for r in catalog.itertuples(index=False)}
    present = {(s, t) for s, t, _c in types}
    problems = []
    for (schema, table), columns in tables.items():
        if (schema, table) not in present:
            problems.append(f"{schema}.{table}: no such table")
            continue
        for column, datatype in columns.items():
            actual = types.get((schema, table, column))
            if actual is None:
                problems.append(f"{schema}.{table}.{column}: no such column")
            elif actual not in COMPATIBLE.get(datatype, set()):
                problems.append(f"{schema}.{table}.{column}: {actual} is not a Tableau "
                                f"{datatype}")
    return problems


def _catalog(database: str, tables: dict[tuple[str, str], dict[str, str]]) -> pd.DataFrame:
    schemas = tuple(sorted({s for s, _t in tables}))
    with db.connect(database) as conn:
        return db.read_sql(conn, "select table_schema, table_name, column_name, data_type "
                                 "from information_schema.columns where table_schema in %s",
                           (schemas,))


@pytest.fixture(scope="module")
def warehouse_db(tmp_path_factory) -> str:
    return report_demo.shared(tmp_path_factory.getbasetemp())["database"]


def test_workbook_is_what_its_generator_writes():
    spec = importlib.util.spec_from_file_location("build_workbook", GENERATOR)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.build() == WORKBOOK.read_bytes(), \
        "rerun .venv/bin/python dashboards/build_workbook.py"


def test_workbook_structure_is_consistent():
    tables, problems = workbook_references(WORKBOOK)
    assert problems == []
    assert {t for _s, t in tables} >= {
        "fct_dau_mau", "fct_retention_cohorts", "fct_skip_rates", "fct_playlist_funnel",
        "fct_experiment_daily", "latest_experiment_results", "latest_srm_checks"}
    root = ET.parse(WORKBOOK).getroot()
    for conn in root.iter("connection"):
        if conn.get("class") == "postgres":
            assert (conn.get("server"), conn.get("port"), conn.get("dbname"),
                    conn.get("username")) == ("127.0.0.1", "54329", "warehouse", "reporter")
    dashboards = {d.get("name") for d in root.iter("dashboard")}
    assert dashboards == {"Engagement", "Retention", "Skip rates", "Playlist funnel",
                          "A/B monitor"}
    sheets = {w.get("name") for w in root.iter("worksheet")}
    assert {"DAU WAU MAU", "Retention curves", "Cohort heatmap", "Skip rate by genre",
            "Skip rate by hour", "Skip rate by segment", "Playlist funnel",
            "A/B forest plot", "A/B sample ratio"} <= sheets


def test_every_table_and_column_exists_with_a_compatible_type(warehouse_db):
    tables, _problems = workbook_references(WORKBOOK)
    assert database_problems(tables, _catalog(warehouse_db, tables)) == []


def test_the_reporting_role_can_read_every_table(warehouse_db):
    tables, _problems = workbook_references(WORKBOOK)
    with db.connect(warehouse_db) as conn:
        for schema, table in tables:
            allowed = db.read_sql(conn, "select has_schema_privilege(%s, %s, 'usage') and "
                                        "has_table_privilege(%s, %s, 'select') as ok",
                                  (config.REPORTING_ROLE, schema, config.REPORTING_ROLE,
                                   f"{schema}.{table}")).iloc[0, 0]
            assert allowed, f"{config.REPORTING_ROLE} cannot read {schema}.{table}"


def _broken_copy(tmp_path: Path, old: str, new: str) -> Path:
    text = WORKBOOK.read_text()
    assert old in text
    path = tmp_path / "broken.twb"
    path.write_text(text.replace(old, new))
    return path


@pytest.mark.parametrize(("old", "new", "expected"), [
    ("stickiness", "stickyness", "marts.fct_dau_mau.stickyness: no such column"),
    ("<remote-name>dau</remote-name>\n            <remote-type>20</remote-type>\n"
     "            <local-name>[dau]</local-name>\n            <parent-name>[fct_dau_mau]"
     "</parent-name>\n            <remote-alias>dau</remote-alias>\n            <ordinal>4"
     "</ordinal>\n            <local-type>integer</local-type>",
     "<remote-name>dau</remote-name>\n            <remote-type>7</remote-type>\n"
     "            <local-name>[dau]</local-name>\n            <parent-name>[fct_dau_mau]"
     "</parent-name>\n            <remote-alias>dau</remote-alias>\n            <ordinal>4"
     "</ordinal>\n            <local-type>date</local-type>",
     "marts.fct_dau_mau.dau: bigint is not a Tableau date"),
    ("[marts].[fct_skip_rates]", "[marts].[fct_skip_rate]", "marts.fct_skip_rate: no such"),
])
def test_the_check_fails_on_a_broken_copy(warehouse_db, tmp_path, old, new, expected):
    tables, _problems = workbook_references(_broken_copy(tmp_path, old, new))
    problems = database_problems(tables, _catalog(warehouse_db, tables))
    assert any(p.startswith(expected) for p in problems), problems


def test_the_check_fails_on_a_dangling_worksheet_field(tmp_path):
    broken = _broken_copy(tmp_path, "[avg:retention_rate:qk]", "[avg:retention_pct:qk]")
    _tables, problems = workbook_references(broken)
    assert any("retention_pct is not in" in p for p in problems), problems


def test_tableau_document_api_reads_the_workbook():
    """Tableau's own parser (tableaudocumentapi, a dev dependency) reads the workbook."""
    import tableaudocumentapi as api

    workbook = api.Workbook(str(WORKBOOK))
    assert len(workbook.worksheets) >= 10
    for datasource in workbook.datasources:
        conn = datasource.connections[0]
        assert (conn.dbclass, conn.server, conn.port, conn.username) == (
            "postgres", "127.0.0.1", "54329", "reporter")
        assert datasource.fields


def test_exposures_declare_every_dashboard_and_its_marts():
    """models/marts/_exposures.yml: one exposure per workbook dashboard, depending on every
    mart its worksheets read (ab tables count as fct_experiment_user_metrics)."""
    import yaml

    exposures = {e["label"]: e for e in yaml.safe_load(
        (config.ROOT / "models" / "marts" / "_exposures.yml").read_text())["exposures"]}
    root = ET.parse(WORKBOOK).getroot()
    tables = {ds.get("name"): re.sub(r"[\[\]]", "", ds.find("./connection/relation")
                                     .get("table")).split(".")
              for ds in root.iter("datasource") if ds.find("connection") is not None}
    for dash in root.iter("dashboard"):
        exposure = exposures.get(f"Tableau - {dash.get('name')}")
        assert exposure is not None, f"no exposure for dashboard {dash.get('name')}"
        sheets = {z.get("name") for z in dash.iter("zone") if z.get("type-v2") is None}
        needed = set()
        for ws in root.iter("worksheet"):
            if ws.get("name") in sheets:
                for deps in ws.iter("datasource-dependencies"):
                    schema, table = tables[deps.get("datasource")]
                    needed.add(table if schema == "marts" else "fct_experiment_user_metrics")
        declared = {re.fullmatch(r"ref\('(\w+)'\)", d).group(1) for d in exposure["depends_on"]}
        assert needed == declared, (dash.get("name"), needed, declared)
