#!/usr/bin/env python3
"""End-to-end checks of a running Superset of the taxi platform, through its HTTP API: in-process
from ci/e2e.py, and from the command line (tests/e2e/standalone.sh; the screenshots need the
Playwright of ci/pyproject.toml: `uv run --project ci`).

    export SUPERSET_ADMIN_PASSWORD=...
    superset_checks.py verify --url http://127.0.0.1:8088 (--duckdb PATH | --duckdb-container NAME)
    superset_checks.py load --url ... [--duration 60 | --stop-file F]
    superset_checks.py screenshots --url ... --out DIR

Each prints a JSON report (also written to --report) and exits non-zero on failure; what each
checks is in the docstrings of verify, ChartLoop and screenshots.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import json
import math
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
import yaml

BUNDLE_DIR = Path(__file__).resolve().parents[2] / "dashboards"
Rows = list[list[Any]]


# --- the bundle and the SQL of its charts --------------------------------------------------------


def read_bundle(src: Path = BUNDLE_DIR) -> dict[str, dict[str, dict[str, Any]]]:
    """{'databases'|'datasets'|'charts'|'dashboards': {uuid: doc}}"""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for kind in ("databases", "datasets", "charts", "dashboards"):
        out[kind] = {}
        for file in sorted((src / kind).rglob("*.yaml")):
            doc = {**yaml.safe_load(file.read_text()), "_file": str(file.relative_to(src))}
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
    if value is None or isinstance(value, bool):
        return {None: "NULL", True: "TRUE", False: "FALSE"}[value]
    if isinstance(value, (int, float)):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


def chart_sql(chart: dict[str, Any], dataset: dict[str, Any]) -> tuple[str, list[str]]:
    """The SQL equivalent of a chart's saved query, and the result column names.

    Supports what the bundle uses (saved metrics, simple/SQL adhoc metrics, plain columns, the
    usual filter operators, TEMPORAL_RANGE 'No filter'); anything else raises ValueError so a new
    chart cannot silently escape the comparison.
    """

    def unsupported(what: str) -> ValueError:
        return ValueError(f"{chart['slice_name']}: {what}")

    qc = chart["query_context"]
    qc = json.loads(qc) if isinstance(qc, str) else qc
    if not qc or len(qc.get("queries", [])) != 1:
        raise unsupported("expected exactly one query in query_context")
    query = qc["queries"][0]
    saved = {m["metric_name"]: m["expression"] for m in dataset.get("metrics", [])}
    physical = {c["column_name"] for c in dataset.get("columns", [])}
    select, names, group, metric_sql = [], [], [], {}
    for col in query.get("columns", []):
        if not isinstance(col, str) or col not in physical:
            raise unsupported(f"only plain columns of the dataset are supported, not {col}")
        select.append(f"{quote_ident(col)} AS {quote_ident(col)}")
        group.append(quote_ident(col))
        names.append(col)
    for metric in query.get("metrics", []):
        if isinstance(metric, str) and metric in saved:
            expr, label = saved[metric], metric
        elif isinstance(metric, dict) and metric.get("expressionType") == "SIMPLE":
            expr = f"{metric['aggregate']}({quote_ident(metric['column']['column_name'])})"
            label = metric.get("label") or expr
        elif isinstance(metric, dict) and metric.get("expressionType") == "SQL":
            expr, label = metric["sqlExpression"], metric.get("label") or metric["sqlExpression"]
        else:
            raise unsupported(f"unsupported or unknown metric {metric}")
        metric_sql[label] = expr
        select.append(f"{expr} AS {quote_ident(label)}")
        names.append(label)
    where = []
    for flt in query.get("filters", []):
        col, op, val = quote_ident(flt["col"]), flt["op"], flt.get("val")
        if op == "TEMPORAL_RANGE":
            if val not in (None, "No filter"):
                raise unsupported("only 'No filter' time ranges are supported")
        elif op in ("IS TRUE", "IS FALSE", "IS NULL", "IS NOT NULL"):
            where.append(f"{col} {op}")
        elif op in ("IN", "NOT IN"):
            where.append(f"{col} {op} ({', '.join(sql_literal(v) for v in val)})")
        elif op in ("==", "!=", ">", "<", ">=", "<=", "LIKE", "ILIKE"):
            where.append(f"{col} {({'==': '=', '!=': '<>'}).get(op, op)} {sql_literal(val)}")
        else:
            raise unsupported(f"unsupported filter operator {op}")
    if (query.get("extras") or {}).get("where"):
        where.append(f"({query['extras']['where']})")
    order = []
    for target, ascending in query.get("orderby", []):
        lookup = {**saved, **{c: quote_ident(c) for c in physical}, **metric_sql}
        if not isinstance(target, str) or target not in lookup:
            raise unsupported(f"unsupported orderby {target}")
        order.append(f"{lookup[target]} {'ASC' if ascending else 'DESC'}")
    schema = dataset.get("schema")
    table = (quote_ident(schema) + "." if schema else "") + quote_ident(dataset["table_name"])
    sql = f"SELECT {', '.join(select)} FROM {table}"
    sql += " WHERE " + " AND ".join(where) if where else ""
    sql += " GROUP BY " + ", ".join(group) if group and metric_sql else ""
    sql += " ORDER BY " + ", ".join(order) if order else ""
    sql += f" LIMIT {int(query['row_limit'])}" if query.get("row_limit") else ""
    return sql, names


def normalise(value: Any) -> Any:
    """One comparable form for Superset's JSON values and DuckDB's Python values."""
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        value = dt.datetime(value.year, value.month, value.day)
    if isinstance(value, dt.datetime):  # Superset returns temporal columns as epoch milliseconds
        return round(value.replace(tzinfo=value.tzinfo or dt.UTC).timestamp() * 1000)
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if hasattr(value, "__float__"):  # int, float, Decimal
        number = float(value)
        return None if math.isnan(number) else float(f"{number:.9g}")
    return value


def compare_rows(api_rows: Rows, db_rows: Rows, ordered: bool) -> str | None:
    """None when equal; otherwise a short description of the difference."""
    left = [tuple(normalise(v) for v in row) for row in api_rows]
    right = [tuple(normalise(v) for v in row) for row in db_rows]
    if not ordered:
        left, right = sorted(left, key=repr), sorted(right, key=repr)
    if len(left) != len(right):
        return f"{len(left)} rows from Superset, {len(right)} from DuckDB"
    pairs = enumerate(zip(left, right, strict=True))
    return next((f"row {i}: Superset {a} != DuckDB {b}" for i, (a, b) in pairs if a != b), None)


# --- direct queries on the snapshot: here (--duckdb) or in a container that mounts it ------------

# prints every statement's rows as JSON, dates as {"d": isoformat}
_DIRECT_QUERY_CODE = r"""
import datetime, decimal, json, sys, duckdb
req = json.load(sys.stdin)
con = duckdb.connect(req["path"], read_only=True, config={"enable_external_access": False})
out = [[list(r) for r in con.execute(sql).fetchall()] for sql in req["sql"]]
def enc(o):
    if isinstance(o, (datetime.date, datetime.datetime)): return {"d": o.isoformat()}
    if isinstance(o, decimal.Decimal): return float(o)
    raise TypeError(type(o))
