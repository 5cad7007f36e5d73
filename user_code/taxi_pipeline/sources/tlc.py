"""Download the TLC's files: streamed to disk, retried by urllib3, verified, then moved into place.

Files live at ``{base_url}/trip-data/yellow_tripdata_YYYY-MM.parquet`` and
``{base_url}/misc/taxi_zone_lookup.csv`` (TAXI_TLC_BASE_URL).

What one download does:

1. GET with ``stream=True`` and ``Accept-Encoding: identity`` through a requests session whose
   ``HTTPAdapter`` carries a ``urllib3.util.Retry``; the body goes to a temporary
   ``.<name>.*.part`` file in ``dest_dir`` (same filesystem, so the final move is atomic).
2. Transient failures are retried with urllib3's exponential backoff (none before the first
   retry, then ``backoff_seconds * 2**n``, or the server's ``Retry-After``; at most 60 s):
   connection errors and timeouts, HTTP 5xx and 429, and a body that breaks off short of its
   ``Content-Length``. ``retries=4`` means up to 5 attempts. Each retry is reported to
   ``on_retry`` (the Dagster log) with its cause and wait.
3. Permanent failures are not retried: 404/403/410 (the month is not published yet or the base
   URL is wrong), any other 4xx/3xx, an HTML page instead of the file, and a file that fails
   verification (`verify_trips_file` / `verify_zones_file`).
4. Only a file that passed every check the loader will apply (the loaders call the same
   `verify_*` functions) is ``os.replace``-d onto ``dest_dir/<TLC file name>``, with the mode the
   process's umask gives new files; on any failure the temporary file is deleted, so a previously
   downloaded good file is never clobbered.

Every failure raises `DownloadError` (verification failures its subclass `InvalidFileError`)
whose message names the URL or file, the cause, and the fix for that cause: waiting for the TLC,
the base URL or a proxy, a retry, or teaching `layout.py` a new file format.
"""

from __future__ import annotations

import csv
import io
import logging
import os
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Self

import pyarrow as pa
import pyarrow.parquet as pq
import requests
from requests.adapters import HTTPAdapter
from urllib3 import BaseHTTPResponse
from urllib3.exceptions import MaxRetryError, NewConnectionError
from urllib3.exceptions import TimeoutError as HTTPTimeoutError
from urllib3.util import Retry

from taxi_pipeline.sources.layout import (
    MAX_ZONES,
    MIN_ZONES,
    NUMERIC_TRIP_COLUMNS,
    REQUIRED_TRIP_COLUMNS,
    STRING_TRIP_COLUMNS,
    TIMESTAMP_TRIP_COLUMNS,
    TRIP_ID_ORDINAL_DIGITS,
    ZONE_COLUMNS,
    ZONES_FILE_NAME,
    new_part_file,
    parse_month,
    trips_file_name,
)

log = logging.getLogger(__name__)

CHUNK_BYTES = 1 << 20
MAX_BACKOFF_SECONDS = 60
RETRY_STATUSES = frozenset({429, *range(500, 600)})
BASE_URL_HINT = "check TAXI_TLC_BASE_URL"
# The fix for each kind of cause (a cause names its own when it is not a damaged transfer).
RETRY_FIX = "the transfer was damaged or cut short: materialize it again to download it anew"
HTML_FIX = (
    "a proxy, captive portal or web site answered instead of the TLC file store: fix the network "
    "(HTTP(S)_PROXY, portal login) or set TAXI_TLC_BASE_URL to the file store or a mirror of it"
)
NOT_PUBLISHED_FIX = (
    "the month is not published yet (the TLC publishes each month about two months after it "
    "ends): wait for it, or narrow the months (TAXI_START_MONTH/TAXI_END_MONTH); if months "
    f"that are out fail too, {BASE_URL_HINT}"
)
ZONES_NOT_FOUND_FIX = (
    f"the zone lookup is always published, so the base URL is wrong: {BASE_URL_HINT}"
)
SERVER_FIX = (
    "the server or network is failing or slow: retry later (materialize again); if it persists, "
    f"{BASE_URL_HINT} and the network"
)
# A month file is the right month when at least this share of its pickups fall inside it
# (real files carry a few stray rows from other months or years).
MIN_SHARE_IN_MONTH = 0.5

