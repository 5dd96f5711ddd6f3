"""Offline guarantee: `analyze` and `batch` work with no network at all, and never try to use it.

Commands run in a sandbox made of two layers:
- `unshare -rn` (a new user + network namespace: only a loopback that is down) when this
  machine allows it, so even native code cannot reach anything;
- always, a sitecustomize.py on PYTHONPATH that makes every IPv4/IPv6 connect, DNS lookup
  and datagram raise and records it, so an attempt that a library would swallow (a hub
  lookup with a fallback) still fails the test.
The canary tests prove the sandbox blocks what it should.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from audiofiles import tone, write_audio

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"
# A short sample with violations (labels in samples/labels.json).
SAMPLE = "13800138000-2503190930.mp3"

SHIM = '''
"""Installed by tests/test_offline.py: no network for this interpreter; attempts recorded."""
import os
import socket

_LOG = os.environ.get("CALLAUDIT_NET_LOG")
_INET = (socket.AF_INET, socket.AF_INET6)


def _blocked(what):
    if _LOG:
        with open(_LOG, "a", encoding="utf-8") as f:
            f.write(what + "\\n")
    raise OSError(101, "network disabled by the offline test: " + what)


_connect, _connect_ex, _sendto = socket.socket.connect, socket.socket.connect_ex, socket.socket.sendto


def connect(self, address):
    if self.family in _INET:
        _blocked("connect %r" % (address,))
    return _connect(self, address)


def connect_ex(self, address):
    if self.family in _INET:
        _blocked("connect_ex %r" % (address,))
    return _connect_ex(self, address)


def sendto(self, *args):
    if self.family in _INET:
        _blocked("sendto %r" % (args[-1],))
    return _sendto(self, *args)


def getaddrinfo(host, *args, **kwargs):
    _blocked("getaddrinfo %r" % (host,))


socket.socket.connect = connect
socket.socket.connect_ex = connect_ex
socket.socket.sendto = sendto
socket.getaddrinfo = getaddrinfo
socket.gethostbyname = getaddrinfo
'''


def _unshare_works() -> bool:
    if not shutil.which("unshare"):
        return False
    try:
        return subprocess.run(["unshare", "-rn", "true"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


UNSHARE = _unshare_works()


class Sandbox:
    def __init__(self, tmp: Path, shim: bool = True, namespace: bool = UNSHARE):
        self.tmp = tmp
        self.net_log = tmp / "net.log"
        self.namespace = namespace
        shim_dir = tmp / "shim"
        shim_dir.mkdir(exist_ok=True)
        if shim:
            (shim_dir / "sitecustomize.py").write_text(SHIM, encoding="utf-8")
        home = tmp / "home"
        home.mkdir(exist_ok=True)
        self.env = {
            k: v for k, v in os.environ.items()
            if not k.startswith(("HF_", "HUGGINGFACE", "TRANSFORMERS"))
            and k.lower() not in ("http_proxy", "https_proxy", "all_proxy", "no_proxy")
        }
        self.env.update({
            "PYTHONPATH": os.pathsep.join([str(shim_dir), str(ROOT)]),
            "CALLAUDIT_NET_LOG": str(self.net_log),
            "HOME": str(home),  # no hub cache to fall back on
            "CALLAUDIT_CACHE": str(tmp / "cache"),  # the model is assembled in here, offline
        })
        self.env.pop("XDG_CACHE_HOME", None)

    def run(self, args: list[str], timeout: float = 600) -> subprocess.CompletedProcess:
        argv = [sys.executable, *args]
        if self.namespace:
            argv = ["unshare", "-rn", *argv]
        return subprocess.run(argv, cwd=ROOT, env=self.env, capture_output=True, text=True,
                              timeout=timeout)

    def attempts(self) -> list[str]:
        return self.net_log.read_text(encoding="utf-8").splitlines() if self.net_log.exists() else []


@pytest.fixture
def listener():
    """A TCP server on this machine's loopback: reachable from anywhere but the sandbox."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(10)

    def accept():
        try:
            while True:
                conn, _ = server.accept()
                conn.close()
        except OSError:
            pass

    threading.Thread(target=accept, daemon=True).start()
    yield server.getsockname()[1]
    server.close()


CONNECT = """
import socket, sys
try:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(3)
    s.connect(("127.0.0.1", int(sys.argv[1])))
except OSError as e:
    print("blocked:", e)
    sys.exit(7)
print("connected")
"""
RESOLVE = """
import socket, sys
try:
    socket.getaddrinfo("huggingface.co", 443)
except OSError as e:
    print("blocked:", e)
    sys.exit(7)
"""