json.dump(out, sys.stdout, default=enc)
"""


def direct_queries(path: str, container: str | None = None) -> Callable[[list[str]], list[Rows]]:
    """A function running statements read-only on the snapshot at `path`, in `container` if given
    (one with Python and duckdb, e.g. the superset service), else with this Python."""
    command = ["docker", "exec", "-i", container, "python"] if container else [sys.executable]

    def run(sqls: list[str]) -> list[Rows]:
        request = json.dumps({"path": path, "sql": sqls})
        command_line = [*command, "-c", _DIRECT_QUERY_CODE]
        proc = subprocess.run(
            command_line, input=request, capture_output=True, text=True, timeout=120
        )
        if proc.returncode != 0:
            raise RuntimeError(f"direct query failed: {proc.stderr.strip()[-800:]}")
        return json.loads(
            proc.stdout,
            object_hook=lambda o: dt.datetime.fromisoformat(o["d"]) if set(o) == {"d"} else o,
        )

    return run


# --- HTTP ----------------------------------------------------------------------------------------


class Api(requests.Session):
    """Superset's REST API, logged in (bearer token, and the CSRF token its POSTs need)."""

    def __init__(self, base_url: str, timeout: float = 60.0):
        super().__init__()
        self.base, self.timeout = base_url.rstrip("/"), timeout
        self.headers["Referer"] = self.base + "/"

    def request(self, method, url, *args, **kwargs):  # relative paths, a timeout by default
        kwargs.setdefault("timeout", self.timeout)
        return super().request(method, self.base + url, *args, **kwargs)

    def login(self, username: str, password: str) -> Api:
        body = {"username": username, "password": password, "provider": "db", "refresh": False}
        response = self.post("/api/v1/security/login", json=body)
        if response.status_code != 200 or "access_token" not in response.text:
            raise RuntimeError(f"login failed: HTTP {response.status_code} {response.text[:200]}")
        self.headers["Authorization"] = f"Bearer {response.json()['access_token']}"
        self.headers["X-CSRFToken"] = self.get("/api/v1/security/csrf_token/").json()["result"]
        return self

    def listing(self, resource: str, columns: list[str]) -> list[dict[str, Any]]:
        q = f"(columns:!({','.join(columns)}),page_size:100)"
        response = self.get(f"/api/v1/{resource}/", params={"q": q})
        if response.status_code != 200:
            raise RuntimeError(f"/api/v1/{resource}/: HTTP {response.status_code}")
        return response.json()["result"]