RetryCallback = Callable[[int, str, float], None]


class DownloadError(Exception):
    """A download failed; the message names the URL or file, the cause and the fix."""

    def __init__(
        self,
        message: str,
        *,
        url: str | None = None,
        path: Path | None = None,
        status: int | None = None,
        attempts: int = 0,
    ) -> None:
        super().__init__(message)
        self.url = url
        self.path = path
        self.status = status
        self.attempts = attempts


class InvalidFileError(DownloadError):
    """A file (downloaded or on disk) is not what it should be: HTML, truncated, wrong columns..."""


class _Invalid(Exception):
    """Raised by the file checks with the cause and, unless the file is merely damaged (empty,
    truncated, unreadable: fetching it again helps), the fix for that cause. Callers add the
    file or URL."""

    def __init__(self, cause: str, fix: str | None = None) -> None:
        super().__init__(cause)
        self.fix = fix


def _format_fix(what: str) -> str:
    return (
        "the TLC changed the file format: the loader's layout in taxi_pipeline/sources/layout.py "
        f"must learn it ({what}); the files and data already loaded are kept"
    )


# --------------------------------------------------------------------------------------------
# URLs


def trips_url(month: str, base_url: str) -> str:
    return f"{base_url.rstrip('/')}/trip-data/{trips_file_name(month)}"


def zones_url(base_url: str) -> str:
    return f"{base_url.rstrip('/')}/misc/{ZONES_FILE_NAME}"


# --------------------------------------------------------------------------------------------
# Verification


def _sniff_html(path: Path) -> None:
    with open(path, "rb") as fh:
        head = fh.read(512).lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if head.startswith((b"<!doctype html", b"<html", b"<head", b"<body", b"<?xml")):
        raise _Invalid(
            "it is an HTML/XML page, not the data file (an error or login page?)", HTML_FIX
        )


