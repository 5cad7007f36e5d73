#!/usr/bin/env python3
"""End-to-end checks of a running Superset of the taxi platform, through its HTTP API.

Used by the stack's end-to-end check (ci/e2e.py, in-process) and by tests/e2e/standalone.sh.
Needs PyYAML, `duckdb` when --duckdb PATH is used for the direct queries, and Playwright for the
screenshots (ci/pyproject.toml has it: `uv run --project ci`).

    export SUPERSET_ADMIN_PASSWORD=...
    superset_checks.py verify  --url http://127.0.0.1:8088 (--duckdb PATH | --duckdb-container NAME)
    superset_checks.py load    --url ... [--duration 60 | --stop-file F] [--report load.json]
    superset_checks.py screenshots --url ... --out DIR

verify: /health is OK; API login; every dashboard of the bundle (superset/dashboards) is listed
        with exactly its charts; every chart's /api/v1/chart/{id}/data/ returns the same rows as
        the chart's saved query (query_context in the bundle, rebuilt as SQL here, independently of
        Superset) run directly against the published DuckDB snapshot; the warehouse connection is
        read-only and SQL Lab / chart queries cannot write, attach or read files.
load:   queries every chart's data in a loop (e.g. while a pipeline run writes the warehouse) and
        counts requests and errors; exit 1 when any request failed.
screenshots: a headless Chromium (Playwright on the system's browser, CHROMIUM_PATH or
        /usr/bin/chromium) saves a PNG of every dashboard; every chart drawn, the PNG not blank.

Every subcommand prints a JSON report (also written to --report) and exits non-zero on failure.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import http.cookiejar
import json
import math
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
BUNDLE_DIR = HERE.parent.parent / "dashboards"


# --- the bundle ----------------------------------------------------------------------------------


def read_bundle(src: Path = BUNDLE_DIR) -> dict[str, dict[str, dict[str, Any]]]:
    """{'databases'|'datasets'|'charts'|'dashboards': {uuid: doc}}"""
    out: dict[str, dict[str, dict[str, Any]]] = {
        "databases": {},
        "datasets": {},
        "charts": {},
        "dashboards": {},
    }
    for kind in out:
        for file in sorted((src / kind).rglob("*.yaml")):
            doc = yaml.safe_load(file.read_text())
            doc["_file"] = str(file.relative_to(src))
            out[kind][str(doc["uuid"])] = doc
    return out


def dashboard_chart_uuids(dashboard: dict[str, Any]) -> list[str]:
    return [
        str(node["meta"]["uuid"])
        for node in dashboard.get("position", {}).values()
        if isinstance(node, dict) and node.get("type") == "CHART"
    ]


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def sql_literal(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, (int, float)):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


def chart_sql(chart: dict[str, Any], dataset: dict[str, Any]) -> tuple[str, list[str]]:
    """The SQL equivalent of a chart's saved query, and the result column names.

    Supports what the bundle uses (saved metrics, simple/SQL adhoc metrics, plain columns, the
    usual filter operators, TEMPORAL_RANGE 'No filter'); anything else raises ValueError so a new
    chart cannot silently escape the comparison.
    """
    qc = chart["query_context"]
    if isinstance(qc, str):
        qc = json.loads(qc)
    if not qc or len(qc.get("queries", [])) != 1:
        raise ValueError(f"{chart['slice_name']}: expected exactly one query in query_context")
    query = qc["queries"][0]
    saved = {m["metric_name"]: m["expression"] for m in dataset.get("metrics", [])}
    physical = {c["column_name"] for c in dataset.get("columns", [])}
    select: list[str] = []
    names: list[str] = []
    group: list[str] = []
    for col in query.get("columns", []):
        if not isinstance(col, str):
            raise ValueError(f"{chart['slice_name']}: only plain column names are supported")
        if col not in physical:
            raise ValueError(f"{chart['slice_name']}: unknown column {col}")
        select.append(f"{quote_ident(col)} AS {quote_ident(col)}")
        group.append(quote_ident(col))
        names.append(col)
    metric_sql: dict[str, str] = {}
    for metric in query.get("metrics", []):
        if isinstance(metric, str):
            if metric not in saved:
                raise ValueError(f"{chart['slice_name']}: unknown saved metric {metric}")
            expr, label = saved[metric], metric
        elif metric.get("expressionType") == "SIMPLE":
            expr = f"{metric['aggregate']}({quote_ident(metric['column']['column_name'])})"
            label = metric.get("label") or expr
        elif metric.get("expressionType") == "SQL":
            expr, label = metric["sqlExpression"], metric.get("label") or metric["sqlExpression"]
        else:
            raise ValueError(f"{chart['slice_name']}: unsupported metric {metric}")
        metric_sql[label] = expr
        select.append(f"{expr} AS {quote_ident(label)}")
        names.append(label)
    where: list[str] = []
    for flt in query.get("filters", []):
        col, op, val = quote_ident(flt["col"]), flt["op"], flt.get("val")
        if op == "TEMPORAL_RANGE":
            if val not in (None, "No filter"):
                raise ValueError(f"{chart['slice_name']}: only 'No filter' time ranges supported")
            continue
        if op in ("IS TRUE", "IS FALSE", "IS NULL", "IS NOT NULL"):
            where.append(f"{col} {op}")
        elif op in ("IN", "NOT IN"):
            where.append(f"{col} {op} ({', '.join(sql_literal(v) for v in val)})")
        elif op in ("==", "!=", ">", "<", ">=", "<=", "LIKE", "ILIKE"):
            sql_op = {"==": "=", "!=": "<>"}.get(op, op)
            where.append(f"{col} {sql_op} {sql_literal(val)}")
        else:
            raise ValueError(f"{chart['slice_name']}: unsupported filter operator {op}")
    extras = query.get("extras") or {}
    if extras.get("where"):
        where.append(f"({extras['where']})")
    order: list[str] = []
    for target, ascending in query.get("orderby", []):
        if isinstance(target, str) and target in metric_sql:
            expr = metric_sql[target]
        elif isinstance(target, str) and target in physical:
            expr = quote_ident(target)
        elif isinstance(target, str) and target in saved:
            expr = saved[target]
        else:
            raise ValueError(f"{chart['slice_name']}: unsupported orderby {target}")
        order.append(f"{expr} {'ASC' if ascending else 'DESC'}")
    schema = dataset.get("schema")
    table = (quote_ident(schema) + "." if schema else "") + quote_ident(dataset["table_name"])
    sql = f"SELECT {', '.join(select)} FROM {table}"
    if where:
        sql += " WHERE " + " AND ".join(where)
    if group and metric_sql:
        sql += " GROUP BY " + ", ".join(group)
    if order:
        sql += " ORDER BY " + ", ".join(order)
    if query.get("row_limit"):
        sql += f" LIMIT {int(query['row_limit'])}"
    return sql, names


def normalise(value: Any) -> Any:
    """One comparable form for Superset's JSON values and DuckDB's Python values."""
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return round(value.timestamp() * 1000)
    if isinstance(value, dt.date):
        return round(
            dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC).timestamp() * 1000
        )
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if hasattr(value, "__float__"):  # int, float, Decimal
        number = float(value)
        if math.isnan(number):
            return None
        return float(f"{number:.9g}")
    return value


def compare_rows(api_rows: list[list[Any]], db_rows: list[list[Any]], ordered: bool) -> str | None:
    """None when equal; otherwise a short description of the difference."""
    left = [tuple(normalise(v) for v in row) for row in api_rows]
    right = [tuple(normalise(v) for v in row) for row in db_rows]
    if not ordered:
        left, right = sorted(left, key=repr), sorted(right, key=repr)
    if left == right:
        return None
    if len(left) != len(right):
        return f"{len(left)} rows from Superset, {len(right)} from DuckDB"
    for i, (a, b) in enumerate(zip(left, right, strict=True)):
        if a != b:
            return f"row {i}: Superset {a} != DuckDB {b}"
    return "rows differ"


# --- direct queries on the snapshot --------------------------------------------------------------

_DIRECT_QUERY_CODE = r"""
import datetime, decimal, json, sys, duckdb
req = json.load(sys.stdin)
con = duckdb.connect(req["path"], read_only=True, config={"enable_external_access": False})
out = []
for sql in req["sql"]:
    out.append([list(r) for r in con.execute(sql).fetchall()])
