"""`make run`'s last word: once the server answers, one box with where to go, how to log in, and each warning once.

    python scripts/first_run_box.py --port 8000 --demo demo.json --server-pid 1234 [--tasks "..."]

``--demo`` is what ``manage.py load_demo --json`` wrote: the demo users' tokens, the admin's password and
the start-up warnings (which the processes `make run` starts do not log: START_WARNINGS=0). Waits for
``/healthz`` on the port (up to ``--timeout`` seconds) and gives up, exit status 1, if the server process
ends first. Standard library only: it runs before and beside the project, never inside it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import textwrap
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

WIDTH = 78  # the box's inside, at most, for wrapped text; a longer token or password widens it


def server_answers(base: str, server_pid: int | None, timeout: float) -> bool:
    """Whether ``base``/healthz answered 200 within ``timeout`` seconds, while the server process lived."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{base}/healthz", timeout=2) as answer:  # noqa: S310 (http://127.0.0.1)
                if answer.status == 200:
                    return True
        except (urllib.error.URLError, OSError):
            pass
        if server_pid is not None and not _alive(server_pid):
            return False
        time.sleep(0.25)
    return False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def box_lines(base: str, demo: dict[str, Any], tasks: str | None = None) -> list[str]:
    """The box's content, one line each, before framing."""
    admin = demo["admin"]
    lines = [
        "Recovery is running. Ctrl-C stops everything.",
        "",
        f"Start page  {base}/",
        f"Console     {base}/console/",
        f"Admin       {base}/admin/",
        f"API docs    {base}/api/docs/",
        f"Dashboard   {base}/admin/dashboard/",
        f"API root    {base}/api/v1/",
        "",
        f"Admin user  {admin['username']}   password {admin['password']}",
        *_wrapped(f"(from {demo['password_source']}; the same on every run)", indent=" " * 12, first=True),
        "Console:    log in as demo-agent or demo-manager with the admin password",
        "",
        "API tokens (Authorization: Token <key>):",
        *(f"  {user['role']:<8} {user['username']:<13} {user['token']}" for user in demo["users"]),
    ]
    if tasks:
        lines += ["", *_wrapped(f"Tasks: {tasks}")]
    if demo["warnings"]:
        lines += ["", "Warnings:"]
        for warning in demo["warnings"]:
            lines += _wrapped(f"! {warning}", indent="  ")
    return lines


def _wrapped(text: str, indent: str = "", *, first: bool = False) -> list[str]:
    """``text`` in lines of at most WIDTH, those after the first indented (the first too with ``first``)."""
    return textwrap.wrap(
        text, WIDTH, initial_indent=indent if first else "", subsequent_indent=indent, break_on_hyphens=False
    ) or [""]


def framed(lines: list[str]) -> str:
    width = max(len(line) for line in lines)
    rule = "+" + "-" * (width + 2) + "+"
    return "\n".join([rule, *(f"| {line:<{width}} |" for line in lines), rule])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--demo", type=Path, required=True, help="what `load_demo --json` wrote")
    parser.add_argument("--server-pid", type=int, help="give up when this process ends")
    parser.add_argument("--tasks", help="how tasks run, a line of its own")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for /healthz")
    args = parser.parse_args(argv)

    base = f"http://127.0.0.1:{args.port}"
    demo = json.loads(args.demo.read_text(encoding="utf-8"))
    if not server_answers(base, args.server_pid, args.timeout):
        print(f"The server did not answer on {base}/healthz; see the log above.", file=sys.stderr)
        return 1
    print("\n" + framed(box_lines(base, demo, args.tasks)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
