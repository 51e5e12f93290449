"""python -m benchmarks [--only NAME ...] [--quick]

Runs the benchmarks, prints a table of figures against their targets and writes every figure, with
the date, the machine and the commit, to benchmarks/results/latest.json. Exits 0 when every
benchmark ran and every figure with a target meets it, 1 otherwise.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import importlib.metadata
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUTPUT = Path(__file__).resolve().parent / "results" / "latest.json"

Figures = dict[str, float | None]


@dataclass(frozen=True)
class Target:
    limit: float
    unit: str
    floor: bool = False  # True: a rate that must reach the limit, not stay under it


# A figure meets its target when it is at most the limit (at least, for a floor).
TARGETS: dict[str, Target] = {
    "startup_s_median": Target(0.8, "s"),
    "startup_vs_chromium_ratio": Target(0.5, "×"),
    "startup_vs_qt_floor_ratio": Target(1.5, "×"),
    "startup_rss_mb": Target(180.0, "MB"),
    "receipt_render_ms_median": Target(50.0, "ms"),
    "sync_per_s": Target(500.0, "/s", floor=True),
    "bundle_import_per_s": Target(500.0, "/s", floor=True),
    "sync_max_stall_ms": Target(50.0, "ms"),
    "card_prefill_pcsc_ms_median": Target(250.0, "ms"),
    "card_prefill_serial_ms_median": Target(168.0, "ms"),  # 1.5 × the reply's 112 ms wire time
    "card_read_max_stall_ms": Target(50.0, "ms"),
    "page_turn_ms_median": Target(50.0, "ms"),
    "visit_rss_growth_mb": Target(5.0, "MB"),
    "handwriting_candidates_ms_median": Target(50.0, "ms"),
    "pinyin_candidates_ms_median": Target(30.0, "ms"),
    "print_accept_ms_median_cups": Target(100.0, "ms"),
    "print_accept_ms_median_escpos": Target(50.0, "ms"),
    "lookup_ms_median": Target(300.0, "ms"),
}


@dataclass(frozen=True)
class Settings:
    quick: bool
    tmp: Path


def _run_startup(settings: Settings) -> Figures:
    module = importlib.import_module("benchmarks.startup")
    return dict(module.measure_startup(launches=5 if settings.quick else 9))


def _run_chromium(settings: Settings) -> Figures:
    module = importlib.import_module("benchmarks.chromium_peer")
    return dict(module.measure_chromium(launches=5 if settings.quick else 7))


def _run_receipt(settings: Settings) -> Figures:
    module = importlib.import_module("benchmarks.receipt")
    figures = dict(module.measure_receipt_render())
    figures.update(module.measure_first_receipt(processes=3 if settings.quick else 5))
    return figures


def _run_queue(settings: Settings) -> Figures:
    module = importlib.import_module("benchmarks.queue")
    directory = settings.tmp / "queue"
    directory.mkdir()
    return dict(module.measure_enqueue(1000 if settings.quick else 5000, directory))


def _run_sync(settings: Settings) -> Figures:
    directory = settings.tmp / "sync"
    directory.mkdir()
    n = 2000 if settings.quick else 10_000
    # A process of its own: the RSS figure is the drain's, not what other benchmarks loaded.
    from benchmarks._launch import run_module

    return dict(run_module("benchmarks.sync", str(n), str(directory)))


def _run_gc(settings: Settings) -> Figures:
    module = importlib.import_module("benchmarks.gc_pause")
    directory = settings.tmp / "gc"
    directory.mkdir()
    return dict(module.measure_gc(directory, visits=4 if settings.quick else 8))


def _run_card_pcsc(settings: Settings) -> Figures:
    module = importlib.import_module("benchmarks.card_pcsc")
    return dict(module.measure_card_prefill_pcsc(reads=20 if settings.quick else 40))


def _run_card_serial(settings: Settings) -> Figures:
    module = importlib.import_module("benchmarks.card_serial")
    return dict(module.measure_card_prefill_serial(reads=20 if settings.quick else 40))


def _run_visits(settings: Settings) -> Figures:
    module = importlib.import_module("benchmarks.visits")
    directory = settings.tmp / "visits"
    directory.mkdir()
    visits = 60 if settings.quick else 500
    return dict(module.measure_visits(directory, turns=30 if settings.quick else 60, visits=visits))


def _run_handwriting(settings: Settings) -> Figures:
    module = importlib.import_module("benchmarks.handwriting")
    return dict(module.measure_handwriting(repeats=10 if settings.quick else 30))


def _run_pinyin(settings: Settings) -> Figures:
    from benchmarks._launch import run_module

    # A process of its own: the input method must be chosen before its QApplication exists.
    return dict(run_module("benchmarks.pinyin", str(10 if settings.quick else 30)))


def _run_bundles(settings: Settings) -> Figures:
    from benchmarks._launch import run_module

    directory = settings.tmp / "bundles"
    directory.mkdir()
    items = str(1000 if settings.quick else 5000)
    return dict(run_module("benchmarks.bundles", items, str(directory)))


def _run_counter_keys(settings: Settings) -> Figures:
    from benchmarks._launch import run_module

    directory = settings.tmp / "counter_keys"
    directory.mkdir()
    return dict(run_module("benchmarks.counter_keys", str(directory)))


def _run_print_cups(settings: Settings) -> Figures:
    module = importlib.import_module("benchmarks.print_cups")
    return dict(module.measure_print_cups(prints=10 if settings.quick else 30))


def _run_print_escpos(settings: Settings) -> Figures:
    module = importlib.import_module("benchmarks.print_escpos")
    return dict(module.measure_print_escpos(n=10 if settings.quick else 30))


def _run_lookup(settings: Settings) -> Figures:
    from benchmarks._launch import run_module

    directory = settings.tmp / "lookup"
    directory.mkdir()
    return dict(
        run_module("benchmarks.lookup", str(20 if settings.quick else 60), str(directory))
    )


BENCHMARKS: dict[str, Callable[[Settings], Figures]] = {
    "startup": _run_startup,
    "chromium": _run_chromium,
    "receipt": _run_receipt,
    "queue": _run_queue,
    "sync": _run_sync,
    "gc": _run_gc,
    "card_pcsc": _run_card_pcsc,
    "card_serial": _run_card_serial,
    "visits": _run_visits,
    "handwriting": _run_handwriting,
    "pinyin": _run_pinyin,
    "bundles": _run_bundles,
    "counter_keys": _run_counter_keys,
    "print_cups": _run_print_cups,
    "print_escpos": _run_print_escpos,
    "lookup": _run_lookup,
}

# The benchmarks are imported only when they run, so one that is missing or broken is reported as
# an error beside the others' figures. What it could not measure is recorded as null.
PLACEHOLDERS: dict[str, tuple[str, ...]] = {
    "startup": (
        "startup_s_median",
        "startup_rss_mb",
        "startup_settled_s_median",
        "startup_demo_s_median",
        "startup_demo_rss_mb",
        "qt_floor_startup_s_median",
        "startup_vs_qt_floor_ratio",
    ),
    "chromium": ("chromium_startup_s_median",),
    "receipt": (
        "receipt_render_ms_median",
        "receipt_render_ms_p95",
        "receipt_render_first_ms",
        "receipt_render_first_warmed_ms",
    ),
    "queue": ("enqueue_per_s", "enqueue_p99_ms", "persistqueue_enqueue_per_s"),
    "sync": ("sync_per_s", "sync_rss_mb", "sync_max_stall_ms", "sync_stall_p99_ms"),
    "gc": (
        "gc_pause_max_ms_unfrozen",
        "gc_pause_max_ms_frozen",
        "gc_full_collect_ms_unfrozen",
        "gc_full_collect_ms_frozen",
    ),
    "card_pcsc": (
        "card_prefill_pcsc_ms_median",
        "card_prefill_pcsc_ms_p95",
        "card_pcsc_read_ms_median",
    ),
    "card_serial": (
        "card_prefill_serial_ms_median",
        "card_prefill_serial_ms_p95",
        "card_read_max_stall_ms",
    ),
    "visits": ("page_turn_ms_median", "page_turn_ms_max", "visit_rss_growth_mb"),
    "handwriting": (
        "handwriting_candidates_ms_median",
        "handwriting_candidates_ms_p95",
        "handwriting_first_candidates_ms",
    ),
    "pinyin": ("pinyin_candidates_ms_median",),
    "bundles": ("bundle_import_per_s", "bundle_import_s", "bundle_export_s", "bundle_mb"),
    "counter_keys": (
        "counter_submission_keystrokes",
        "counter_keys_typed",
        "counter_keys_overhead",
        "counter_signature_strokes",
    ),
    "print_cups": (
        "print_accept_ms_median_cups",
        "print_accept_ms_p95_cups",
        "print_done_ms_median_cups",
    ),
    "print_escpos": (
        "print_accept_ms_median_escpos",
        "print_accept_ms_p95_escpos",
        "print_accept_first_ms_escpos",
    ),
    "lookup": ("lookup_ms_median", "lookup_ms_p95"),
}


def _git(*args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip()


def _first_field(path: str, key: str) -> str | None:
    try:
        for line in Path(path).read_text().splitlines():
            name, _, value = line.partition(":")
            if name.strip() == key:
                return value.strip()
    except OSError:
        return None
    return None


def _package_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def file_system_of(path: Path) -> str | None:
    """The type of the file system holding path: its longest mount point in /proc/mounts."""
    try:
        mounts = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return None
    target = path.resolve()
    best: tuple[int, str] | None = None
    for line in mounts:
        fields = line.split()
        if len(fields) < 3:
            continue
        # /proc/mounts writes a space in a mount point as \040 (and tab, newline, \ likewise).
        point = Path(re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), fields[1]))
        if target == point or point in target.parents:
            depth = len(point.parts)
            if best is None or depth >= best[0]:  # later mounts on the same point win
                best = (depth, fields[2])
    return best[1] if best else None


def machine_info() -> dict[str, object]:
    status = _git("status", "--porcelain", "--untracked-files=no")
    everything = _git("status", "--porcelain")
    return {
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)),
        "cpu_model": _first_field("/proc/cpuinfo", "model name"),
        "memory_total": _first_field("/proc/meminfo", "MemTotal"),
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "pyside6": _package_version("PySide6-Essentials"),
        "git_commit": _git("rev-parse", "HEAD"),
        # git_dirty: tracked files changed; git_clean: nothing changed or added at all.
        "git_dirty": None if status is None else bool(status),
        "git_clean": None if everything is None else not everything,
        # Where the benchmarks' outboxes and receipts are written: tmpfs and ext4 differ a lot.
        "bench_tmp_fs": file_system_of(Path(tempfile.gettempdir())),
    }


def _unclean_warning(machine: dict[str, object]) -> str | None:
    if machine.get("git_clean") is not False:
        return None
    return (
        f"warning: the working tree has uncommitted changes or untracked files; these figures "
        f"are not those of commit {machine.get('git_commit')} alone"
    )


def _unit(name: str) -> str:
    if name in TARGETS:
        return TARGETS[name].unit
    for suffix, unit in (("_per_s", "/s"), ("_ms", "ms"), ("_mb", "MB"), ("_ratio", "×")):
        if suffix in name:
            return unit
    if name.endswith("_s") or "_s_" in name:
        return "s"
    return ""


def _format_value(value: float | None) -> str:
    if value is None:
        return "n/a"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.3g}" if abs(value) < 10 else f"{value:.1f}"


def verdict(name: str, value: float | None) -> bool | None:
    """True/False against the figure's target; None when it has no target."""
    target = TARGETS.get(name)
    if target is None:
        return None
    if value is None:
        return False
    return value >= target.limit if target.floor else value <= target.limit


