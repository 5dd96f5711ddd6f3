"""Crash safety: `batch` and `watch` killed (SIGKILL) at random points and started again lose
no report, leave none half-written and redo no finished call; corrupt cache entries are
rebuilt; two processes sharing an output folder or a cache do not corrupt each other.

The killed processes run the real pipeline (decoding, rules, report writers, transcript
cache) with Whisper replaced by a slow canned transcriber. They are driven through
`python -c` with the fakes defined in this module, so the product carries no test hook.
"""

from __future__ import annotations

import functools
import json
import multiprocessing
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from audiofiles import tone, write_audio
from fakes import FakeTranscriber

from analyzer import cache as cache_module
from analyzer.batch import LOCK_NAME, run_batch
from analyzer.cache import TranscriptCache
from analyzer.pipeline import Analyzer, AnalyzerOptions
from analyzer.types import Segment

ROOT = Path(__file__).resolve().parent.parent
THREAT = "你再不还钱，我们的人就去你家门口堵你。"


def _append(log: str, line: str) -> None:
    # One write() on an O_APPEND file: lines of concurrent processes never interleave.
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)


class SlowTranscriber(FakeTranscriber):
    """Canned threat after `delay` seconds (a kill lands mid-transcription); logs each call."""

    def __init__(self, log: str, delay: float):
        super().__init__([(0.2, 0.9, THREAT)])
        self.log, self.delay = log, delay

    def transcribe(self, audio, channel):
        time.sleep(self.delay)
        _append(self.log, f"asr {len(audio)}")
        return super().transcribe(audio, channel)


class CountingAnalyzer(Analyzer):
    """The real Analyzer around SlowTranscriber, logging each analysis it starts and ends."""

    def __init__(self, log: str, delay: float):
        super().__init__(AnalyzerOptions(), transcriber=SlowTranscriber(log, delay))
        self.log = log

    def analyze(self, path):
        _append(self.log, f"start {Path(path).name}")
        report = super().analyze(path)
        _append(self.log, f"done {Path(path).name}")
        return report


def make_counting(log: str, delay: float) -> CountingAnalyzer:
    return CountingAnalyzer(log, delay)


BATCH_CHILD = """
import functools, sys
from pathlib import Path
sys.path.insert(0, "tests")
from test_crash import make_counting
from analyzer.batch import run_batch
root, out, log, workers, delay = sys.argv[1:6]
factory = functools.partial(make_counting, log, float(delay))
run_batch(Path(root), Path(out), factory(), factory=factory, workers=int(workers),
          formats=("json", "md"))
"""

WATCH_CHILD = """
import sys
from pathlib import Path
sys.path.insert(0, "tests")
from test_crash import make_counting
from analyzer.watch import watch
root, out, log = sys.argv[1:4]
watch(Path(root), Path(out), make_counting(log, 0.15), settle=0.1, poll=0.05, once=True,
      formats=("json", "md"))
"""


# ----------------------------------------------------------------------------- helpers
def archive(root: Path, n: int = 6) -> list[str]:
    """n recordings of different lengths (so they are different calls) and one broken file."""
    root.mkdir(parents=True)
    names = []
    for i in range(n):
        name = f"通话录音@13800138000_2025031{i}1200{i}0.wav"
        write_audio(root / name, tone(1.0 + 0.25 * i, freq=300 + 40 * i), 16000, "wav")
        names.append(name)
    (root / "broken.m4a").write_bytes(b"\x00\x00\x00\x18ftypM4A " + b"\x00" * 200)
    return names


def finished_reports(out: Path) -> dict[str, bytes]:
    """Recording name -> content of its JSON report; fails on any half-written report."""
    done = {}
    folder = out / "reports"
    if not folder.is_dir():
        return done
    for p in folder.iterdir():
        if p.name.startswith("."):
            assert p.name.endswith(".tmp"), p  # only temp files of atomic writes are hidden
            continue
        assert p.suffix in (".json", ".md"), p
        data = p.read_bytes()
        assert data, f"empty report {p}"
        if p.suffix == ".json":
            report = json.loads(data)  # a truncated report would fail here
            assert report["sha256"] and "findings" in report, p
            done[p.name[: -len(".json")]] = data
    return done


def events(log: Path, since: int = 0) -> list[str]:
    lines = log.read_text(encoding="utf-8").splitlines() if log.exists() else []
    return lines[since:]


def wait_until(cond, timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.01)
    return False