def _check_trips(path: Path, month: str, check_pickups: bool = True) -> int:
    start, end = parse_month(month)
    if not path.is_file():
        raise _Invalid(
            "the file does not exist", f"materialize taxi_trips_file for {month} to download it"
        )
    size = path.stat().st_size
    if size == 0:
        raise _Invalid("the file is empty (0 bytes)")
    _sniff_html(path)
    with open(path, "rb") as fh:
        head = fh.read(4)
        fh.seek(max(0, size - 4))
        tail = fh.read(4)
    if head != b"PAR1":
        raise _Invalid(
            f"it is not a parquet file (starts with {head!r}, not b'PAR1')",
            f"the server sent another kind of file: {BASE_URL_HINT} (it must serve the TLC's "
            "parquet files under trip-data/)",
        )
    if tail != b"PAR1":
        raise _Invalid(
            f"the parquet file is truncated or corrupt ({size} bytes, no parquet footer at the end)"
        )
    try:
        pfile = pq.ParquetFile(path)
        schema = pfile.schema_arrow
        num_rows = pfile.metadata.num_rows
    except Exception as exc:  # pyarrow raises ArrowInvalid, OSError, ...
        raise _Invalid(f"pyarrow cannot open it as parquet ({type(exc).__name__}: {exc})") from exc

    by_lower = {name.lower(): name for name in schema.names}
    missing = sorted(c for c in REQUIRED_TRIP_COLUMNS if c.lower() not in by_lower)
    if missing:
        raise _Invalid(
            f"required columns are missing: {', '.join(missing)} "
            f"(the file has: {', '.join(schema.names)})",
            _format_fix(
                f"REQUIRED_TRIP_COLUMNS and loading.py's _SOURCE_COLUMNS must map the columns "
                f"that replaced {', '.join(missing)}"
            ),
        )
    wrong = []
    for wanted in sorted(REQUIRED_TRIP_COLUMNS | {"congestion_surcharge", "airport_fee"}):
        name = by_lower.get(wanted.lower())
        if name is None:
            continue
        typ = schema.field(name).type
        if wanted in TIMESTAMP_TRIP_COLUMNS:
            ok = pa.types.is_timestamp(typ)
        elif wanted in STRING_TRIP_COLUMNS:
            ok = pa.types.is_string(typ) or pa.types.is_large_string(typ) or pa.types.is_null(typ)
        else:
            assert wanted in NUMERIC_TRIP_COLUMNS
            ok = pa.types.is_integer(typ) or pa.types.is_floating(typ) or pa.types.is_null(typ)
        if not ok:
            wrong.append((name, typ))
    if wrong:
        raise _Invalid(
            f"columns have unexpected types: {', '.join(f'{n} is {t}' for n, t in wrong)}",
            _format_fix(
                "TIMESTAMP_/STRING_/NUMERIC_TRIP_COLUMNS must accept "
                f"{', '.join(f'{n} as {t}' for n, t in wrong)}, and loading.py's _SOURCE_COLUMNS "
                "cast it"
            ),
        )
    if num_rows == 0:
        raise _Invalid(
            "the parquet file holds no trips (0 rows)",
            "the TLC published the month without trips: wait for a corrected file, or leave the "
            "month out (TAXI_START_MONTH/TAXI_END_MONTH)",
        )
    if num_rows >= 10**TRIP_ID_ORDINAL_DIGITS:
        raise _Invalid(
            f"it holds {num_rows} rows: trip ids allow at most "
            f"{10**TRIP_ID_ORDINAL_DIGITS - 1} a month (real months hold 3-15 million)",
            f"it is not one month of yellow-taxi trips: {BASE_URL_HINT}",
        )

    if not check_pickups:
        return num_rows
    pickup_name = by_lower["tpep_pickup_datetime"]
    try:
        pickups = pq.read_table(path, columns=[pickup_name]).column(0)
    except Exception as exc:
        raise _Invalid(f"its pickup times cannot be read ({type(exc).__name__}: {exc})") from exc
    if pickups.type.tz is not None:
        pickups = pickups.cast(pa.timestamp(pickups.type.unit))
    unit = pickups.type
    lo = pa.scalar(datetime(start.year, start.month, start.day), type=unit)
    hi = pa.scalar(datetime(end.year, end.month, end.day), type=unit)
    # Imported here: every process that loads the code location imports this module, and
    # pyarrow.compute alone cost it about 0.3 s; only a download's month check needs it.
    import pyarrow.compute as pc

    inside = pc.sum(pc.and_(pc.greater_equal(pickups, lo), pc.less(pickups, hi))).as_py() or 0
    if inside < MIN_SHARE_IN_MONTH * num_rows:
        lo_seen, hi_seen = pc.min(pickups).as_py(), pc.max(pickups).as_py()
        raise _Invalid(
            f"only {inside} of its {num_rows} pickups fall in {month} "
            f"(pickups range {lo_seen} .. {hi_seen}): it is not the {month} trips file",
            f"the server answered with another month's file: {BASE_URL_HINT}",
        )
    return num_rows


@dataclass
class ZoneLookup:
    """The zone lookup's rows as `load_zones` inserts them, and what it counted on the way."""

    rows: list[tuple[int, str | None, str | None, str | None]]
    blank_lines: int
    blanks_to_null: int


