"""The README and CHANGELOG cite results files by relative link: each must exist."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


@pytest.mark.parametrize("doc", ["README.md", "CHANGELOG.md"])
def test_relative_links_point_to_files(doc):
    text = (ROOT / doc).read_text(encoding="utf-8")
    targets = [t for t in LINK.findall(text) if not re.match(r"[a-z]+:", t)]
    assert targets, f"{doc} links to nothing"
    missing = [t for t in targets if not (ROOT / t).exists()]
    assert not missing, missing