def kill_and_restart(argv: list[str], out: Path, log: Path, seed: int, kills: int = 4) -> int:
    """Run argv `kills` times, each time SIGKILLing its process group at a random moment
    (after 1-4 logged events plus up to 0.3 s), then once to the end. Checks after every
    round that reports are whole and that no call finished before the round was analyzed in
    it. Returns how many kills hit a running process."""
    rng = random.Random(seed)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    hits = 0
    for round_no in range(kills + 1):
        before = finished_reports(out)
        seen = len(events(log))
        proc = subprocess.Popen(argv, cwd=ROOT, env=env, start_new_session=True,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            if round_no < kills:
                target = seen + rng.randint(1, 4)
                wait_until(lambda t=target, p=proc: len(events(log)) >= t or p.poll() is not None, 60)
                time.sleep(rng.uniform(0, 0.3))
                if proc.poll() is None:
                    os.killpg(proc.pid, signal.SIGKILL)
                    hits += 1
            _, err = proc.communicate(timeout=120)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        if round_no == kills:
            assert proc.returncode == 0, err.decode()
        after = finished_reports(out)
        redone = [e for e in events(log, seen) if e.startswith("start ")
                  and f"{e[len('start '):]}" in before]
        assert not redone, f"round {round_no}: finished calls analyzed again: {redone}"
        for name, data in before.items():  # nothing finished is lost or rewritten
            assert after.get(name) == data, f"round {round_no}: report of {name} changed"
    return hits


# ----------------------------------------------------------------------------- batch
@pytest.mark.parametrize("workers,seed", [(1, 11), (2, 12)])
def test_batch_killed_at_random_points_loses_and_redoes_nothing(tmp_path, monkeypatch, workers, seed):
    root, out, log = tmp_path / "archive", tmp_path / "out", tmp_path / "events.log"
    names = archive(root, n=5)
    argv = [sys.executable, "-c", BATCH_CHILD, str(root), str(out), str(log), str(workers), "0.15"]
    monkeypatch.setenv("CALLAUDIT_CACHE", str(tmp_path / "cache"))
    hits = kill_and_restart(argv, out, log, seed)
    assert hits >= 3  # the kills did land while it was working

    assert sorted(finished_reports(out)) == sorted(names)
    assert sorted(p.name for p in (out / "reports").glob("*.md")) == sorted(f"{n}.md" for n in names)
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["totals"]["calls"] == len(names)  # temp leftovers are not calls
    assert [Path(e["file"]).name for e in summary["errors"]] == ["broken.m4a"]
    # Each call was transcribed about once: a kill wastes at most one transcription per
    # worker, and an analysis cut short after its transcription reuses the cache.
    asr = [e for e in events(log) if e.startswith("asr ")]
    assert len(names) <= len(asr) <= len(names) + workers * hits
    assert len({e for e in asr}) == len(names)


def test_second_batch_on_the_same_out_is_refused_while_the_first_runs(tmp_path):
    root, out, log = tmp_path / "archive", tmp_path / "out", tmp_path / "events.log"
    archive(root, n=4)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CALLAUDIT_CACHE": str(tmp_path / "cache")}
    first = subprocess.Popen([sys.executable, "-c", BATCH_CHILD, str(root), str(out), str(log), "1", "1.0"],
                             cwd=ROOT, env=env, stderr=subprocess.PIPE)
    try:
        lock = out / LOCK_NAME
        assert wait_until(lambda: lock.exists() and lock.read_text().strip().isdigit(), 60)
        # The real command, as a user would start it: one line in Chinese, exit 2.
        second = subprocess.run([sys.executable, "-m", "analyzer", "batch", str(root), "--out", str(out)],
                                cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
        assert second.returncode == 2
        lines = [ln for ln in second.stderr.splitlines() if ln.startswith("错误")]
        assert len(lines) == 1 and "另一个 callaudit batch" in lines[0], second.stderr
        assert str(first.pid) in lines[0] and str(out) in lines[0]
        assert "Traceback" not in second.stderr
        _, err = first.communicate(timeout=120)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == 0, err
    assert len(finished_reports(out)) == 4  # the refused batch touched nothing
    # The lock went with the first batch.
    result = run_batch(root, out, make_counting(str(log), 0), factory=functools.partial(make_counting, str(log), 0))
    assert result.analyzed == 0 and result.resumed == 4


def test_two_batches_sharing_a_cache_give_the_same_reports(tmp_path):
    root, log = tmp_path / "archive", tmp_path / "events.log"
    names = archive(root, n=5)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CALLAUDIT_CACHE": str(tmp_path / "cache")}
    procs = [subprocess.Popen([sys.executable, "-c", BATCH_CHILD, str(root), str(tmp_path / f"out{i}"),
                               str(log), "1", "0.15"], cwd=ROOT, env=env, stderr=subprocess.PIPE)
             for i in range(2)]
    for p in procs:
        _, err = p.communicate(timeout=180)
        assert p.returncode == 0, err
    a, b = (finished_reports(tmp_path / f"out{i}") for i in range(2))
    assert sorted(a) == sorted(b) == sorted(names)
    for name in names:
        ja, jb = json.loads(a[name]), json.loads(b[name])
        assert ja["sha256"] == jb["sha256"] and ja["findings"] == jb["findings"] != []
    entries = list((tmp_path / "cache" / "transcripts").rglob("*.json"))
    assert len(entries) == len(names)
    cache = TranscriptCache(tmp_path / "cache" / "transcripts")
    for e in entries:
        sha, key = e.stem.rsplit("-", 1)
        assert cache.get(sha, key) is not None


def test_stale_temp_files_are_cleared_and_never_read_as_reports(tmp_path):
    root, out, log = tmp_path / "archive", tmp_path / "out", str(tmp_path / "events.log")
    names = archive(root, n=2)
    reports = out / "reports"
    reports.mkdir(parents=True)
    old = reports / f".{names[0]}.json.k1ll3d.tmp"
    old.write_text('{"sha256": "half a rep', encoding="utf-8")
    os.utime(old, (time.time() - 3600, time.time() - 3600))
    fresh = reports / f".{names[1]}.json.wr1t1ng.tmp"  # another writer, right now
    fresh.write_text("{", encoding="utf-8")
    result = run_batch(root, out, make_counting(log, 0), factory=functools.partial(make_counting, log, 0))
    assert not old.exists() and fresh.exists()
    assert result.analyzed == 2 and sorted(finished_reports(out)) == sorted(names)


class Crash(BaseException):
    """Stands for SIGKILL at one exact point: nothing in the product catches it."""


@pytest.mark.parametrize("command", ["batch", "watch"])
def test_a_crash_between_formats_never_marks_the_call_done(tmp_path, monkeypatch, command):
    """The JSON report is what marks a call done, so it is written after every other format,
    even when the user lists json first."""
    from analyzer import report, watch

    monkeypatch.setenv("CALLAUDIT_CACHE", str(tmp_path / "cache"))
    root, out, log = tmp_path / "in", tmp_path / "out", str(tmp_path / "events.log")
    (name,) = archive(root, n=1)
    real = report.write_report

    def crash_before_md(rep, fmt, *args, **kwargs):
        if fmt == "md":
            raise Crash
        return real(rep, fmt, *args, **kwargs)

    def run():
        if command == "batch":
            run_batch(root, out, make_counting(log, 0), factory=functools.partial(make_counting, log, 0),
                      formats=("json", "md"))
        else:
            watch.watch(root, out, make_counting(log, 0), settle=0, poll=0.01, once=True,
                        formats=("json", "md"))

    with monkeypatch.context() as m:
        m.setattr(report, "write_report", crash_before_md)
        m.setattr(watch, "write_report", crash_before_md)
        with pytest.raises(Crash):
            run()
    run()  # started again after the crash
    assert (out / "reports" / f"{name}.md").is_file()
    assert name in finished_reports(out)


# ----------------------------------------------------------------------------- watch
def test_watch_killed_at_random_points_loses_and_redoes_nothing(tmp_path, monkeypatch):
    root, out, log = tmp_path / "in", tmp_path / "out", tmp_path / "events.log"
    names = archive(root, n=5)
    argv = [sys.executable, "-c", WATCH_CHILD, str(root), str(out), str(log)]
    monkeypatch.setenv("CALLAUDIT_CACHE", str(tmp_path / "cache"))
    hits = kill_and_restart(argv, out, log, seed=13)
    assert hits >= 3
    assert sorted(finished_reports(out)) == sorted(names)
    state = json.loads((out / ".callaudit-watch.json").read_text(encoding="utf-8"))["files"]
    assert {k: v["status"] for k, v in state.items()} == {**dict.fromkeys(names, "ok"), "broken.m4a": "skipped"}
    asr = [e for e in events(log) if e.startswith("asr ")]
    assert len(names) <= len(asr) <= len(names) + hits


# ----------------------------------------------------------------------------- cache
def _analyzer(log_path: Path):
    return CountingAnalyzer(str(log_path), 0)


@pytest.mark.parametrize("damage", ["truncated", "garbage", "not_an_object", "wrong_types"])
def test_corrupt_cache_entry_is_detected_and_rebuilt(tmp_path, monkeypatch, caplog, damage):
    monkeypatch.setenv("CALLAUDIT_CACHE", str(tmp_path / "cache"))
    path = write_audio(tmp_path / "call.wav", tone(2.0), 16000, "wav")
    log = tmp_path / "events.log"
    first = _analyzer(log).analyze(path)
    entry = next((tmp_path / "cache").rglob("*.json"))
    good = entry.read_bytes()
    if damage == "truncated":  # as a crash of a non-atomic writer would leave it
        entry.write_bytes(good[: len(good) // 2])
    elif damage == "garbage":
        entry.write_bytes(b"\x00\xff\xfe" * 100)
    elif damage == "not_an_object":
        entry.write_text("[1, 2, 3]", encoding="utf-8")
    else:  # checksum right, content not segments
        data = json.loads(good)
        data["body"]["segments"] = [{"index": "x"}]
        data["checksum"] = cache_module._checksum(data["body"])
        entry.write_text(json.dumps(data), encoding="utf-8")
    again = _analyzer(log).analyze(path)
    assert len([e for e in events(log) if e.startswith("asr")]) == 2  # transcribed again
    assert [f.to_dict() for f in again.findings] == [f.to_dict() for f in first.findings]
    assert json.loads(entry.read_bytes()) == json.loads(good)  # rebuilt
    assert "转写缓存损坏" in caplog.text


def test_unreadable_cache_entry_does_not_fail_the_analysis(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("CALLAUDIT_CACHE", str(tmp_path / "cache"))
    path = write_audio(tmp_path / "call.wav", tone(2.0), 16000, "wav")
    log = tmp_path / "events.log"
    _analyzer(log).analyze(path)
    entry = next((tmp_path / "cache").rglob("*.json"))
    entry.unlink()
    entry.mkdir()  # something in the way that cannot be read nor replaced
    report = _analyzer(log).analyze(path)
    assert report.findings and entry.is_dir()
    assert "无法读取转写缓存" in caplog.text and "无法写入转写缓存" in caplog.text


def _hammer(root: str, n: int, text: str) -> None:
    cache = TranscriptCache(Path(root))
    segments = [Segment(i, i, i + 1, f"{text}{i}") for i in range(40)]
    for _ in range(n):
        cache.put("ab" * 32, "k", segments, {"duration": 40.0, "writer": text})


def _read_all(root: str, n: int, queue) -> None:
    """Reads the entry n times, raw and through the cache; reports what it saw."""
    import logging

    warnings: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: warnings.append(record.getMessage())
    logging.getLogger("analyzer.cache").addHandler(handler)
    cache = TranscriptCache(Path(root))
    path = cache._path("ab" * 32, "k")
    seen, torn = set(), 0
    for _ in range(n):
        try:
            json.loads(path.read_bytes())
        except FileNotFoundError:
            pass
        except ValueError:
            torn += 1
        hit = cache.get("ab" * 32, "k")
        if hit is not None:
            segments, audio = hit
            if {s.text[:1] for s in segments} == {audio["writer"]}:  # one writer's entry
                seen.add(audio["writer"])
            else:
                torn += 1
    queue.put({"seen": sorted(seen), "torn": torn, "warnings": warnings})


def test_concurrent_writers_of_one_cache_entry(tmp_path, caplog):
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    root = str(tmp_path / "cache")
    writers = [ctx.Process(target=_hammer, args=(root, 150, w)) for w in "AB"]
    reader = ctx.Process(target=_read_all, args=(root, 400, queue))
    for p in (*writers, reader):
        p.start()
    for p in (*writers, reader):
        p.join(60)
        assert p.exitcode == 0
    got = queue.get(timeout=5)
    assert got["torn"] == 0 and got["warnings"] == [] and got["seen"], got
    segments, audio = TranscriptCache(Path(root)).get("ab" * 32, "k")
    assert len(segments) == 40 and audio["writer"] in "AB"
    assert not [p for p in Path(root).rglob("*") if p.name.endswith(".tmp")]
