"""Delivery of a notification to the configured channels: bounded in time, never raising.

A channel that is misconfigured or down must never fail, slow or block a pipeline run: delivery
happens only in `alert_sensor`'s ticks (never in a run), each attempt is bounded by TIMEOUT, and
every error comes back as a sentence naming the cause and the fix, for the tick to show.
"""

from __future__ import annotations

import smtplib
import ssl
from urllib.parse import urlsplit

import requests
from urllib3.exceptions import HTTPError

from taxi_pipeline.alerts.notification import Notification, bounded
from taxi_pipeline.settings import AlertSettings, SmtpSettings

# Seconds for one delivery attempt (connect, then each read): a sensor tick has about a minute,
# and a channel that is down must not use it up.
TIMEOUT = 10
# Port of SMTP over TLS from the first byte (SMTPS); every other port starts in plain text and
# may upgrade with STARTTLS.
SMTPS_PORT = 465
# What of an unexpected answer the error quotes.
ANSWER_CHARS = 200


def deliver(notification: Notification, alerts: AlertSettings, channels: list[str]) -> dict:
    """Send to each of `channels`: {channel: None if delivered, else why not}."""
    outcome: dict[str, str | None] = {}
    for channel in channels:
        if channel == "webhook" and alerts.webhook_url:
            outcome[channel] = send_webhook(alerts.webhook_url, notification.webhook_payload())
        elif channel == "email" and alerts.smtp:
            outcome[channel] = send_email(
                alerts.smtp, notification.email(alerts.smtp.sender, alerts.smtp.recipients)
            )
        else:
            outcome[channel] = f"the {channel} channel is no longer configured; dropped"
    return outcome


def send_webhook(url: str, payload: dict) -> str | None:
    # The URL is never quoted back: a chat's incoming-webhook URL is its secret.
    fix = "check TAXI_ALERT_WEBHOOK_URL and that the chat server is reachable from the stack"
    try:
        # No redirects: the body carries the alert, and a webhook that moved is misconfigured.
        # Streamed: of the answer only its first ANSWER_CHARS bytes are ever read.
        answer = requests.post(
            url, json=payload, timeout=TIMEOUT, allow_redirects=False, stream=True
        )
    except requests.Timeout:
        return f"the webhook did not answer within {TIMEOUT} s. Fix: {fix}."
    except requests.ConnectionError as error:
        return f"could not connect to the webhook ({_redacted(error, url)}). Fix: {fix}."
    except requests.RequestException as error:
        return f"the webhook request failed ({_redacted(error, url)}). Fix: {fix}."
    with answer:
        if 200 <= answer.status_code < 300:
            return None
        try:
            said = answer.raw.read(ANSWER_CHARS, decode_content=True).decode(errors="replace")
        except (OSError, HTTPError):  # the answer's body broke off: its status says enough
            said = ""
        said = said.strip()
    hint = {
        403: "the webhook refused the token (revoked, or the wrong URL)",
        404: "no webhook at that URL (deleted, or a typo)",
    }.get(answer.status_code, "the chat server did not take the message")
    return (
        f"the webhook answered HTTP {answer.status_code} {answer.reason} ({said!r}): {hint}. "
        f"Fix: {fix}."
    )


def send_email(smtp: SmtpSettings, message) -> str | None:
    where = f"{smtp.host}:{smtp.port}"
    try:
        if smtp.port == SMTPS_PORT:
            server = smtplib.SMTP_SSL(
                smtp.host, smtp.port, timeout=TIMEOUT, context=ssl.create_default_context()
            )
        else:
            server = smtplib.SMTP(smtp.host, smtp.port, timeout=TIMEOUT)
        with server:
            if smtp.starttls and smtp.port != SMTPS_PORT:
                server.starttls(context=ssl.create_default_context())
            if smtp.user:
                server.login(smtp.user, smtp.password or "")
            server.send_message(message)
    except smtplib.SMTPNotSupportedError as error:
        return (
            f"the mail server {where} does not offer STARTTLS ({_reason(error)}). Fix: set "
            "TAXI_ALERT_SMTP_STARTTLS=false for a server on a trusted network, or use the "
            "server's submission port (587) or SMTPS (465)."
        )
    except smtplib.SMTPAuthenticationError as error:
        return (
            f"the mail server {where} refused the login of {smtp.user!r} ({_reason(error)}). "
            "Fix: check TAXI_ALERT_SMTP_USER and TAXI_ALERT_SMTP_PASSWORD."
        )
    except smtplib.SMTPRecipientsRefused as error:
        refused = ", ".join(sorted(error.recipients))
        return (
            f"the mail server {where} refused the recipients {refused}. Fix: check "
            "TAXI_ALERT_EMAIL_TO, and that the server relays for TAXI_ALERT_EMAIL_FROM."
        )
    except smtplib.SMTPSenderRefused as error:
        return (
            f"the mail server {where} refused the sender {error.sender!r} ({_reason(error)}). "
            "Fix: check TAXI_ALERT_EMAIL_FROM (many servers take only the login's own address)."
        )
    except TimeoutError:
        return (
            f"the mail server {where} did not answer within {TIMEOUT} s. Fix: check "
            "TAXI_ALERT_SMTP_HOST and TAXI_ALERT_SMTP_PORT, and that the stack can reach it."
        )
    except ssl.SSLError as error:
        return (
            f"TLS with the mail server {where} failed ({_reason(error)}). Fix: port 465 speaks "
            "TLS from the start, 587 upgrades with STARTTLS: check TAXI_ALERT_SMTP_PORT and "
            "TAXI_ALERT_SMTP_STARTTLS."
        )
    except (OSError, smtplib.SMTPException) as error:
        return (
            f"could not send mail through {where} ({_reason(error)}). Fix: check "
            "TAXI_ALERT_SMTP_HOST and TAXI_ALERT_SMTP_PORT, and that the server is up."
        )
    return None


def _redacted(error: BaseException, url: str) -> str:
    """The error without the webhook URL's path and query, which hold its token."""
    parts = urlsplit(url)
    secret = parts.path + (f"?{parts.query}" if parts.query else "")
    return _reason(error, secret if secret.strip("/") else None)


def _reason(error: BaseException, secret: str | None = None) -> str:
    text = str(error).strip() or type(error).__name__
    if secret:
        text = text.replace(secret, "/…")
    return bounded(text, ANSWER_CHARS)