# ----------------------------------------------------------------------------- canaries
def test_canary_the_sandbox_blocks_and_records_a_connection(tmp_path, listener):
    outside = subprocess.run([sys.executable, "-c", CONNECT, str(listener)], capture_output=True, text=True)
    assert outside.returncode == 0 and "connected" in outside.stdout  # the control
    box = Sandbox(tmp_path)
    inside = box.run(["-c", CONNECT, str(listener)])
    assert inside.returncode == 7, inside.stdout + inside.stderr
    assert box.attempts() == [f"connect ('127.0.0.1', {listener})"]
    assert box.run(["-c", RESOLVE]).returncode == 7
    assert box.attempts()[-1] == "getaddrinfo 'huggingface.co'"


@pytest.mark.skipif(not UNSHARE, reason="unshare -rn not permitted here: the Python shim alone guards")
def test_canary_the_network_namespace_blocks_without_the_shim(tmp_path, listener):
    box = Sandbox(tmp_path, shim=False)
    inside = box.run(["-c", CONNECT, str(listener)])
    assert inside.returncode == 7, inside.stdout + inside.stderr
    assert box.attempts() == []  # blocked by the namespace itself


# ----------------------------------------------------------------------------- loading
def test_embedded_model_loads_from_a_local_folder_only(tmp_path, monkeypatch):
    """The embedded model is given to faster-whisper as a verified local folder with
    local_files_only=True, as HF_HUB_OFFLINE would force; no hub name is ever passed."""
    import faster_whisper

    from analyzer.asr import WhisperTranscriber
    from analyzer.weights import EMBEDDED_SHA256

    monkeypatch.setenv("CALLAUDIT_CACHE", str(tmp_path / "cache"))
    calls = []

    class Recorder:
        def __init__(self, model, **kwargs):
            calls.append((model, kwargs))

    monkeypatch.setattr(faster_whisper, "WhisperModel", Recorder)
    t = WhisperTranscriber()
    t._get_model()
    (model, kwargs), = calls
    assert Path(model).is_dir() and Path(model).is_relative_to(tmp_path / "cache")
    assert (Path(model) / "model.bin").is_file() and kwargs["local_files_only"] is True
    assert t.info.model_sha256 == EMBEDDED_SHA256


BATCH_WITH_FAKE = """
import sys
from pathlib import Path
sys.path.insert(0, "tests")
from fakes import FakeTranscriber
from analyzer.batch import run_batch
from analyzer.pipeline import Analyzer
def make():
    return Analyzer(transcriber=FakeTranscriber([(0.2, 1.5, "你再不还钱，我们就去你家门口堵你。")]))
result = run_batch(Path(sys.argv[1]), Path(sys.argv[2]), make(), factory=make, formats=("json", "html", "md"))
print(len(result.reports), len(result.errors))
"""


def test_everything_but_whisper_runs_offline(tmp_path):
    """Rules, jieba, pinyin, OpenCC, reports, dossier: no network, no attempt."""
    folder = tmp_path / "calls"
    folder.mkdir()
    write_audio(folder / "通话录音@13800138000_20250310120000.m4a", tone(2.0), 16000, "m4a")
    (folder / "broken.amr").write_bytes(b"not audio")
    box = Sandbox(tmp_path)
    proc = box.run(["-c", BATCH_WITH_FAKE, str(folder), str(tmp_path / "out")], timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["1", "1"]
    assert (tmp_path / "out" / "dossier.html").is_file()
    assert box.attempts() == []


# ----------------------------------------------------------------------------- real model
@pytest.mark.slow
def test_analyze_and_batch_offline_with_the_real_model(tmp_path):
    box = Sandbox(tmp_path)
    proc = box.run(["-m", "analyzer", "analyze", str(SAMPLES / SAMPLE), "--format", "json"])
    assert proc.returncode == 1, proc.stderr  # findings: the sample breaks rules
    report = json.loads(proc.stdout)
    assert report["findings"] and report["segments"]
    assert box.attempts() == []

    folder = tmp_path / "archive"
    folder.mkdir()
    shutil.copy(SAMPLES / SAMPLE, folder / SAMPLE)  # transcript cached by the run above
    write_audio(folder / "beep.wav", tone(3.0), 16000, "wav")  # new: loads the model again
    out = tmp_path / "out"
    proc = box.run(["-m", "analyzer", "batch", str(folder), "--out", str(out)])
    assert proc.returncode == 1, proc.stderr
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["totals"]["calls"] == 2 and summary["errors"] == []
    assert (out / "dossier.html").is_file()
    assert box.attempts() == []
