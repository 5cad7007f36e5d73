"""Observing the TLC site with cheap requests, against a local site that changes under the test."""

import pytest
from tlc_server import unreachable_base_url
from tlc_site import TLCSite

from taxi_pipeline.sources import publication
from taxi_pipeline.sources.publication import ObservationError, Observer, observe_many

PATH = "/trip-data/yellow_tripdata_2023-01.parquet"
BODY = b"PAR1" + bytes(range(256)) * 400 + b"PAR1"


@pytest.fixture
def site():
    server = TLCSite()
    yield server
    server.close()


def _observe(site: TLCSite, path: str = PATH):
    with Observer() as observer:
        return observer.observe(site.base_url + path)


def test_a_file_not_on_the_site_is_not_published(site):
    assert _observe(site) is None
    assert site.requests[("HEAD", PATH)] == 1


def test_a_published_file_is_described_by_one_head_request(site):
    site.publish(PATH, BODY)
    file = _observe(site)
    assert file.size == len(BODY)
    assert file.etag and file.last_modified and file.fingerprint is None
    assert file.method == "HEAD" and file.caveat is None
    assert sum(n for (method, _), n in site.requests.items() if method == "GET") == 0


def test_the_version_changes_exactly_when_the_file_is_republished(site):
    site.publish(PATH, BODY)
    first = _observe(site)
    assert _observe(site).data_version == first.data_version
    site.publish(PATH, BODY[:-5] + b"XPAR1")  # same size, new ETag and Last-Modified
    assert _observe(site).data_version != first.data_version


def test_a_site_refusing_head_is_asked_for_one_byte_with_the_same_answer(site):
    site.publish(PATH, BODY)
    with_head = _observe(site)
    site.head_allowed = False
    without = _observe(site)
    assert without.method == "GET of one byte (HEAD answered 405)"
    assert (without.size, without.etag, without.last_modified) == (
        with_head.size,
        with_head.etag,
        with_head.last_modified,
    )
    assert without.data_version == with_head.data_version


def test_without_validators_the_tail_of_the_file_is_fingerprinted_and_that_is_said(site):
    site.validators = False
    site.publish(PATH, BODY)
    first = _observe(site)
    assert first.etag is None and first.last_modified is None and first.fingerprint
    assert "neither ETag nor Last-Modified" in first.caveat
    assert "last 64 KiB" in first.method
    assert _observe(site).data_version == first.data_version
    # a correction with the same size but another footer is noticed
    site.publish(PATH, BODY[:-6] + b"YYPAR1")
    assert _observe(site).data_version != first.data_version


def test_without_validators_nor_ranges_a_small_file_is_fingerprinted_whole(site):
    site.validators = site.ranges = False
    site.publish("/misc/taxi_zone_lookup.csv", b"LocationID,Borough\n1,EWR\n")
    first = _observe(site, "/misc/taxi_zone_lookup.csv")
    assert "fingerprinted whole" in first.caveat
    site.publish("/misc/taxi_zone_lookup.csv", b"LocationID,Borough\n1,EWX\n")
    assert _observe(site, "/misc/taxi_zone_lookup.csv").data_version != first.data_version


def test_without_validators_nor_ranges_a_big_file_falls_back_to_its_size_and_says_so(
    site, monkeypatch
):
    monkeypatch.setattr(publication, "MAX_FULL_FINGERPRINT_BYTES", 1000)
    site.validators = site.ranges = False
    site.publish(PATH, BODY)
    file = _observe(site)
    assert file.fingerprint is None and file.size == len(BODY)
    assert "only if its size changes" in file.caveat


def test_a_brief_server_error_is_retried(site):
    site.publish(PATH, BODY)
    site.failures_left = 1
    assert _observe(site).size == len(BODY)


def test_a_server_error_that_persists_names_the_status_and_the_fix(site):
    site.publish(PATH, BODY)
    site.failures_left = 100
    with pytest.raises(ObservationError, match=r"HTTP 503 .* after 3 attempts\. Fix: .*next tick"):
        _observe(site)


def test_an_unreachable_site_names_the_cause_and_the_fix():
    with Observer() as observer, pytest.raises(ObservationError, match=r"ConnectionError.*Fix:"):
        observer.observe(unreachable_base_url() + PATH)


def test_many_files_are_observed_together_each_with_its_own_answer(site):
    site.publish(PATH, BODY)
    urls = [site.base_url + PATH, site.base_url + "/trip-data/yellow_tripdata_2023-02.parquet"]
    answers = observe_many(urls)
    assert answers[urls[0]].size == len(BODY)
    assert answers[urls[1]] is None