def chart_data(api: Api, chart_id: int) -> tuple[list[str], Rows]:
    response = api.get(f"/api/v1/chart/{chart_id}/data/", params={"force": "true"})
    if response.status_code != 200:
        raise RuntimeError(f"chart {chart_id}: HTTP {response.status_code} {response.text[:300]}")
    result = response.json()["result"][0]
    if result.get("status") != "success" or result.get("error"):
        raise RuntimeError(f"chart {chart_id}: {result.get('status')} {result.get('error')}")
    return result["colnames"], [[row.get(c) for c in result["colnames"]] for row in result["data"]]


# --- verify --------------------------------------------------------------------------------------

READ_PASSWD = "SELECT * FROM read_csv('/etc/passwd')"
# statements that must be refused, through SQL Lab and as a chart query's metric
PROBES = [
    *(("sqllab", sql) for sql in (
        "CREATE TABLE main.pwned AS SELECT 1 AS a",
        "INSERT INTO main.daily_metrics (trip_count) VALUES (1)",
        "DELETE FROM main.daily_metrics",
        "COPY (SELECT 1 AS a) TO '/tmp/superset_probe.csv'",
        "ATTACH '/tmp/superset_probe.duckdb' AS probe",
        READ_PASSWD,
        "SELECT * FROM read_text('/etc/passwd')",
        "INSTALL httpfs",
        "SET enable_external_access = true",
    )),
    ("chart", "(SELECT COUNT(*) FROM read_csv('/etc/passwd'))"),
    ("chart", "(SELECT COUNT(*) FROM glob('/*'))"),
]  # fmt: skip


