"""`make bench`: speed, memory and accuracy of the whole pipeline against plain faster-whisper.

Sets
  samples   samples/*: the bundled synthetic calls, as the phone files they are
  long      32+ minutes of 3-10 minute calls joined from samples/, eval/calls/ and read
            telephone-band speech (scripts/make_long_set.py; written to the user cache)

Configurations, each in its own process (so each peak memory is its own):
  plain     faster-whisper base as most people run it: WhisperModel(dir, compute_type="int8")
            .transcribe(path, language="zh", beam_size=5, vad_filter=True), generator consumed
  ours      callaudit's Analyzer.analyze (decode, hash, ASR with our settings, detector,
            report), batched (the default, AsrOptions.batch_size) and sequential (batch_size 0)
  workers   the default configuration as a batch: 1 worker x 2 threads vs 2 workers x 1 thread
  cached    re-analysis with transcripts cached (what a rule change costs)

Accuracy: CER against the scripts (samples/labels.json turns; long set piece by piece, both
sides Simplified, letters and digits only), and detection precision/recall of call-level
categories against the labels (plain's transcripts go through the same detector).

Prints a Markdown report between BEGIN/END markers (paste into the README). Takes about
15-25 minutes on a quiet 2-core laptop; --quick runs the samples only.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))

BATCH = 8  # batch size of the batched mode, measured when the default is sequential


def _mode_name(batch: int) -> str:
    return "sequential" if batch == 0 else f"batched-{batch}"


# ----------------------------------------------------------------------------- children
def _peak_mb() -> dict:
    """Peak memory of this process and of its largest child (batch workers); CPU seconds of
    the children too (process_time() counts this process only)."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {"rss_mb": round(own), "rss_children_mb": round(kids.ru_maxrss / 1024),
            "children_cpu_s": kids.ru_utime + kids.ru_stime}


def _segments_of(report) -> list:
    return [[s.start, s.end, s.text, s.channel] for s in report.segments]


def _findings_of(report) -> list:
    return [[f.start, f.end, f.category] for f in report.findings]


def child_plain(spec: dict) -> dict:
    from faster_whisper import WhisperModel

    from analyzer.weights import ensure_embedded_model

    model_dir = str(ensure_embedded_model())
    c0, t0 = time.process_time(), time.perf_counter()
    model = WhisperModel(model_dir, compute_type="int8")
    load = time.perf_counter() - t0
    files = []
    for f in spec["files"]:
        t, c = time.perf_counter(), time.process_time()
        segments, info = model.transcribe(f, language="zh", beam_size=5, vad_filter=True)
        segs = [[s.start, s.end, s.text, None] for s in segments]
        files.append({"file": f, "audio_s": info.duration, "wall_s": time.perf_counter() - t,
                      "cpu_s": time.process_time() - c, "segments": segs})
    result = {"load_s": load, "wall_s": time.perf_counter() - t0,
              "cpu_s": time.process_time() - c0, **_peak_mb()}
    # Not timed: what our detector finds in plain's transcripts.
    from analyzer.asr import clean_asr_text
    from analyzer.pipeline import Analyzer
    from analyzer.types import Segment

    detector = Analyzer().detector
    for item in files:
        kept = [(s, clean_asr_text(s[2])) for s in item["segments"]]
        segs = [Segment(i, s[0], s[1], t) for i, (s, t) in enumerate((s, t) for s, t in kept if t)]
        item["findings"] = [[f.start, f.end, f.category] for f in detector.detect(segs)]
    result["files"] = files
    return result


def _options(spec: dict):
    from analyzer.asr import AsrOptions
    from analyzer.pipeline import AnalyzerOptions

    asr = AsrOptions(batch_size=spec["batch_size"], cpu_threads=spec["threads"])
    return AnalyzerOptions(asr=asr, use_cache=True)


