"""ESC/POS printing: one zh_CN receipt to a thermal printer on 127.0.0.1.

- print_accept_ms_median_escpos (and p95): print_receipt called until the printer holds the whole
  job and has answered the status query after it (print_receipt returns only then): the status
  before, the layout in GB18030 with the printer's QR command, the bytes sent, the status after.
  Each receipt opens and closes its own connection, as the terminal does.
- print_accept_first_ms_escpos: the first receipt of the process, python-escpos' import included.

The printer is tests/fixtures/escpos_peer.py: it records every byte and answers DLE EOT at once,
so the figures are the terminal's own cost, not a print head's.

    python -m benchmarks.print_escpos [receipts]
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from datetime import datetime

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
        tracking_url=f"https://zwfw.example.gov.cn/track/0192f0c4-1234-7abc-8def-{i:012d}"
        "?t=MCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE",
        delivered=i % 2 == 0,
        terminal_id="K01",
        hall_name="北京市朝阳区政务服务中心",
        channel="kiosk",
        time_limit_text="15个工作日",
        collection_text="窗口领取或邮寄送达",
    )


def measure_print_escpos(n: int = 30, paper_mm: int = 80) -> dict[str, float]:
    """Median and 95th percentile over n receipts, and the process's first receipt (ms)."""
    if n < 1:
        raise ValueError("n must be at least 1")
    from tests.fixtures.escpos_peer import EscposPeer, parse_job

    previous = current_language()
    set_language("zh_CN")
    docs = [_sample_receipt(i) for i in range(n + 1)]
    times: list[float] = []
    try:
        with EscposPeer() as peer:
            started = time.perf_counter()
            from devices.printers.escpos import STATUS_QUERIES, EscposPrinter

            printer = EscposPrinter(peer.address, paper_mm)
            for doc in docs:
                result = printer.print_receipt(doc)
                elapsed = (time.perf_counter() - started) * 1000.0
                if result.status is not PrintStatus.OK:
                    raise RuntimeError(f"receipt not printed: {result}")
                received = peer.connections()[-1]
                job = parse_job(received)
                # The whole job arrived before the status query that follows it was answered.
                if not (
                    received.endswith(STATUS_QUERIES)
                    and job.cut
                    and job.qr_payloads == [doc.qr_url]
                    and peer.answered == 8 * (len(times) + 1)
                ):
                    raise RuntimeError("the printer did not get the whole receipt")
                times.append(elapsed)
                started = time.perf_counter()
    finally:
        set_language(previous)
    first, warm = times[0], times[1:]
    ordered = sorted(warm)
    return {
        "print_accept_ms_median_escpos": round(statistics.median(warm), 3),
        "print_accept_ms_p95_escpos": round(
            ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], 3
        ),
        "print_accept_first_ms_escpos": round(first, 3),
    }


if __name__ == "__main__":
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 30
    print(json.dumps(measure_print_escpos(count)))
