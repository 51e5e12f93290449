"""Receipt rendering: one zh_CN receipt built, laid out, drawn and written (fsync'd) as a PDF.

Three figures:

- receipt_render_ms_median (and p95): warm, in this process, after a first receipt has paid
  for the imports and the font registration;
- receipt_render_first_ms: the first receipt of a fresh process through the terminal's own
  printer (kiosk.printers.DeferredPdfPrinter) that has not been warmed, as a citizen would wait
  for it if they asked for a receipt before the start-up work had loaded the printer;
- receipt_render_first_warmed_ms: the same, after the printer's warm(), which the terminal runs
  off the GUI thread once the first screen is up: what the first citizen of the day waits.

The fresh-process figures are medians over a few processes. Each child has loaded only what the
terminal has loaded before its first receipt (kiosk.app, the receipt content builder), so the
imports of the PDF stack fall inside the unwarmed figure, as they would for the citizen.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

from devices.printing import PrintStatus, ReceiptDocument
from kiosk.i18n import current_language, set_language
from kiosk.receipt import build_receipt

ROOT = Path(__file__).resolve().parent.parent
CHILD_TIMEOUT_S = 120.0


def _sample_receipt(i: int) -> ReceiptDocument:
    return build_receipt(
        service_name="居住证申领（首次申领）",
        receipt_number=f"K01-20261123-{i:04d}",
        submitted_at=datetime(2026, 11, 23, 14, 32),
        applicant_name="张小三",
        id_number="11010519491231002X",
        tracking_url=f"http://127.0.0.1:8000/track/0192f0c4-1234-7abc-8def-{i:012d}",
        delivered=i % 2 == 0,
        terminal_id="K01",
        hall_name="北京市朝阳区政务服务中心",
        channel="kiosk",
        time_limit_text="15个工作日",
        collection_text="窗口领取或邮寄送达",
    )


def measure_receipt_render(n: int = 30) -> dict[str, float]:
    """Median and 95th percentile of n warm renders, each building the document and writing it."""
    if n < 1:
        raise ValueError("n must be at least 1")
    from devices.printers.pdf import PdfReceiptPrinter

    previous = current_language()
    set_language("zh_CN")
    try:
        with tempfile.TemporaryDirectory(prefix="receipt-bench-") as tmp:
            printer = PdfReceiptPrinter(Path(tmp))
            first = printer.print_receipt(_sample_receipt(0))
            if first.status is not PrintStatus.OK:
                raise RuntimeError(f"receipt printer failed: {first.detail}")
            times_ms: list[float] = []
            for i in range(1, n + 1):
                started = time.perf_counter()
                result = printer.print_receipt(_sample_receipt(i))
                times_ms.append((time.perf_counter() - started) * 1000.0)
                if result.status is not PrintStatus.OK:
                    raise RuntimeError(f"receipt printer failed: {result.detail}")
    finally:
        set_language(previous)
    times_ms.sort()
    p95_index = min(len(times_ms) - 1, max(0, round(0.95 * len(times_ms)) - 1))
    return {
        "receipt_render_ms_median": round(statistics.median(times_ms), 2),
        "receipt_render_ms_p95": round(times_ms[p95_index], 2),
    }


def first_render_ms(out_dir: Path, *, warmed: bool) -> float:
    """In a fresh process: the first receipt through the terminal's printer, in milliseconds."""
    from kiosk.printers import DeferredPdfPrinter

    set_language("zh_CN")
    printer = DeferredPdfPrinter(out_dir, None)  # the settings' default: the system's CJK font
    if warmed:
        printer.warm()
    started = time.perf_counter()
    result = printer.print_receipt(_sample_receipt(1))
    elapsed_ms = (time.perf_counter() - started) * 1000.0
    if result.status is not PrintStatus.OK:
        raise RuntimeError(f"receipt printer failed: {result.detail}")
    return elapsed_ms


def _first_in_fresh_process(out_dir: Path, *, warmed: bool) -> float:
    command = [sys.executable, "-m", "benchmarks.receipt", "--first", str(out_dir)]
    if warmed:
        command.append("--warmed")
    done = subprocess.run(
        command,
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=CHILD_TIMEOUT_S,
        check=False,
    )
    if done.returncode != 0:
        tail = done.stderr.strip().splitlines()[-1:] or ["(no output)"]
        raise RuntimeError(f"the fresh receipt process failed: {tail[0]}")
    figure: float = json.loads(done.stdout.strip().splitlines()[-1])["ms"]
    return figure


def measure_first_receipt(processes: int = 5) -> dict[str, float]:
    """Medians over `processes` fresh processes each: the first receipt unwarmed and warmed."""
    if processes < 1:
        raise ValueError("processes must be at least 1")
    cold: list[float] = []
    warm: list[float] = []
    with tempfile.TemporaryDirectory(prefix="receipt-first-") as tmp:
        for i in range(processes):
            # Alternated, so that a busy moment on the machine does not fall on one side only.
            cold.append(_first_in_fresh_process(Path(tmp) / f"cold-{i}", warmed=False))
            warm.append(_first_in_fresh_process(Path(tmp) / f"warm-{i}", warmed=True))
    return {
        "receipt_render_first_ms": round(statistics.median(cold), 2),
        "receipt_render_first_warmed_ms": round(statistics.median(warm), 2),
    }


def _child(argv: list[str]) -> int:
    out_dir = Path(argv[argv.index("--first") + 1])
    out_dir.mkdir(parents=True, exist_ok=True)
    print(json.dumps({"ms": first_render_ms(out_dir, warmed="--warmed" in argv)}))
    return 0


if __name__ == "__main__":
    if "--first" in sys.argv:
        sys.exit(_child(sys.argv))
    print({**measure_receipt_render(), **measure_first_receipt(3)})
