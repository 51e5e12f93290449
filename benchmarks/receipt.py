"""Receipt rendering: one zh_CN receipt laid out, drawn and written (fsync'd) as a PDF.

Measured warm: the first receipt pays for font registration once per process and is left out.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from datetime import datetime
from pathlib import Path

from devices.printers.pdf import PdfReceiptPrinter
from devices.printing import PrintStatus, ReceiptDocument
from kiosk.i18n import current_language, set_language
from kiosk.receipt import build_receipt


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


if __name__ == "__main__":
    print(measure_receipt_render())