con.close()
def enc(o):
    if isinstance(o, datetime.datetime): return {"__dt__": o.isoformat()}
    if isinstance(o, datetime.date): return {"__d__": o.isoformat()}
    if isinstance(o, decimal.Decimal): return float(o)
    raise TypeError(type(o))
json.dump(out, sys.stdout, default=enc)
"""


def _decode(obj: Any) -> Any:
    if isinstance(obj, dict) and "__dt__" in obj:
        return dt.datetime.fromisoformat(obj["__dt__"])
    if isinstance(obj, dict) and "__d__" in obj:
        return dt.date.fromisoformat(obj["__d__"])
    return obj


def direct_queries(
    sqls: list[str], duckdb_path: str | None, container: str | None, container_path: str
) -> list[list[list[Any]]]:
    """Runs the statements read-only against the snapshot: on this machine or in a container."""
    if duckdb_path:
        request = {"path": duckdb_path, "sql": sqls}
        cmd = [sys.executable, "-c", _DIRECT_QUERY_CODE]
    elif container:
        request = {"path": container_path, "sql": sqls}
        cmd = ["docker", "exec", "-i", container, "python", "-c", _DIRECT_QUERY_CODE]
    else:
        raise SystemExit("superset_checks: give --duckdb PATH or --duckdb-container NAME")
    proc = subprocess.run(
        cmd, input=json.dumps(request), capture_output=True, text=True, timeout=120
    )
    if proc.returncode != 0:
        raise RuntimeError(f"direct query failed: {proc.stderr.strip()[-800:]}")
    data = json.loads(proc.stdout, object_hook=_decode)
    return [[[_decode(v) for v in row] for row in rows] for rows in data]


# --- HTTP ----------------------------------------------------------------------------------------


class Api:
    def __init__(self, base_url: str, timeout: float = 60.0):
        self.base = base_url.rstrip("/")
        self.timeout = timeout
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))
        self.token: str | None = None
        self.csrf: str | None = None

    def request(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        hdrs = {"Accept": "application/json", "Referer": self.base + "/"}
        if body is not None:
            hdrs["Content-Type"] = "application/json"
        if self.token:
            hdrs["Authorization"] = f"Bearer {self.token}"
        if self.csrf and method != "GET":
            hdrs["X-CSRFToken"] = self.csrf
        hdrs.update(headers or {})
        req = urllib.request.Request(self.base + path, data=data, method=method, headers=hdrs)
        try:
            with self.opener.open(req, timeout=self.timeout) as resp:
                raw = resp.read()
                status = resp.status
        except urllib.error.HTTPError as err:
            raw, status = err.read(), err.code
        try:
            return status, json.loads(raw) if raw else None
        except json.JSONDecodeError:
            return status, raw.decode(errors="replace")

    def health(self) -> str:
        with self.opener.open(self.base + "/health", timeout=self.timeout) as resp:
            return resp.read().decode().strip()

    def login(self, username: str, password: str) -> None:
        status, body = self.request(
            "POST",
            "/api/v1/security/login",
            {"username": username, "password": password, "provider": "db", "refresh": False},
        )
        if status != 200 or not isinstance(body, dict) or "access_token" not in body:
            raise RuntimeError(f"login failed: HTTP {status} {str(body)[:200]}")
        self.token = body["access_token"]
        status, body = self.request("GET", "/api/v1/security/csrf_token/")
        if status == 200 and isinstance(body, dict):
            self.csrf = body.get("result")

    def listing(self, resource: str, columns: list[str]) -> list[dict[str, Any]]:
        q = f"(columns:!({','.join(columns)}),page_size:100)"
        status, body = self.request("GET", f"/api/v1/{resource}/?q={urllib.parse.quote(q)}")
        if status != 200:
            raise RuntimeError(f"/api/v1/{resource}/: HTTP {status} {str(body)[:200]}")
        return body["result"]


def chart_data(api: Api, chart_id: int) -> tuple[list[str], list[list[Any]]]:
    status, body = api.request("GET", f"/api/v1/chart/{chart_id}/data/?force=true")
    if status != 200 or not isinstance(body, dict):
        raise RuntimeError(f"chart {chart_id}: HTTP {status} {str(body)[:300]}")
    result = body["result"][0]
    if result.get("status") != "success" or result.get("error"):
        raise RuntimeError(f"chart {chart_id}: {result.get('status')} {result.get('error')}")
    cols = result["colnames"]
    return cols, [[row.get(c) for c in cols] for row in result["data"]]


# --- verify --------------------------------------------------------------------------------------


def security_probes(api: Api, database_id: int, dataset_id: int) -> list[dict[str, Any]]:
    """Statements that must be refused, through SQL Lab and through a chart query."""
    probes = [
        ("sqllab", "CREATE TABLE main.pwned AS SELECT 1 AS a"),
        ("sqllab", "INSERT INTO main.daily_metrics (trip_count) VALUES (1)"),
        ("sqllab", "DELETE FROM main.daily_metrics"),
        ("sqllab", "COPY (SELECT 1 AS a) TO '/tmp/superset_probe.csv'"),
        ("sqllab", "ATTACH '/tmp/superset_probe.duckdb' AS probe"),
        ("sqllab", "SELECT * FROM read_csv('/etc/passwd')"),
        ("sqllab", "SELECT * FROM read_text('/etc/passwd')"),
        ("sqllab", "INSTALL httpfs"),
        ("sqllab", "SET enable_external_access = true"),
        ("chart", "(SELECT COUNT(*) FROM read_csv('/etc/passwd'))"),
        ("chart", "(SELECT COUNT(*) FROM glob('/*'))"),
    ]
    results = []
    for where, sql in probes:
        if where == "sqllab":
            status, body = api.request(
                "POST",
                "/api/v1/sqllab/execute/",
                {
                    "database_id": database_id,
                    "sql": sql,
                    "schema": "main",
                    "runAsync": False,
                    "client_id": f"p{abs(hash(sql)) % 10**9}",
                    "queryLimit": 10,
                    "tab": "probe",
                    "tmp_table_name": "",
                    "select_as_cta": False,
                    "ctas_method": "TABLE",
                },
            )
            ok = not (status == 200 and isinstance(body, dict) and body.get("status") == "success")
        else:
            status, body = api.request(
                "POST",
                "/api/v1/chart/data",
                {
                    "datasource": {"id": dataset_id, "type": "table"},
                    "force": True,
                    "result_format": "json",
                    "result_type": "full",
                    "queries": [
                        {
                            "columns": [],
                            "row_limit": 10,
                            "filters": [],
                            "metrics": [
                                {"expressionType": "SQL", "sqlExpression": sql, "label": "probe"}
                            ],
                        }
                    ],
                },
            )
            results_list = body.get("result") if isinstance(body, dict) else None
            succeeded = (
                status == 200
                and results_list
                and all(r.get("status") == "success" for r in results_list)
            )
            ok = not succeeded
        text = json.dumps(body)[:300] if not isinstance(body, str) else body[:300]
        leaked = "root:x:0:0" in text
        results.append(
            {
                "via": where,
                "sql": sql,
                "refused": ok and not leaked,
                "http_status": status,
                "answer": text[:200],
            }
        )
    # a virtual dataset whose SQL reads a file: saving may be refused, and if it is saved, its
    # chart query must be refused by DuckDB (external access disabled on the connection)
    status, body = api.request(
        "POST",
        "/api/v1/dataset/",
        {
            "database": database_id,
            "schema": "main",
            "table_name": "probe_read_csv",
            "sql": "SELECT * FROM read_csv('/etc/passwd')",
        },
    )
    created = status in (200, 201) and isinstance(body, dict) and body.get("id")
    entry = {
        "via": "virtual dataset",
        "sql": "SELECT * FROM read_csv('/etc/passwd')",
        "http_status": status,
        "answer": json.dumps(body)[:200],
    }
    if created:
        q_status, q_body = api.request(
            "POST",
            "/api/v1/chart/data",
            {
                "datasource": {"id": body["id"], "type": "table"},
                "force": True,
                "result_format": "json",
                "result_type": "full",
                "queries": [
                    {
                        "columns": [],
                        "row_limit": 10,
                        "filters": [],
                        "metrics": [
                            {"expressionType": "SQL", "sqlExpression": "COUNT(*)", "label": "n"}
                        ],
                    }
                ],
            },
        )
        results_list = q_body.get("result") if isinstance(q_body, dict) else None
        succeeded = (
            q_status == 200
            and results_list
            and all(r.get("status") == "success" for r in results_list)
        )
        text = json.dumps(q_body)[:300]
        entry.update(
            refused=not succeeded and "root:x:0:0" not in text,
            http_status=q_status,
            answer=text[:200],
        )
        api.request("DELETE", f"/api/v1/dataset/{body['id']}")
        entry["refused_at"] = "chart query"
    else:
        entry.update(refused=True, refused_at="dataset creation (DuckDB reads the columns)")
    results.append(entry)
    return results


def verify(args: argparse.Namespace) -> dict[str, Any]:
    report: dict[str, Any] = {"check": "verify", "url": args.url, "failures": []}
    fail = report["failures"].append
    bundle = read_bundle(Path(args.bundle))
    api = Api(args.url)
    started = time.monotonic()
    report["health"] = api.health()
    if report["health"] != "OK":
        fail(f"/health answered {report['health']!r}")
    api.login(args.user, os.environ["SUPERSET_ADMIN_PASSWORD"])

    # dashboards: every one of the bundle, with exactly its charts
    listed = {
        d["uuid"]: d
        for d in api.listing("dashboard", ["id", "uuid", "slug", "dashboard_title", "published"])
    }
    charts = {c["uuid"]: c for c in api.listing("chart", ["id", "uuid", "slice_name"])}
    report["dashboards"] = []
    for uuid, dash in bundle["dashboards"].items():
        entry = {"title": dash["dashboard_title"], "listed": uuid in listed}
        if uuid not in listed:
            fail(f"dashboard {dash['dashboard_title']!r} not listed")
        else:
            status, body = api.request("GET", f"/api/v1/dashboard/{listed[uuid]['id']}/charts")
            names = sorted(c["slice_name"] for c in body["result"]) if status == 200 else []
            expected = sorted(
                bundle["charts"][c]["slice_name"] for c in dashboard_chart_uuids(dash)
            )
            entry.update(id=listed[uuid]["id"], charts=names)
            if names != expected:
                fail(f"dashboard {dash['dashboard_title']!r}: charts {names} != {expected}")
        report["dashboards"].append(entry)
    titles = [d["dashboard_title"] for d in listed.values()]
    if len(titles) != len(set(titles)):
        fail(f"duplicated dashboards: {titles}")
    # a restart or re-import must not duplicate anything: one object per name of the bundle
    all_charts = api.listing("chart", ["id", "slice_name"])
    all_datasets = api.listing("dataset", ["id", "table_name"])
    all_databases = api.listing("database", ["id", "database_name"])
    report["counts"] = {
        "dashboards": len(listed),
        "charts": len(all_charts),
        "datasets": len(all_datasets),
        "databases": len(all_databases),
    }
    for kind, items, key, wanted in (
        ("chart", all_charts, "slice_name", [c["slice_name"] for c in bundle["charts"].values()]),
        (
            "dataset",
            all_datasets,
            "table_name",
            [d["table_name"] for d in bundle["datasets"].values()],
        ),
        (
            "database",
            all_databases,
            "database_name",
            [d["database_name"] for d in bundle["databases"].values()],
        ),
    ):
        for name in wanted:
            n = sum(1 for item in items if item[key] == name)
            if n != 1:
                fail(f"{n} {kind}s named {name!r} (expected exactly 1)")

    # chart data == direct query on the snapshot
    plan = []
    for uuid, chart in bundle["charts"].items():
        dataset = bundle["datasets"][str(chart["dataset_uuid"])]
        sql, cols = chart_sql(chart, dataset)
        plan.append((uuid, chart, sql, cols))
    direct = direct_queries(
        [p[2] for p in plan], args.duckdb, args.duckdb_container, args.container_duckdb_path
    )
    report["charts"] = []
    for (uuid, chart, sql, cols), db_rows in zip(plan, direct, strict=True):
        entry: dict[str, Any] = {"chart": chart["slice_name"], "sql": sql}
        if uuid not in charts:
            fail(f"chart {chart['slice_name']!r} missing in Superset")
            report["charts"].append(entry)
            continue
        try:
            api_cols, api_rows = chart_data(api, charts[uuid]["id"])
        except RuntimeError as exc:
            fail(str(exc))
            entry["error"] = str(exc)
            report["charts"].append(entry)
            continue
        entry.update(id=charts[uuid]["id"], rows=len(api_rows), direct_rows=len(db_rows))
        if api_cols != cols:
            fail(f"{chart['slice_name']}: columns {api_cols} != {cols}")
        # compared as multisets: the order of rows with equal sort keys is not determined
        diff = compare_rows(api_rows, db_rows, ordered=False)
        entry["equal"] = diff is None
        if diff:
            fail(f"{chart['slice_name']}: {diff}")
        if not api_rows:
            fail(f"{chart['slice_name']}: no rows")
        report["charts"].append(entry)

    # the connection's settings and what SQL Lab / chart queries may do
    dbs = api.listing(
        "database",
        [
            "id",
            "uuid",
            "database_name",
            "allow_dml",
            "allow_file_upload",
            "allow_ctas",
            "allow_cvas",
        ],
    )
    database = next(d for d in dbs if d["uuid"] in bundle["databases"])
    report["database"] = database
    for flag in ("allow_dml", "allow_file_upload", "allow_ctas", "allow_cvas"):
        if database.get(flag):
            fail(f"database {database['database_name']!r} has {flag}=true")
    datasets = api.listing("dataset", ["id", "uuid", "table_name"])
    dataset_id = next(d["id"] for d in datasets if d["table_name"] == "daily_metrics")
    report["security_probes"] = security_probes(api, database["id"], dataset_id)
    for probe in report["security_probes"]:
        if not probe["refused"]:
            fail(f"not refused via {probe['via']}: {probe['sql']}")
    report["seconds"] = round(time.monotonic() - started, 2)
    return report


# --- load ----------------------------------------------------------------------------------------


@dataclass
class ChartQuery:
    at: float  # time.monotonic() when the query started
    seconds: float
    error: str | None


def percentile(sorted_values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    index = max(0, min(len(sorted_values) - 1, math.ceil(fraction * len(sorted_values)) - 1))
    return sorted_values[index]


class ChartLoop:
    """Every chart's data, one chart after the other, in a background thread until stopped, each
    query timed, so that failures and latency can be told per window (e.g. while a backfill ran).
    """

    RELOGIN_SECONDS = 300  # Superset's API access token lasts 15 minutes

    def __init__(self, url: str, user: str, password: str, pause=0.2, timeout=60.0):
        self.url, self.user, self.password, self.pause, self.timeout = (
            url,
            user,
            password,
            pause,
            timeout,
        )
        self.queries: list[ChartQuery] = []
        self.error_samples: list[str] = []
        self.charts: dict[int, str] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="chart-loop")

    def _login(self) -> Api:
        api = Api(self.url, timeout=self.timeout)
        api.login(self.user, self.password)
        return api

    def start(self) -> None:
        api = self._login()
        self.charts = {c["id"]: c["slice_name"] for c in api.listing("chart", ["id", "slice_name"])}
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=120)

    def _loop(self) -> None:
        api, logged_in = self._login(), time.monotonic()
        while not self._stop.is_set():
            if time.monotonic() - logged_in > self.RELOGIN_SECONDS:
                api, logged_in = self._login(), time.monotonic()
            for chart_id in self.charts:
                start, error = time.monotonic(), None
                try:
                    if not chart_data(api, chart_id)[1]:
                        error = f"chart {chart_id}: no rows"
                except Exception as exc:
                    error = str(exc)[:300]
                if error and len(self.error_samples) < 10:
                    self.error_samples.append(f"{dt.datetime.now():%H:%M:%S} {error}")
                self.queries.append(ChartQuery(start, time.monotonic() - start, error))
            self._stop.wait(self.pause)

    def stats(self, start: float = 0.0, end: float = math.inf) -> dict[str, Any]:
        window = [q for q in self.queries if start <= q.at < end]
        latencies = sorted(q.seconds for q in window)
        errors = [q.error for q in window if q.error]
        report: dict[str, Any] = {
            "charts": len(self.charts),
            "requests": len(window),
            "errors": len(errors),
            "error_samples": self.error_samples if end == math.inf else errors[:5],
        }
        if latencies:
            report["latency_ms"] = {
                name: round(percentile(latencies, fraction) * 1000)
                for name, fraction in (("median", 0.5), ("p95", 0.95), ("max", 1.0))
            }
        report["failures"] = [f"{len(errors)} of {len(window)} chart queries failed"] * bool(errors)
        if not window:
            report["failures"].append("no chart query was made")
        return report


def load(args: argparse.Namespace) -> dict[str, Any]:
    """Queries every chart's data until the duration ends, the stop file appears, or SIGTERM."""
    loop = ChartLoop(
        args.url, args.user, os.environ["SUPERSET_ADMIN_PASSWORD"], args.pause, args.request_timeout
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    deadline = time.monotonic() + args.duration if args.duration else math.inf
    started = time.monotonic()
    loop.start()
    while not stop.wait(0.5) and time.monotonic() < deadline:
        if args.stop_file and Path(args.stop_file).exists():
            break
    loop.stop()
    return {"check": "load", "seconds": round(time.monotonic() - started, 1), **loop.stats()}


# --- screenshots ---------------------------------------------------------------------------------

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
# true once every chart holder finished loading: something drawn, or an error
CHARTS_SETTLED = """() => {
  const holders = [...document.querySelectorAll('.dashboard-component-chart-holder')];
  return holders.length > 0 && holders.every((h) => {
    if (h.querySelector('.loading, [aria-label="Loading"], [data-test="loading-indicator"]'))
      return false;
    return h.querySelector('canvas, svg, table, [role="alert"], .ant-alert') ||
      /\\d/.test(h.querySelector('.chart-container, .slice_container')?.innerText || '');
  });
}"""
CHART_STATES = """(holders) => holders.map((h) => {
  const title = (h.querySelector('[data-test="editable-title"], .header-title, .editable-title')
    ?.innerText || '').trim();
  const alert = h.querySelector('[role="alert"], .ant-alert-error');
  const body = h.querySelector('.chart-container, .slice_container');
  const drawn = !!h.querySelector('canvas, svg, table') || /\\d/.test(body?.innerText || '');
  const rows = h.querySelectorAll('table tbody tr').length;
  return { title, drawn, rows, error: alert ? alert.innerText.slice(0, 300) : null };
})"""
# non-blank: decode the PNG on a canvas, count distinct colours and non-background pixels
IMAGE_STATS = """async (data) => {
  const img = new Image();
  img.src = `data:image/png;base64,${data}`;
  await img.decode();
  const c = document.createElement('canvas');
  c.width = img.width; c.height = img.height;
  const ctx = c.getContext('2d');
  ctx.drawImage(img, 0, 0);
  const px = ctx.getImageData(0, 0, c.width, c.height).data;
  const colours = new Set();
  let nonWhite = 0;
  for (let i = 0; i < px.length; i += 16) {  // every 4th pixel
    colours.add((px[i] << 16) | (px[i + 1] << 8) | px[i + 2]);
    if (px[i] < 240 || px[i + 1] < 240 || px[i + 2] < 240) nonWhite += 1;
  }
  return { width: c.width, height: c.height, distinctColours: colours.size,
    nonWhiteShare: nonWhite / (px.length / 16) };
}"""


def chromium_path() -> str:
    """The system's Chromium: Playwright's own browser download is not used (no internet)."""
    path = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
    if not Path(path).is_file():
        raise RuntimeError(
            f"no Chromium at {path}: install Debian's (apt-get install chromium) or point "
            "CHROMIUM_PATH at a Chrome/Chromium binary"
        )
    return path


def screenshots(args: argparse.Namespace) -> dict[str, Any]:
    """Logs in with a headless Chromium, saves a full-page PNG of every dashboard, and checks that
    every chart rendered (drawn, no error) and that the PNG is not blank."""
    # imported here: Superset's own environment, which runs the other subcommands, has no Playwright
    from playwright.sync_api import sync_playwright

    base, out, timeout = args.url.rstrip("/"), Path(args.out), args.page_timeout * 1000
    out.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {"check": "screenshots", "url": base, "dashboards": []}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1600, "height": 1000})
            page = context.new_page()
            page.goto(f"{base}/login/", wait_until="domcontentloaded", timeout=timeout)
            page.locator("[data-test=username-input]").fill(args.user, timeout=timeout)
            page.locator("[data-test=password-input]").fill(os.environ["SUPERSET_ADMIN_PASSWORD"])
            page.locator("[data-test=login-button]").click()
            page.wait_for_url(lambda url: "/login" not in url, timeout=timeout)
            # the dashboards, through the API with the browser's session cookie
            response = page.request.get(f"{base}/api/v1/dashboard/?q=(page_size:100)")
            if not response.ok:
                raise RuntimeError(f"dashboard list: HTTP {response.status}")
            dashboards = response.json()["result"]
            if not dashboards:
                raise RuntimeError("no dashboards")
            checker = context.new_page()  # about:blank, no CSP: decodes the PNGs
            for d in dashboards:
                slug = d["slug"] or str(d["id"])
                started = time.monotonic()
                page.goto(
                    f"{base}/superset/dashboard/{slug}/",
                    wait_until="domcontentloaded",
                    timeout=timeout,
                )
                page.locator(".dashboard-component-chart-holder").first.wait_for(timeout=timeout)
                page.wait_for_function(CHARTS_SETTLED, timeout=timeout, polling=500)
                page.wait_for_timeout(1500)  # echarts' entry animation
                charts = page.eval_on_selector_all(
                    ".dashboard-component-chart-holder", CHART_STATES
                )
                file = (out / f"dashboard-{slug}.png").resolve()
                png = page.screenshot(path=file, full_page=True)
                image = checker.evaluate(IMAGE_STATS, base64.b64encode(png).decode())
                ok = (
                    bool(charts)
                    and all(c["drawn"] and not c["error"] for c in charts)
                    and image["distinctColours"] > 50
                    and image["nonWhiteShare"] > 0.02
                )
                report["dashboards"].append(
                    {
                        "id": d["id"],
                        "slug": slug,
                        "title": d["dashboard_title"],
                        "charts": charts,
                        "screenshot": str(file),
                        "seconds": round(time.monotonic() - started, 1),
                        "image": image,
                        "ok": ok,
                    }
                )
        finally:
            browser.close()
    report["failures"] = [
        f"dashboard {d['slug']}: {d['charts']} {d['image']}"
        for d in report["dashboards"]
        if not d["ok"]
    ]
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["verify", "load", "screenshots"])
    parser.add_argument("--url", default=os.environ.get("SUPERSET_URL", "http://127.0.0.1:8088"))
    parser.add_argument("--user", default=os.environ.get("SUPERSET_ADMIN_USERNAME", "admin"))
    parser.add_argument("--bundle", default=str(BUNDLE_DIR))
    parser.add_argument("--duckdb", help="the published snapshot, readable on this machine")
    parser.add_argument(
        "--duckdb-container", help="or: a container with python+duckdb that mounts the snapshot"
    )
    parser.add_argument("--container-duckdb-path", default="/published/taxi.duckdb")
    parser.add_argument(
        "--duration", type=float, default=0, help="load: seconds (0: until stopped)"
    )
    parser.add_argument("--stop-file", help="load: stop when this file exists")
    parser.add_argument("--pause", type=float, default=0.2, help="load: seconds between rounds")
    parser.add_argument("--request-timeout", type=float, default=60)
    parser.add_argument("--out", default="artifacts/screenshots")
    parser.add_argument("--page-timeout", type=float, default=90, help="screenshots: seconds")
    parser.add_argument("--report", help="also write the JSON report here")
    args = parser.parse_args(argv)
    if not os.environ.get("SUPERSET_ADMIN_PASSWORD"):
        raise SystemExit("superset_checks: SUPERSET_ADMIN_PASSWORD is not set")
    try:
        report = {"verify": verify, "load": load, "screenshots": screenshots}[args.command](args)
    except Exception as exc:
        report = {"check": args.command, "failures": [f"{type(exc).__name__}: {exc}"]}
    report["ok"] = not report["failures"]
    text = json.dumps(report, indent=2, default=str)
    print(text)
    if args.report:
        Path(args.report).parent.mkdir(parents=True, exist_ok=True)
        Path(args.report).write_text(text)
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
