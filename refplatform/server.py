"""Running the platform inside this process, on a thread, for the demo and the tests."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import uvicorn

from .app import create_app
from .backoffice import new_token
from .faults import SubmissionFaults


class _ThreadServer(uvicorn.Server):
    """A uvicorn server that reports its start, stops on request without polling, and never
    touches signal handlers (they belong to the main thread)."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        try:
            await super().startup(sockets=sockets)
        except SystemExit:
            # uvicorn exits the process when it cannot start; here only this server ends and
            # start_in_thread reports the failure to its caller.
            self.should_exit = True
        finally:
            self.ready.set()

    async def main_loop(self) -> None:
        # uvicorn's own loop looks at should_exit every 100 ms; waiting on an event as well
        # lets stop() take effect at once while the per-tick housekeeping still runs.
        wake = self._wake
        counter = 0
        while not await self.on_tick(counter):
            counter = (counter + 1) % 864000
            if wake is None:
                await asyncio.sleep(0.1)
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), 0.1)

    def request_exit(self) -> None:
        self.should_exit = True
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None:
            with contextlib.suppress(RuntimeError):  # the loop has already closed
                loop.call_soon_threadsafe(wake.set)


@dataclass(frozen=True)
class TlsFiles:
    """What the platform serves https with: its certificate chain and key, and the CA behind
    them (given to terminals being enrolled, who pin it)."""

    cert: Path
    key: Path
    ca: Path


class RunningPlatform:
    """A platform serving on a thread of this process. Use as a context manager or call stop()."""

    def __init__(
        self,
        server: _ThreadServer,
        thread: threading.Thread,
        base_url: str,
        db_path: Path,
        back_office_token: str,
        *,
        ca_path: Path | None = None,
    ) -> None:
        self._server = server
        self._thread = thread
        self.base_url = base_url
        self.db_path = db_path
        self.back_office_token = back_office_token
        self.ca_path = ca_path  # the CA behind its TLS certificate; None when it serves http

    @property
    def back_office_headers(self) -> dict[str, str]:
        """The header the back-office routes ask for (status changes, the help-request list)."""
        return {"Authorization": f"Bearer {self.back_office_token}"}

    @property
    def serving(self) -> bool:
        """True until stop() has ended the server's thread."""
        return self._thread.is_alive()

    @property
    def port(self) -> int:
        return int(self.base_url.rsplit(":", 1)[1])

    def stop(self, timeout: float = 10.0) -> None:
        """Stop serving, close every connection and join the thread."""
        self._server.request_exit()
        self._thread.join(timeout)
        if self._thread.is_alive():
            self._server.force_exit = True
            self._thread.join(timeout)
        if self._thread.is_alive():
            raise RuntimeError("the platform server thread did not stop")

    def __enter__(self) -> RunningPlatform:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"RunningPlatform({self.base_url!r})"


def _listen(host: str, port: int) -> socket.socket:
    """A listening socket, bound here so a busy port is an OSError in the caller's thread."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto must say TCP: asyncio sets TCP_NODELAY only on sockets that do, and without it
    # every keep-alive answer (headers and body are two writes) waits for a delayed ACK, ~40 ms.
    listener = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((host, port))
        listener.listen(128)
    except OSError:
        listener.close()
        raise
    return listener


def start_in_thread(
    db_path: Path,
    catalogue_path: Path,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    public_url: str | None = None,
    faults: SubmissionFaults | None = None,
    back_office_token: str | None = None,
    tls: TlsFiles | None = None,
    startup_timeout: float = 10.0,
) -> RunningPlatform:
    """Serve the platform on host:port (0: a free port) and return once it accepts connections.

    faults: a refplatform.faults.FaultPlan lets the caller switch faults on and off while the
    server runs, directly or over HTTP (PUT /api/v1/_faults); without one nothing misbehaves.
    back_office_token opens the back-office routes; without one a fresh random token does, and
    the returned RunningPlatform holds it (back_office_token, back_office_headers). tls: serve
    https with this certificate, key and CA (the URL is then https://...).

    Raises OSError when the address cannot be bound, RuntimeError when the server does not start.
    """
    token = back_office_token if back_office_token is not None else new_token()
    listener = _listen(host, port)
    bound_host, bound_port = listener.getsockname()[:2]
    shown = f"[{bound_host}]" if ":" in bound_host else bound_host
    scheme = "https" if tls is not None else "http"
    url = f"{scheme}://{shown}:{bound_port}"
    try:
        app = create_app(
            db_path,
            catalogue_path,
            # Where phones reach the tracking page: given, or the address this server listens
            # on (known before any request, so no request's Host header decides it).
            public_url if public_url is not None else url,
            faults=faults,
            back_office_token=token,
            tls_ca=tls.ca if tls is not None else None,
        )
    except BaseException:
        listener.close()
        raise
    config = uvicorn.Config(
        app,
        host=bound_host,
        port=bound_port,
        log_config=None,  # leave the process's logging as the embedding program set it up
        log_level="warning",
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=5,
        ssl_certfile=str(tls.cert) if tls is not None else None,
        ssl_keyfile=str(tls.key) if tls is not None else None,
    )
    server = _ThreadServer(config)
    thread = threading.Thread(
        target=server.run,
        kwargs={"sockets": [listener]},
        name=f"refplatform-{bound_port}",
        daemon=True,
    )
    try:
        thread.start()
        started = server.ready.wait(startup_timeout) and server.started
    finally:
        if not server.started:
            server.request_exit()
            thread.join(startup_timeout)
            listener.close()
    if not started:
        raise RuntimeError(f"the platform server did not start on {host}:{port}")
    return RunningPlatform(server, thread, url, db_path, token, ca_path=tls.ca if tls else None)
