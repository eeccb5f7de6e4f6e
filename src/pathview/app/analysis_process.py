"""The child-process side of the viewer's background analysis (no Qt here: the child never loads it).

The analysis runs in a process of its own rather than a thread of the viewer: loading
torch and the numpy/scipy artifact measures hold Python's global lock for long
stretches (400 ms while torch first imports), which froze the window when they ran
on a thread. A process also keeps a crash in native code (a damaged slide, a GPU
fault) out of the viewer. Messages go back on a queue as plain tuples.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import sys
from typing import Any

#: Modules the fork server imports once, so a second analysis starts in well under a second.
PRELOAD = ["pathview.analysis.analyze", "pathview.analysis.encode"]
NICE = 10  # the analysis yields the CPU to the window (and to the user's other work)


def context() -> mp.context.BaseContext:
    """A fork server on Linux (the viewer's own threads are never forked), else spawn."""
    if sys.platform.startswith("linux"):
        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload(PRELOAD)
        return ctx
    return mp.get_context("spawn")


def lower_priority() -> None:
    """Give the analysis a lower CPU priority than the window, so panning stays smooth on a busy laptop.

    Called on the relay thread before the first start: on Linux a nice value belongs to the
    thread, and the fork server and every analysis child it forks inherit it. Elsewhere
    the child lowers its own (whole-process) priority in :func:`run_analysis`.
    """
    if sys.platform.startswith("linux"):
        os.nice(NICE)


def run_analysis(slide_path: str, out_dir: str, options: dict[str, Any], events: Any, cancel: Any) -> None:
    """Run in the child: analyse, putting ("progress", event) and then one final message on ``events``.

    Final messages: ("finished",), ("cancelled", message) or ("failed", error type name, message).
    """
    from ..analysis.analyze import AnalysisCancelled, analyze_slide

    if not sys.platform.startswith("linux") and hasattr(os, "nice"):
        os.nice(NICE)

    try:
        analyze_slide(slide_path, out_dir, progress=lambda e: events.put(("progress", e)), cancel=cancel, **options)
    except AnalysisCancelled as exc:
        events.put(("cancelled", str(exc)))
    except Exception as exc:  # the viewer shows the message; typed errors are written for a person
        events.put(("failed", type(exc).__name__, str(exc) or type(exc).__name__))
    else:
        events.put(("finished",))