def child_ours(spec: dict) -> dict:
    from analyzer.pipeline import make_analyzer

    c0, t0 = time.process_time(), time.perf_counter()
    if spec["workers"] > 1:
        from analyzer.batch import run_local

        factory = functools.partial(make_analyzer, _options(spec))
        by_path = {}
        for path, report, error in run_local([Path(f) for f in spec["files"]], factory,
                                             spec["workers"]):
            if error:
                raise SystemExit(f"{path}: {error}")
            by_path[path] = report
        reports = [(f, by_path[f], None, None) for f in spec["files"]]
        load = None
    else:
        analyzer = make_analyzer(_options(spec))
        analyzer.transcriber._get_model()  # load now, so per-call times are steady state
        analyzer.detector  # noqa: B018 (loads the rules)
        load = time.perf_counter() - t0
        reports = []
        for f in spec["files"]:
            t, c = time.perf_counter(), time.process_time()
            report = analyzer.analyze(f)
            reports.append((f, report, time.perf_counter() - t, time.process_time() - c))
    result = {"load_s": load, "wall_s": time.perf_counter() - t0,
              "cpu_s": time.process_time() - c0, **_peak_mb()}
    result["files"] = [
        {"file": f, "audio_s": r.duration, "wall_s": w, "cpu_s": c,
         "segments": _segments_of(r), "findings": _findings_of(r)}
        for f, r, w, c in reports
    ]
    return result


def child_cached(spec: dict) -> dict:
    """Re-analysis from the transcript cache, then the detector alone, segments per second."""
    from analyzer.pipeline import make_analyzer

    t0 = time.perf_counter()
    analyzer = make_analyzer(_options(spec))
    reports = [analyzer.analyze(f) for f in spec["files"]]
    wall = time.perf_counter() - t0
    setup_free = time.perf_counter()
    again = [analyzer.analyze(f) for f in spec["files"]]
    steady = time.perf_counter() - setup_free
    assert [len(r.segments) for r in again] == [len(r.segments) for r in reports]
    calls = [r.segments for r in reports]
    n, t1 = 0, time.perf_counter()
    while time.perf_counter() - t1 < 3.0:
        for segs in calls:
            analyzer.detector.detect(segs)
            n += len(segs)
    return {"wall_s": wall, "steady_s": steady, "audio_s": sum(r.duration for r in reports),
            "segments_per_s": n / (time.perf_counter() - t1), **_peak_mb()}


CHILDREN = {"plain": child_plain, "ours": child_ours, "cached": child_cached}


