"""`tasks pause` and `tasks resume`: dispatch for every process, kept by the service."""

from __future__ import annotations

import argparse
from datetime import datetime
from typing import Any

from entrypoints.client.http import Service
from entrypoints.client.output import Out, clean, clock, moment


def pause(service: Service, args: argparse.Namespace, out: Out) -> int:
    return _switch(service, "pause", args, out)


def resume(service: Service, args: argparse.Namespace, out: Out) -> int:
    return _switch(service, "resume", args, out)


def _switch(service: Service, action: str, args: argparse.Namespace, out: Out) -> int:
    body = {"reason": args.reason} if args.reason is not None else {}
    state = service.json("POST", f"/dispatch/{action}", body=body)
    if out.as_json:
        out.document(state)
    else:
        out.line(state_line(out, state, datetime.now().astimezone()))
    return 0


def state_line(out: Out, state: dict[str, Any], now: datetime) -> str:
    """One line: `dispatch is paused since 12:03:04 by ops: disk swap (…)` or
    `dispatch is running (resumed 12:09:30 by ops)`."""
    when = ""
    if state.get("since"):
        when = clock(moment(state["since"]), now)
        if state.get("actor"):
            when += f" by {clean(state['actor'])}"
        if state.get("reason"):
            when += f": {clean(state['reason'])}"
    if state["paused"]:
        return (f"dispatch is {out.paint('in_progress', 'paused')}"
                + (f" since {when}" if when else "")
                + " (tasks are still accepted; workers take none until resumed)")
    return f"dispatch is {out.paint('completed', 'running')}" + (f" (resumed {when})" if when
                                                                  else "")
