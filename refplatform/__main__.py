"""Command line: serve the reference platform, or write its OpenAPI document."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import uvicorn
from platformdirs import user_data_dir

from kiosk.terminal_auth import ca_fingerprint

from .app import DEFAULT_CATALOGUE, create_app, openapi_text
from .backoffice import ENVIRONMENT_VARIABLE, FILE_NAME, BackOfficeTokenError, configured_token
from .catalogue import CatalogueError
from .faults import FAULTS_PATH, FaultPlan
from .terminals import TerminalRegistry


def _default_db() -> Path:
    return Path(user_data_dir("hall-terminal-refplatform", appauthor=False)) / "platform.sqlite3"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m refplatform",
        description="Reference platform server of the hall terminal client (API v1).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (%(default)s)")
    parser.add_argument("--port", type=int, default=8700, help="port to listen on (%(default)s)")
    parser.add_argument(
        "--db", type=Path, default=None, help=f"SQLite database file (default: {_default_db()})"
    )
    parser.add_argument(
        "--catalogue",
        type=Path,
        default=DEFAULT_CATALOGUE,
        help="service catalogue JSON (default: the demo catalogue)",
    )
    parser.add_argument(
        "--public-url",
        default=None,
        help="address phones use to reach the tracking pages, e.g. http://192.0.2.10:8700",
    )
    parser.add_argument(
        "--back-office-token-file",
        type=Path,
        default=None,
        metavar="PATH",
        help=(
            "file holding the bearer token of the back-office routes (or set"
            f" {ENVIRONMENT_VARIABLE}); without either, one is made on the first start in"
            f" {FILE_NAME} beside the database, readable by this user only"
        ),
    )
    parser.add_argument(
        "--tls-cert", type=Path, metavar="PEM", help="serve https with this certificate chain"
    )
    parser.add_argument("--tls-key", type=Path, metavar="PEM", help="the certificate's key")
    parser.add_argument(
        "--tls-ca",
        type=Path,
        metavar="PEM",
        help="the CA certificate behind --tls-cert: terminals pin it when they enrol",
    )
    parser.add_argument(
        "--issue-code",
        metavar="TERMINAL_ID",
        help="print a one-time enrolment code for this terminal id and exit "
        "(staff run hall-terminal --enrol CODE on the terminal)",
    )
    parser.add_argument(
        "--revoke", metavar="TERMINAL_ID", help="withdraw this terminal's access and exit"
    )
    parser.add_argument("--access-log", action="store_true", help="log every request")
    parser.add_argument(
        "--enable-faults",
        action="store_true",
        help=f"for tests: let PUT {FAULTS_PATH} make submissions fail (docs/api.md)",
    )
    parser.add_argument(
        "--write-openapi",
        type=Path,
        metavar="PATH",
        help="write the OpenAPI document to PATH and exit",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.write_openapi is not None:
            with tempfile.TemporaryDirectory() as scratch:
                app = create_app(Path(scratch) / "openapi.sqlite3", args.catalogue)
                args.write_openapi.write_text(openapi_text(app), encoding="utf-8")
            return 0
        logging.basicConfig(
            level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
        )
        faults = FaultPlan() if args.enable_faults else None
        db = args.db or _default_db()
        tls = (args.tls_cert, args.tls_key, args.tls_ca)
        if any(tls) and not all(tls):
            print("refplatform: --tls-cert, --tls-key and --tls-ca go together", file=sys.stderr)
            return 2
        if args.issue_code is not None or args.revoke is not None:
            return _terminals(args, db)
        token = configured_token(
            os.environ.get(ENVIRONMENT_VARIABLE), args.back_office_token_file, db
        )
        public_url = args.public_url
        if public_url is None and args.host not in ("0.0.0.0", "::", ""):  # noqa: S104 - compared
            # The address it serves on is where phones reach it, unless told otherwise.
            scheme = "https" if args.tls_cert else "http"
            host = f"[{args.host}]" if ":" in args.host else args.host
            public_url = f"{scheme}://{host}:{args.port}"
        elif public_url is None:
            logging.getLogger("refplatform").warning(
                "no --public-url: the catalogue announces no tracking address, so receipt codes "
                "point at the address each terminal uses for the platform"
            )
        app = create_app(
            db,
            args.catalogue,
            public_url,
            faults=faults,
            back_office_token=token,
            tls_ca=args.tls_ca,
        )
    except (CatalogueError, BackOfficeTokenError) as exc:
        print(f"refplatform: {exc}", file=sys.stderr)
        return 2
    if faults is not None:
        logging.getLogger("refplatform").warning(
            "fault injection is enabled: %s can make submissions fail", FAULTS_PATH
        )
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        access_log=args.access_log,
        log_config=None,
        ssl_certfile=args.tls_cert,
        ssl_keyfile=args.tls_key,
    )
    return 0


def _terminals(args: argparse.Namespace, db: Path) -> int:
    """--issue-code / --revoke: the terminal registry, for the platform's operators."""
    registry = TerminalRegistry(db)
    if args.revoke is not None:
        if not registry.revoke(args.revoke):
            print(f"refplatform: no terminal {args.revoke} is enrolled", file=sys.stderr)
            return 1
        print(f"terminal {args.revoke} revoked")
        return 0
    try:
        issued = registry.issue_code(args.issue_code)
    except ValueError as exc:
        print(f"refplatform: {exc}", file=sys.stderr)
        return 2
    code = issued.secret
    if args.tls_ca is not None:
        code += "/" + ca_fingerprint(args.tls_ca.read_bytes())
    print(code)
    return 0


if __name__ == "__main__":
    sys.exit(main())
