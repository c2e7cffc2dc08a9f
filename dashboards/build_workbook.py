"""Write dashboards/streaming_warehouse.twb from the spec below (stdlib only).

    .venv/bin/python dashboards/build_workbook.py [--out PATH] [--check]

The workbook is generated, not hand-edited, so that every datasource lists the same columns
in its metadata records, its column declarations and the worksheets' dependencies, and so
that the ids are stable (a rerun gives the same bytes). --check exits 1 when the checked-in
file differs from what the spec produces. tests/python/test_workbook.py checks every table and
column the workbook references against a built warehouse.

Connection defaults are the embedded server's (127.0.0.1:54329, database warehouse, user
reporter); dashboards/README.md explains how to point it elsewhere.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

OUT = Path(__file__).with_name("streaming_warehouse.twb")
USER_NS = "http://www.tableausoftware.com/xml/user"
SERVER, PORT, DBNAME, USERNAME = "127.0.0.1", "54329", "warehouse", "reporter"

# Tableau datatype -> (metadata remote-type code, local-type, default role, default type)
TYPES = {
    "string": ("130", "string", "dimension", "nominal"),
    "integer": ("20", "integer", "measure", "quantitative"),
    "real": ("5", "real", "measure", "quantitative"),
    "date": ("7", "date", "dimension", "ordinal"),
    "datetime": ("135", "datetime", "dimension", "ordinal"),
    "boolean": ("11", "boolean", "dimension", "nominal"),
}
DIM = "dimension"  # third tuple item: an integer column used as a discrete dimension

# key: (caption, schema, table, [(column, tableau datatype[, role override])])
DATASOURCES: dict[str, tuple[str, str, str, list[tuple[str, ...]]]] = {
    "dau_mau": ("DAU / MAU", "marts", "fct_dau_mau", [
        ("activity_date", "date"), ("segment_type", "string"), ("segment_value", "string"),
        ("dau", "integer"), ("wau", "integer"), ("mau", "integer"),
        ("stickiness", "real"), ("is_full_window", "boolean")]),
    "retention": ("Retention cohorts", "marts", "fct_retention_cohorts", [
        ("cohort_grain", "string"), ("cohort_start_date", "date"),
        ("segment_type", "string"), ("segment_value", "string"), ("period_unit", "string"),
        ("period_number", "integer", DIM), ("cohort_user_count", "integer"),
        ("active_user_count", "integer"), ("retention_rate", "real"),
        ("unbounded_retention_rate", "real")]),
    "skip_rates": ("Skip rates", "marts", "fct_skip_rates", [
        ("dimension", "string"), ("dimension_value", "string"), ("play_count", "integer"),
        ("skip_count", "integer"), ("skip_rate", "real")]),
    "funnel": ("Playlist funnel", "marts", "fct_playlist_funnel", [
        ("segment_type", "string"), ("segment_value", "string"),
        ("stage_number", "integer", DIM), ("stage_name", "string"), ("run_count", "integer"),
        ("conversion_from_start_rate", "real"), ("conversion_from_previous_rate", "real"),
        ("drop_off_from_previous_rate", "real")]),
    "dropoff": ("Playlist drop-off", "marts", "fct_playlist_dropoff", [
        ("segment_type", "string"), ("segment_value", "string"),
        ("from_track_ordinal", "integer", DIM), ("position_band", "string"),
        ("at_risk_run_count", "integer"), ("drop_off_rate", "real"),
        ("is_largest_drop_off_step", "boolean")]),
    "experiment_daily": ("Experiment daily", "marts", "fct_experiment_daily", [
        ("experiment_id", "string"), ("variant", "string"), ("activity_date", "date"),
        ("enrolled_user_count", "integer"), ("active_user_count", "integer"),
        ("play_count", "integer"), ("skip_count", "integer"), ("skip_rate", "real"),
        ("listening_minutes", "real")]),
    "ab_results": ("A/B results (latest run)", "ab", "latest_experiment_results", [
        ("experiment_id", "string"), ("metric", "string"), ("method", "string"),
        ("variant", "string"), ("is_control", "boolean"), ("n", "integer"),
        ("value", "real"), ("effect", "real"), ("ci_low", "real"), ("ci_high", "real"),
        ("relative_effect", "real"), ("relative_ci_low", "real"),
        ("relative_ci_high", "real"), ("p_value", "real"), ("p_value_holm", "real"),
        ("is_significant", "boolean"), ("run_at", "datetime")]),
    "ab_srm": ("A/B sample-ratio checks (latest run)", "ab", "latest_srm_checks", [
        ("experiment_id", "string"), ("variant", "string"), ("allocation_weight", "real"),
        ("observed_users", "integer"), ("expected_users", "real"), ("p_value", "real"),
        ("is_mismatch", "boolean")]),
}

# Calculated fields: key -> [(name, caption, datatype, role, type, formula)]
CALCULATIONS: dict[str, list[tuple[str, str, str, str, str, str]]] = {
    "ab_results": [
        ("Calculation_significance", "Significance", "string", "dimension", "nominal",
         'IF [is_significant] THEN "significant (Holm)" ELSE "not significant" END'),
        ("Calculation_relative_ci_width", "Relative CI width", "real", "measure",
         "quantitative", "[relative_ci_high] - [relative_ci_low]"),
    ],
}

# A field on a shelf: (aggregation, column). aggregation: none (discrete dimension), sum,
# avg, tdy (date truncated to the day, continuous).
DERIVATIONS = {"none": "None", "sum": "Sum", "avg": "Avg", "tdy": "Day-Trunc"}

# name: dict(ds, mark, rows, cols, filters {column: [values]}, encodings {channel: field})
WORKSHEETS: dict[str, dict] = {
    "DAU WAU MAU": dict(
        ds="dau_mau", mark="Line", cols=[("tdy", "activity_date")],
        rows=[("sum", "dau"), ("sum", "wau"), ("sum", "mau")],
        filters={"segment_type": ["overall"]}),
    "Stickiness": dict(
        ds="dau_mau", mark="Line", cols=[("tdy", "activity_date")],
        rows=[("avg", "stickiness")], filters={"segment_type": ["overall", "tier"]},
        encodings={"color": ("none", "segment_value")}),
    "Retention curves": dict(
        ds="retention", mark="Line", cols=[("none", "period_number")],
        rows=[("avg", "retention_rate")],
        filters={"cohort_grain": ["week"], "period_unit": ["week"], "segment_type": ["all"]},
        encodings={"color": ("none", "cohort_start_date")}),
    "Cohort heatmap": dict(
        ds="retention", mark="Square", rows=[("none", "cohort_start_date")],
        cols=[("none", "period_number")],
        filters={"cohort_grain": ["week"], "period_unit": ["week"], "segment_type": ["all"]},
        encodings={"color": ("avg", "retention_rate"), "text": ("avg", "retention_rate")}),
    "Skip rate by genre": dict(
        ds="skip_rates", mark="Bar", rows=[("none", "dimension_value")],
        cols=[("avg", "skip_rate")], filters={"dimension": ["genre"]},
        encodings={"tooltip": ("sum", "play_count")}),
    "Skip rate by hour": dict(
        ds="skip_rates", mark="Bar", cols=[("none", "dimension_value")],
        rows=[("avg", "skip_rate")], filters={"dimension": ["hour_of_day"]},
        encodings={"tooltip": ("sum", "play_count")}),
    "Skip rate by segment": dict(
        ds="skip_rates", mark="Bar", rows=[("none", "dimension"), ("none", "dimension_value")],
        cols=[("avg", "skip_rate")],
        filters={"dimension": ["tier", "context_type", "position_band", "weekday"]},
        encodings={"tooltip": ("sum", "skip_count")}),
    "Playlist funnel": dict(
        ds="funnel", mark="Bar", rows=[("none", "stage_number"), ("none", "stage_name")],
        cols=[("sum", "run_count")], filters={"segment_type": ["all"]},
        encodings={"text": ("avg", "conversion_from_start_rate"),
                   "tooltip": ("avg", "drop_off_from_previous_rate")}),
    "Playlist drop-off by track": dict(
        ds="dropoff", mark="Bar", cols=[("none", "from_track_ordinal")],
        rows=[("avg", "drop_off_rate")], filters={"segment_type": ["all"]},
        encodings={"color": ("none", "is_largest_drop_off_step"),
                   "tooltip": ("sum", "at_risk_run_count")}),
    "A/B enrollment": dict(
        ds="experiment_daily", mark="Line",
        rows=[("none", "experiment_id"), ("sum", "enrolled_user_count")],
        cols=[("tdy", "activity_date")], encodings={"color": ("none", "variant")}),
    "A/B daily skip rate": dict(
        ds="experiment_daily", mark="Line",
        rows=[("none", "experiment_id"), ("avg", "skip_rate")],
        cols=[("tdy", "activity_date")], encodings={"color": ("none", "variant"),
                                                     "size": ("sum", "play_count")}),
    "A/B forest plot": dict(
        ds="ab_results", mark="Circle",
        rows=[("none", "experiment_id"), ("none", "metric"), ("none", "variant")],
        cols=[("avg", "relative_effect")],
        filters={"is_control": ["false"],
                 "method": ["welch_t", "ratio_delta_z", "two_proportion_z"]},
        encodings={"color": ("none", "Calculation_significance"),
                   "tooltip": ("avg", "p_value_holm"),
                   "lod": ("avg", "Calculation_relative_ci_width")}),
    "A/B results table": dict(
        ds="ab_results", mark="Text",
        rows=[("none", "experiment_id"), ("none", "metric"), ("none", "method"),
              ("none", "variant")],
        cols=[], encodings={"text": ("avg", "effect"), "tooltip": ("avg", "ci_low"),
                            "lod": ("avg", "ci_high")},
        filters={"is_control": ["false"]}),
    "A/B sample ratio": dict(
        ds="ab_srm", mark="Text", rows=[("none", "experiment_id"), ("none", "variant")],
        cols=[], encodings={"text": ("sum", "observed_users"),
                            "tooltip": ("avg", "expected_users"),
                            "color": ("none", "is_mismatch"), "lod": ("avg", "p_value")}),
}

DASHBOARDS: dict[str, list[str]] = {
    "Engagement": ["DAU WAU MAU", "Stickiness"],
    "Retention": ["Retention curves", "Cohort heatmap"],
    "Skip rates": ["Skip rate by genre", "Skip rate by hour", "Skip rate by segment"],
    "Playlist funnel": ["Playlist funnel", "Playlist drop-off by track"],
    "A/B monitor": ["A/B sample ratio", "A/B enrollment", "A/B daily skip rate",
                    "A/B forest plot", "A/B results table"],
}


def _id(*parts: str, length: int = 28) -> str:
    return hashlib.sha1("/".join(parts).encode()).hexdigest()[:length]


def _uuid(*parts: str) -> str:
    h = _id(*parts, length=32).upper()
    return "{" + f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}" + "}"


def ds_name(key: str) -> str:
    return f"federated.{_id('datasource', key)}"


def _caption(column: str) -> str:
    return column.replace("_", " ").capitalize()


def _column_meta(key: str, column: str) -> tuple[str, str, str]:
    """(datatype, role, type) of a physical or calculated column."""
    for name, _cap, datatype, role, kind, _formula in CALCULATIONS.get(key, []):
        if name == column:
            return datatype, role, kind
    for spec in DATASOURCES[key][3]:
        if spec[0] == column:
            datatype = spec[1]
            role, kind = TYPES[datatype][2], TYPES[datatype][3]
            if len(spec) > 2 and spec[2] == DIM:
                role, kind = "dimension", "ordinal"
            return datatype, role, kind
    raise KeyError(f"{key}: column {column} is not in the spec")


def instance_name(field: tuple[str, str], key: str) -> str:
    agg, column = field
    datatype, _role, _kind = _column_meta(key, column)
    if agg in ("sum", "avg", "tdy"):
        suffix = "qk"
    else:
        suffix = "ok" if datatype in ("date", "datetime", "integer") else "nk"
    return f"[{agg}:{column}:{suffix}]"


def _datasource(parent: ET.Element, key: str) -> None:
    caption, schema, table, columns = DATASOURCES[key]
    conn_name = f"postgres.{_id('connection', key)}"
    ds = ET.SubElement(parent, "datasource", {
        "caption": caption, "inline": "true", "name": ds_name(key), "version": "18.1"})
    fed = ET.SubElement(ds, "connection", {"class": "federated"})
    named = ET.SubElement(ET.SubElement(fed, "named-connections"), "named-connection",
                          {"caption": SERVER, "name": conn_name})
    ET.SubElement(named, "connection", {
        "authentication": "username-password", "class": "postgres", "dbname": DBNAME,
        "odbc-native-protocol": "", "one-time-sql": "", "port": PORT, "server": SERVER,
        "sslmode": "", "username": USERNAME})
    ET.SubElement(fed, "relation", {"connection": conn_name, "name": table,
                                    "table": f"[{schema}].[{table}]", "type": "table"})
    cols = ET.SubElement(fed, "cols")
    for spec in columns:
        ET.SubElement(cols, "map", {"key": f"[{spec[0]}]", "value": f"[{table}].[{spec[0]}]"})
    records = ET.SubElement(fed, "metadata-records")
    for ordinal, spec in enumerate(columns, start=1):
        column, datatype = spec[0], spec[1]
        remote_type, local_type, *_ = TYPES[datatype]
        rec = ET.SubElement(records, "metadata-record", {"class": "column"})
        for tag, text in (("remote-name", column), ("remote-type", remote_type),
                          ("local-name", f"[{column}]"), ("parent-name", f"[{table}]"),
                          ("remote-alias", column), ("ordinal", str(ordinal)),
                          ("local-type", local_type), ("contains-null", "true")):
            ET.SubElement(rec, tag).text = text
    ET.SubElement(ds, "aliases", {"enabled": "yes"})
    for spec in columns:
        datatype, role, kind = _column_meta(key, spec[0])
        ET.SubElement(ds, "column", {"caption": _caption(spec[0]), "datatype": datatype,
                                     "name": f"[{spec[0]}]", "role": role, "type": kind})
    for name, caption, datatype, role, kind, formula in CALCULATIONS.get(key, []):
        col = ET.SubElement(ds, "column", {"caption": caption, "datatype": datatype,
                                           "name": f"[{name}]", "role": role, "type": kind})
        ET.SubElement(col, "calculation", {"class": "tableau", "formula": formula})
    ET.SubElement(ds, "layout", {"dim-ordering": "alphabetic", "measure-ordering":
                                 "alphabetic", "show-structure": "true"})


def _filter(view: ET.Element, key: str, column: str, values: list[str]) -> None:
    level = instance_name(("none", column), key)
    datatype = _column_meta(key, column)[0]
    flt = ET.SubElement(view, "filter", {"class": "categorical",
                                         "column": f"[{ds_name(key)}].{level}"})

    def member(parent: ET.Element, value: str) -> None:
        literal = value if datatype in ("boolean", "integer") else f'"{value}"'
        ET.SubElement(parent, "groupfilter", {
            "function": "member", "level": level, "member": literal,
            f"{{{USER_NS}}}ui-domain": "database", f"{{{USER_NS}}}ui-enumeration": "inclusive",
            f"{{{USER_NS}}}ui-marker": "enumerate"})

    if len(values) == 1:
        member(flt, values[0])
    else:
        union = ET.SubElement(flt, "groupfilter", {"function": "union"})
        for value in values:
            member(union, value)


def _worksheet(parent: ET.Element, name: str, spec: dict) -> None:
    key = spec["ds"]
    dsn = ds_name(key)
    encodings: dict[str, tuple[str, str]] = spec.get("encodings", {})
    filters: dict[str, list[str]] = spec.get("filters", {})
    fields = [*spec["rows"], *spec["cols"], *encodings.values(),
              *(("none", c) for c in filters)]
    ws = ET.SubElement(parent, "worksheet", {"name": name})
    table = ET.SubElement(ws, "table")
    view = ET.SubElement(table, "view")
    ET.SubElement(ET.SubElement(view, "datasources"), "datasource",
                  {"caption": DATASOURCES[key][0], "name": dsn})
    deps = ET.SubElement(view, "datasource-dependencies", {"datasource": dsn})
    calcs = {c[0]: c for c in CALCULATIONS.get(key, [])}
    seen_columns: set[str] = set()
    seen_instances: set[str] = set()
    for _agg, column in fields:
        if column in seen_columns:
            continue
        seen_columns.add(column)
        datatype, role, kind = _column_meta(key, column)
        col = ET.SubElement(deps, "column", {"datatype": datatype, "name": f"[{column}]",
                                             "role": role, "type": kind})
        if column in calcs:
            col.set("caption", calcs[column][1])
            ET.SubElement(col, "calculation", {"class": "tableau", "formula": calcs[column][5]})
    for field in fields:
        inst = instance_name(field, key)
        if inst in seen_instances:
            continue
        seen_instances.add(inst)
        kind = "quantitative" if field[0] != "none" else _column_meta(key, field[1])[2]
        ET.SubElement(deps, "column-instance", {
            "column": f"[{field[1]}]", "derivation": DERIVATIONS[field[0]], "name": inst,
            "pivot": "key", "type": kind})
    for column, values in filters.items():
        _filter(view, key, column, values)
    ET.SubElement(view, "aggregation", {"value": "true"})
    ET.SubElement(table, "style")
    pane = ET.SubElement(ET.SubElement(table, "panes"), "pane",
                         {"selection-relaxation-option": "selection-relaxation-allow"})
    ET.SubElement(ET.SubElement(pane, "view"), "breakdown", {"value": "auto"})
    ET.SubElement(pane, "mark", {"class": spec["mark"]})
    if encodings:
        enc = ET.SubElement(pane, "encodings")
        for channel, field in encodings.items():
            ET.SubElement(enc, channel, {"column": f"[{dsn}].{instance_name(field, key)}"})

    def shelf(items: list[tuple[str, str]]) -> str:
        refs = [f"[{dsn}].{instance_name(f, key)}" for f in items]
        return refs[0] if len(refs) == 1 else "(" + " / ".join(refs) + ")"

    ET.SubElement(table, "rows").text = shelf(spec["rows"]) if spec["rows"] else None
    ET.SubElement(table, "cols").text = shelf(spec["cols"]) if spec["cols"] else None
    ET.SubElement(ws, "simple-id", {"uuid": _uuid("worksheet", name)})


def _dashboard(parent: ET.Element, name: str, sheets: list[str]) -> None:
    dash = ET.SubElement(parent, "dashboard", {"name": name})
    ET.SubElement(dash, "style")
    ET.SubElement(dash, "size", {"maxheight": "900", "maxwidth": "1400", "minheight": "900",
                                 "minwidth": "1400"})
    zones = ET.SubElement(dash, "zones")
    outer = ET.SubElement(zones, "zone", {"h": "100000", "id": "1", "type-v2":
                                          "layout-basic", "w": "100000", "x": "0", "y": "0"})
    title = ET.SubElement(outer, "zone", {"h": "6000", "id": "2", "type-v2": "title",
                                          "w": "100000", "x": "0", "y": "0"})
    title.set("name", name)
    flow = ET.SubElement(outer, "zone", {"h": "94000", "id": "3", "param": "vert",
                                         "type-v2": "layout-flow", "w": "100000", "x": "0",
                                         "y": "6000"})
    height = 94000 // len(sheets)
    for i, sheet in enumerate(sheets):
        ET.SubElement(flow, "zone", {"h": str(height), "id": str(10 + i), "name": sheet,
                                     "w": "100000", "x": "0", "y": str(6000 + i * height)})
    ET.SubElement(dash, "simple-id", {"uuid": _uuid("dashboard", name)})


def build() -> bytes:
    ET.register_namespace("user", USER_NS)
    root = ET.Element("workbook", {
        "source-build": "2024.2.0 (20242.24.0716.1944)", "source-platform": "linux",
        "version": "18.1"})
    ET.SubElement(root, "document-format-change-manifest")
    ET.SubElement(root, "preferences")
    datasources = ET.SubElement(root, "datasources")
    for key in DATASOURCES:
        _datasource(datasources, key)
    worksheets = ET.SubElement(root, "worksheets")
    for name, spec in WORKSHEETS.items():
        _worksheet(worksheets, name, spec)
    dashboards = ET.SubElement(root, "dashboards")
    for name, sheets in DASHBOARDS.items():
        _dashboard(dashboards, name, sheets)
    windows = ET.SubElement(root, "windows", {"saved-dashboard-count": str(len(DASHBOARDS))})
    for name in WORKSHEETS:
        ET.SubElement(windows, "window", {"class": "worksheet", "hidden": "true",
                                          "name": name})
    for name in DASHBOARDS:
        ET.SubElement(windows, "window", {"class": "dashboard", "name": name})
    ET.indent(root, space="  ")
    body = ET.tostring(root, encoding="unicode")
    return ("<?xml version='1.0' encoding='utf-8' ?>\n\n" + body + "\n").encode("utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--check", action="store_true",
                        help="exit 1 when --out differs from the spec's output")
    args = parser.parse_args(argv)
    data = build()
    if args.check:
        same = args.out.exists() and args.out.read_bytes() == data
        print(f"{args.out}: {'up to date' if same else 'stale, rerun build_workbook.py'}")
        return 0 if same else 1
    args.out.write_bytes(data)
    print(f"wrote {args.out} ({len(DATASOURCES)} datasources, {len(WORKSHEETS)} worksheets, "
          f"{len(DASHBOARDS)} dashboards)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