def probe(api: Api, via: str, sql: str, database_id: int, dataset_id: int) -> dict[str, Any]:
    """One probe: refused unless Superset answers success (and never with /etc/passwd's text)."""
    if via == "sqllab":
        options = {"runAsync": False, "queryLimit": 10, "select_as_cta": False, "tab": "probe"}
        ctas = {
            "tmp_table_name": "",
            "ctas_method": "TABLE",
            "client_id": f"p{abs(hash(sql))}"[:10],
        }
        body = {"database_id": database_id, "sql": sql, "schema": "main", **options, **ctas}
        response = api.post("/api/v1/sqllab/execute/", json=body)
        answers = [response.json()] if "json" in response.headers.get("content-type", "") else []
    else:
        metric = {"expressionType": "SQL", "sqlExpression": sql, "label": "probe"}
        query = {"columns": [], "row_limit": 10, "filters": [], "metrics": [metric]}
        datasource = {"id": dataset_id, "type": "table"}
        body = {"datasource": datasource, "force": True, "result_type": "full", "queries": [query]}
        body["result_format"] = "json"
        response = api.post("/api/v1/chart/data", json=body)
        answers = response.json().get("result") or [] if response.status_code == 200 else []
    succeeded = (
        response.status_code == 200
        and answers
        and all(isinstance(a, dict) and a.get("status") == "success" for a in answers)
    )
    refused = not succeeded and "root:x:0:0" not in response.text
    answer = {"http_status": response.status_code, "answer": response.text[:200]}
    return {"via": via, "sql": sql, "refused": refused, **answer}


def virtual_dataset_probe(api: Api, database_id: int) -> dict[str, Any]:
    """A virtual dataset whose SQL reads a file: saving may be refused (DuckDB reads its columns);
    if it is saved, its chart query must be refused (external access disabled on the connection)."""
    body = {"database": database_id, "schema": "main", "table_name": "probe_read_csv"}
    response = api.post("/api/v1/dataset/", json={**body, "sql": READ_PASSWD})
    dataset_id = response.json().get("id") if response.status_code in (200, 201) else None
    entry = {"via": "virtual dataset", "sql": READ_PASSWD, "refused_at": "dataset creation"}
    if not dataset_id:
        return {**entry, "refused": True, "http_status": response.status_code}
    try:
        query = probe(api, "chart", "COUNT(*)", database_id, dataset_id)
        return {**query, **entry, "refused_at": "chart query"}
    finally:
        api.delete(f"/api/v1/dataset/{dataset_id}")