def _check_zones(path: Path, min_rows: int = MIN_ZONES, max_rows: int = MAX_ZONES) -> ZoneLookup:
    if not path.is_file():
        raise _Invalid("the file does not exist", "materialize taxi_zones_file to download it")
    if path.stat().st_size == 0:
        raise _Invalid("the file is empty (0 bytes)")
    _sniff_html(path)
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _Invalid(
            f"it is not UTF-8 text ({exc})", _format_fix("the lookup is read as UTF-8")
        ) from exc
    rows = list(csv.reader(io.StringIO(text, newline="")))
    if not rows:
        raise _Invalid("the CSV has no header")
    header = [cell.strip() for cell in rows[0]]
    if [h.lower() for h in header] != [c.lower() for c in ZONE_COLUMNS]:
        raise _Invalid(
            f"the CSV header is {header!r}, expected {list(ZONE_COLUMNS)!r}",
            _format_fix(f"ZONE_COLUMNS must become {header!r}"),
        )
    zones: list[tuple[int, str | None, str | None, str | None]] = []
    blank_lines = blanks_to_null = 0
    for lineno, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            blank_lines += 1
            continue
        if len(row) != len(ZONE_COLUMNS):
            raise _Invalid(
                f"line {lineno} has {len(row)} fields, expected {len(ZONE_COLUMNS)}: {row!r}",
                _format_fix(f"ZONE_COLUMNS has {len(ZONE_COLUMNS)} columns"),
            )
        try:
            zone_id = int(row[0])
        except ValueError:
            raise _Invalid(
                f"line {lineno}: LocationID {row[0]!r} is not a whole number",
                _format_fix("LocationID is read as a whole number"),
            ) from None
        values = [cell.strip() or None for cell in row[1:]]
        blanks_to_null += values.count(None)
        zones.append((zone_id, values[0], values[1], values[2]))
    if not zones:
        raise _Invalid("the CSV has a header but no zones")

    # The published lookup is inconsistent (or not the TLC's): fetching it again now does not
    # help, and the good copy already in place keeps loading.
    inconsistent = (
        "the published lookup is inconsistent, and the local copy keeps loading: retry once the "
        f"TLC has corrected the file; if this is not the TLC's lookup, {BASE_URL_HINT}"
    )
    duplicates = sorted(i for i, n in Counter(z[0] for z in zones).items() if n > 1)
    if duplicates:
        raise _Invalid(f"it repeats LocationIDs {duplicates[:10]}", inconsistent)
    if not min_rows <= len(zones) <= max_rows:
        raise _Invalid(
            f"it holds {len(zones)} zones, expected {min_rows}..{max_rows} (the TLC's has 265)",
            inconsistent,
        )
    below = sorted(z[0] for z in zones if z[0] < 1)
    if below:
        raise _Invalid(f"it has LocationIDs below 1: {below[:10]}", inconsistent)
    return ZoneLookup(zones, blank_lines, blanks_to_null)


def verify_trips_file(path: Path, month: str, *, check_pickups: bool = True) -> None:
    """Raise `InvalidFileError` unless `path` is a readable TLC trips parquet for `month`.

    Checks: not HTML, parquet magic at both ends (a truncated download has no footer), opens with
    pyarrow, has `REQUIRED_TRIP_COLUMNS` (case-insensitive) with timestamp / numeric / string
    types as appropriate, holds rows, and (unless `check_pickups` is false) most pickups fall
    inside `month`. The loader passes false: it counts out-of-month pickups in its own pass over
    the file anyway, and reading the pickup column a second time cost it about 0.2 s a month.
    """
    path = Path(path)
    try:
        _check_trips(path, month, check_pickups)
    except _Invalid as exc:
        fix = (
            exc.fix or f"delete it and download it again (materialize taxi_trips_file for {month})"
        )
        raise InvalidFileError(
            f"Trips file {path} for {month} is not usable: {exc}. Fix: {fix}.", path=path
        ) from None


def verify_zones_file(
    path: Path, *, min_rows: int = MIN_ZONES, max_rows: int = MAX_ZONES
) -> ZoneLookup:
    """Return the zone lookup at `path`, or raise `InvalidFileError` naming the cause.

    Every check `load_zones` relies on, so a download that passes it cannot be refused by the
    loader: the TLC layout (header, 4 fields a line, whole-number ids, UTF-8 with or without a
    byte-order mark), unique LocationIDs, all at least 1, and `min_rows..max_rows` zones.
    """
    path = Path(path)
    try:
        return _check_zones(path, min_rows, max_rows)
    except _Invalid as exc:
        fix = exc.fix or "delete it and download it again (materialize taxi_zones_file)"
        raise InvalidFileError(
            f"Zone lookup {path} is not usable: {exc}. Fix: {fix}.", path=path
        ) from None


# --------------------------------------------------------------------------------------------
# Download


class _BodyBrokeOff(Exception):
    """The body stopped short of its Content-Length, or stalled past the read timeout."""


