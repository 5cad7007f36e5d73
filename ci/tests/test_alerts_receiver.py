import json
import threading
import urllib.request
from http.server import ThreadingHTTPServer

from e2elib import alerts, webhook_receiver


def _note(text: str, at: float = 1.0) -> dict:
    return {"at": at, "path": "/hooks/e2e", "body": {"text": text}}


def test_one_notification_per_run_holding_its_phrase_and_nothing_else():
    killed = _note("*Run failed: stg_zones* <http://x/runs/aaa|run aaa>")
    forced = _note("*Run failed: adhoc_request* unknown borough 'Atlantis' <http://x/runs/bbb|r>")
    expected = {"aaa": "Run failed: stg_zones", "bbb": "unknown borough 'Atlantis'"}
    assert alerts.problems([killed, forced], expected) == []
    assert alerts.problems([killed], expected) == ["run bbb: 0 notifications, expected 1: []"]
    twice = alerts.problems([killed, killed, forced], expected)
    assert twice and twice[0].startswith("run aaa: 2 notifications, expected 1")
    stray = _note("*A tick of sensor tlc_site_sensor failed*")
    assert alerts.problems([killed, forced, stray], expected) == [
        "unexpected notification: '*A tick of sensor tlc_site_sensor failed*'"
    ]
    wrong = alerts.problems([killed, _note("other <http://x/runs/bbb|r>")], expected)
    assert wrong == [
        "run bbb: its notification lacks \"unknown borough 'Atlantis'\": 'other <http://x/runs/bbb|r>'"
    ]


def test_the_receiver_keeps_each_post_and_lists_them():
    server = ThreadingHTTPServer(("127.0.0.1", 0), webhook_receiver.Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        body = json.dumps({"text": "hello"}).encode()
        request = urllib.request.Request(
            f"{url}/hooks/e2e", data=body, headers={"Content-Type": "application/json"}
        )
        assert urllib.request.urlopen(request, timeout=5).status == 200
        [kept] = json.loads(urllib.request.urlopen(f"{url}/received", timeout=5).read())
        assert kept["path"] == "/hooks/e2e" and kept["body"] == {"text": "hello"}
    finally:
        server.shutdown()
        server.server_close()
