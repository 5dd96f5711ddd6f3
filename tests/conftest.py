import os
import shutil
import sys
import tempfile
from pathlib import Path

# Test helpers (tests/audiofiles.py, tests/fakes.py) import as plain modules.
sys.path.insert(0, str(Path(__file__).parent))

# Every run starts from an empty per-user cache: end-to-end tests must really transcribe (a
# developer's cached transcripts would hide a slow or broken ASR path), and tests never touch
# the user's own cache. Subprocesses inherit it.
_CACHE = tempfile.mkdtemp(prefix="callaudit-test-cache-")
os.environ["CALLAUDIT_CACHE"] = _CACHE


def pytest_unconfigure(config):
    shutil.rmtree(_CACHE, ignore_errors=True)