class _Retry(Retry):
    """urllib3's Retry that reports each retry it grants to `notify(attempt, cause, delay)`.

    urllib3 calls `increment` once per failed attempt (it raises when none are left), so that is
    where a retry is known. urllib3's own logger is no substitute: it logs connection retries
    without the wait and status retries only at DEBUG, and a run's log needs both, with causes.
    """

    notify: RetryCallback | None = None

    def new(self, **kw: Any) -> Self:
        # increment() builds the next Retry through new(), which knows only urllib3's own fields.
        retry = super().new(**kw)
        retry.notify = self.notify
        return retry

    def increment(
        self,
        method: str | None = None,
        url: str | None = None,
        response: BaseHTTPResponse | None = None,
        error: Exception | None = None,
        **kw: Any,
    ) -> Self:
        retry = super().increment(method, url, response, error, **kw)
        if self.notify is not None:
            # The wait sleep() is about to make: the server's Retry-After if any, else backoff.
            retry_after = retry.get_retry_after(response) if response is not None else None
            delay = retry_after or retry.get_backoff_time()
            cause = (
                _cause(error) if response is None else f"HTTP {response.status} {response.reason}"
            )
            self.notify(len(retry.history), cause, delay)
        return retry


def _cause(error: BaseException | None) -> str:
    """What failed, in words: a timeout, a body that broke off, or the connection."""
    # requests wraps urllib3's MaxRetryError, which holds the last attempt's error.
    wrapped = error.args[0] if isinstance(error, requests.RequestException) and error.args else None
    if isinstance(wrapped, MaxRetryError) and wrapped.reason is not None:
        error = wrapped.reason
    if isinstance(error, _BodyBrokeOff):
        return str(error)
    if isinstance(error, HTTPTimeoutError) and not isinstance(error, NewConnectionError):
        return f"timed out ({error})"
    return f"connection failed ({type(error).__name__}: {error})"


def _gave_up(
    url: str, dest: Path, attempts: int, cause: str, status: int | None = None
) -> DownloadError:
    return DownloadError(
        f"Could not download {url} after {attempts} attempts: {cause}. {dest} is unchanged. "
        f"Fix: {SERVER_FIX}.",
        url=url,
        path=dest,
        status=status,
        attempts=attempts,
    )


def _fetch(
    url: str, dest: Path, tmp: Path, retry: _Retry, timeout: float, not_found_fix: str
) -> _Retry | None:
    """Stream `url` into `tmp`: None once it holds the whole body, else the Retry to go on with.

    urllib3 retries what fails before the body starts: connection errors, timeouts, 429/5xx.
    A streamed body is read after urllib3 has handed the response over, so a body that breaks
    off (short of its Content-Length: urllib3 2 enforces it) is counted on the same Retry here,
    and the caller asks again with the Retry returned.
    """
    with requests.Session() as session:
        for scheme in ("http://", "https://"):
            session.mount(scheme, HTTPAdapter(max_retries=retry))
        try:
            response = session.get(
                url,
                stream=True,
                timeout=(min(timeout, 30), timeout),
                headers={"Accept-Encoding": "identity"},
            )
        except (requests.ConnectionError, requests.Timeout) as exc:
            # Raised only once urllib3 has used up `total` on them.
            raise _gave_up(url, dest, len(retry.history) + retry.total + 1, _cause(exc)) from None
        except requests.RequestException as exc:
            raise DownloadError(
                f"{url} cannot be requested ({type(exc).__name__}: {exc}). Fix: TAXI_TLC_BASE_URL "
                "must be an http(s) URL such as https://d37ci6vzurychx.cloudfront.net.",
                url=url,
            ) from None
        with response:
            status = response.status_code
            reason = response.reason or ""
            attempts = len(response.raw.retries.history) + 1
            if status in (403, 404, 410):
                raise DownloadError(
                    f"{url} was not found (HTTP {status} {reason}). {dest} is unchanged. "
                    f"Fix: {not_found_fix}.",
                    url=url,
                    status=status,
                )
            if status in RETRY_STATUSES:  # urllib3 answers with the last one when retries ran out
                raise _gave_up(url, dest, attempts, f"HTTP {status} {reason}", status)
            if status != 200:
                raise DownloadError(
                    f"{url} answered HTTP {status} {reason} instead of the file. {dest} is "
                    f"unchanged. Fix: the TLC file store answers 200 or 404; {BASE_URL_HINT} "
                    "(a redirect or refusal comes from another server).",
                    url=url,
                    status=status,
                )
            content_type = response.headers.get("Content-Type", "")
            if "html" in content_type.lower():
                raise InvalidFileError(
                    f"{url} answered with an HTML page (Content-Type: {content_type}) instead of "
                    f"the file. {dest} is unchanged. Fix: {HTML_FIX}.",
                    url=url,
                    status=status,
                )
            try:
                with open(tmp, "wb") as out:
                    for chunk in response.iter_content(chunk_size=CHUNK_BYTES):
                        out.write(chunk)
                    out.flush()
                    os.fsync(out.fileno())
            except requests.RequestException as exc:
                broke = _BodyBrokeOff(f"the download was cut short ({type(exc).__name__}: {exc})")
                try:
                    return response.raw.retries.increment("GET", url, error=broke)
                except MaxRetryError:
                    raise _gave_up(url, dest, attempts, str(broke)) from None
    return None