# ----------------------------------------------------------------------------- parent
def run_child(spec: dict, cache: Path) -> dict:
    env = dict(os.environ, CALLAUDIT_CACHE=str(cache), PYTHONPATH=str(REPO))
    label = f"{spec['kind']} {spec.get('name', '')} ({len(spec['files'])} files)"
    print(f"bench: running {label} ...", file=sys.stderr, flush=True)
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, __file__, "--child", json.dumps(spec)], env=env,
                          stdout=subprocess.PIPE, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"bench: {label} failed (exit {proc.returncode})")
    print(f"bench: {label} done in {time.perf_counter() - t:.0f} s", file=sys.stderr, flush=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def fresh_cache(root: Path, name: str) -> Path:
    """A private cache per configuration (no transcript reuse between them), sharing the
    assembled model of the user's cache so nothing is assembled twice."""
    from analyzer.weights import cache_dir, ensure_embedded_model

    ensure_embedded_model()
    path = root / name
    path.mkdir(parents=True)
    (path / "models").symlink_to(cache_dir() / "models", target_is_directory=True)
    return path


# ----------------------------------------------------------------------------- scoring
def norm(text: str) -> str:
    from analyzer.text import to_simplified

    return "".join(c for c in to_simplified(text) if c.isalnum()).lower()


def edits(ref: str, hyp: str) -> int:
    row = list(range(len(hyp) + 1))
    for i in range(1, len(ref) + 1):
        prev, row[0] = row[0], i
        for j in range(1, len(hyp) + 1):
            cur = row[j]
            row[j] = min(row[j] + 1, row[j - 1] + 1, prev + (ref[i - 1] != hyp[j - 1]))
            prev = cur
    return row[-1]


def units(result: dict, truth: dict[str, list[dict]]) -> list[tuple[str, str, set, set]]:
    """(reference, hypothesis, true categories, found categories) per scored unit: a whole
    call for the samples, a piece (one source) of a long call for the long set."""
    out = []
    for item in result["files"]:
        for unit in truth[item["file"]]:
            lo, hi = unit["offset"], unit["offset"] + unit["duration"]
            inside = [s for s in item["segments"] if lo - 0.5 <= (s[0] + s[1]) / 2 <= hi + 0.5]
            hyp = "".join(s[2] for s in sorted(inside, key=lambda s: s[0]))
            found = {f[2] for f in item["findings"] if lo - 1.0 <= f[0] <= hi + 1.0}
            out.append((unit["text"], hyp, set(unit["labels"]), found))
    return out


def accuracy(result: dict, truth: dict) -> dict:
    us = units(result, truth)
    e = n = 0
    worst = 0.0
    for ref, hyp, _, _ in us:
        r = norm(ref)
        d = edits(r, norm(hyp))
        e, n = e + d, n + len(r)
        worst = max(worst, d / max(1, len(r)))
    tp = sum(len(t & f) for _, _, t, f in us)
    fp = sum(len(f - t) for _, _, t, f in us)
    fn = sum(len(t - f) for _, _, t, f in us)
    return {"cer": e / max(1, n), "worst_cer": worst,
            "precision": tp / (tp + fp) if tp + fp else 1.0,
            "recall": tp / (tp + fn) if tp + fn else 1.0, "tp": tp, "fp": fp, "fn": fn}


def sample_truth() -> tuple[list[str], dict]:
    labels = json.loads((REPO / "samples" / "labels.json").read_text(encoding="utf-8"))
    files, truth = [], {}
    for call in labels["calls"]:
        f = str(REPO / "samples" / call["file"])
        files.append(f)
        truth[f] = [{"offset": 0.0, "duration": 1e9,
                     "text": "".join(t["text"] for t in call["turns"]),
                     "labels": sorted({x for t in call["turns"] for x in t["labels"]})}]
    return files, truth


def long_truth(minutes: float) -> tuple[list[str], dict, Path]:
    import make_long_set

    from analyzer.weights import cache_dir

    out = cache_dir() / "bench" / "long"
    manifest = make_long_set.build(out, minutes)
    files = [str(out / c["file"]) for c in manifest["calls"]]
    truth = {str(out / c["file"]): c["pieces"] for c in manifest["calls"]}
    return files, truth, out


# ----------------------------------------------------------------------------- report
def _audio(result: dict) -> float:
    return sum(f["audio_s"] for f in result["files"])


def _rtf(result: dict) -> float:
    """Seconds of work per second of audio over the calls (model load excluded)."""
    return sum(f["wall_s"] for f in result["files"]) / _audio(result)


def _throughput(result: dict) -> float:
    """Audio hours per wall-clock hour for the whole run, model loading included."""
    return _audio(result) / result["wall_s"]


def _cpu(result: dict) -> float:
    """CPU seconds per second of audio, worker processes included, model loading included."""
    return (result["cpu_s"] + result.get("children_cpu_s", 0.0)) / _audio(result)


def _rss(result: dict, workers: int) -> str:
    if workers > 1:
        return f"{result['rss_mb']} + {workers} x {result['rss_children_mb']}"
    return f"{result['rss_mb']}"


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def markdown(res: dict, acc: dict, cached: dict | None, load: str, default_name: str) -> str:
    lines = ["### Benchmark (`make bench`)", ""]
    lines.append(
        f"Machine: {os.cpu_count()} CPU cores, {load}. Model: embedded faster-whisper base, "
        "int8, beam 5. RTF = wall seconds per second of audio (lower is faster), with CPU "
        "seconds per audio second in brackets (less sensitive to other load on the machine); "
        "throughput = audio hours per wall-clock hour, model loading included."
    )
    lines.append("")
    s_names = [k for k in res if k.startswith("samples/")]
    plain = "samples/plain"
    if s_names:
        header = ["call", "audio s"] + [k.split("/")[1] for k in s_names]
        lines += [_row(header), "|" + "---|" * len(header)]
        for i, item in enumerate(res[s_names[0]]["files"]):
            row = [Path(item["file"]).name, f"{item['audio_s']:.0f}"]
            for k in s_names:
                f = res[k]["files"][i]
                row.append(f"{f['wall_s'] / f['audio_s']:.3f} ({f['cpu_s'] / f['audio_s']:.3f})")
            lines.append(_row(row))
        total = ["**all**", f"{_audio(res[s_names[0]]):.0f}"]
        for k in s_names:
            cpu = sum(f["cpu_s"] for f in res[k]["files"]) / _audio(res[k])
            total.append(f"**{_rtf(res[k]):.3f}** ({cpu:.3f})")
        lines.append(_row(total))
        if plain in res:
            ratios = [f"{k.split('/')[1]} {_rtf(res[k]) / _rtf(res[plain]):.2f}" for k in s_names
                      if k != plain]
            lines += ["", "Ratio ours / plain, RTF over the samples: " + ", ".join(ratios)]
        lines.append("")
    header = ["set / configuration", "audio min", "RTF", "CPU s / audio s",
              "throughput (audio h / h)", "peak RSS MB", "CER", "worst CER", "detection P / R"]
    lines += [_row(header), "|" + "---|" * len(header)]
    for k, r in res.items():
        a = acc.get(k)
        per_call = all(f["wall_s"] is not None for f in r["files"])
        workers = int(k.split(" workers")[0].rsplit(" ", 1)[1]) if " workers" in k else 1
        name = k.replace(default_name, default_name + " (default)")
        row = [name, f"{_audio(r) / 60:.1f}", f"{_rtf(r):.3f}" if per_call else "—",
               f"{_cpu(r):.3f}", f"{_throughput(r):.1f}", _rss(r, workers)]
        row += ([f"{a['cer']:.3f}", f"{a['worst_cer']:.2f}",
                 f"{a['precision']:.2f} / {a['recall']:.2f}"] if a else ["—"] * 3)
        lines.append(_row(row))
    for set_name in ("samples", "long"):
        base = res.get(f"{set_name}/plain")
        if not base:
            continue
        ratios = [f"{k.split('/', 1)[1]} {res[k]['wall_s'] / base['wall_s']:.2f}"
                  for k in res if k.startswith(set_name + "/") and k != f"{set_name}/plain"]
        lines += ["", f"Wall-time ratio ours / plain, whole {set_name} run: " + ", ".join(ratios)]
    if cached:
        lines += [
            "",
            f"Re-analysis with transcripts cached (long set, {cached['audio_s'] / 60:.0f} min "
            f"of audio): {cached['audio_s'] / cached['wall_s']:.0f}x real time including "
            f"loading the rules, {cached['audio_s'] / cached['steady_s']:.0f}x once loaded; "
            f"peak RSS {cached['rss_mb']} MB. Text stage (normalize, lexicon, classifier, "
            f"fusion): {cached['segments_per_s']:.0f} segments per second.",
        ]
    lines += [
        "",
        "CER: character error rate against the scripts (Simplified, letters and digits only; "
        "the scripts write numbers in Chinese, so a transcript with Arabic digits pays for "
        "it). Worst CER: the worst call (samples) or source piece (long set). Detection: "
        "call-level categories found vs labelled (samples: per call; long set: per source "
        "piece), plain's transcripts going through the same detector.",
    ]
    return "\n".join(lines)


def loadavg() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.1f} (1 min) / {five:.1f} (5 min)"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="samples only (about 3 minutes)")
    ap.add_argument("--minutes", type=float, default=32.0, help="length of the long set")
    ap.add_argument("--no-plain", action="store_true", help="skip plain faster-whisper")
    ap.add_argument("--no-workers", action="store_true", help="skip 2 workers x 1 thread")
    ap.add_argument("--json", type=Path, help="also write every measurement here (after each run)")
    ap.add_argument("--resume", action="store_true",
                    help="keep the runs already in --json (an interrupted bench goes on)")
    ap.add_argument("--render", type=Path, help="print the report of an earlier --json run")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.render:
        saved = json.loads(args.render.read_text(encoding="utf-8"))
        print(markdown(saved["results"], saved["accuracy"], saved["cached"],
                       saved.get("load", "load not recorded"), saved.get("default", "sequential")))
        return
    if args.child:
        spec = json.loads(args.child)
        print(json.dumps(CHILDREN[spec["kind"]](spec), ensure_ascii=False))
        return

    from analyzer.asr import AsrOptions

    cores = os.cpu_count() or 1
    # The default mode and the other one (batched at BATCH when the default is sequential).
    default_batch = AsrOptions().batch_size
    other = BATCH if default_batch == 0 else 0
    modes = {_mode_name(b): b for b in sorted({default_batch, other})}
    default_name = _mode_name(default_batch)
    sets = {"samples": sample_truth()}
    if not args.quick:
        files, truth, _ = long_truth(args.minutes)
        sets["long"] = (files, truth)
    start_load = loadavg()
    res: dict[str, dict] = {}
    cached = None
    if args.resume and args.json and args.json.is_file():
        saved = json.loads(args.json.read_text(encoding="utf-8"))
        res, cached = saved["results"], saved.get("cached")
        start_load = saved.get("start_load", start_load)

    def save() -> None:
        """After every run, so an interrupted bench can go on with --resume."""
        if args.json:
            keep = {"results": res, "cached": cached, "start_load": start_load,
                    "default": default_name, "accuracy": {}}
            tmp = args.json.with_suffix(".tmp")
            tmp.write_text(json.dumps(keep, ensure_ascii=False), encoding="utf-8")
            os.replace(tmp, args.json)

    def run(key: str, spec: dict, cache: Path) -> None:
        if key not in res:
            res[key] = run_child(spec, cache)
            save()

    with tempfile.TemporaryDirectory(prefix="callaudit-bench-") as tmp:
        root = Path(tmp)
        for set_name, (files, _truth) in sets.items():
            if not args.no_plain:
                key = f"{set_name}/plain"
                run(key, {"kind": "plain", "files": files}, fresh_cache(root, key))
            for mode, batch in modes.items():
                key = f"{set_name}/{mode}"
                spec = {"kind": "ours", "name": key, "files": files, "batch_size": batch,
                        "threads": cores, "workers": 1}
                cache = fresh_cache(root, key)
                if set_name == "long" and mode == default_name and cached is None:
                    res.pop(key, None)  # the cached run needs this run's cache
                run(key, spec, cache)
                if set_name == "long" and mode == default_name and cached is None:
                    cached = run_child({**spec, "kind": "cached"}, cache)
                    save()
            if set_name == "long" and not args.no_workers and cores >= 2:
                key = f"long/{default_name} {cores} workers x 1 thread"
                spec = {"kind": "ours", "name": key, "files": files,
                        "batch_size": default_batch, "threads": 1, "workers": cores}
                run(key, spec, fresh_cache(root, key.replace(" ", "_")))
    acc = {key: accuracy(r, sets[key.split("/")[0]][1]) for key, r in res.items()
           if key.split("/")[0] in sets}
    load = f"{start_load} at start, {loadavg()} at end"
    print("<!-- BEGIN bench -->")
    print(markdown(res, acc, cached, load, default_name))
    print("<!-- END bench -->")
    if args.json:
        saved = {"results": res, "accuracy": acc, "cached": cached, "load": load,
                 "start_load": start_load, "default": default_name}
        args.json.write_text(json.dumps(saved, ensure_ascii=False, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
