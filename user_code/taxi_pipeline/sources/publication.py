"""What the TLC has published, learned from cheap requests: nothing is downloaded here.

The TLC publishes a month's trip file about two months after the month ends and now and then
re-publishes a corrected one. `Observer.observe(url)` asks for one file and answers `None` (not
published: 403/404/410, as the file store answers for a key it does not hold) or a `Published`
whose `data_version` changes exactly when the file does:

1. ``HEAD``: the status and the validators a file store sends, ``ETag``, ``Last-Modified`` and
   ``Content-Length``. The version is a digest of all three, so any one changing is a change.
2. A server that refuses HEAD (405/501) is asked ``GET`` with ``Range: bytes=0-0``: one byte and
   the same headers (the size from ``Content-Range``).
3. A server that sends neither ETag nor Last-Modified gets a fingerprint instead: the digest of
   the file's last 64 KiB (``Range: bytes=-65536``) and its size. For a parquet file that tail is
   the footer, which holds every row group's row count, offsets and statistics, so a re-published
   file with other rows has another footer. The observation says so in its metadata
   (`caveat`); a server that honours no ranges either is fingerprinted in full when the file is
   small (the zone lookup), else by its size alone, and says that.

Transient failures (connection errors, timeouts, 429/5xx) are retried briefly; when they persist,
`ObservationError` names the cause and the fix. Observation runs on a sensor tick, which Dagster
bounds in time, so it gives up fast: the next tick asks again.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import requests
from requests.adapters import HTTPAdapter
from urllib3.util import Retry

from taxi_pipeline.sources.tlc import BASE_URL_HINT, HTML_FIX, RETRY_STATUSES

# A tick observes every month of the range: seconds per request, and a short retry.
CONNECT_TIMEOUT_SECONDS = 5
READ_TIMEOUT_SECONDS = 10
RETRIES = 2
BACKOFF_SECONDS = 0.5
NOT_PUBLISHED_STATUSES = frozenset({403, 404, 410})
HEAD_REFUSED_STATUSES = frozenset({405, 501})
TAIL_BYTES = 64 * 1024
# A file without validators nor range support is read whole to fingerprint it only up to this.
MAX_FULL_FINGERPRINT_BYTES = 1 << 20
# An open range from 2009 is 200 months: in parallel, a tick stays within seconds.
PARALLEL_REQUESTS = 8

OBSERVATION_FIX = (
    "the TLC site did not answer usefully; the sensor asks again on its next tick and nothing "
    f"loaded is touched. If it persists, {BASE_URL_HINT} and the network"
)


class ObservationError(Exception):
    """The site could not tell whether a file is published; the message names cause and fix."""


@dataclass(frozen=True)
class Published:
    """One published file as the site describes it."""

    url: str
    size: int | None
    etag: str | None = None
    last_modified: str | None = None
    # sha256 of the file's tail (or whole body) when the site sends no validators.
    fingerprint: str | None = None
    # How the answer was obtained, and what it cannot see, in words for the UI.
    method: str = "HEAD"
    caveat: str | None = None

    @property
    def data_version(self) -> str:
        """Changes exactly when one of the file's validators (or its fingerprint) does."""
        parts = (self.etag, self.last_modified, self.size, self.fingerprint)
        text = "\n".join("" if part is None else str(part) for part in parts)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def as_metadata(self) -> dict[str, str | int]:
        metadata: dict[str, str | int] = {"url": self.url, "observed_with": self.method}
        for name in ("etag", "last_modified", "size", "fingerprint", "caveat"):
            value = getattr(self, name)
            if value is not None:
                metadata[name] = value
        return metadata


def _size_from(response: requests.Response) -> int | None:
    content_range = response.headers.get("Content-Range", "")
    if "/" in content_range:  # "bytes 0-0/48123456"
        total = content_range.rsplit("/", 1)[1].strip()
        return int(total) if total.isdigit() else None
    length = response.headers.get("Content-Length", "")
    return int(length) if length.isdigit() else None


