"""Batch analysis of a folder (a phone's call archive): resumable, one broken file never
stops the run, models loaded once per worker process.

Layout of OUT:
  reports/<relative path>.json   one per call (same JSON as `analyze`), plus chosen formats
  summary.json                   calls, patterns (night / frequency / burst), errors
  dossier.html, dossier.md       for a complaint or a brief
  .callaudit-batch.lock          flock: one batch per OUT at a time

Crash safety: every file is written atomically (temp file + rename) and a call's JSON report
is written last, so a batch killed at any point and started again redoes only the calls
without a finished report; temp files a killed run left behind are hidden, never read as
reports, and removed by a later run.
"""

from __future__ import annotations

import errno
import functools
import json
import logging
import os
import stat
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .audio import audio_problem, check_readable
from .errors import CallauditError, InputError
from .fileio import exclusive_lock, remove_stale_temps
from .filenames import AUDIO_EXTENSIONS
from .report import file_name

log = logging.getLogger(__name__)

REPORTS = "reports"
LOCK_NAME = ".callaudit-batch.lock"


@dataclass
class Scan:
    audio: list[Path] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)  # not audio
    errors: list[dict[str, str]] = field(default_factory=list)  # unreadable entries


def scan(root: Path, exclude: Path | None = None) -> Scan:
    """Recursive scan; audio recognized by content. Symlinked folders are not followed
    (archives copied from phones can hold loops). A file named like a recording (.amr, .m4a
    ...) that is not readable audio is an error; any other non-audio file is skipped."""
    result = Scan()

    def onerror(err: OSError) -> None:
        result.errors.append({"file": str(err.filename), "reason": f"无法读取：{err.strerror}"})

    for dirpath, dirnames, filenames in os.walk(root, onerror=onerror):
        here = Path(dirpath)
        dirnames[:] = sorted(d for d in dirnames if not (exclude and (here / d) == exclude))
        for name in sorted(filenames):
            path = here / name
            if name.startswith(".") and name.endswith(".tmp"):
                continue
            try:
                problem = _unusable(path)
                if problem:
                    result.errors.append({"file": str(path), "reason": problem})
                    continue
                problem = audio_problem(path)
                if problem is None:
                    result.audio.append(path)
                elif path.suffix.lower().lstrip(".") in AUDIO_EXTENSIONS:
                    result.errors.append({"file": str(path), "reason": problem})
                else:
                    result.skipped.append({"file": str(path), "reason": "不是音频文件"})
            except OSError as e:
                result.errors.append({"file": str(path), "reason": f"无法读取：{e.strerror or e}"})
    return result


def _unusable(path: Path) -> str | None:
    """Why an entry of the archive cannot be read as a file at all (None when it can)."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return "链接失效（指向的文件不存在），已跳过"
    except OSError as e:
        if e.errno == errno.ELOOP:
            return "符号链接循环，已跳过"
        return f"无法读取：{e.strerror or e}"
    if stat.S_ISFIFO(mode):
        return "命名管道，不是录音文件，已跳过"
    if not stat.S_ISREG(mode):
        return "设备或套接字，不是录音文件，已跳过"
    try:
        check_readable(path)
    except InputError as e:
        return e.problem
    return None


def report_name(root: Path, path: Path) -> str:
    """Unique, readable report name: the path relative to the archive root, flattened."""
    try:
        rel = path.relative_to(root)
    except ValueError:
        rel = Path(path.name)
    return "__".join(rel.parts)


# Provenance fields that must match for a finished report to be reused on resume.
RESUME_KEYS = ("callaudit_version", "asr_model_sha256", "asr_settings_sha256", "rules_sha256",
               "classifier_sha256")


def same_run(old: dict[str, Any], sha: str, provenance: dict[str, Any]) -> bool:
    prev = old.get("provenance") or {}
    return old.get("sha256") == sha and all(prev.get(k) == provenance.get(k) for k in RESUME_KEYS)


# ----------------------------------------------------------------------------- engines
# A worker process holds one Analyzer (models loaded once) for all its files.
_WORKER: Any = None


def _init_worker(factory: Callable[[], Any]) -> None:
    global _WORKER
    _WORKER = factory()


def _analyze_one(path: str) -> tuple[str, Any, str | None]:
    try:
        return path, _WORKER.analyze(path), None
    except InputError as e:
        return path, None, e.problem
    except CallauditError as e:
        return path, None, str(e)
    except Exception as e:  # one odd file must not stop the archive
        log.debug("internal error on %s", path, exc_info=True)
        return path, None, f"内部错误：{type(e).__name__}: {e}"


def run_local(
    paths: list[Path], factory: Callable[[], Any], workers: int
) -> Iterator[tuple[str, Any, str | None]]:
    if workers <= 1 or len(paths) <= 1:
        _init_worker(factory)
        for p in paths:
            yield _analyze_one(str(p))
        return
    with ProcessPoolExecutor(workers, initializer=_init_worker, initargs=(factory,)) as pool:
        futures = [pool.submit(_analyze_one, str(p)) for p in paths]
        for fut in as_completed(futures):
            yield fut.result()


# ----------------------------------------------------------------------------- batch
@dataclass
class BatchResult:
    out: Path
    reports: list[dict[str, Any]]
    errors: list[dict[str, str]]
    skipped: list[dict[str, str]]
    analyzed: int
    resumed: int
    summary: dict[str, Any] = field(default_factory=dict)


def pending(
    audio: Iterable[Path], root: Path, out: Path, provenance: dict[str, Any], sha_of: Callable
) -> tuple[list[Path], list[dict[str, Any]]]:
    """Split into files still to analyze and reports already done with the same model and
    rules (resume)."""
    todo, done = [], []
    for path in audio:
        target = out / REPORTS / file_name(report_name(root, path), "json")
        try:
            old = json.loads(target.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            todo.append(path)
            continue
        if isinstance(old, dict) and same_run(old, sha_of(path), provenance):
            done.append(old)
        else:
            todo.append(path)
    return todo, done


def _one_batch_per_out(run: Callable[..., BatchResult]) -> Callable[..., BatchResult]:
    """Hold OUT's batch lock while `run` works: two batches writing one OUT would race on
    summary.json and redo each other's calls. Also clears temp files of a killed run."""

    @functools.wraps(run)
    def locked(root: Path, out: Path, *args: Any, **kwargs: Any) -> BatchResult:
        out = Path(out)
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise CallauditError(f"无法创建输出目录 {out}：{e.strerror or e}，请检查路径和权限") from e
        busy = (f"另一个 callaudit batch（进程号 {{pid}}）正在写入输出目录 {out}。"
                "请等它结束后再运行，或用 --out 换一个目录。")
        with exclusive_lock(out / LOCK_NAME, busy):
            for folder in (out, out / REPORTS):
                remove_stale_temps(folder)
            return run(root, out, *args, **kwargs)

    return locked


