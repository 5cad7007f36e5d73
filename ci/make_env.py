#!/usr/bin/env python3
"""Write a `.env` for docker compose from `.env.example`, generating the credentials.

    python3 ci/make_env.py                     # ./.env from ./.env.example (refuses to overwrite)
    python3 ci/make_env.py --out other.env --set TAXI_DATA_SOURCE=sample

Every variable that `.env.example` leaves empty is a credential: it gets a fresh random value.
`--set KEY=VALUE` overrides (or adds) a variable. Only the names of generated variables are
printed, never their values. The end-to-end check builds its throwaway env file with `render_env`.
Standard library only: runs with any Python 3.9+.
"""

from __future__ import annotations

import argparse
import re
import secrets
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
_ASSIGNMENT = re.compile(r"^(?P<key>[A-Za-z_][A-Za-z0-9_]*)=(?P<value>.*)$")


def new_secret() -> str:
    """32 URL-safe characters: no quoting needed in .env files, shells or connection URLs."""
    return secrets.token_urlsafe(24)


def render_env(
    example: str,
    overrides: Mapping[str, str] | None = None,
    make_secret: Callable[[], str] = new_secret,
) -> tuple[str, list[str]]:
    """Return the env file text and the names of the variables given generated values.

    Comments and blank lines are kept; `overrides` replace values in place, and the ones the
    example does not mention are appended at the end.
    """
    overrides = dict(overrides or {})
    for key, value in overrides.items():
        if not _ASSIGNMENT.match(f"{key}={value}") or "\n" in value:
            raise ValueError(f"not a valid env assignment: {key}={value!r}")
    lines: list[str] = []
    generated: list[str] = []
    seen: set[str] = set()
    for line in example.splitlines():
        match = _ASSIGNMENT.match(line.strip())
        if not match:
            lines.append(line)
            continue
        key, value = match["key"], match["value"].strip()
        seen.add(key)
        if key in overrides:
            value = overrides[key]
        elif value == "":
            value = make_secret()
            generated.append(key)
        lines.append(f"{key}={value}")
    extra = [key for key in overrides if key not in seen]
    if extra:
        lines.append("")
        lines.append("# set by ci/make_env.py --set")
        lines.extend(f"{key}={overrides[key]}" for key in extra)
    return "\n".join(lines) + "\n", generated


def parse_assignments(items: list[str]) -> dict[str, str]:
    result: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not _ASSIGNMENT.match(item):
            raise ValueError(f"--set expects KEY=VALUE, got {item!r}")
        result[key] = value
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--example", type=Path, default=REPO_ROOT / ".env.example")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / ".env")
    parser.add_argument(
        "--set",
        dest="assignments",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override or add a variable (repeatable)",
    )
    parser.add_argument("--force", action="store_true", help="overwrite an existing file")
    args = parser.parse_args(argv)

    if args.out.exists() and not args.force:
        print(
            f"{args.out} exists; keeping it (use --force to replace it and its credentials)",
            file=sys.stderr,
        )
        return 0
    try:
        overrides = parse_assignments(args.assignments)
        text, generated = render_env(args.example.read_text(), overrides)
    except (OSError, ValueError) as exc:
        print(f"make_env: {exc}", file=sys.stderr)
        return 2
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.touch(mode=0o600)
    args.out.chmod(0o600)
    args.out.write_text(text)
    names = ", ".join(generated) if generated else "none"
    print(f"wrote {args.out} (generated: {names})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
