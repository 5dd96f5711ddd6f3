"""Drop folder: analyze every recording that lands in a folder, once it has finished copying.

A file is taken only when its size and mtime have stayed the same for `settle` seconds, so a
half-copied recording is never analyzed. Progress survives restarts in OUT:

  OUT/.callaudit-watch.json   state: per file size, mtime_ns, sha256, status, report
  OUT/.callaudit-watch.lock   flock: one watcher per OUT
  OUT/reports/<name>.<ext>    one per format; names as `batch` (batch.report_name, made
                              safe for every file system by report.report_filename)

A file whose size and mtime match the state is not even hashed; otherwise it is hashed once
settled and analyzed only when its content is new. A report already in OUT for the same
content counts as done, which covers a crash between writing a report and saving the state,
and a lost or corrupt state file.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .audio import check_readable, is_audio
from .batch import REPORTS, report_name, same_run
from .errors import CallauditError, InputError, ModelError, RuleError
from .fileio import atomic_write_text, exclusive_lock
from .report import FORMATS, file_name, write_report
from .types import RISK_LEVEL_ZH, CallReport
from .weights import sha256_file

log = logging.getLogger(__name__)

STATE_NAME = ".callaudit-watch.json"
LOCK_NAME = ".callaudit-watch.lock"
STATE_FORMAT = 1
# Names of downloads and copies still in progress; the finished file gets its real name.
PARTIAL_SUFFIXES = (".part", ".partial", ".crdownload", ".download", ".tmp", ".filepart")
# Most seconds of outcomes a crash can lose from the state. Losing them is cheap: reports
# in OUT still count as done; only errors and skips would be reported once more.
_SAVE_EVERY = 5.0
# Longest single sleep, so a stop request is seen promptly without busy polling.
_WAKE = 0.2
# A file that could not be read (permissions, a phone's storage unmounted under it) is tried
# again after this many seconds: fixing permissions does not change the file's mtime, so
# waiting for a change would wait forever.
RETRY_UNREADABLE = 60.0


@dataclass
class WatchEvent:
    """What happened to one file (passed to on_event).

    status: "ok" (analyzed, report written), "error" (could not be analyzed), "skipped" (not
    audio), "resumed" (a report for this content was already in OUT).
    """

    status: str
    path: Path
    report: Path | None = None
    findings: int = 0
    risk: str | None = None
    reason: str | None = None


def watch(
    root: Path,
    out: Path,
    analyzer,
    *,
    settle: float = 3.0,
    poll: float = 1.0,
    formats=("json",),
    stop: threading.Event | None = None,
    once: bool = False,
    on_event: Callable[[WatchEvent], None] | None = None,
) -> None:
    """Watch root (recursively) and write a report to out for each new recording.

    Runs until `stop` is set, or SIGINT/SIGTERM when called from the main thread (first signal:
    finish the current file and stop; second: abandon it). once=True: process what is settled
    now and return. Reports go to OUT/reports/<batch.report_name>.<ext>, one per format; the
    JSON one is always written (it is the record restarts rely on). Raises CallauditError
    when another watcher holds out, or on a fault no file can get past (model, rules, output
    folder).
    """
    root, out = Path(root), Path(out)
    if not root.is_dir():
        raise InputError(str(root), "要监视的文件夹不存在或不是文件夹，请检查路径")
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise CallauditError(f"未知的报告格式：{'、'.join(unknown)}（可选 {'、'.join(FORMATS)}）")
    # JSON last: a report in OUT marks the file done, so it must follow the other formats.
    formats = [*(f for f in dict.fromkeys(formats) if f != "json"), "json"]
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise CallauditError(f"无法创建输出目录 {out}：{e.strerror or e}，请检查路径和权限") from e

    busy = f"另一个 callaudit watch（进程号 {{pid}}）正在使用输出目录 {out}。请先停止它，或用 --out 换一个目录。"
    with exclusive_lock(out / LOCK_NAME, busy):
        w = _Watcher(root, out, analyzer, settle, poll, formats, stop, on_event)
        with _signals(w):
            w.say(f"开始监视 {root}，报告写入 {out / REPORTS}（文件停止变化 {settle:g} 秒后分析）"
                  + ("" if once else "；按 Ctrl-C 停止"))
            try:
                w.run(once)
            except KeyboardInterrupt:
                w.say("已放弃正在分析的文件（下次启动时会重新分析）")
            finally:
                w.save()
        if not once or w.stopping():
            w.say(f"已停止监视，进度已保存到 {w.state_path}")


# ----------------------------------------------------------------------------- the loop
class _Watcher:
    def __init__(self, root, out, analyzer, settle, poll, formats, stop, on_event):
        self.root, self.out, self.analyzer = root, out, analyzer
        # Reports by another model or rule set are redone (fakes in tests have no provenance).
        prov = getattr(analyzer, "provenance", None)
        self.provenance = prov() if callable(prov) else None
        self.settle, self.poll = max(0.0, settle), max(0.01, poll)
        self.formats = formats
        self.stop = stop or threading.Event()
        self.on_event = on_event
        self.signalled = 0  # set by the signal handler (plain int: no locks in a handler)
        self.state_path = out / STATE_NAME
        self.files: dict[str, dict[str, Any]] = self._load()
        self.dirty = False
        self.saved_at = time.monotonic()
        # key -> (size, mtime_ns, monotonic time this stat was first seen)
        self.pending: dict[str, tuple[int, int, float]] = {}
        self.exclude = os.path.realpath(out)
        self.scan_failed = False

    # -- control
    def stopping(self) -> bool:
        return self.signalled > 0 or self.stop.is_set()

    def sleep(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while not self.stopping():
            left = end - time.monotonic()
            if left <= 0:
                return
            self.stop.wait(min(left, _WAKE))

    def run(self, once: bool) -> None:
        if once:
            self.cycle()
            if self.pending and not self.stopping():
                # Look again after the settle time; whatever still changes waits for next run.
                self.sleep(self.settle)
                self.cycle()
            return
        while not self.stopping():
            self.cycle()
            self.sleep(self.poll)

    def cycle(self) -> None:
        """One scan: note what changed, process what has settled."""
        now = time.monotonic()
        seen = self.scan()
        for key in list(self.pending):
            if key not in seen:
                del self.pending[key]
        ready = []
        wall = time.time()
        for key, (path, size, mtime) in seen.items():
            entry = self.files.get(key)
            if (entry and entry.get("size") == size and entry.get("mtime_ns") == mtime
                    and not (entry.get("retry_at") and wall >= entry["retry_at"])):
                self.pending.pop(key, None)
                continue
            first = self.pending.get(key)
            if first is None or first[:2] != (size, mtime):
                self.pending[key] = (size, mtime, now)
            elif now - first[2] >= self.settle:
                ready.append((mtime, key, path, size))
        resumed = 0
        for mtime, key, path, size in sorted(ready):
            if self.stopping():
                break
            resumed += self.process(key, Path(path), size, mtime) == "resumed"
        if resumed:
            self.say(f"{resumed} 个录音在 {self.out / REPORTS} 中已有同一内容的报告，未重复分析")
        if self.dirty:
            self.save()

    def scan(self) -> dict[str, tuple[str, int, int]]:
        """Every regular file under root: key (relative posix path) -> (path, size, mtime_ns).
        Hidden files and folders (rsync's temporaries, ._ files) and partial downloads are left
        out; symlinked folders are not followed (archives copied from phones can hold loops).
        Plain strings, not Path objects: this runs every poll and must cost next to nothing."""
        seen: dict[str, tuple[str, int, int]] = {}
        stack = [(str(self.root), "")]  # (folder, its key prefix)
        failed = False
        while stack:
            folder, prefix = stack.pop()
            try:
                with os.scandir(folder) as it:
                    entries = list(it)
            except OSError as e:
                if not prefix:
                    failed = True
                    if not self.scan_failed:
                        self.say(f"无法读取监视的文件夹 {self.root}（{e.strerror or e}），稍后重试")
                continue
            for entry in entries:
                if entry.name.startswith(".") or entry.name.endswith(PARTIAL_SUFFIXES):
                    continue
                try:
                    if entry.is_dir(follow_symlinks=False):
                        if os.path.realpath(entry.path) != self.exclude:
                            stack.append((entry.path, f"{prefix}{entry.name}/"))
                    elif entry.is_file():
                        st = entry.stat()
                        seen[prefix + entry.name] = (entry.path, st.st_size, st.st_mtime_ns)
                except OSError:
                    continue  # vanished or unreadable entry: seen again next scan if it matters
        self.scan_failed = failed
        return seen

    # -- one file
    def process(self, key: str, path: Path, size: int, mtime: int) -> str | None:
        """Hash, check and analyze one settled file; returns the status recorded (or None)."""
        try:
            sha = sha256_file(path)
            st = path.stat()
        except FileNotFoundError:
            self.pending.pop(key, None)
            return None
        except OSError as e:
            return self.record(key, path, size, mtime, None, "error", retry=True,
                               reason=f"无法读取（{e.strerror or e}），请检查文件权限")
        if (st.st_size, st.st_mtime_ns) != (size, mtime):  # changed while hashing
            self.pending[key] = (st.st_size, st.st_mtime_ns, time.monotonic())
            return None
        self.pending.pop(key, None)

        old = self.files.get(key)
        if old and old.get("sha256") == sha:  # touched, content unchanged: keep the verdict
            old.update(size=size, mtime_ns=mtime)
            self.dirty = True
            return None

        try:
            audio = is_audio(path)
        except Exception as e:  # a probe that crashes on odd bytes must not stop the watcher
            return self.record(key, path, size, mtime, sha, "error",
                               reason=f"内部错误：{type(e).__name__}: {e}")
        if not audio:
            return self.record(key, path, size, mtime, sha, "skipped", reason=_not_audio_reason(path))

        stem = report_name(self.root, path)
        target = self.out / REPORTS / file_name(stem, "json")
        if _done_before(target, sha, self.provenance):
            return self.record(key, path, size, mtime, sha, "resumed", report=target)

        try:
            report = self.analyzer.analyze(path)
        except (ModelError, RuleError):
            raise  # no file can get past these: stop and say so
        except InputError as e:
            return self.record(key, path, size, mtime, sha, "error", reason=e.problem)
        except CallauditError as e:
            return self.record(key, path, size, mtime, sha, "error", reason=str(e))
        except Exception as e:  # one odd file must not stop the watcher
            log.debug("internal error on %s", path, exc_info=True)
            return self.record(key, path, size, mtime, sha, "error",
                               reason=f"内部错误：{type(e).__name__}: {e}")
        self.write(report, stem)
        return self.record(key, path, size, mtime, sha, "ok", report=target,
                           findings=len(report.findings), risk=report.risk.level)

    def write(self, report: CallReport, stem: str) -> None:
        """All formats, JSON last (the record of this file being done)."""
        try:
            for fmt in self.formats:
                write_report(report, fmt, self.out / REPORTS, stem=stem)
        except OSError as e:
            raise CallauditError(
                f"无法写入报告到 {self.out / REPORTS}：{e.strerror or e}，请检查输出目录的空间和权限"
            ) from e

    def record(self, key, path, size, mtime, sha, status, *, report=None, reason=None,
               findings=0, risk=None, retry=False) -> str:
        """Remember the outcome, say it in one line, tell on_event. retry: try again after
        RETRY_UNREADABLE seconds, and say nothing while the same error repeats."""
        old = self.files.get(key) or {}
        repeated = retry and old.get("status") == status and old.get("reason") == reason
        self.files[key] = {
            "size": size,
            "mtime_ns": mtime,
            "sha256": sha,
            "status": "ok" if status == "resumed" else status,
            "report": report.relative_to(self.out).as_posix() if report else None,
            "reason": reason,
        }
        if retry:
            self.files[key]["retry_at"] = time.time() + RETRY_UNREADABLE
        self.dirty = True
        if repeated:
            return status
        if time.monotonic() - self.saved_at >= _SAVE_EVERY:
            self.save()
        if status == "ok":
            said = (f"发现 {findings} 处违规（风险 {RISK_LEVEL_ZH.get(risk, risk)}）"
                    if findings else "未发现违规")
            self.say(f"{key}：{said}，报告 {report}")
        elif status == "error" and retry:
            self.say(f"{key}：{reason}；稍后自动重试")
        elif status == "error":
            self.say(f"{key}：无法分析，已跳过（{reason}）；文件有变化时会重新分析")
        elif status == "skipped":
            self.say(f"{key}：{reason}，已跳过")
        if self.on_event:
            self.on_event(WatchEvent(status, path, report, findings, risk, reason))
        return status

    # -- state
    def _load(self) -> dict[str, dict[str, Any]]:
        try:
            raw = self.state_path.read_bytes()
        except FileNotFoundError:
            return {}
        except OSError as e:
            raise CallauditError(
                f"无法读取状态文件 {self.state_path}：{e.strerror or e}，请检查权限"
            ) from e
        try:
            data = json.loads(raw.decode("utf-8"))
            if not isinstance(data, dict) or data.get("format") != STATE_FORMAT:
                raise ValueError("unknown format")
            files = data["files"]
            if not isinstance(files, dict):
                raise ValueError("files is not an object")
        except (ValueError, KeyError) as e:
            log.debug("state file unusable: %s", e)
            self.say(f"状态文件 {self.state_path} 损坏，已重建（已有报告的录音不会重复分析）")
            return {}
        if data.get("root") != str(_resolved(self.root)):
            self.say(f"状态文件 {self.state_path} 属于另一个文件夹（{data.get('root')}），已重新开始")
            return {}
        return {k: v for k, v in files.items() if _valid_entry(v)}

    def save(self) -> None:
        if not self.dirty:
            return
        data = {"format": STATE_FORMAT, "root": str(_resolved(self.root)), "files": self.files}
        try:
            atomic_write_text(self.state_path, json.dumps(data, ensure_ascii=False))
        except OSError as e:
            raise CallauditError(
                f"无法保存状态文件 {self.state_path}：{e.strerror or e}，请检查输出目录的空间和权限"
            ) from e
        self.dirty = False
        self.saved_at = time.monotonic()

    @staticmethod
    def say(message: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------- helpers
def _valid_entry(v: Any) -> bool:
    return (
        isinstance(v, dict)
        and isinstance(v.get("size"), int)
        and isinstance(v.get("mtime_ns"), int)
        and v.get("status") in ("ok", "error", "skipped")
        and (v.get("sha256") is None or isinstance(v.get("sha256"), str))
        and isinstance(v.get("retry_at", 0.0), int | float)
    )


def _resolved(p: Path) -> Path:
    try:
        return p.resolve()
    except OSError:
        return p.absolute()


def _done_before(target: Path, sha: str, provenance: dict | None) -> bool:
    """An existing JSON report of this content by the same model and rules (batch's rule)."""
    try:
        data = json.loads(target.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if not isinstance(data, dict):
        return False
    return data.get("sha256") == sha if provenance is None else same_run(data, sha, provenance)


def _not_audio_reason(path: Path) -> str:
    try:
        check_readable(path)
    except InputError as e:
        return e.problem
    return "不是音频文件"


@contextmanager
def _signals(w: _Watcher) -> Iterator[None]:
    """SIGINT/SIGTERM: the first stops after the current file, the second abandons it.
    Only the main thread may install handlers; elsewhere the caller's stop event rules."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        w.signalled += 1
        if w.signalled > 1:
            raise KeyboardInterrupt
        # os.write, not print: the main thread may be inside a print to stderr right now.
        stamp = time.strftime("%H:%M:%S")
        os.write(2, f"[{stamp}] 正在停止：当前文件分析完后退出（再按一次 Ctrl-C 立即退出）\n".encode())

    old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)