def verify(url: str, user: str, password: str, direct: Callable) -> dict[str, Any]:
    """/health is OK; API login; every dashboard of the bundle (superset/dashboards) is listed with
    exactly its charts, nothing duplicated; every chart's /api/v1/chart/{id}/data/ returns the same
    rows as the chart's saved query (query_context in the bundle, rebuilt as SQL by chart_sql,
    independently of Superset) run on the published snapshot by `direct` (direct_queries); the
    connection is read-only and SQL Lab / chart queries cannot write, attach or read files."""
    report: dict[str, Any] = {"check": "verify", "url": url, "failures": []}
    fail = report["failures"].append
    bundle = read_bundle()
    api = Api(url)
    report["health"] = api.get("/health").text.strip()
    if report["health"] != "OK":
        fail(f"/health answered {report['health']!r}")
    api.login(user, password)

    # every dashboard of the bundle, with exactly its charts; one object per name of the bundle
    # (a restart or re-import must not duplicate anything)
    listed = {d["uuid"]: d for d in api.listing("dashboard", ["id", "uuid", "dashboard_title"])}
    charts = {c["uuid"]: c for c in api.listing("chart", ["id", "uuid", "slice_name"])}
    report["dashboards"] = []
    for uuid, dash in bundle["dashboards"].items():
        entry = {"title": dash["dashboard_title"], "listed": uuid in listed}
        if uuid not in listed:
            fail(f"dashboard {dash['dashboard_title']!r} not listed")
        else:
            response = api.get(f"/api/v1/dashboard/{listed[uuid]['id']}/charts")
            result = response.json()["result"] if response.status_code == 200 else []
            names = sorted(c["slice_name"] for c in result)
            wanted = sorted(bundle["charts"][c]["slice_name"] for c in dashboard_chart_uuids(dash))
            entry.update(id=listed[uuid]["id"], charts=names)
            if names != wanted:
                fail(f"dashboard {dash['dashboard_title']!r}: charts {names} != {wanted}")
        report["dashboards"].append(entry)
    report["counts"] = {}
    for kind, key in (
        ("dashboard", "dashboard_title"),
        ("chart", "slice_name"),
        ("dataset", "table_name"),
        ("database", "database_name"),
    ):
        items = Counter(item[key] for item in api.listing(kind, ["id", key]))
        report["counts"][kind] = sum(items.values())
        names = {doc[key] for doc in bundle[f"{kind}s"].values()}
        # every name of the bundle once; and no dashboard at all twice
        for name in sorted(names | set(items) if kind == "dashboard" else names):
            if items[name] != 1:
                fail(f"{items[name]} {kind}s named {name!r} (expected exactly 1)")

    # chart data == direct query on the snapshot
    plan = [
        (uuid, chart, *chart_sql(chart, bundle["datasets"][str(chart["dataset_uuid"])]))
        for uuid, chart in bundle["charts"].items()
    ]
    report["charts"] = []
    for (uuid, chart, sql, cols), db_rows in zip(plan, direct([p[2] for p in plan]), strict=True):
        name = chart["slice_name"]
        entry: dict[str, Any] = {"chart": name, "sql": sql}
        report["charts"].append(entry)
        try:
            if uuid not in charts:
                raise RuntimeError(f"chart {name!r} missing in Superset")
            api_cols, api_rows = chart_data(api, charts[uuid]["id"])
        except RuntimeError as exc:
            fail(str(exc))
            entry["error"] = str(exc)
            continue
        # compared as multisets: the order of rows with equal sort keys is not determined
        diff = compare_rows(api_rows, db_rows, ordered=False)
        entry.update(id=charts[uuid]["id"], rows=len(api_rows), direct_rows=len(db_rows))
        entry["equal"] = diff is None and api_cols == cols
        if api_cols != cols:
            fail(f"{name}: columns {api_cols} != {cols}")
        if diff:
            fail(f"{name}: {diff}")
        if not api_rows:
            fail(f"{name}: no rows")

    # the connection's settings and what SQL Lab / chart queries may do
    flags = ["allow_dml", "allow_file_upload", "allow_ctas", "allow_cvas"]
    databases = api.listing("database", ["id", "uuid", "database_name", *flags])
    database = report["database"] = next(d for d in databases if d["uuid"] in bundle["databases"])
    for flag in flags:
        if database.get(flag):
            fail(f"database {database['database_name']!r} has {flag}=true")
    datasets = api.listing("dataset", ["id", "table_name"])
    dataset_id = next(d["id"] for d in datasets if d["table_name"] == "daily_metrics")
    probes = [probe(api, via, sql, database["id"], dataset_id) for via, sql in PROBES]
    report["security_probes"] = [*probes, virtual_dataset_probe(api, database["id"])]
    for result in report["security_probes"]:
        if not result["refused"]:
            fail(f"not refused via {result['via']}: {result['sql']}")
    return report


# --- chart queries in a loop ---------------------------------------------------------------------


@dataclass
class ChartQuery:
    at: float  # time.monotonic() when the query started
    seconds: float
    error: str | None


