"""Starting the terminal: the welcome page first, then the parts behind it.

The first frame needs only Qt, the settings, the translations and the shell. Everything else
(the outbox and its key, the catalogue and its schemas, the platform client, the readers) is built
on a worker while the welcome page is already on the screen; the journeys take over the moment it
is ready. Card readers start only then, so a card laid down meanwhile is read when they do: its
"present" is reported by the reader as it starts.

With --benchmark-ready it prints READY once the first frame is painted and input is taken, and
SETTLED once the parts are built and the deferred start-up work has finished.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

import shiboken6
from PySide6.QtCore import QObject, QTimer
from PySide6.QtWidgets import QApplication

from kiosk.config import Config
from kiosk.i18n import _
from ui.background import Background
from ui.input_environment import prepare_environment
from ui.screens import WelcomePage
from ui.shell import Shell
from ui.voice import VoiceGuide

if TYPE_CHECKING:
    from kiosk.app import Parts
    from ui.app import Terminal
    from ui.selfcheck import SelfCheck

log = logging.getLogger(__name__)

OUT_OF_SERVICE = 3  # the exit status of a terminal that cannot open its outbox


class Startup(QObject):
    """Owns the start: the first screen's page, the build on a worker, then the Terminal."""

    def __init__(
        self,
        shell: Shell,
        welcome: WelcomePage,
        background: Background,
        *,
        check: str,
        benchmark: bool,
    ) -> None:
        super().__init__(shell)
        self._shell = shell
        self._welcome = welcome
        self._background = background
        self._check = check  # "", "online" or "offline"
        self._benchmark = benchmark
        self._ready_said = False
        self._pending = -1  # deferred start-up jobs left; -1 until the parts are built
        self.terminal: Terminal | None = None
        self.parts: Parts | None = None
        self.self_check: SelfCheck | None = None
        self.exit_code = 0
        self._build: Callable[[], Parts] | None = None

    def begin(self, build: Callable[[], Parts]) -> None:
        self._build = build

    def first_frame(self) -> None:
        # The build starts once the first frame is out: its imports would otherwise compete
        # with the painting for the interpreter.
        if self._build is not None:
            self._background.run(self._build, self._built, self._failed)
            self._build = None
        QTimer.singleShot(0, self._ready)

    def _ready(self) -> None:
        if self._ready_said:
            return
        self._ready_said = True
        if self._benchmark:
            print("READY", flush=True)
        self._maybe_settled()

    def _built(self, parts: Parts) -> None:
        from ui.app import Terminal

        self.parts = parts
        terminal = Terminal(
            parts,
            _application(),
            shell=self._shell,
            welcome=self._welcome,
            background=self._background,
        )
        self.terminal = terminal
        terminal.start()
        self._pending = len(parts.after_first_paint)
        for later in parts.after_first_paint:
            terminal.run_later(later, self._one_done)
        if self._check:
            from ui.selfcheck import SelfCheck

            self.self_check = SelfCheck(terminal.visit, expect_online=self._check == "online")
            QTimer.singleShot(0, self.self_check.begin)
        self._maybe_settled()

    def _failed(self, exc: BaseException) -> None:
        from kiosk.errors import message_for
        from kiosk.sync_messages import describe_startup_failure
        from offline_queue.errors import OutboxError

        if isinstance(exc, OutboxError):
            # Without its outbox the terminal cannot keep a promise to anyone: say so on the
            # screen (staff read the code) instead of failing with a trace nobody sees.
            log.error("the outbox cannot be opened: %s (%s)", exc.code, exc)
            text = describe_startup_failure(exc.code)
            self.exit_code = OUT_OF_SERVICE
        else:
            log.error("the terminal could not start: %s", type(exc).__name__, exc_info=exc)
            text = message_for(exc)
            self.exit_code = 1
        print(text, file=sys.stderr)
        from ui.out_of_service import OutOfServicePage

        page = OutOfServicePage()  # nowhere to go until staff have fixed it
        page.show_reason(text)
        self._shell.add_page(page)
        self._shell.show_page(page)
        if self._check:
            QApplication.quit()

    def _one_done(self, _value: object) -> None:
        self._pending -= 1
        if self._pending == 0 and self.terminal is not None:
            # The modules and objects the deferred work brought in live as long as the terminal.
            self.terminal.collector.freeze_long_lived()
        self._maybe_settled()

    def _maybe_settled(self) -> None:
        if self._pending == 0 and self._ready_said and self._benchmark:
            self._benchmark = False
            print("SETTLED", flush=True)

    def stop(self) -> None:
        if self.terminal is not None:
            self.terminal.stop()  # deletes the shell with everything in it
        else:
            self._background.shutdown(wait=True)
            if shiboken6.isValid(self._shell):
                self._shell.stop_watching()
                shiboken6.delete(self._shell)


def _application() -> QApplication:
    existing = QApplication.instance()
    if isinstance(existing, QApplication):
        return existing
    prepare_environment()  # the on-screen keyboard's input method, read when Qt starts
    return QApplication(sys.argv[:1])


def run(
    config: Config,
    build: Callable[[], Parts],
    *,
    demo: bool,
    check: str = "",
    benchmark_ready: bool = False,
    fullscreen: bool = False,
    built: Callable[[Parts], None] = lambda _parts: None,
) -> int:
    """Show the first screen, build the parts on a worker, run until the window closes.

    `check` is "online" or "offline" for the demo's self-checks (their report goes to stdout).
    `built` receives the parts once they exist, so the caller can close them at the end."""
    app = _application()
    app.setApplicationName("hall-terminal")
    shell = Shell(config=config, voice=VoiceGuide(enabled=config.voice))
    welcome = WelcomePage(demo=demo)
    shell.add_page(welcome)
    welcome.retranslate()
    shell.language_changed.connect(welcome.retranslate)
    shell.show_page(welcome)
    background = Background(shell)
    startup = Startup(shell, welcome, background, check=check, benchmark=benchmark_ready)
    shell.first_frame.connect(startup.first_frame)
    shell.resize(1280, 900)
    if fullscreen:
        shell.showFullScreen()
    else:
        shell.show()
    startup.begin(build)
    app.exec()
    parts, self_check, code = startup.parts, startup.self_check, startup.exit_code
    startup.stop()
    if parts is not None:
        built(parts)
    if code:
        return code
    if self_check is not None:
        self_check.verify_tracking()
        if self_check.error:
            print(_("Self-check failed: {reason}").format(reason=self_check.error), file=sys.stderr)
            return 1
        print(self_check.report)
        print(str(self_check.receipt_path))
    return 0
