"""Batch engine on a Ray cluster: the contract of batch.run_local, spread over machines.

Each Ray actor builds one Analyzer from the same picklable factory the local engine uses and
keeps it (Whisper and the rules loaded once per actor). Files go to whichever actor is free;
results come back in completion order as (path, CallReport | None, error | None), exactly as
from run_local, so the batch layer writes identical reports whichever engine ran.

Ray is an optional extra (`pip install 'callaudit[ray]'`). Nothing here reaches the network
on its own: the dashboard is off and usage statistics are disabled before Ray is imported.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from .errors import CallauditError

log = logging.getLogger(__name__)

INSTALL_HINT = "请先安装：pip install 'callaudit[ray]'"


def import_ray():
    """Ray with usage statistics off; CallauditError (in Chinese) when it is not installed."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    try:
        import ray
    except ImportError as e:
        raise CallauditError(f"使用 --engine ray 需要安装 Ray。{INSTALL_HINT}") from e
    return ray


class _Worker:
    """One per Ray actor process: holds the Analyzer for all the files it is given."""

    def __init__(self, factory: Callable[[], Any]):
        from . import batch

        # batch's worker global is per process, and each actor is its own process: the local
        # engine's error handling (InputError -> its one-line message, etc.) applies verbatim.
        batch._init_worker(factory)

    def ready(self) -> bool:
        return True

    def analyze(self, path: str) -> tuple[str, Any, str | None]:
        from . import batch

        return batch._analyze_one(path)

    def analyze_bytes(self, path: str, data: bytes) -> tuple[str, Any, str | None]:
        """For nodes that cannot see the driver's files: analyze a copy under the same file
        name (names carry the phone number and time), then report the original path."""
        from . import batch

        with tempfile.TemporaryDirectory(prefix="callaudit-ray-") as tmp:
            copy = Path(tmp) / Path(path).name
            copy.write_bytes(data)
            _, report, error = batch._analyze_one(str(copy))
        if report is not None:
            report.file = path
        if error is not None:
            error = error.replace(str(copy), path)
        return path, report, error


def _connect(ray, address: str | None, workers: int, cpus_per_worker: float) -> bool:
    """Start a private local Ray (address None) or join a cluster. True when we started it."""
    if ray.is_initialized():
        return False
    try:
        if address:  # the cluster's dashboard and settings are its operator's business
            ray.init(address=address, logging_level=logging.WARNING)
        else:
            ray.init(
                num_cpus=max(1, round(workers * cpus_per_worker)),
                include_dashboard=False,  # no HTTP server on this machine
                logging_level=logging.WARNING,
            )
    except (ConnectionError, RuntimeError, ValueError) as e:
        where = f"集群 {address}" if address else "本机 Ray"
        raise CallauditError(
            f"无法启动或连接 Ray（{where}）：{e}。请检查 --address（如 ray://head:10001 或 "
            "head:6379），并确认集群已用 ray start --head 启动。"
        ) from e
    return True


def run_ray(
    paths: list[Path],
    factory: Callable[[], Any],
    workers: int,
    address: str | None = None,
    cpus_per_worker: float = 1.0,
    ship_audio: bool | None = None,
) -> Iterator[tuple[str, Any, str | None]]:
    """Analyze paths on Ray with `workers` actors; yields (path, report, error) as each ends.

    address: None starts a private Ray on this machine and stops it afterwards; "auto" or
    "host:port" joins a running cluster (left running). ship_audio: send file contents to the
    actors instead of paths, for clusters without shared storage (default: when joining a
    cluster). A file that cannot be analyzed gives an error string, never an exception; an
    actor that dies (out of memory, killed) is replaced and its file reported as an error.
    """
    if not paths:
        return
    ray = import_ray()
    started = _connect(ray, address, min(workers, len(paths)), cpus_per_worker)
    ship = bool(address) if ship_audio is None else ship_audio
    actor_class = ray.remote(num_cpus=cpus_per_worker)(_Worker)
    actors: list[Any] = []
    try:
        actors = [actor_class.remote(factory) for _ in range(max(1, min(workers, len(paths))))]
        try:
            ray.get([a.ready.remote() for a in actors])
        except ray.exceptions.RayTaskError as e:  # the factory failed (model, rules)
            cause = getattr(e, "cause", None)
            raise (cause if isinstance(cause, CallauditError) else CallauditError(
                f"Ray 工作进程无法加载模型：{cause or e}"
            )) from e
        except ray.exceptions.RayActorError as e:
            raise CallauditError(f"Ray 工作进程启动失败：{e}") from e
        yield from _dispatch(ray, actors, actor_class, factory, [str(p) for p in paths], ship)
    finally:
        for a in actors:
            ray.kill(a)
        if started:
            ray.shutdown()


def _dispatch(ray, actors, actor_class, factory, paths: list[str], ship: bool):
    todo = iter(paths)
    running: dict[Any, tuple[str, Any]] = {}

    def submit(actor) -> None:
        path = next(todo, None)
        if path is None:
            return
        if ship:
            try:
                data = Path(path).read_bytes()
            except OSError:
                # Let the worker's own check produce the usual message for a missing file.
                ref = actor.analyze.remote(path)
            else:
                ref = actor.analyze_bytes.remote(path, data)
        else:
            ref = actor.analyze.remote(path)
        running[ref] = (path, actor)

    for a in actors:
        submit(a)
    while running:
        (ref,), _ = ray.wait(list(running), num_returns=1)
        path, actor = running.pop(ref)
        try:
            result = ray.get(ref)
        except ray.exceptions.RayActorError:
            log.warning("Ray 工作进程意外退出，已替换：%s", path)
            result = (path, None, "内部错误：分析该文件的 Ray 工作进程意外退出（可能内存不足）")
            actors.remove(actor)
            actor = actor_class.remote(factory)
            actors.append(actor)
        except ray.exceptions.RayTaskError as e:  # not expected: _analyze_one catches all
            result = (path, None, f"内部错误：{getattr(e, 'cause', None) or e}")
        submit(actor)
        yield result