@_one_batch_per_out
def run_batch(
    root: Path,
    out: Path,
    analyzer: Any,
    *,
    factory: Callable[[], Any],
    workers: int = 1,
    formats: tuple[str, ...] = ("json",),
    engine: str = "local",
    address: str | None = None,
    call_log: Path | None = None,
    pattern_options: dict[str, Any] | None = None,
    progress: Callable[[int, int, str], None] | None = None,
) -> BatchResult:
    """Analyze every recording under root into out; see the module docstring for the layout.

    analyzer: an Analyzer in this process (its provenance is the resume key); factory makes
    one per worker process.
    """
    from . import report as writers
    from .calllog import load_call_log
    from .dossier import build_summary, write_dossier
    from .patterns import calls_from_reports, find_patterns
    from .weights import sha256_file

    root, out = Path(root), Path(out)
    opts = dict(pattern_options or {})
    attempts = load_call_log(call_log, tz=opts.get("tz")) if call_log else None
    found = scan(root, exclude=out.resolve() if out.resolve().is_relative_to(root.resolve()) else None)
    provenance = analyzer.provenance()
    todo, done = pending(found.audio, root, out, provenance, sha256_file)
    log.info("共 %d 个录音：%d 个待分析，%d 个已完成（续跑）", len(found.audio), len(todo), len(done))
    reports = list(done)
    errors = list(found.errors)
    runner = run_local
    kwargs: dict[str, Any] = {}
    if engine == "ray":
        from .engine_ray import run_ray as runner

        kwargs = {"address": address}
    by_str = {str(p): p for p in todo}
    for i, (path_str, rep, err) in enumerate(runner(todo, factory, workers, **kwargs), 1):
        path = by_str[path_str]
        if progress:
            progress(i, len(todo), path.name)
        if err is not None:
            errors.append({"file": path_str, "reason": err})
            continue
        name = report_name(root, path)
        # JSON last: its presence marks the call as done for resume.
        for fmt in [*(f for f in dict.fromkeys(formats) if f != "json"), "json"]:
            opts = {"audio_path": path} if fmt == "html" else {}
            writers.write_report(rep, fmt, out / REPORTS, stem=name, **opts)
        reports.append(writers.to_json_dict(rep))
    # The same recording copied twice is one call, not a burst of two.
    unique = list({r.get("sha256"): r for r in reports}.values())
    patterns = find_patterns(calls_from_reports(unique), attempts, **opts)
    summary = build_summary(reports, patterns, errors, attempts=attempts, tz=opts.get("tz"),
                            night=opts.get("night", ("22:00", "08:00")))
    summary["skipped"] = found.skipped
    write_dossier(out, summary, reports)
    return BatchResult(out, reports, errors, found.skipped, len(todo), len(done), summary)
