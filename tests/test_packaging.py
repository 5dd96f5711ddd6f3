"""The wheel carries what an installed callaudit needs: rules, data, report code, the classifier.

Built offline from the checkout (no build isolation: setuptools comes with the dev extra), then
installed without dependencies into a folder that is put first on the path of a fresh Python,
run outside the checkout, so nothing can come from the repository by accident.
"""

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    build = tmp_path_factory.mktemp("build")
    r = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
         "-w", str(out), str(ROOT)],
        capture_output=True, text=True, cwd=build, timeout=600,
    )
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    wheels = list(out.glob("callaudit-*.whl"))
    assert len(wheels) == 1
    return wheels[0]


def test_wheel_lists_the_model_rules_and_data(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for f in ("classifier.json", "classifier.npz", "MODEL_CARD.md"):
        assert f"analyzer/models/{f}" in names
    for f in (ROOT / "analyzer" / "rules").glob("*.yaml"):
        assert f"analyzer/rules/{f.name}" in names
    for f in (ROOT / "analyzer" / "data").iterdir():
        assert f"analyzer/data/{f.name}" in names
    assert "analyzer/report/html.py" in names
    # The shipped model is the repository's, byte for byte.
    with zipfile.ZipFile(wheel) as z:
        assert z.read("analyzer/models/classifier.npz") == (ROOT / "models" / "classifier.npz").read_bytes()


def test_installed_wheel_loads_its_own_classifier(wheel, tmp_path):
    target = tmp_path / "site"
    r = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "--target",
         str(target), str(wheel)],
        capture_output=True, text=True, timeout=600,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    probe = (
        "import analyzer, analyzer.classifier as c\n"
        "from analyzer.pipeline import Analyzer\n"
        "print(analyzer.__file__)\n"
        "print(c.DEFAULT_MODEL_DIR)\n"
        "e = Analyzer().explain('把你手机上收到的验证码念给我听')\n"
        "print(sorted({f.category for f in e.findings}))\n"
    )
    env = dict(os.environ, PYTHONPATH=str(target))
    r = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                       cwd=tmp_path, env=env, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    where, model_dir, found = r.stdout.strip().splitlines()[-3:]
    assert Path(where).is_relative_to(target)
    assert Path(model_dir) == target / "analyzer" / "models"
    assert found == "['sensitive_info']"
