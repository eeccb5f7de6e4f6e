"""Run a scan's slides on this machine, in long-lived worker processes (one encoder load each).

Each worker holds at most two tasks: the slide it analyses and the next one, so it
never waits for the coordinator between slides. A worker that dies (a crash in
native code, the out-of-memory killer) is replaced; the slide it was analysing is
run once more on its own and, if the new worker dies too, recorded as the cause.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import sys
from collections import deque
from dataclasses import replace
from multiprocessing.connection import wait

from .analyzer import SLOTS as DEPTH
from .events import (
    AnalysisConfig,
    SlideTask,
    TaskDone,
    TaskFailed,
    TaskRequeued,
    WorkerBroken,
    WorkerReady,
)
from .worker import worker_main


def _context() -> mp.context.BaseContext:
    """Forkserver where there is one (workers fork from a process that imported torch once), else spawn."""
    if sys.platform.startswith("linux"):
        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload(["pathview.scan.analyzer", "pathview.analysis.analyze", "pathview.analysis.encode"])
        return ctx
    return mp.get_context("spawn")


class _Worker:
    """One worker process, the tasks it holds, and its own pipe for events.

    A pipe per worker, not one shared queue: a worker killed halfway through sending
    can then only break its own pipe (read as its death), never block the others.
    """

    def __init__(self, ctx: mp.context.BaseContext, index: int, config: AnalysisConfig,
                 stderr_to: str | None) -> None:
        self.index = index
        self.tasks = ctx.Queue()
        self.assigned: deque[SlideTask] = deque()
        self.ready = False
        self.events, sender = ctx.Pipe(duplex=False)
        self.process = ctx.Process(target=worker_main, args=(index, config, self.tasks, sender, os.getpid(), stderr_to),
                                   name=f"pathview-scan-worker-{index}", daemon=True)
        self.process.start()
        sender.close()  # only the worker writes: its death reads as end of file here

    def drain(self) -> list[object]:
        """Return the events waiting in the pipe; stop at a broken or closed one."""
        out: list[object] = []
        try:
            while self.events.poll():
                out.append(self.events.recv())
        except (EOFError, OSError):
            self.process.join(timeout=1)  # it is gone or going: let _reap see it dead
        return out

    def free_slots(self) -> int:
        if any(t.solo for t in self.assigned):
            return 0
        return DEPTH - len(self.assigned)


class LocalExecutor:
    """Analyse slides in ``workers`` processes on this machine; their stderr goes to ``stderr_to``.

    As with any multiprocessing code, a script that runs a scan must keep its top level
    under ``if __name__ == "__main__":`` (workers import the main module).
    """

    def __init__(self, config: AnalysisConfig, workers: int = 1, stderr_to: str | os.PathLike | None = None) -> None:
        self.config = config
        self.stderr_to = str(stderr_to) if stderr_to is not None else None
        self._ctx = _context()
        self.workers = [self._start(i) for i in range(max(1, workers))]

    def _start(self, index: int) -> _Worker:
        return _Worker(self._ctx, index, self.config, self.stderr_to)

    def can_take(self, task: SlideTask) -> bool:
        """Whether a worker has room for ``task`` now (a solo task needs an idle worker)."""
        return self._pick(task) is not None

    def _pick(self, task: SlideTask) -> _Worker | None:
        best = max(self.workers, key=lambda w: w.free_slots())
        if task.solo:
            return best if not best.assigned else None
        return best if best.free_slots() > 0 else None

    def submit(self, task: SlideTask) -> None:
        worker = self._pick(task)
        if worker is None:
            raise RuntimeError("no worker has room; ask can_take() first")
        worker.assigned.append(task)
        worker.tasks.put(task)

    def busy(self) -> bool:
        return any(w.assigned for w in self.workers)

    def pids(self) -> list[int]:
        """The worker processes' pids (recorded in the slide locks)."""
        return [w.process.pid for w in self.workers]

    def poll(self, timeout: float) -> list[object]:
        """Return the events that arrived within ``timeout`` s, including those of workers that died."""
        out: list[object] = []
        by_pipe = {w.events: w for w in self.workers}
        for pipe in wait(list(by_pipe), timeout):
            out += by_pipe[pipe].drain()
        for event in out:
            self._account(event)
        out += self._reap()
        return out

    def _account(self, event: object) -> None:
        if isinstance(event, (TaskDone, TaskFailed)):
            for w in self.workers:
                for t in list(w.assigned):
                    if t.key == event.key:
                        w.assigned.remove(t)
        elif isinstance(event, WorkerReady):
            self.workers[event.worker].ready = True

    def _reap(self) -> list[object]:
        """Replace dead workers; fail or requeue the tasks they held."""
        out: list[object] = []
        for i, w in enumerate(self.workers):
            if w.process.is_alive():
                continue
            code = w.process.exitcode
            how = f"signal {signal.Signals(-code).name}" if code is not None and code < 0 else f"exit status {code}"
            held = list(w.assigned)
            w.assigned.clear()
            w.events.close()
            if not w.ready:  # the encoder does not load: no slide is to blame, and no use retrying
                out.append(WorkerBroken(i, f"the analysis process died while loading the encoder ({how})"))
                out += [TaskRequeued(t) for t in held]
                continue
            if held:
                head, rest = held[0], held[1:]
                if head.solo:
                    out.append(TaskFailed(head.key, f"the analysis process crashed on this slide ({how}); "
                                                    "the file may be damaged", "crash"))
                else:
                    out.append(TaskRequeued(replace(head, solo=True)))
                out += [TaskRequeued(t) for t in rest]
            self.workers[i] = self._start(i)
        return out

    def close(self, graceful: bool = True) -> None:
        """Stop the workers: ask idle ones to exit, terminate the rest (their slides stay unfinished)."""
        for w in self.workers:
            if graceful and not w.assigned:
                w.tasks.put(None)
            elif w.process.is_alive():
                w.process.terminate()
        for w in self.workers:
            w.process.join(timeout=10)
            if w.process.is_alive():
                w.process.kill()
                w.process.join()
            w.events.close()
