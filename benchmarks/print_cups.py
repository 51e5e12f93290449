"""Receipts printed through a real cupsd: the test command's, or a private one started for the run
(tests/fixtures/cups), whose queue's backend writes each job to a file.

`print_accept_ms_median_cups`: from print_receipt called to CUPS having accepted the job (it
answered Print-Job with a job id), the receipt's PDF rendered on the way, as after "submit";
`print_done_ms_median_cups`: to the job reported completed, the backend having written it. The
first receipt (font registration) is not counted.
"""

from __future__ import annotations

import datetime as dt
import statistics
import tempfile
import time
from pathlib import Path

from devices.printers.cups import CupsPrinter
from devices.printers.pdf import PdfReceiptPrinter
from devices.printing import PrintStatus
from kiosk.receipt import build_receipt
from tests.fixtures.cups import cups_stack


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(0.95 * len(ordered)) - 1))]


def measure_print_cups(prints: int = 20) -> dict[str, float]:
    """Medians (and the 95th percentile of acceptance) over `prints` receipts."""
    if prints < 5:
        raise ValueError("at least 5 prints")
    accepted_at: list[float] = []
    accept_ms: list[float] = []
    done_ms: list[float] = []
    with tempfile.TemporaryDirectory(prefix="hall-print-cups-") as tmp, cups_stack() as queue:
        queue.reset()
        printer = CupsPrinter(
            queue.name,
            PdfReceiptPrinter(Path(tmp)),
            80,
            server=queue.server,
            on_accepted=lambda _job: accepted_at.append(time.perf_counter()),
        )
        for n in range(prints + 1):  # the first warms up and is not counted
            doc = build_receipt(
                service_name="居住证签注",
                receipt_number=f"K07-20261129-{n:04d}",
                submitted_at=dt.datetime(2026, 11, 29, 9, 30, tzinfo=dt.UTC),
                applicant_name="王秀英",
                id_number="11010519491231002X",
                tracking_url=f"https://track.example.invalid/r/K07-20261129-{n:04d}",
                delivered=True,
                terminal_id="K07",
                hall_name="朝阳区政务服务中心",
                channel="kiosk",
            )
            accepted_at.clear()
            started = time.perf_counter()
            result = printer.print_receipt(doc)
            finished = time.perf_counter()
            if result.status is not PrintStatus.OK or len(accepted_at) != 1:
                raise RuntimeError(f"receipt {n} not printed: {result}")
            if n:
                accept_ms.append((accepted_at[0] - started) * 1000)
                done_ms.append((finished - started) * 1000)
        printed = len(queue.printed())
        if printed != prints + 1:
            raise RuntimeError(f"{printed} job files for {prints + 1} receipts")
        queue.reset()
    return {
        "print_accept_ms_median_cups": round(statistics.median(accept_ms), 1),
        "print_accept_ms_p95_cups": round(_p95(accept_ms), 1),
        "print_done_ms_median_cups": round(statistics.median(done_ms), 1),
    }


if __name__ == "__main__":
    print(measure_print_cups())
