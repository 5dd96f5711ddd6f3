"""The `callaudit` command: a thin click layer over the library.

stdout carries only reports; progress, logs and errors go to stderr.
Exit status: 0 no findings, 1 findings in some call, 2 usage or input error, 3 internal error.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import click

from .errors import CallauditError, InputError

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}
FORMATS = ("text", "json", "html", "md")
EXIT_FINDINGS, EXIT_INPUT, EXIT_INTERNAL = 1, 2, 3


def _setup_logging(verbose: int) -> None:
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(message)s", stream=sys.stderr, force=True)


def _fail(message: str, code: int = EXIT_INPUT) -> None:
    click.echo(f"错误：{message}", err=True)
    sys.exit(code)


def asr_options(f):
    """Options shared by every command that transcribes."""
    f = click.option(
        "--model",
        default=None,
        metavar="DIR|NAME",
        help="faster-whisper 模型目录或模型名（默认：内置 base 模型，离线可用）",
    )(f)
    f = click.option("--beam-size", default=5, show_default=True, type=click.IntRange(1, 10))(f)
    f = click.option(
        "--threshold", default=None, type=click.FloatRange(0, 1), help="判定阈值（0–1）"
    )(f)
    f = click.option("-v", "--verbose", count=True, help="显示进度（-vv 显示调试信息）")(f)
    return f


def _options(model, beam_size, threshold, tz="Asia/Shanghai"):
    from .asr import AsrOptions
    from .filenames import resolve_tz
    from .pipeline import AnalyzerOptions

    resolve_tz(tz)  # an unknown zone fails here, before any work
    return AnalyzerOptions(asr=AsrOptions(model=model, beam_size=beam_size), threshold=threshold, tz=tz)


def _analyzer(model, beam_size, threshold, tz="Asia/Shanghai"):
    from .pipeline import Analyzer

    return Analyzer(_options(model, beam_size, threshold, tz))


def _expand(paths: tuple[str, ...]) -> list[Path]:
    """Files as given; a folder contributes the recordings in it (recognized by content)."""
    from .audio import is_audio

    out: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            out.extend(f for f in sorted(p.iterdir()) if f.is_file() and is_audio(f))
        else:
            out.append(p)
    return out


class _Group(click.Group):
    """Turns a user-actionable error in any command into one line on stderr and exit 2."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except CallauditError as e:
            click.echo(f"错误：{e}", err=True)
            ctx.exit(EXIT_INPUT)


@click.group(cls=_Group, context_settings=CONTEXT)
@click.version_option(package_name="callaudit", prog_name="callaudit")
def cli():
    """callaudit：离线分析催收通话录音，找出违规言论（带时间点和法律依据）。"""


def _tz_option(f):
    return click.option(
        "--tz", default="Asia/Shanghai", show_default=True, help="手机时钟所在时区（文件名里的时间按此解读）"
    )(f)


@cli.command(context_settings=CONTEXT)
@click.argument("files", nargs=-1, required=True, type=click.Path(readable=False))  # checked per file, in Chinese
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="text", show_default=True)
@click.option("--out", "out_dir", type=click.Path(file_okay=False), help="把报告写入该目录（每个录音一个文件）")
@click.option("--clips", "clips_dir", type=click.Path(file_okay=False), help="把每处违规的音频片段剪辑到该目录")
@click.option("--redact", is_flag=True, help="遮蔽报告中的手机号、身份证号、银行卡号")
@click.option(
    "--audio",
    type=click.Choice(["auto", "embed", "link", "none"]),
    default="auto",
    show_default=True,
    help="HTML 报告中的录音：嵌入、按相对路径链接或不含（auto：20 MB 以下嵌入）",
)
@_tz_option
@asr_options
def analyze(files, fmt, out_dir, clips_dir, redact, audio, tz, model, beam_size, threshold, verbose):
    """分析一个或多个通话录音（也可给出文件夹），输出违规报告。"""
    _setup_logging(verbose)
    from . import report as writers

    paths = _expand(files)
    if not paths:
        _fail("没有找到可分析的录音文件。")
    analyzer = _analyzer(model, beam_size, threshold, tz)
    reports, audio_paths, errors = [], [], 0
    for i, path in enumerate(paths, 1):
        click.echo(f"[{i}/{len(paths)}] 正在分析 {path} …", err=True)
        try:
            rep = analyzer.analyze(path)
        except InputError as e:
            click.echo(f"错误：{e}", err=True)
            errors += 1
            continue
        if clips_dir and rep.findings:
            from .clips import cut_clips

            target = Path(clips_dir) / Path(path).stem
            clips = cut_clips(path, rep.findings, target)
            click.echo(f"    已剪辑 {len(clips)} 个证据片段到 {target}", err=True)
        if redact:
            from .redact import redact as mask

            rep = mask(rep)
        reports.append(rep)
        audio_paths.append(Path(path))
        if out_dir:
            opts = {"audio": audio, "audio_path": path} if fmt == "html" else {}
            written = writers.write_report(rep, fmt, Path(out_dir), **opts)
            click.echo(f"    报告已写入 {written}", err=True)
    if reports and not out_dir:
        opts = {"audio": audio, "audio_paths": audio_paths} if fmt == "html" else {}
        click.echo(writers.render_many(reports, fmt, **opts), nl=False)
    if errors:
        sys.exit(EXIT_INPUT)
    sys.exit(EXIT_FINDINGS if any(r.findings for r in reports) else 0)