def table(figures: Figures) -> str:
    rows = [("figure", "value", "unit", "target", "result")]
    for name, value in figures.items():
        target = TARGETS.get(name)
        passed = verdict(name, value)
        result = "-" if passed is None else ("pass" if passed else "FAIL")
        limit = f"{'≥' if target.floor else '≤'} {target.limit:g}" if target else "-"
        rows.append((name, _format_value(value), _unit(name), limit, result))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        for row in rows
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(line.rstrip() for line in lines)


def run(names: list[str], quick: bool) -> tuple[Figures, dict[str, str]]:
    figures: Figures = {}
    errors: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="hall-bench-") as tmp:
        settings = Settings(quick=quick, tmp=Path(tmp))
        for name in names:
            print(f"running {name} ...", flush=True)
            try:
                figures.update(BENCHMARKS[name](settings))
            except Exception as exc:  # one broken benchmark must not hide the others' figures
                errors[name] = f"{type(exc).__name__}: {exc}"
                print(f"  {name} could not run: {errors[name]}", flush=True)
                for key in PLACEHOLDERS[name]:
                    figures.setdefault(key, None)
    if "startup" in names and "chromium" in names:
        ours = figures.get("startup_s_median")
        theirs = figures.get("chromium_startup_s_median")
        figures["startup_vs_chromium_ratio"] = ours / theirs if ours and theirs else None
    return figures, errors


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description="Run the performance suite and record its figures."
    )
    parser.add_argument(
        "--only",
        action="append",
        choices=list(BENCHMARKS),
        metavar="NAME",
        help=f"run only this benchmark (repeatable): {', '.join(BENCHMARKS)}",
    )
    parser.add_argument("--quick", action="store_true", help="fewer repetitions, smaller loads")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="where the JSON goes")
    args = parser.parse_args(argv)

    names = [name for name in BENCHMARKS if name in (args.only or BENCHMARKS)]
    started = dt.datetime.now(dt.UTC)
    machine = machine_info()
    unclean = _unclean_warning(machine)
    if unclean:
        print(unclean, flush=True)
    figures, errors = run(names, args.quick)

    report = {
        "date": started.isoformat(timespec="seconds"),
        "machine": machine,
        "quick": args.quick,
        "benchmarks": names,
        "figures": figures,
        "targets": {
            name: {
                "min" if target.floor else "max": target.limit,
                "unit": target.unit,
                "passed": verdict(name, figures[name]),
            }
            for name, target in TARGETS.items()
            if name in figures
        },
        "errors": errors,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n")

    print()
    print(table(figures))
    for name, message in errors.items():
        print(f"\n{name}: {message}")
    if unclean:
        print(f"\n{unclean}")
    print(f"\nwritten to {args.output}")
    failed = any(verdict(name, value) is False for name, value in figures.items())
    return 1 if errors or failed else 0


if __name__ == "__main__":
    sys.exit(main())
