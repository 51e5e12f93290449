"""Many whole visits on terminals made and stopped in turn, while another thread forces the
garbage collector and renders receipts: the conditions under which a Qt object freed on the
wrong thread crashes the process or makes Qt warn.

Run by tests/gui/test_ownership.py in its own process (a crash must fail a test, not end the
run): `python -m tests.gui.stress_visits DATA_DIR --platform-url URL --terminals N --visits M`.
Terminal n keeps its data in DATA_DIR/terminal-n, which must hold its enrolment with the platform
at URL (the test enrols each one first). Exit status 0 and the line "visits: N" when every visit
ended on its welcome page and Qt said nothing of threads.
"""

from __future__ import annotations

import argparse
import faulthandler
import gc
import os
import sys
import threading
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("HALL_TTS_ENGINE", "mock")
os.environ.setdefault("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")

from PySide6.QtCore import QEventLoop, QTimer, QtMsgType, qInstallMessageHandler
from PySide6.QtWidgets import QApplication

from kiosk.app import build_parts
from kiosk.config import Config
from ui.app import Terminal
from ui.input_environment import prepare_environment
from ui.selfcheck import SelfCheck

ROOT = Path(__file__).resolve().parents[2]
CATALOGUE = ROOT / "assets" / "catalogue" / "demo_catalogue.json"
HARMLESS = ("propagateSizeHints", "pipewire")


def hammer(stop: threading.Event, counts: dict[str, int]) -> None:
    """Collect garbage and allocate like a receipt render, on a thread that is not the GUI's."""
    import datetime as dt

    from devices.printers.pdf import PdfReceiptPrinter
    from kiosk.receipt import build_receipt

    printer = PdfReceiptPrinter(Path(os.environ["HALL_STRESS_OUT"]), font_path=None)
    doc = build_receipt(
        service_name="居住证申领",
        receipt_number="K01-20261129-0001",
        submitted_at=dt.datetime(2026, 11, 29, 9, 0),
        applicant_name="张秀英",
        id_number="110101195203080021",
        tracking_url="http://127.0.0.1/track/x",
        delivered=True,
        terminal_id="K01",
        hall_name="本市政务服务中心",
        channel="kiosk",
        time_limit_text="15个工作日",
        collection_text="窗口领取",
    )
    while not stop.is_set():
        printer.render(doc)
        gc.collect()
        counts["collections"] += 1


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("data", type=Path)
    parser.add_argument("--platform-url", required=True)
    parser.add_argument("--terminals", type=int, default=3)
    parser.add_argument("--visits", type=int, default=4)
    args = parser.parse_args()
    faulthandler.enable()
    complaints: list[str] = []

    def on_message(kind: QtMsgType, _context: object, text: str) -> None:
        if kind != QtMsgType.QtDebugMsg and not any(h in text for h in HARMLESS):
            complaints.append(text)

    qInstallMessageHandler(on_message)
    prepare_environment()
    app = QApplication([])
    os.environ["HALL_STRESS_OUT"] = str(args.data / "hammer")
    stop = threading.Event()
    counts = {"collections": 0}
    worker = threading.Thread(target=hammer, args=(stop, counts), name="hammer", daemon=True)
    worker.start()
    visits = 0
    try:
        for number in range(args.terminals):
            config = Config(
                data_dir=args.data / f"terminal-{number}",
                platform_url=args.platform_url,
                done_reset_s=60,
            )
            parts = build_parts(config, demo=True, bundled_catalogue=CATALOGUE)
            terminal = Terminal(parts, app)
            terminal.window.show()
            terminal.start()
            for _ in range(args.visits):
                loop = QEventLoop()
                check = SelfCheck(terminal.visit, timeout_s=30, done=loop.quit)
                QTimer.singleShot(0, check.begin)
                loop.exec()
                if check.error:
                    print(f"visit failed: {check.error}", file=sys.stderr)
                    return 1
                terminal.visit.done.finish_button.click()
                if terminal.visit.session.active:
                    print("the visit did not end", file=sys.stderr)
                    return 1
                check.close()
                visits += 1
            terminal.stop()
            parts.close()
            del terminal, parts
    finally:
        stop.set()
        worker.join(30)
    if complaints:
        print("Qt complained:\n" + "\n".join(complaints), file=sys.stderr)
        return 1
    print(f"visits: {visits} collections on the worker: {counts['collections']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
