"""One notification, and how it reads in each channel.

The webhook body is Slack's incoming-webhook JSON (`{"text": ...}` with Slack's `<url|label>`
links), which Mattermost, Rocket.Chat and Microsoft's and Google's Slack-compatible endpoints
take as it is; the email is plain text with the links spelled out.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from email.message import EmailMessage

# What a reader sees first, per kind (the chat's first characters, the mail's subject).
ICONS = {"failure": ":red_circle:", "recovered": ":large_green_circle:", "stale": ":warning:"}
# Chat messages and mails stay readable: a burst lists this many items, then counts the rest.
MAX_ITEMS = 15
# Bounds of what an error may add to a message (its first lines, never a whole traceback), and of
# a title (a run of many assets names them all).
ERROR_LINES, ERROR_CHARS = 4, 600
TITLE_CHARS = 150


@dataclass(frozen=True)
class Link:
    label: str
    url: str


def bounded(text: str, chars: int) -> str:
    return text if len(text) <= chars else text[: chars - 1] + "…"


@dataclass(frozen=True)
class Notification:
    kind: str  # failure | recovered | stale (a key of ICONS)
    title: str
    lines: tuple[str, ...] = ()
    links: tuple[Link, ...] = ()
    # items of a burst (one per run or partition), each with its own link
    items: tuple[tuple[str, str | None], ...] = field(default=())

    def __post_init__(self) -> None:
        object.__setattr__(self, "title", bounded(self.title, TITLE_CHARS))

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> Notification:
        return cls(
            kind=data["kind"],
            title=data["title"],
            lines=tuple(data["lines"]),
            links=tuple(Link(**link) for link in data["links"]),
            items=tuple((text, url) for text, url in data["items"]),
        )

    def _items(self) -> tuple[list[tuple[str, str | None]], int]:
        return list(self.items[:MAX_ITEMS]), max(0, len(self.items) - MAX_ITEMS)

    def webhook_payload(self) -> dict:
        def link(url: str, label: str) -> str:
            return f"<{url}|{_slack_escape(label)}>"

        shown, more = self._items()
        text = [f"{ICONS.get(self.kind, '')} *{_slack_escape(self.title)}*".strip()]
        text += [_slack_escape(line) for line in self.lines]
        text += ["• " + (link(url, item) if url else _slack_escape(item)) for item, url in shown]
        if more:
            text.append(f"… and {more} more")
        if self.links:
            text.append(" | ".join(link(item.url, item.label) for item in self.links))
        return {"text": "\n".join(text)}

    def email(self, sender: str, recipients: tuple[str, ...]) -> EmailMessage:
        shown, more = self._items()
        body = [self.title, "", *self.lines]
        if shown:
            body.append("")
            body += [f"- {item}" + (f"\n  {url}" if url else "") for item, url in shown]
        if more:
            body.append(f"... and {more} more")
        if self.links:
            body.append("")
            body += [f"{item.label}: {item.url}" for item in self.links]
        message = EmailMessage()
        message["Subject"] = f"[taxi platform] {self.title}"
        message["From"] = sender
        message["To"] = ", ".join(recipients)
        message.set_content("\n".join(body) + "\n")
        return message


def _slack_escape(text: str) -> str:
    # Slack (and Mattermost's Slack mode) read <, > and & as markup.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def first_lines(text: str, lines: int = ERROR_LINES, chars: int = ERROR_CHARS) -> str:
    """The first non-empty lines of an error, bounded: what a notification quotes of it."""
    kept = [line.rstrip() for line in text.strip().splitlines() if line.strip()][:lines]
    return bounded("\n".join(kept), chars)
