"""Run a scan's slides on a Ray cluster: one actor per GPU holds the encoder, one task per slide.

The driver (this process) keeps the coordinator's jobs: finding slides, locks,
resume decisions, the table and the report; OUT must be a folder every node sees
(a shared filesystem), as the slide paths must be. Actors load the encoder once and
take slides one at a time; an actor that dies is restarted by Ray and the slide is
retried once on its own, as with local workers. ``ray`` is an optional dependency
(``pip install 'pathview[ray]'``) imported only here.
"""

from __future__ import annotations

import os
from dataclasses import replace
from typing import Any

from ..errors import PathviewError
from .analyzer import SLOTS
from .events import (
    AnalysisConfig,
    SlideTask,
    TaskDone,
    TaskFailed,
    TaskRequeued,
    TaskStarted,
    TileProgress,
    WorkerBroken,
    WorkerReady,
)


class RayUnavailableError(PathviewError):
    """--ray was asked for but ray is not installed, or the cluster cannot be reached."""


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise RayUnavailableError("--ray needs the 'ray' package: pip install 'pathview[ray]'") from None
    return ray


def connect(address: str | None) -> bool:
    """Connect to Ray (``auto``: a running cluster, else a local one); return whether we started it."""
    ray = _ray()
    if ray.is_initialized():
        return False
    try:
        if address in (None, "auto"):
            try:
                ray.init(address="auto", log_to_driver=False)
            except ConnectionError:
                ray.init(include_dashboard=False, log_to_driver=False)  # no cluster running: start one here
        else:
            ray.init(address=address, log_to_driver=False)
    except ConnectionError as exc:
        raise RayUnavailableError(f"cannot reach the Ray cluster at {address!r}: {exc}") from None
    return True


class _SlideActor:
    """The actor's body: an analyzer whose encoder stays loaded between slides."""

    def __init__(self, config: AnalysisConfig, index: int) -> None:
        from .analyzer import SlideAnalyzer

        self.index = index
        self.error = ""
        try:
            self.analyzer = SlideAnalyzer(config, index)
        except PathviewError as exc:
            self.analyzer, self.error = None, str(exc)

    def ready(self) -> WorkerReady | WorkerBroken:
        if self.analyzer is None:
            return WorkerBroken(self.index, self.error)
        return WorkerReady(self.index, self.analyzer.label, str(self.analyzer.device), self.analyzer.load_s,
                           os.getpid())

    def run(self, task: SlideTask) -> TaskDone | TaskFailed:
        return self.analyzer.run(task, lambda _event: None)


class RayExecutor:
    """Analyse slides on Ray actors: one per GPU of the cluster, else ``workers`` CPU actors.

    Each actor takes two slides at a time (a threaded actor), so one is read while
    the other encodes, as in a local worker.
    """

    def __init__(self, config: AnalysisConfig, address: str | None = "auto", workers: int | None = None) -> None:
        ray = self.ray = _ray()
        self.started = connect(address)
        gpus = int(ray.cluster_resources().get("GPU", 0))
        count = gpus or max(1, workers or 1)
        actor = ray.remote(num_gpus=1 if gpus else 0, num_cpus=1, max_restarts=-1,
                           max_concurrency=SLOTS)(_SlideActor)
        self.actors = [actor.remote(config, i) for i in range(count)]
        self.free = [0] * count  # slots of each ready actor
        self.solo = [False] * count
        self.pending: dict[Any, tuple[str, int, Any]] = {}  # ref -> (kind, actor index, task)
        self.started_events: list[object] = []
        for i, a in enumerate(self.actors):
            self.pending[a.ready.remote()] = ("ready", i, None)

    def _pick(self, task: SlideTask) -> int | None:
        for i, free in enumerate(self.free):
            if not self.solo[i] and (free == SLOTS if task.solo else free > 0):
                return i
        return None

    def can_take(self, task: SlideTask) -> bool:
        return self._pick(task) is not None

    def submit(self, task: SlideTask) -> None:
        i = self._pick(task)
        self.free[i] -= 1
        self.solo[i] = task.solo
        self.pending[self.actors[i].run.remote(task)] = ("run", i, task)
        self.started_events.append(TaskStarted(task.key, i))

    def busy(self) -> bool:
        return bool(self.pending)

    def pids(self) -> list[int]:
        """None to record: actors may run on other nodes, and Ray ends them with this driver."""
        return []

    def poll(self, timeout: float) -> list[object]:
        out, self.started_events = self.started_events, []
        if not self.pending:
            return out
        done, _ = self.ray.wait(list(self.pending), num_returns=1, timeout=timeout)
        for ref in done:
            kind, i, task = self.pending.pop(ref)
            try:
                value = self.ray.get(ref)
            except self.ray.exceptions.RayActorError as exc:
                out += self._actor_died(kind, i, task, exc)
                continue
            if kind == "ready":
                out.append(value)
                if isinstance(value, WorkerReady):
                    self.free[i] = SLOTS
                continue
            if isinstance(value, TaskDone) and isinstance(value.summary.get("tiles"), int):
                tiles = value.summary["tiles"]
                out.append(TileProgress(task.key, tiles, max(tiles, 1)))
            out.append(value)
            self.free[i] += 1
            self.solo[i] = False
        return out

    def _actor_died(self, kind: str, i: int, task: SlideTask | None, exc: Exception) -> list[object]:
        if kind == "ready":
            return [WorkerBroken(i, f"the Ray actor died while loading the encoder: {exc}")]
        out: list[object] = []
        if self.free[i] >= 0:  # first of its slides to report the death: wait for the restarted actor
            self.free[i] = -SLOTS
            self.pending[self.actors[i].ready.remote()] = ("ready", i, None)
        if task.solo:
            out.append(TaskFailed(task.key, "the analysis process crashed on this slide (Ray actor died); "
                                            "the file may be damaged", "crash"))
        else:
            out.append(TaskRequeued(replace(task, solo=True)))
        self.solo[i] = False
        return out

    def close(self, graceful: bool = True) -> None:
        for a in self.actors:
            self.ray.kill(a)
        if self.started:
            self.ray.shutdown()