def _download(
    url: str,
    dest: Path,
    check: Callable[[Path], object],
    *,
    not_found_fix: str,
    retries: int,
    backoff_seconds: float,
    timeout: float,
    on_retry: RetryCallback | None,
) -> Path:
    def notify(attempt: int, cause: str, delay: float) -> None:
        log.warning(
            "Attempt %d/%d for %s failed (%s); retrying in %.2f s",
            attempt,
            retries + 1,
            url,
            cause,
            delay,
        )
        if on_retry is not None:
            on_retry(attempt, cause, delay)

    retry = _Retry(
        total=retries,
        status_forcelist=RETRY_STATUSES,
        backoff_factor=backoff_seconds,
        backoff_max=MAX_BACKOFF_SECONDS,
        retry_after_max=MAX_BACKOFF_SECONDS,
        # Give the last 429/5xx response back rather than raise: its status and reason are
        # what the error message names.
        raise_on_status=False,
    )
    retry.notify = notify
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = new_part_file(dest)
    try:
        while (retry := _fetch(url, dest, tmp, retry, timeout, not_found_fix)) is not None:
            retry.sleep()
        try:
            check(tmp)
        except _Invalid as exc:
            raise InvalidFileError(
                f"{url} delivered a file that is not usable as {dest.name}: {exc}. "
                f"Nothing was replaced ({dest} is unchanged). Fix: {exc.fix or RETRY_FIX}.",
                url=url,
                path=dest,
            ) from None
        os.replace(tmp, dest)
        return dest
    except DownloadError as exc:
        exc.path = exc.path or dest
        raise
    finally:
        tmp.unlink(missing_ok=True)


def download_trips(
    month: str,
    dest_dir: Path,
    base_url: str,
    *,
    retries: int = 4,
    backoff_seconds: float = 1.0,
    timeout: float = 60,
    on_retry: RetryCallback | None = None,
) -> Path:
    """Download one month of yellow trips to ``dest_dir/yellow_tripdata_YYYY-MM.parquet``.

    Returns the final path. `on_retry(attempt, cause, delay_seconds)` is called before each retry
    (e.g. to log into Dagster). Raises `DownloadError` / `InvalidFileError`.
    """
    parse_month(month)
    return _download(
        trips_url(month, base_url),
        Path(dest_dir) / trips_file_name(month),
        lambda p: _check_trips(p, month),
        not_found_fix=NOT_PUBLISHED_FIX,
        retries=retries,
        backoff_seconds=backoff_seconds,
        timeout=timeout,
        on_retry=on_retry,
    )


def download_zones(
    dest_dir: Path,
    base_url: str,
    *,
    retries: int = 4,
    backoff_seconds: float = 1.0,
    timeout: float = 60,
    on_retry: RetryCallback | None = None,
) -> Path:
    """Download the zone lookup to ``dest_dir/taxi_zone_lookup.csv``; see `download_trips`."""
    return _download(
        zones_url(base_url),
        Path(dest_dir) / ZONES_FILE_NAME,
        _check_zones,
        not_found_fix=ZONES_NOT_FOUND_FIX,
        retries=retries,
        backoff_seconds=backoff_seconds,
        timeout=timeout,
        on_retry=on_retry,
    )
