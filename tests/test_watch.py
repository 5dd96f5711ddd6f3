"""Drop-folder watcher: settling, restarts, bad files, locking, stopping.

Recordings are real WAV files (the watcher recognizes audio by content and the fake analyzer
decodes them with the real decoder, so a truncated file fails as it would for real); only
Whisper and the detector are replaced by canned results.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from audiofiles import tone, write_audio

from analyzer.audio import check_readable, decode
from analyzer.errors import CallauditError, ModelError
from analyzer.types import AsrInfo, CallReport, Finding, Risk, Segment
from analyzer.watch import LOCK_NAME, STATE_NAME, watch

ROOT = Path(__file__).resolve().parent.parent
SETTLE, POLL = 0.3, 0.05
SECRET = "这句转写内容不应出现在日志里"


class FakeAnalyzer:
    """Decodes for real, returns a canned report: files named *threat* get two findings."""

    def __init__(self, delay: float = 0.0, fail_with: Exception | None = None):
        self.calls: list[tuple[str, int, float]] = []  # (name, size analyzed, monotonic time)
        self.delay = delay
        self.fail_with = fail_with
        self.entered = threading.Event()

    def analyze(self, path) -> CallReport:
        p = Path(path)
        self.entered.set()
        if self.fail_with:
            raise self.fail_with
        check_readable(p)
        data = p.read_bytes()
        self.calls.append((p.name, len(data), time.monotonic()))
        audio = decode(p)  # a truncated file raises InputError here, as in the real pipeline
        if self.delay:
            time.sleep(self.delay)
        findings = []
        if "threat" in p.name:
            findings = [
                Finding("threat", 1.0, 2.0, 0.9, "high", ["上门"], ["lexicon:threat.door"], "威胁上门"),
                Finding("insult", 3.0, 4.0, 0.8, "medium", ["废物"], ["lexicon:insult"], "辱骂"),
            ]
        return CallReport(
            file=str(p),
            sha256=hashlib.sha256(data).hexdigest(),
            duration=audio.duration,
            channels=len(audio.channels),
            asr=AsrInfo("fake", None, {}),
            segments=[Segment(0, 0.0, 1.0, SECRET)],
            findings=findings,
            risk=Risk(80, "high") if findings else Risk(0, "none"),
        )

    def names(self) -> list[str]:
        return [c[0] for c in self.calls]


def wav(path: Path, seconds: float = 1.0, freq: float = 440.0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_audio(path, tone(seconds, freq=freq), 16000, "wav")


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def once(root, out, analyzer, **kw):
    events = []
    watch(root, out, analyzer, settle=SETTLE, poll=POLL, once=True, on_event=events.append, **kw)
    return events


def state(out: Path) -> dict:
    return json.loads((out / STATE_NAME).read_text(encoding="utf-8"))["files"]


def wait_for(cond, timeout: float = 10.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.02)
    return cond()


class Background:
    """A watcher running in a thread until stop()."""

    def __init__(self, root, out, analyzer, **kw):
        self.stop_event = threading.Event()
        self.events = []
        self.error = None

        def run():
            try:
                watch(root, out, analyzer, stop=self.stop_event, on_event=self.events.append, **kw)
            except BaseException as e:  # surfaced by stop()
                self.error = e

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()

    def stop(self, timeout: float = 5.0) -> float:
        t0 = time.monotonic()
        self.stop_event.set()
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "watcher did not stop"
        if self.error:
            raise self.error
        return time.monotonic() - t0


# ----------------------------------------------------------------------------- settling
def test_slow_copy_is_analyzed_once_after_it_settles(tmp_path):
    root, out = tmp_path / "in", tmp_path / "out"
    root.mkdir()
    content = wav(tmp_path / "src.wav", seconds=3.0).read_bytes()
    chunks = [content[i : i + len(content) // 14 + 1] for i in range(0, len(content), len(content) // 14 + 1)]
    settle = 0.8  # well above the 0.15 s between chunks, even on a busy machine
    analyzer = FakeAnalyzer()
    bg = Background(root, out, analyzer, settle=settle, poll=POLL)
    last_write = []

    def copy_slowly():
        with open(root / "通话录音@13800138000_threat.wav", "wb") as f:
            for chunk in chunks:
                f.write(chunk)
                f.flush()
                last_write[:] = [time.monotonic()]
                time.sleep(0.15)

    writer = threading.Thread(target=copy_slowly)
    writer.start()
    writer.join()
    assert wait_for(lambda: len(analyzer.calls) >= 1)
    time.sleep(settle + 0.5)  # room for a wrong second analysis to happen
    bg.stop()

    assert len(analyzer.calls) == 1
    name, size, when = analyzer.calls[0]
    assert size == len(content)  # never a half-copied file
    assert when - last_write[0] >= settle - 0.05
    report = json.loads((out / "reports" / f"{name}.json").read_text(encoding="utf-8"))
    assert report["sha256"] == hashlib.sha256(content).hexdigest()
    assert [e.status for e in bg.events] == ["ok"]
    assert bg.events[0].findings == 2 and bg.events[0].risk == "high"


def test_log_line_per_file_without_transcript_text(tmp_path, capsys):
    root, out = tmp_path / "in", tmp_path / "out"
    wav(root / "通话录音@13800138000_threat.wav")
    wav(root / "sub" / "quiet.wav", freq=300)
    once(root, out, FakeAnalyzer())
    err = capsys.readouterr().err
    threat = [line for line in err.splitlines() if "threat.wav" in line]
    quiet = [line for line in err.splitlines() if "quiet.wav" in line]
    assert len(threat) == 1 and len(quiet) == 1
    assert "发现 2 处违规（风险 高）" in threat[0]
    assert str(out / "reports" / "通话录音@13800138000_threat.wav.json") in threat[0]
    assert "sub/quiet.wav：未发现违规" in quiet[0]
    assert (out / "reports" / "sub__quiet.wav.json").is_file()  # batch's naming
    assert SECRET not in err


# ----------------------------------------------------------------------------- restarts
def test_restart_neither_reanalyzes_nor_misses_files(tmp_path):
    root, out = tmp_path / "in", tmp_path / "out"
    wav(root / "a.wav")
    first = FakeAnalyzer()
    once(root, out, first)
    assert first.names() == ["a.wav"]

    second = FakeAnalyzer()  # a new watcher on the same OUT
    assert once(root, out, second) == []
    assert second.names() == []

    wav(root / "b.wav", freq=500)  # arrives while no watcher runs
    third = FakeAnalyzer()
    events = once(root, out, third)
    assert third.names() == ["b.wav"]
    assert [(e.status, e.path.name) for e in events] == [("ok", "b.wav")]
    files = state(out)
    assert files["a.wav"]["sha256"] == sha(root / "a.wav")
    assert files["b.wav"]["status"] == "ok"
    assert files["b.wav"]["report"] == "reports/b.wav.json"


def test_modified_file_is_reanalyzed_but_a_touch_is_not(tmp_path):
    root, out = tmp_path / "in", tmp_path / "out"
    f = wav(root / "a.wav")
    once(root, out, FakeAnalyzer())

    st = f.stat()
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
    touched = FakeAnalyzer()
    assert once(root, out, touched) == []  # not even looked up among the reports
    assert touched.names() == []
    assert state(out)["a.wav"]["mtime_ns"] == st.st_mtime_ns + 5_000_000_000

    wav(f, freq=880)  # new content, same name
    changed = FakeAnalyzer()
    once(root, out, changed)
    assert changed.names() == ["a.wav"]
    assert state(out)["a.wav"]["sha256"] == sha(f)
    report = json.loads((out / "reports" / "a.wav.json").read_text(encoding="utf-8"))
    assert report["sha256"] == sha(f)


@pytest.mark.parametrize("damage", ["truncate", "garbage", "delete"])
def test_lost_or_corrupt_state_is_rebuilt_from_reports(tmp_path, capsys, damage):
    root, out = tmp_path / "in", tmp_path / "out"
    wav(root / "a.wav")
    wav(root / "b.wav", freq=500)
    once(root, out, FakeAnalyzer())
    path = out / STATE_NAME
    text = path.read_text(encoding="utf-8")
    if damage == "truncate":
        path.write_text(text[: len(text) // 2], encoding="utf-8")
    elif damage == "garbage":
        path.write_bytes(b"\x00\xff not json")
    else:
        path.unlink()  # as after a crash between writing the report and saving the state
    capsys.readouterr()

    again = FakeAnalyzer()
    events = once(root, out, again)
    assert again.names() == []
    assert sorted((e.status, e.path.name) for e in events) == [("resumed", "a.wav"), ("resumed", "b.wav")]
    assert {k: v["status"] for k, v in state(out).items()} == {"a.wav": "ok", "b.wav": "ok"}
    err = capsys.readouterr().err
    assert ("损坏" in err) == (damage != "delete")


def test_report_for_other_content_does_not_count_as_done(tmp_path):
    root, out = tmp_path / "in", tmp_path / "out"
    wav(root / "a.wav")
    (out / "reports").mkdir(parents=True)
    (out / "reports" / "a.wav.json").write_text(json.dumps({"sha256": "0" * 64}), encoding="utf-8")
    analyzer = FakeAnalyzer()
    once(root, out, analyzer)
    assert analyzer.names() == ["a.wav"]


# ----------------------------------------------------------------------------- bad files
def test_bad_files_are_reported_once_and_skipped(tmp_path, capsys):
    root, out = tmp_path / "in", tmp_path / "out"
    broken = wav(root / "a_broken.wav", seconds=4.0)
    broken.write_bytes(broken.read_bytes()[: broken.stat().st_size // 3])  # header says 4 s
    wav(root / "b_good.wav")
    (root / "notes.txt").write_text("不是录音", encoding="utf-8")
    analyzer = FakeAnalyzer()
    events = once(root, out, analyzer)

    by_name = {e.path.name: e for e in events}
    assert by_name["a_broken.wav"].status == "error"
    assert "截断" in by_name["a_broken.wav"].reason
    assert by_name["b_good.wav"].status == "ok"  # the watcher went on after the broken file
    assert by_name["notes.txt"].status == "skipped"
    lines = capsys.readouterr().err.splitlines()
    broken_lines = [line for line in lines if "a_broken.wav" in line]
    assert len(broken_lines) == 1 and "无法分析" in broken_lines[0] and "截断" in broken_lines[0]
    assert len([line for line in lines if "notes.txt" in line and "不是音频文件" in line]) == 1
    assert not (out / "reports" / "a_broken.wav.json").exists()
    assert state(out)["a_broken.wav"]["status"] == "error"

    again = FakeAnalyzer()
    assert once(root, out, again) == []  # not retried, not reported again
    assert again.names() == []
    assert not [line for line in capsys.readouterr().err.splitlines() if "broken" in line or "notes" in line]

    wav(broken, seconds=1.0)  # re-exported properly
    fixed = FakeAnalyzer()
    events = once(root, out, fixed)
    assert fixed.names() == ["a_broken.wav"]
    assert [e.status for e in events] == ["ok"]


def test_unreadable_file_is_tried_again_once_it_can_be_read(tmp_path, capsys, monkeypatch):
    # Permissions fixed with chmod do not change a file's mtime: waiting for a change would
    # wait forever. (Tests may run as root, where chmod 000 still reads: the read fails here.)
    import analyzer.watch as w

    root, out = tmp_path / "in", tmp_path / "out"
    wav(root / "locked.wav")
    readable = threading.Event()
    real = w.sha256_file

    def sha256_file(path):
        if not readable.is_set():
            raise PermissionError(13, "Permission denied")
        return real(path)

    monkeypatch.setattr(w, "sha256_file", sha256_file)
    monkeypatch.setattr(w, "RETRY_UNREADABLE", 0.3)
    analyzer = FakeAnalyzer()
    bg = Background(root, out, analyzer, settle=SETTLE, poll=POLL)
    assert wait_for(lambda: [e.status for e in bg.events] == ["error"])
    time.sleep(1.5)  # several retries, all failing
    assert analyzer.names() == []
    readable.set()
    assert wait_for(lambda: [e.status for e in bg.events] == ["error", "ok"])
    bg.stop()
    assert analyzer.names() == ["locked.wav"]
    said = [line for line in capsys.readouterr().err.splitlines() if "locked.wav" in line]
    assert len([line for line in said if "无法读取" in line]) == 1  # said once, not per retry
    assert "稍后自动重试" in said[0]
    assert "retry_at" not in state(out)["locked.wav"]


def test_model_error_stops_the_watcher_without_blaming_the_file(tmp_path):
    root, out = tmp_path / "in", tmp_path / "out"
    wav(root / "a.wav")
    with pytest.raises(ModelError):
        once(root, out, FakeAnalyzer(fail_with=ModelError("模型文件损坏")))
    assert "a.wav" not in (state(out) if (out / STATE_NAME).exists() else {})
    fixed = FakeAnalyzer()
    once(root, out, fixed)
    assert fixed.names() == ["a.wav"]


def test_hidden_partial_and_output_files_are_ignored(tmp_path):
    root = tmp_path / "in"
    out = root / "callaudit-out"  # OUT inside the watched folder
    wav(root / ".rsync-temp.wav")
    part = wav(root / "download.wav.part")
    analyzer = FakeAnalyzer()
    assert once(root, out, analyzer) == []
    part.rename(root / "download.wav")
    events = once(root, out, analyzer)
    assert analyzer.names() == ["download.wav"]
    assert [e.path.name for e in events] == ["download.wav"]  # not its own reports or state


def test_reports_in_each_format_named_like_batch(tmp_path):
    root, out = tmp_path / "in", tmp_path / "out"
    wav(root / "sub" / "通话录音@138****0000_threat.wav")
    once(root, out, FakeAnalyzer(), formats=("md", "html"))
    names = sorted(p.name for p in (out / "reports").iterdir())
    # JSON is always kept (restarts need it); '*' is not allowed in file names on Windows
    stem = "sub__通话录音@138____0000_threat.wav"
    assert names == [f"{stem}.html", f"{stem}.json", f"{stem}.md"]
    md = (out / "reports" / f"{stem}.md").read_text(encoding="utf-8")
    assert "威胁恐吓" in md  # the finding's category, rendered by the real writer
    assert state(out)["sub/通话录音@138****0000_threat.wav"]["report"] == f"reports/{stem}.json"
    again = FakeAnalyzer()
    assert once(root, out, again) == [] and again.names() == []


# ----------------------------------------------------------------------------- lock, stop
def test_second_watcher_on_same_out_is_refused(tmp_path):
    root, out = tmp_path / "in", tmp_path / "out"
    root.mkdir()
    bg = Background(root, out, FakeAnalyzer(), settle=SETTLE, poll=POLL)
    assert wait_for(lambda: (out / LOCK_NAME).exists() and (out / LOCK_NAME).read_text().strip())
    with pytest.raises(CallauditError) as err:
        once(root, out, FakeAnalyzer())
    assert "另一个 callaudit watch" in str(err.value) and str(os.getpid()) in str(err.value)
    bg.stop()
    wav(root / "a.wav")
    later = FakeAnalyzer()
    once(root, out, later)  # the lock went with the first watcher
    assert later.names() == ["a.wav"]


def test_stop_event_ends_the_loop_promptly(tmp_path):
    root, out = tmp_path / "in", tmp_path / "out"
    root.mkdir()
    bg = Background(root, out, FakeAnalyzer(), settle=SETTLE, poll=5.0)
    time.sleep(0.3)
    assert bg.stop() < 1.0


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_signal_stops_cleanly_in_process(tmp_path, capsys, signum):
    root, out = tmp_path / "in", tmp_path / "out"
    wav(root / "a.wav")
    analyzer = FakeAnalyzer()

    def send_when_done():
        wait_for(lambda: (out / "reports" / "a.wav.json").exists())
        os.kill(os.getpid(), signum)

    threading.Thread(target=send_when_done, daemon=True).start()
    before = signal.getsignal(signum)
    watch(root, out, analyzer, settle=SETTLE, poll=POLL)  # returns instead of raising
    assert signal.getsignal(signum) is before
    assert analyzer.names() == ["a.wav"]
    assert state(out)["a.wav"]["status"] == "ok"
    assert "已停止监视" in capsys.readouterr().err


def test_first_signal_finishes_the_current_file_and_starts_no_other(tmp_path, capfd):
    root, out = tmp_path / "in", tmp_path / "out"
    wav(root / "a.wav")
    wav(root / "b.wav", freq=500)
    slow = FakeAnalyzer(delay=1.0)

    def interrupt():
        slow.entered.wait(10)
        os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=interrupt, daemon=True).start()
    watch(root, out, slow, settle=SETTLE, poll=POLL)
    assert slow.names() == ["a.wav"]
    assert state(out)["a.wav"]["status"] == "ok" and "b.wav" not in state(out)
    assert (out / "reports" / "a.wav.json").is_file()
    assert "当前文件分析完后退出" in capfd.readouterr().err  # written to fd 2 by the handler


def test_signal_wakes_an_idle_watcher_promptly(tmp_path):
    root, out = tmp_path / "in", tmp_path / "out"
    root.mkdir()
    threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT)).start()
    t0 = time.monotonic()
    watch(root, out, FakeAnalyzer(), settle=SETTLE, poll=10.0)
    assert time.monotonic() - t0 < 1.5


def test_second_signal_abandons_the_current_file_without_partial_files(tmp_path, capsys):
    root, out = tmp_path / "in", tmp_path / "out"
    wav(root / "a.wav")
    slow = FakeAnalyzer(delay=30.0)

    def interrupt_twice():
        slow.entered.wait(10)
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.2)
        os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=interrupt_twice, daemon=True).start()
    t0 = time.monotonic()
    watch(root, out, slow, settle=SETTLE, poll=POLL)
    assert time.monotonic() - t0 < 10
    assert "已放弃" in capsys.readouterr().err
    leftovers = [p.name for p in out.rglob("*") if p.is_file()]
    assert sorted(leftovers) == [LOCK_NAME]  # no report, no temporary file, nothing recorded
    fresh = FakeAnalyzer()
    once(root, out, fresh)
    assert fresh.names() == ["a.wav"]


CHILD = """
import sys
from pathlib import Path
sys.path.insert(0, "tests")
from test_watch import FakeAnalyzer
from analyzer.watch import watch
watch(Path(sys.argv[1]), Path(sys.argv[2]), FakeAnalyzer(), settle=0.3, poll=0.05)
"""


def test_sigint_on_a_running_watcher_process(tmp_path):
    root, out = tmp_path / "in", tmp_path / "out"
    root.mkdir()
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(root), str(out)],
        cwd=ROOT, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert wait_for(lambda: (out / LOCK_NAME).exists(), timeout=30)
        wav(root / "a.wav")
        assert wait_for(lambda: (out / STATE_NAME).exists(), timeout=30)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "a.wav：未发现违规" in err and "已停止监视" in err
    assert "Traceback" not in err
    assert state(out)["a.wav"]["status"] == "ok"
