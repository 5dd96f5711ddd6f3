"""Helpers for the tests of scripts/: load one as a module, make a small corpus."""

import importlib.util
import sys
from pathlib import Path

from analyzer import classifier as C

ROOT = Path(__file__).resolve().parents[1]


def load_script(name: str):
    """scripts/<name>.py as a module (registered, so its dataclasses resolve)."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


def tiny_corpus(root: Path) -> Path:
    """A corpus folder with one row per file, as the trainer reads it."""
    root.mkdir()
    for cat in C.CATEGORY_IDS:
        (root / f"{cat}.tsv").write_text(f"text\tstyle\n老句子{cat}\tdirect\n", encoding="utf-8")
    (root / "lawful.tsv").write_text("text\tkind\n您好，请问是本人吗\tservice\n", encoding="utf-8")
    return root