class Observer:
    """A session for observing many files in one tick: `with Observer() as o: o.observe(url)`."""

    def __init__(self) -> None:
        retry = Retry(
            total=RETRIES,
            status_forcelist=RETRY_STATUSES,
            allowed_methods={"HEAD", "GET"},
            backoff_factor=BACKOFF_SECONDS,
            backoff_max=2,
            respect_retry_after_header=False,
            raise_on_status=False,
        )
        self.session = requests.Session()
        for scheme in ("http://", "https://"):
            self.session.mount(scheme, HTTPAdapter(max_retries=retry))

    def __enter__(self) -> Observer:
        return self

    def __exit__(self, *exc_info) -> None:
        self.session.close()

    def _request(self, method: str, url: str, headers: dict[str, str]) -> requests.Response:
        try:
            response = self.session.request(
                method,
                url,
                headers={"Accept-Encoding": "identity", **headers},
                timeout=(CONNECT_TIMEOUT_SECONDS, READ_TIMEOUT_SECONDS),
                allow_redirects=True,
                # A GET's body is read only as far as the caller needs it.
                stream=True,
            )
        except requests.RequestException as exc:
            raise ObservationError(
                f"{method} {url} failed after {RETRIES + 1} attempts "
                f"({type(exc).__name__}: {exc}). Fix: {OBSERVATION_FIX}."
            ) from None
        status = response.status_code
        if status in RETRY_STATUSES:
            response.close()
            raise ObservationError(
                f"{method} {url} answered HTTP {status} {response.reason or ''} after "
                f"{RETRIES + 1} attempts. Fix: {OBSERVATION_FIX}."
            )
        if status == 200 and "html" in response.headers.get("Content-Type", "").lower():
            response.close()
            raise ObservationError(f"{url} answered with an HTML page. Fix: {HTML_FIX}.")
        return response

    def observe(self, url: str) -> Published | None:
        """The file at `url` as published now, or None when the site does not hold it."""
        method = "HEAD"
        response = self._request("HEAD", url, {})
        response.close()
        if response.status_code in HEAD_REFUSED_STATUSES:
            method = f"GET of one byte (HEAD answered {response.status_code})"
            response = self._request("GET", url, {"Range": "bytes=0-0"})
            response.close()
        status = response.status_code
        if status in NOT_PUBLISHED_STATUSES:
            return None
        if status not in (200, 206):
            raise ObservationError(
                f"{url} answered HTTP {status} {response.reason or ''}: the TLC file store "
                f"answers 200 or 404. Fix: {BASE_URL_HINT} (a redirect or refusal comes from "
                "another server)."
            )
        etag = response.headers.get("ETag") or None
        last_modified = response.headers.get("Last-Modified") or None
        size = _size_from(response)
        if etag or last_modified:
            return Published(url, size, etag, last_modified, method=method)
        return self._fingerprinted(url, size, method)

    def _fingerprinted(self, url: str, size: int | None, method: str) -> Published:
        response = self._request("GET", url, {"Range": f"bytes=-{TAIL_BYTES}"})
        with response:
            if response.status_code == 206:
                tail = response.raw.read(TAIL_BYTES + 1, decode_content=False)
                return Published(
                    url,
                    _size_from(response) or size,
                    fingerprint=hashlib.sha256(tail).hexdigest()[:16],
                    method=f"{method}; GET of the last {TAIL_BYTES // 1024} KiB",
                    caveat="the site sends neither ETag nor Last-Modified: the file is "
                    "fingerprinted by its size and its last 64 KiB (a parquet file's footer)",
                )
            if response.status_code == 200 and (size or 0) <= MAX_FULL_FINGERPRINT_BYTES:
                body = response.raw.read(MAX_FULL_FINGERPRINT_BYTES + 1, decode_content=False)
                if len(body) <= MAX_FULL_FINGERPRINT_BYTES:
                    return Published(
                        url,
                        len(body),
                        fingerprint=hashlib.sha256(body).hexdigest()[:16],
                        method=f"{method}; GET of the whole (small) file",
                        caveat="the site sends neither ETag nor Last-Modified nor ranges: the "
                        "file is fingerprinted whole",
                    )
        return Published(
            url,
            size,
            method=method,
            caveat="the site sends neither ETag nor Last-Modified and serves no ranges: a "
            "re-published file is noticed only if its size changes; materialize it by hand "
            "after a correction of the same size",
        )


def observe_many(urls: Iterable[str]) -> dict[str, Published | ObservationError | None]:
    """Observe every URL, several at a time (one session per thread: a `requests.Session` is
    not meant to be shared between threads). Each URL maps to its answer or its error."""
    local = threading.local()
    observers: list[Observer] = []

    def one(url: str) -> Published | ObservationError | None:
        if not hasattr(local, "observer"):
            local.observer = Observer()
            observers.append(local.observer)
        try:
            return local.observer.observe(url)
        except ObservationError as error:
            return error

    urls = list(urls)
    try:
        with ThreadPoolExecutor(max_workers=PARALLEL_REQUESTS) as pool:
            return dict(zip(urls, pool.map(one, urls), strict=True))
    finally:
        for observer in observers:
            observer.session.close()