class ChartLoop:
    """Every chart's data, one chart after the other, in a background thread until stopped, each
    query timed, so that failures and latency can be told per window (e.g. while a backfill ran).
    """

    RELOGIN_SECONDS = 300  # Superset's API access token lasts 15 minutes

    def __init__(self, url: str, user: str, password: str, pause=0.2, timeout=60.0):
        self.login = lambda: Api(url, timeout).login(user, password)
        self.pause = pause
        self.queries: list[ChartQuery] = []
        self.charts: dict[int, str] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="chart-loop")

    def start(self) -> None:
        listing = self.login().listing("chart", ["id", "slice_name"])
        self.charts = {c["id"]: c["slice_name"] for c in listing}
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=120)

    def _loop(self) -> None:
        api, logged_in = self.login(), time.monotonic()
        while not self._stop.is_set():
            if time.monotonic() - logged_in > self.RELOGIN_SECONDS:
                api, logged_in = self.login(), time.monotonic()
            for chart_id in self.charts:
                start, error = time.monotonic(), None
                try:
                    if not chart_data(api, chart_id)[1]:
                        error = f"chart {chart_id}: no rows"
                except Exception as exc:
                    error = str(exc)[:300]
                if error:
                    error = f"{dt.datetime.now():%H:%M:%S} {error}"
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
            "error_samples": errors[:10],
            "failures": [f"{len(errors)} of {len(window)} chart queries failed"] * bool(errors),
        }
        if latencies:  # nearest-rank percentiles
            report["latency_ms"] = {
                name: round(latencies[max(0, math.ceil(fraction * len(latencies)) - 1)] * 1000)
                for name, fraction in (("median", 0.5), ("p95", 0.95), ("max", 1.0))
            }
        else:
            report["failures"].append("no chart query was made")
        return report


def load(loop: ChartLoop, duration: float = 0, stop_file: str | None = None) -> dict[str, Any]:
    """Queries every chart's data until the duration ends, the stop file appears, or SIGTERM."""
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    deadline = time.monotonic() + duration if duration else math.inf
    loop.start()
    while not stop.wait(0.5) and time.monotonic() < deadline:
        if stop_file and Path(stop_file).exists():
            break
    loop.stop()
    return {"check": "load", **loop.stats()}


# --- screenshots ---------------------------------------------------------------------------------

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-sync"]
CHROMIUM_ARGS += ["--disable-background-networking", "--disable-component-update"]
CHROMIUM_ARGS += ["--disable-dev-shm-usage"]
# per chart holder: its title, something drawn (canvas, svg, table or a figure), an error shown,
# and whether it finished loading (drawn, or any alert)
CHART_STATES = """(holders) => holders.map((h) => {
  const title = (h.querySelector('[data-test="editable-title"], .header-title, .editable-title')
    ?.innerText || '').trim();
  const alert = h.querySelector('[role="alert"], .ant-alert-error');
  const body = h.querySelector('.chart-container, .slice_container');
  const drawn = !!h.querySelector('canvas, svg, table') || /\\d/.test(body?.innerText || '');
  const done = !h.querySelector('.loading, [aria-label="Loading"], [data-test="loading-indicator"]')
    && (drawn || !!h.querySelector('[role="alert"], .ant-alert'));
  return { title, drawn, done, error: alert ? alert.innerText.slice(0, 300) : null };
})"""
HOLDERS = ".dashboard-component-chart-holder"
CHARTS_SETTLED = f"""() => {{
  const states = ({CHART_STATES})([...document.querySelectorAll('{HOLDERS}')]);
  return states.length > 0 && states.every((s) => s.done);
}}"""
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


