"""Report writers: text (terminal, default), json, html (one self-contained page), md.

Every writer first completes the report (legal basis, verdict, provenance: see
common.complete) on a copy, so a report straight from the pipeline renders fully.
"""

from __future__ import annotations

import json
import re
from pathlib import Path, PurePath
from typing import Any

from ..fileio import atomic_write_text
from ..types import CallReport
from . import html, markdown, text
from .common import complete, ordered_dict

FORMATS: tuple[str, ...] = ("text", "json", "html", "md")
EXTENSIONS: dict[str, str] = {"text": ".txt", "json": ".json", "html": ".html", "md": ".md"}

__all__ = [
    "EXTENSIONS", "FORMATS", "complete", "file_name", "render", "render_many", "report_filename",
    "to_json_dict", "write_report",
]


def _check(fmt: str) -> None:
    if fmt not in FORMATS:
        raise ValueError(f"未知的报告格式：{fmt}（可选 {'、'.join(FORMATS)}）")


def to_json_dict(report: CallReport) -> dict[str, Any]:
    """The JSON object of one call (see analyzer/data/report.schema.json)."""
    return ordered_dict(complete(report))


def render(report: CallReport, fmt: str = "text", **options: Any) -> str:
    """One call as fmt. html options: audio ("auto" | "embed" | "link" | "none"),
    audio_path (the recording, default report.file), base_dir (for audio="link")."""
    return render_many([report], fmt, **_single(options))


def _single(options: dict[str, Any]) -> dict[str, Any]:
    opts = dict(options)
    if "audio_path" in opts:
        path = opts.pop("audio_path")
        opts["audio_paths"] = [Path(path) if path is not None else None]
    return opts


def render_many(reports: list[CallReport], fmt: str = "text", **options: Any) -> str:
    """Several calls as fmt: text/md one after another, html one page, json an array (a
    single report gives one object, as `callaudit analyze one.wav --format json` prints)."""
    _check(fmt)
    done = [complete(r) for r in reports]
    if fmt == "json":
        data: Any = [ordered_dict(r) for r in done]
        if len(done) == 1:
            data = data[0]
        return json.dumps(data, ensure_ascii=False, indent=2) + "\n"
    if fmt == "text":
        return text.render_many(done) + "\n"
    if fmt == "md":
        return markdown.render_many(done)
    return html.render_many(
        done,
        audio=options.get("audio", "auto"),
        audio_paths=options.get("audio_paths"),
        base_dir=options.get("base_dir"),
    )


# Characters Windows forbids in file names (masked numbers contain '*').
_UNSAFE_NAME = re.compile(r'[<>:"/\\|?*\x00-\x1f]')


def file_name(stem: str, fmt: str) -> str:
    """stem plus the format's extension, safe on every OS (batch and watch look reports up
    by this name when they resume)."""
    _check(fmt)
    return (_UNSAFE_NAME.sub("_", stem).strip(" .") or "report") + EXTENSIONS[fmt]


def report_filename(report: CallReport, fmt: str, stem: str | None = None) -> str:
    """File name of a call's report: stem, by default the recording's file stem."""
    return file_name(PurePath(report.file).stem if stem is None else stem, fmt)


def write_report(
    report: CallReport, fmt: str, out_dir: Path | str, stem: str | None = None, **options: Any
) -> Path:
    """Write one call's report into out_dir (created if needed), atomically; returns its path.
    stem: the file name without extension (default: the recording's).
    For html, audio="link" paths are made relative to out_dir."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if fmt == "html":
        options.setdefault("base_dir", out)
    content = render(report, fmt, **options)
    path = atomic_write_text(out / report_filename(report, fmt, stem), content)
    return path
