"""The notifications the stack sent during the end-to-end check, as its webhook receiver kept
them (ci/e2elib/webhook_receiver.py, a container of its own: ci/e2e-alerts.yml)."""

from __future__ import annotations

import json

from e2elib.stack import PhaseFailure, Stack

# the compose service, the stack's TAXI_ALERT_WEBHOOK_URL, and the compose file that adds it
SERVICE = "alert-receiver"
WEBHOOK_URL = f"http://{SERVICE}:8080/hooks/e2e"
COMPOSE_FILE = "ci/e2e-alerts.yml"
_READ = (
    "import urllib.request; "
    "print(urllib.request.urlopen('http://127.0.0.1:8080/received', timeout=10).read().decode())"
)


def received(stack: Stack) -> list[dict]:
    """Every notification so far: {"at": unix time, "path": ..., "body": {"text": ...}}."""
    result = stack.compose("exec", "-T", SERVICE, "python", "-c", _READ, check=False)
    if result.returncode != 0:
        raise PhaseFailure(f"the webhook receiver did not answer: {result.stderr[-2000:]}")
    return json.loads(result.stdout)


def per_run(notifications: list[dict], run_ids: list[str]) -> dict[str, list[dict]]:
    """The notifications naming each run (its id is in the run link of every run message)."""
    return {
        run_id: [n for n in notifications if f"/runs/{run_id}" in n["body"].get("text", "")]
        for run_id in run_ids
    }


def problems(notifications: list[dict], expected: dict[str, str]) -> list[str]:
    """`expected`: run id -> a phrase its one notification must hold. Exactly one notification
    per run, and none that names no run of `expected`."""
    found = per_run(notifications, list(expected))
    wrong = []
    for run_id, phrase in expected.items():
        texts = [n["body"]["text"] for n in found[run_id]]
        if len(texts) != 1:
            wrong.append(f"run {run_id}: {len(texts)} notifications, expected 1: {texts}")
        elif phrase not in texts[0]:
            wrong.append(f"run {run_id}: its notification lacks {phrase!r}: {texts[0]!r}")
    named = {id(n) for runs in found.values() for n in runs}
    wrong += [
        f"unexpected notification: {n['body'].get('text', n['body'])!r}"
        for n in notifications
        if id(n) not in named
    ]
    return wrong
