"""`make run`'s last word: once the server answers, one box with where to go, how to log in, and each warning once.

    python scripts/first_run_box.py --port 8000 --demo demo.json --server-pid 1234 [--tasks "..."]

``--demo`` is what ``manage.py load_demo --json`` wrote: the demo users' tokens, the admin's password and
the start-up warnings (which the processes `make run` starts do not log: START_WARNINGS=0). Waits for
``/healthz`` on the port (and for the ``--started`` files, which a Celery worker and beat write once started),
up to ``--timeout`` seconds, and gives up, exit status 1, if the server process
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
from collections.abc import Sequence
from pathlib import Path
from typing import Any

WIDTH = 78  # the box's inside, at most, for wrapped text; a longer token or password widens it


def started_problem(base: str, server_pid: int | None, timeout: float, started: Sequence[Path] = ()) -> str | None:
    """None once ``base``/healthz answers 200 and every file of ``started`` exists (the processes beside the
    server write them once started), else what did not happen within ``timeout`` seconds or before the server
    process ended."""
    deadline = time.monotonic() + timeout
    while True:
        healthy = _healthy(base)
        missing = [path.name for path in started if not path.exists()]
        if healthy and not missing:
            return None
        if not healthy and server_pid is not None and not _alive(server_pid):
            return f"The server ended before it answered on {base}/healthz; see the log above."
        if time.monotonic() >= deadline:
            if not healthy:
                return f"The server did not answer on {base}/healthz within {timeout:g} s; see the log above."
            return f"Not started within {timeout:g} s: {', '.join(missing)}; see the log above."
        time.sleep(0.25)


def _healthy(base: str) -> bool:
    try:
        with urllib.request.urlopen(f"{base}/healthz", timeout=2) as answer:  # noqa: S310 (http://127.0.0.1)
            return answer.status == 200
    except (urllib.error.URLError, OSError):
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
    parser.add_argument(
        "--started", type=Path, action="append", default=[], help="a file to wait for too (PROCESS_READY_DIR)"
    )
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for /healthz")
    args = parser.parse_args(argv)

    base = f"http://127.0.0.1:{args.port}"
    demo = json.loads(args.demo.read_text(encoding="utf-8"))
    problem = started_problem(base, args.server_pid, args.timeout, args.started)
    if problem is not None:
        print(problem, file=sys.stderr)
        return 1
    print("\n" + framed(box_lines(base, demo, args.tasks)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
