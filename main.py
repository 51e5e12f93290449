"""Hall terminal client: parse arguments, build the parts, start Qt."""

from __future__ import annotations

import argparse
import importlib.util
import logging
import socket
import sys
import threading
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kiosk.hardening import harden_process

if TYPE_CHECKING:
    from kiosk.config import Config

if TYPE_CHECKING:
    from kiosk.app import Parts

ROOT = Path(__file__).resolve().parent
BUNDLED_CATALOGUE = ROOT / "assets" / "catalogue" / "demo_catalogue.json"

log = logging.getLogger("hall")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="hall-terminal", description=__doc__)
    parser.add_argument(
        "--config", type=Path, help="settings file (TOML); default from platformdirs"
    )
    parser.add_argument("--mode", choices=["kiosk", "counter", "rural"], help="terminal mode")
    parser.add_argument("--language", choices=["zh_CN", "en"], help="starting language")
    parser.add_argument("--platform-url", help="the service platform's base URL")
    parser.add_argument("--data-dir", type=Path, help="where the outbox, receipts and caches live")
    parser.add_argument(
        "--demo",
        action="store_true",
        help="start the reference platform on 127.0.0.1, a simulated card reader and a PDF printer",
    )
    parser.add_argument(
        "--self-check",
        action="store_true",
        help="drive a whole visit offscreen and check the platform has it (its tracking page "
        "answers); the last line printed is the receipt PDF's path",
    )
    parser.add_argument(
        "--offline-check",
        action="store_true",
        help="like --self-check, with the platform away: the application waits in the outbox",
    )
    parser.add_argument("--benchmark-ready", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--fullscreen", action="store_true", help="fill the screen (terminals)")
    parser.add_argument(
        "--recover-outbox",
        type=Path,
        metavar="PATH",
        help="queue again the submissions of an outbox set aside as damaged "
        "(outbox.sqlite3.corrupt-...), print a summary and exit; the terminal must not be running."
        " Exit status 0: done, 3: done but some could not be read, 1: nothing done",
    )
    parser.add_argument(
        "--enrol",
        metavar="CODE",
        help="register this terminal with the platform (--platform-url or the settings' URL) "
        "using the one-time code from the platform's back office, then exit",
    )
    parser.add_argument(
        "--forget-reader-pin",
        action="store_true",
        help="forget which serial card reader this terminal trusts, then exit; the next start "
        "records the reader it finds. Exit status 0: forgotten or none recorded, 1: failed",
    )
    parser.add_argument(
        "--add-staff",
        metavar="ID",
        help="let a staff member (ID: 1-16 letters or digits) sign in at a counter or service "
        "point, or give one a new PIN, then exit. Needs --staff-name. The PIN (6-12 digits) is "
        "typed twice; from a script, one line on standard input",
    )
    parser.add_argument("--staff-name", metavar="NAME", help="the name --add-staff shows on screen")
    parser.add_argument(
        "--remove-staff", metavar="ID", help="stop a staff member signing in, then exit"
    )
    parser.add_argument(
        "--list-staff", action="store_true", help="list the staff who may sign in, then exit"
    )
    parser.add_argument(
        "--verify-audit",
        nargs="?",
        const="",
        metavar="PATH",
        help="check the audit log (PATH: an audit file or a data directory; default: this "
        "terminal's) against the terminal's enrolled key, print the first broken entry, and exit."
        " Exit status 0: whole, 1: broken or not checked",
    )
    parser.add_argument(
        "--export-bundle",
        type=Path,
        metavar="PATH",
        help="write the applications waiting on this terminal to a signed bundle file at PATH "
        "(a USB stick) for a hall terminal to upload, then exit; they stay queued here. The "
        "terminal must not be running. Exit status 0: written, 1: nothing written",
    )
    parser.add_argument(
        "--import-bundle",
        type=Path,
        metavar="PATH",
        help="check a village terminal's bundle file at PATH and queue it for upload with this "
        "terminal's queue, then exit (a bundle imported before is ignored). The terminal must "
        "not be running. Exit status 0: queued or already queued, 1: refused",
    )
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    if args.add_staff is not None and not args.staff_name:
        parser.error("--add-staff needs --staff-name")
    return args


def wants_staff_command(args: argparse.Namespace) -> bool:
    return args.add_staff is not None or args.remove_staff is not None or bool(args.list_staff)


def enrol_terminal(config: Config, code: str) -> int:
    """--enrol: no Qt; staff read the outcome in the terminal's language."""
    from kiosk.errors import UserFacingError, message_for
    from kiosk.terminal_auth import EnrolmentError, describe_enrolment, enrol

    try:
        record = enrol(config.data_dir, config.platform_url, code)
    except EnrolmentError as exc:
        print(f"{message_for(exc)} ({exc.code})", file=sys.stderr)
        return 1
    except UserFacingError as exc:
        print(message_for(exc), file=sys.stderr)
        return 1
    print(describe_enrolment(record))
    return 0


def enrol_demo_terminal(config: Config) -> bytes:
    """The demo's terminal, enrolled with the platform started beside it (or, for the offline
    check, with one that never answers): returns the terminal's public key for that platform to
    register. The platform's public keys are read where the embedded platform keeps them."""
    from kiosk.terminal_auth import PlatformKey, enrol_locally
    from refplatform.keys import PlatformKeys, default_keys_dir

    keys = PlatformKeys(default_keys_dir(demo_platform_db(config.data_dir)))
    return enrol_locally(
        config.data_dir,
        config.platform_url,
        config.terminal_id,
        (PlatformKey(keys.signing_key_id, keys.signing_public_b64),),
        PlatformKey(keys.sealing_key_id, keys.sealing_public_b64),
    )


def demo_platform_db(data_dir: Path) -> Path:
    return data_dir / "demo-platform.sqlite3"


def recover_outbox(config: Config, source: Path) -> int:
    """--recover-outbox: no Qt, no platform; staff read the summary in the terminal's language."""
    from kiosk.app import recover_outbox as recover
    from kiosk.sync_messages import describe_salvage, describe_salvage_failure
    from offline_queue.errors import OutboxError

    try:
        result = recover(config, source)
    except OutboxError as exc:
        log.error("outbox recovery from %s refused: %s (%s)", source, exc.code, exc)
        print(describe_salvage_failure(exc.code), file=sys.stderr)
        return 1
    print(describe_salvage(result))
    return 3 if result.unreadable else 0


def prepare_checks(args: argparse.Namespace) -> None:
    """The self-checks run offscreen and silent; the offline one against a port nobody serves."""
    if args.offline_check:
        args.self_check = True
        args.demo = True
        args.platform_url = f"http://127.0.0.1:{free_loopback_port()}"  # nothing listens there
    if args.self_check:
        import os

        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
        os.environ.setdefault("HALL_TTS_ENGINE", "mock")


def one_off(args: argparse.Namespace, config: Config) -> int:
    """The commands staff run with the terminal stopped, that print and exit."""
    if args.recover_outbox is not None:
        return recover_outbox(config, args.recover_outbox)
    if args.forget_reader_pin:
        return forget_reader_pin(config)
    if wants_staff_command(args):
        return staff_command(args, config)
    if args.verify_audit is not None:
        return verify_audit(config, args.verify_audit)
    if args.export_bundle is not None or args.import_bundle is not None:
        return bundle_command(args, config)
    return enrol_terminal(config, args.enrol)


def verify_audit(config: Config, path: str) -> int:
    """--verify-audit [PATH]: no Qt; staff read the outcome in the terminal's language."""
    from kiosk.audit_log import enrolled_public_key, verify_command
    from kiosk.errors import UserFacingError, message_for

    try:
        public_key = enrolled_public_key(config.data_dir)
    except UserFacingError as exc:
        print(message_for(exc), file=sys.stderr)
        return 1
    ok, sentence = verify_command(Path(path) if path else config.data_dir, public_key)
    print(sentence, file=sys.stdout if ok else sys.stderr)
    return 0 if ok else 1


def bundle_command(args: argparse.Namespace, config: Config) -> int:
    """--export-bundle, --import-bundle: no Qt, no platform; staff read the outcome in the
    terminal's language."""
    from kiosk.bundles import export_to, import_from

    if args.export_bundle is not None:
        done, sentence = export_to(config, args.export_bundle)
    else:
        done, sentence = import_from(config, args.import_bundle)
    print(sentence, file=sys.stdout if done else sys.stderr)
    return 0 if done else 1


def staff_command(args: argparse.Namespace, config: Config) -> int:
    """--add-staff, --remove-staff, --list-staff: no Qt; the PIN is never an argument."""
    from kiosk.staff import (
        add_staff_command,
        console_pin_reader,
        list_staff_command,
        remove_staff_command,
    )

    if args.add_staff is not None:
        done, sentence = add_staff_command(
            config.data_dir, args.add_staff, args.staff_name, console_pin_reader()
        )
    elif args.remove_staff is not None:
        done, sentence = remove_staff_command(config.data_dir, args.remove_staff)
    else:
        done, sentence = list_staff_command(config.data_dir)
    print(sentence, file=sys.stdout if done else sys.stderr)
    return 0 if done else 1


def forget_reader_pin(config: Config) -> int:
    """--forget-reader-pin: staff re-pin the serial card reader on purpose."""
    from kiosk.readers import forget_reader_pin as forget

    done, sentence = forget(config.data_dir)
    print(sentence, file=sys.stdout if done else sys.stderr)
    return 0 if done else 1


def free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_demo_platform(
    data_dir: Path,
    on_up: Callable[[], None] = lambda: None,
    terminals: list[tuple[str, bytes]] | None = None,
) -> tuple[str, Callable[[], None], Callable[[], None]]:
    """The reference platform on a free loopback port: its URL, boot() and stop().

    boot() starts it on a thread; the demo calls it once the first screen is up, so the
    platform's imports do not hold up the window (the terminal copes with a platform that is
    not there yet: the bundled catalogue, and uploads retried). The terminals listed (id and
    public key) by the time it boots are registered with it.
    """
    port = free_loopback_port()
    running: list[Any] = []

    def boot() -> None:
        from refplatform.server import start_in_thread
        from refplatform.terminals import TerminalRegistry

        data_dir.mkdir(parents=True, exist_ok=True)
        db = demo_platform_db(data_dir)
        running.append(start_in_thread(db, BUNDLED_CATALOGUE, port=port))
        registry = TerminalRegistry(db)
        for terminal_id, public_key in terminals or ():
            registry.register(terminal_id, public_key)
        on_up()

    thread = threading.Thread(target=boot, name="demo-platform", daemon=True)

    def stop() -> None:
        if thread.is_alive():
            thread.join(30)
        for platform in running:
            platform.stop()

    return f"http://127.0.0.1:{port}", thread.start, stop


def main(argv: list[str] | None = None) -> int:
    harden_process()  # before anything personal is in memory: no core dumps, private files
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    prepare_checks(args)

    from kiosk.config import ConfigError, load_config
    from kiosk.errors import message_for
    from kiosk.i18n import set_language

    try:
        config = load_config(
            args.config,
            {
                "mode": args.mode,
                "language": args.language,
                "platform_url": args.platform_url,
                "data_dir": str(args.data_dir) if args.data_dir else None,
            },
        )
    except ConfigError as exc:
        print(f"{message_for(exc)} ({exc.detail})", file=sys.stderr)
        return 2
    set_language(config.language)
    if (
        args.recover_outbox is not None
        or args.enrol is not None
        or args.forget_reader_pin
        or wants_staff_command(args)
        or args.verify_audit is not None
        or args.export_bundle is not None
        or args.import_bundle is not None
    ):
        return one_off(args, config)

    stop_platform = None
    boot_platform = None
    platform_up: list[Callable[[], None]] = []  # the sync engine looks at once, not in a minute
    platform_started = threading.Event()
    demo_terminals: list[tuple[str, bytes]] = []  # enrolled with the demo's own platform
    if args.demo and not args.platform_url:
        if importlib.util.find_spec("uvicorn") is None:
            print(
                "the demo embeds the reference platform, which is not installed here: "
                "pip install --require-hashes -r requirements/demo-test.txt",
                file=sys.stderr,
            )
            return 2

        def platform_is_up() -> None:
            platform_started.set()
            for wake in platform_up:
                wake()

        url, boot_platform, stop_platform = start_demo_platform(
            config.data_dir, on_up=platform_is_up, terminals=demo_terminals
        )
        config = replace(config, platform_url=url)

    from kiosk.i18n import preload
    from ui.start import run

    def build() -> Parts:
        """On a worker while the first screen is up: everything else the terminal needs."""
        from kiosk.app import build_parts

        if boot_platform is not None or args.offline_check:
            demo_terminals.append((config.terminal_id, enrol_demo_terminal(config)))
        parts = build_parts(config, demo=args.demo, bundled_catalogue=BUNDLED_CATALOGUE)
        parts.after_first_paint.append(preload)  # switching language later reads no file
        if boot_platform is not None:
            platform_up.append(parts.sync.wake)
            parts.submitter.hold_uploads_until(platform_started)
            parts.after_first_paint.insert(0, boot_platform)
        return parts

    made: list[Parts] = []
    try:
        return run(
            config,
            build,
            demo=args.demo,
            check="offline" if args.offline_check else "online" if args.self_check else "",
            benchmark_ready=args.benchmark_ready,
            fullscreen=args.fullscreen,
            built=made.append,
        )
    finally:
        for parts in made:
            parts.close()
        if stop_platform is not None:
            stop_platform()

if __name__ == "__main__":
    sys.exit(main())