def screenshots(url: str, user: str, password: str, out: Path, timeout=90.0) -> dict[str, Any]:
    """Logs in with a headless Chromium, saves a full-page PNG of every dashboard, and checks that
    every chart rendered (drawn, no error) and that the PNG is not blank."""
    # imported here: Superset's own environment, which runs the other subcommands, has no Playwright
    from playwright.sync_api import sync_playwright

    # the system's Chromium: Playwright's own browser download is not used (no internet)
    chromium = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
    if not Path(chromium).is_file():
        raise RuntimeError(
            f"no Chromium at {chromium}: install Debian's (apt-get install chromium) or point "
            "CHROMIUM_PATH at a Chrome/Chromium binary"
        )
    base, ms = url.rstrip("/"), timeout * 1000
    out.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {"check": "screenshots", "url": base, "dashboards": []}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1600, "height": 1000})
            page = context.new_page()
            page.goto(f"{base}/login/", wait_until="domcontentloaded", timeout=ms)
            page.locator("[data-test=username-input]").fill(user, timeout=ms)
            page.locator("[data-test=password-input]").fill(password)
            page.locator("[data-test=login-button]").click()
            page.wait_for_url(lambda u: "/login" not in u, timeout=ms)
            # the dashboards, through the API with the browser's session cookie
            response = page.request.get(f"{base}/api/v1/dashboard/?q=(page_size:100)")
            if not response.ok or not response.json()["result"]:
                raise RuntimeError(f"no dashboards listed: HTTP {response.status}")
            checker = context.new_page()  # about:blank, no CSP: decodes the PNGs
            for d in response.json()["result"]:
                slug = d["slug"] or str(d["id"])
                page.goto(
                    f"{base}/superset/dashboard/{slug}/", wait_until="domcontentloaded", timeout=ms
                )
                page.locator(HOLDERS).first.wait_for(timeout=ms)
                page.wait_for_function(CHARTS_SETTLED, timeout=ms, polling=500)
                page.wait_for_timeout(1500)  # echarts' entry animation
                charts = page.eval_on_selector_all(HOLDERS, CHART_STATES)
                file = (out / f"dashboard-{slug}.png").resolve()
                png = page.screenshot(path=file, full_page=True)
                image = checker.evaluate(IMAGE_STATS, base64.b64encode(png).decode())
                ok = (
                    bool(charts)
                    and all(c["drawn"] and not c["error"] for c in charts)
                    and image["distinctColours"] > 50
                    and image["nonWhiteShare"] > 0.02
                )
                entry = {"slug": slug, "title": d["dashboard_title"], "screenshot": str(file)}
                report["dashboards"].append({**entry, "charts": charts, "image": image, "ok": ok})
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
    parser.add_argument("--duckdb", help="verify: the published snapshot, readable here")
    parser.add_argument("--duckdb-container", help="verify: or a container that mounts it")
    parser.add_argument("--container-duckdb-path", default="/published/taxi.duckdb")
    parser.add_argument("--duration", type=float, default=0, help="load: seconds (0: until stop)")
    parser.add_argument("--stop-file", help="load: stop when this file exists")
    parser.add_argument("--pause", type=float, default=0.2, help="load: seconds between rounds")
    parser.add_argument("--out", type=Path, default=Path("artifacts/screenshots"))
    parser.add_argument("--report", type=Path, help="also write the JSON report here")
    args = parser.parse_args(argv)
    password = os.environ.get("SUPERSET_ADMIN_PASSWORD")
    if not password:
        raise SystemExit("superset_checks: SUPERSET_ADMIN_PASSWORD is not set")
    if args.command == "verify" and not (args.duckdb or args.duckdb_container):
        raise SystemExit("superset_checks verify: give --duckdb PATH or --duckdb-container NAME")
    try:
        if args.command == "verify":
            path = args.duckdb or args.container_duckdb_path
            direct = direct_queries(path, None if args.duckdb else args.duckdb_container)
            report = verify(args.url, args.user, password, direct)
        elif args.command == "load":
            loop = ChartLoop(args.url, args.user, password, args.pause)
            report = load(loop, args.duration, args.stop_file)
        else:
            report = screenshots(args.url, args.user, password, args.out)
    except Exception as exc:
        report = {"check": args.command, "failures": [f"{type(exc).__name__}: {exc}"]}
    report["ok"] = not report["failures"]
    text = json.dumps(report, indent=2, default=str)
    print(text)
    if args.report:
        args.report.parent.mkdir(parents=True, exist_ok=True)
        args.report.write_text(text)
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