def _night(value: str) -> tuple[str, str]:
    try:
        start, end = (v.strip() for v in value.split("-"))
        for v in (start, end):
            h, m = v.split(":")
            if not (0 <= int(h) < 24 and 0 <= int(m) < 60):
                raise ValueError
    except ValueError as e:
        raise click.BadParameter(f"应为 HH:MM-HH:MM，例如 22:00-08:00，实际为 {value}") from e
    return start, end


@cli.command(context_settings=CONTEXT)
@click.argument("folder", type=click.Path(exists=True, file_okay=False))
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="callaudit-out", show_default=True)
@click.option("--workers", type=click.IntRange(1, 64), default=1, show_default=True, help="并行进程数")
@click.option(
    "--format", "formats", type=click.Choice(FORMATS), multiple=True, help="每个通话另写的报告格式（JSON 总会写）"
)
@click.option("--engine", type=click.Choice(["local", "ray"]), default="local", show_default=True)
@click.option("--address", default=None, help="Ray 集群地址（--engine ray）")
@click.option("--call-log", type=click.Path(exists=True, dir_okay=False), help="通话记录（SMS Backup & Restore 的 XML 或 CSV）")
@click.option("--night", default="22:00-08:00", show_default=True, help="夜间时段")
@click.option("--max-calls-per-day", type=click.IntRange(1), default=3, show_default=True, help="每日接通次数上限")
@click.option("--max-attempts-per-day", type=click.IntRange(1), default=6, show_default=True, help="每日未接通拨打次数上限")
@_tz_option
@asr_options
def batch(folder, out_dir, workers, formats, engine, address, call_log, night, max_calls_per_day,
          max_attempts_per_day, tz, model, beam_size, threshold, verbose):
    """批量分析一个文件夹（如手机的通话录音目录）：逐个报告 + 汇总 + 证据汇编。"""
    _setup_logging(verbose)
    import functools
    import os

    from .batch import run_batch
    from .pipeline import Analyzer, make_analyzer

    night_window = _night(night)
    options = _options(model, beam_size, threshold, tz)
    if workers > 1:  # split the cores between worker processes instead of oversubscribing
        from dataclasses import replace

        threads = max(1, (os.cpu_count() or 2) // workers)
        options.asr = replace(options.asr, cpu_threads=threads)
    analyzer = Analyzer(options)
    tty = sys.stderr.isatty()

    def progress(i: int, n: int, name: str) -> None:
        width = 30
        bar = "#" * (width * i // max(n, 1))
        line = f"[{bar:<{width}}] {i}/{n} {name[:40]}"
        click.echo(f"\r{line:<90}" if tty else line, err=True, nl=not tty or i == n)

    result = run_batch(
        Path(folder),
        Path(out_dir),
        analyzer,
        factory=functools.partial(make_analyzer, options),
        workers=workers,
        formats=tuple(formats),
        engine=engine,
        address=address,
        call_log=Path(call_log) if call_log else None,
        pattern_options={
            "night": night_window,
            "max_answered_per_day": max_calls_per_day,
            "max_attempts_per_day": max_attempts_per_day,
            "tz": tz,
        },
        progress=progress,
    )
    click.echo(summary_screen(result), err=True)
    # Like analyze: a file that could not be read outranks findings (scripts must notice it);
    # every readable call is still analyzed and written.
    if result.errors:
        sys.exit(EXIT_INPUT)
    sys.exit(EXIT_FINDINGS if any(r.get("findings") for r in result.reports) else 0)


@cli.command(context_settings=CONTEXT)
@click.argument("folder", type=click.Path(file_okay=False))
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="报告和进度写入该目录（可以在监视的文件夹里）")
@click.option("--settle", default=3.0, show_default=True, type=click.FloatRange(0), help="文件停止变化多少秒后才分析")
@click.option("--format", "formats", multiple=True, type=click.Choice(FORMATS), default=("json",), show_default=True)
@click.option("--once", is_flag=True, help="只处理当前已就绪的文件然后退出（适合定时任务）")
@_tz_option
@asr_options
def watch(folder, out_dir, settle, formats, once, tz, model, beam_size, threshold, verbose):
    """监视文件夹：新录音复制完成后自动分析并写出报告（Ctrl-C 停止）。"""
    _setup_logging(verbose)
    from .watch import watch as run_watch

    run_watch(Path(folder), Path(out_dir), _analyzer(model, beam_size, threshold, tz),
              settle=settle, formats=formats, once=once)
    sys.exit(0)


@cli.group(cls=_Group, context_settings=CONTEXT)
def rules():
    """规则文件（analyzer/rules/*.yaml）的检查。"""


@rules.command("check", context_settings=CONTEXT)
@click.argument("directory", required=False, type=click.Path(exists=True, file_okay=False))
@click.option("--json", "as_json", is_flag=True, help="以 JSON 输出")
def rules_check(directory, as_json):
    """校验规则文件（默认：内置规则），列出每个类别的规则数。出错时指出文件和行号。"""
    import json

    from .lexicon import check_rules

    summary = check_rules(directory)
    if as_json:
        click.echo(json.dumps(summary.to_dict(), ensure_ascii=False, indent=2))
    else:
        click.echo(summary.render())
    sys.exit(EXIT_INPUT if summary.missing else 0)


@cli.command(context_settings=CONTEXT)
@click.argument("text")
@click.option("--json", "as_json", is_flag=True, help="以 JSON 输出")
@click.option("--threshold", default=None, type=click.FloatRange(0, 1), help="判定阈值（0–1）")
def explain(text, as_json, threshold):
    """解释一句话：哪些规则和模型概率被触发、为什么。"""
    import json

    from .pipeline import Analyzer, AnalyzerOptions

    result = Analyzer(AnalyzerOptions(threshold=threshold)).explain(text)
    if as_json:
        click.echo(json.dumps(result.to_dict(), ensure_ascii=False, indent=2))
    else:
        click.echo(result.render())
    sys.exit(EXIT_FINDINGS if result.to_dict().get("findings") else 0)


@cli.command(context_settings=CONTEXT)
@click.option("--corpus", "corpus_dir", default="corpus", show_default=True, type=click.Path(exists=True, file_okay=False))
@click.option("--out", "out_dir", default=None, type=click.Path(file_okay=False), help="模型输出目录（默认：内置 models/）")
@click.option("--seed", default=0, show_default=True, type=int)
def train(corpus_dir, out_dir, seed):
    """用语料（corpus/*.tsv）重新训练文本分类模型，写出模型文件和模型卡。"""
    _setup_logging(1)
    from .classifier import DEFAULT_MODEL_DIR, summary_zh
    from .classifier import train as run_train

    out = Path(out_dir) if out_dir else DEFAULT_MODEL_DIR
    click.echo(f"正在训练（语料 {corpus_dir}）…", err=True)
    metrics = run_train(corpus_dir, out, seed=seed)
    click.echo(summary_zh(metrics, out), err=True)


def summary_screen(result) -> str:
    """The one-screen summary printed at the end of a batch."""
    from .types import CATEGORIES

    totals = result.summary.get("totals", {})
    lines = [
        "",
        f"完成：共 {len(result.reports)} 个通话（本次分析 {result.analyzed}，续跑跳过 {result.resumed}），"
        f"{totals.get('calls_with_findings', 0)} 个发现疑似违规。",
    ]
    for cat, n in sorted(totals.get("findings", {}).items(), key=lambda kv: -kv[1]):
        lines.append(f"  {CATEGORIES.get(cat, cat)}：{n} 处")
    from .patterns import PATTERN_TYPES

    for kind, n in totals.get("patterns", {}).items():
        lines.append(f"  {PATTERN_TYPES.get(kind, kind)}：{n} 次")
    if result.errors:
        lines.append(f"无法分析的文件 {len(result.errors)} 个：")
        lines += [f"  {e['file']}：{e['reason']}" for e in result.errors[:10]]
        if len(result.errors) > 10:
            lines.append(f"  …其余见 {result.out / 'summary.json'}")
    if result.skipped:
        lines.append(f"跳过非音频文件 {len(result.skipped)} 个。")
    lines.append(f"报告目录：{result.out}（summary.json、dossier.html、dossier.md、reports/）")
    return "\n".join(lines)


def main() -> None:
    try:
        cli.main(prog_name="callaudit", standalone_mode=True)
    except KeyboardInterrupt:
        click.echo("已中断。", err=True)
        sys.exit(130)
    except Exception as e:  # never a traceback for users; -vv shows it
        if logging.getLogger().isEnabledFor(logging.DEBUG):
            raise
        _fail(f"内部错误：{type(e).__name__}: {e}。请加 -vv 重试并报告此问题。", EXIT_INTERNAL)
