"""The HTML report in a real headless Chromium: findings listed, clicking one seeks the player.

Chromium is driven over the DevTools protocol on a pipe (--remote-debugging-pipe: JSON
messages separated by NUL on file descriptors 3 and 4), so the test needs no Python package
beyond the standard library. The click is a real mouse event at the button's position.
Install the browser with: apt-get install -y chromium
"""

from __future__ import annotations

import fcntl
import json
import os
import select
import shutil
import signal
import subprocess
import time
import wave
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from analyzer.report import write_report
from analyzer.types import AsrInfo, CallReport, Finding, Risk, Segment

BROWSER = next(
    (p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None
)
BASH = shutil.which("bash")
pytestmark = pytest.mark.skipif(
    BROWSER is None or BASH is None, reason="chromium not installed (apt-get install -y chromium)"
)

RATE = 8000
SECONDS = 12.0
TIMEOUT = 30.0


def _above(fd: int, low: int) -> int:
    moved = fcntl.fcntl(fd, fcntl.F_DUPFD, low)
    os.close(fd)
    return moved


class DevTools:
    """Minimal DevTools-protocol client over the two pipes Chromium opens on fds 3 and 4."""

    def __init__(self, user_data_dir: Path):
        to_chrome_r, self._to_chrome = os.pipe()
        self._from_chrome, from_chrome_w = os.pipe()
        # The child's ends must not already sit on fds 3/4, or moving them there closes them.
        to_chrome_r, from_chrome_w = (_above(fd, 10) for fd in (to_chrome_r, from_chrome_w))
        flags = [
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--no-first-run", "--disable-dev-shm-usage",
            f"--user-data-dir={user_data_dir}", "--remote-debugging-pipe", "about:blank",
        ]
        # bash (dash only knows fds 0-9) puts the pipe ends on fds 3 (commands in) and 4
        # (replies out), then execs the browser.
        script = f'exec "$0" "$@" 3<&{to_chrome_r} 4>&{from_chrome_w} {to_chrome_r}<&- {from_chrome_w}>&-'
        self.proc = subprocess.Popen(
            [BASH, "-c", script, BROWSER, *flags],
            pass_fds=(to_chrome_r, from_chrome_w),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self._buf = b""
        self._id = 0
        self.events: list[dict[str, Any]] = []

    def _read_message(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._from_chrome], [], [], left)[0]:
                raise TimeoutError("no reply from chromium")
            chunk = os.read(self._from_chrome, 1 << 16)
            if not chunk:
                raise RuntimeError("chromium closed the DevTools pipe")
            self._buf += chunk
        raw, self._buf = self._buf.split(b"\0", 1)
        return json.loads(raw)

    def send(self, method: str, params: dict | None = None, session: str | None = None) -> dict:
        self._id += 1
        msg: dict[str, Any] = {"id": self._id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self._to_chrome, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + TIMEOUT
        while True:
            reply = self._read_message(deadline)
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply["result"]
            self.events.append(reply)

    def wait_event(self, method: str, session: str) -> dict:
        deadline = time.monotonic() + TIMEOUT
        while True:
            for ev in self.events:
                if ev.get("method") == method and ev.get("sessionId") == session:
                    self.events.remove(ev)
                    return ev
            self.events.append(self._read_message(deadline))

    def close(self) -> None:
        try:
            self.send("Browser.close")
        except (RuntimeError, TimeoutError, OSError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)  # the group this test started
            self.proc.wait()
        os.close(self._to_chrome)
        os.close(self._from_chrome)


class Page:
    def __init__(self, tools: DevTools, url: str):
        self.tools = tools
        target = tools.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = tools.send(
            "Target.attachToTarget", {"targetId": target, "flatten": True}
        )["sessionId"]
        tools.send("Page.enable", session=self.session)
        tools.send("Page.navigate", {"url": url}, session=self.session)
        tools.wait_event("Page.loadEventFired", self.session)

    def js(self, expression: str) -> Any:
        result = self.tools.send(
            "Runtime.evaluate",
            {"expression": expression, "awaitPromise": True, "returnByValue": True},
            session=self.session,
        )
        if "exceptionDetails" in result:
            raise RuntimeError(f"page script failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    def click(self, selector: str) -> None:
        """A real left click at the centre of the element (a user gesture for the page)."""
        box = self.js(
            f"(() => {{ const el = document.querySelector({json.dumps(selector)});"
            " el.scrollIntoView({block: 'center'}); const r = el.getBoundingClientRect();"
            " return {x: r.left + r.width / 2, y: r.top + r.height / 2}; })()"
        )
        for kind in ("mousePressed", "mouseReleased"):
            self.tools.send(
                "Input.dispatchMouseEvent",
                {"type": kind, "x": box["x"], "y": box["y"], "button": "left", "clickCount": 1},
                session=self.session,
            )

    def settled_time(self) -> float:
        """The player's currentTime once any seek has finished."""
        return self.js(
            "new Promise(done => { const a = document.querySelector('audio');"
            " const t0 = Date.now();"
            " (function poll() { if (!a.seeking || Date.now() - t0 > 5000) done(a.currentTime);"
            " else setTimeout(poll, 50); })(); })"
        )


def _write_wav(path: Path) -> Path:
    t = np.arange(int(SECONDS * RATE)) / RATE
    pcm = (0.3 * np.sin(2 * np.pi * 440 * t) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(pcm.tobytes())
    return path


def _report(audio: Path) -> CallReport:
    segs = [
        Segment(0, 0.0, 3.0, "你好，我是催收专员。"),
        Segment(1, 3.0, 6.5, "再不还钱我就上门找你。"),
        Segment(2, 6.5, 10.0, "你这个废物。"),
    ]
    findings = [
        Finding("threat", 3.0, 6.5, 0.9, "high", ["上门找你"], ["test"], "威胁上门", [1]),
        Finding("insult", 6.5, 10.0, 0.8, "medium", ["废物"], ["test"], "辱骂", [2]),
    ]
    return CallReport(str(audio), "c" * 64, SECONDS, 1, AsrInfo("fake", None), segs, findings,
                      Risk(70, "high"))


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    tools = DevTools(tmp_path_factory.mktemp("chromium-profile"))
    try:
        yield tools
    finally:
        tools.close()


@pytest.mark.parametrize("audio_mode", ["embed", "link"])
def test_clicking_a_finding_seeks_the_player(browser, tmp_path, audio_mode):
    rec_dir = tmp_path / "录音"
    rec_dir.mkdir()
    wav = _write_wav(rec_dir / "通话 1.wav")
    page_path = write_report(_report(wav), "html", tmp_path / "out", audio=audio_mode)
    page = Page(browser, page_path.resolve().as_uri())

    listed = page.js(
        "Array.from(document.querySelectorAll('.finding')).map(li => li.innerText)"
    )
    assert len(listed) == 2
    assert "威胁恐吓" in listed[0] and "00:03–00:07" in listed[0] and "上门找你" in listed[0]
    assert "辱骂侮辱" in listed[1]

    # The embedded (or linked) audio really loads: its duration is the WAV's.
    duration = page.js(
        "new Promise((done, fail) => { const a = document.querySelector('audio');"
        " if (a.readyState >= 1) return done(a.duration);"
        " a.addEventListener('loadedmetadata', () => done(a.duration));"
        " a.addEventListener('error', () => fail(new Error('audio error ' + a.error.code)));"
        " setTimeout(() => fail(new Error('audio did not load')), 10000); })"
    )
    assert duration == pytest.approx(SECONDS, abs=0.05)
    assert page.js("document.querySelector('audio').currentTime") == 0

    page.click(".finding:nth-of-type(1) button.seek")
    assert page.settled_time() == pytest.approx(3.0, abs=0.5)
    page.click(".finding:nth-of-type(2) button.seek")
    assert page.settled_time() == pytest.approx(6.5, abs=0.5)
    page.click("#c1-s0 button.seek")  # a transcript row seeks too
    assert page.settled_time() == pytest.approx(0.0, abs=0.5)


def test_injected_markup_does_not_run(browser, tmp_path):
    wav = _write_wav(tmp_path / "x.wav")
    rep = _report(wav)
    rep.segments[0] = Segment(0, 0.0, 3.0, '<img src=x onerror="document.title=\'pwned\'">你好')
    page_path = write_report(rep, "html", tmp_path / "out", audio="none")
    page = Page(browser, page_path.resolve().as_uri())
    assert page.js("document.title") != "pwned"
    assert page.js("document.querySelectorAll('img').length") == 0
    assert "<img src=x" in page.js("document.querySelector('#c1-s0').innerText")
