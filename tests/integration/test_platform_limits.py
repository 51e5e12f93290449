"""The platform as its own process on 127.0.0.1: bodies past a route's cap are refused early with
413, and what they cost the platform in memory is bounded by the cap, not by what was sent."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import re
import select
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import pytest
import requests

from kiosk.terminal_auth import TerminalIdentity, sign_headers
from refplatform.app import API_PREFIX
from refplatform.backoffice import ENVIRONMENT_VARIABLE, new_token
from refplatform.bodies import (
    BATCH_BODY_BYTES,
    HELP_BODY_BYTES,
    MIB,
    RATING_BODY_BYTES,
    STATUS_BODY_BYTES,
    SUBMISSION_BODY_BYTES,
)
from refplatform.models import MAX_ATTACHMENT_BYTES, MAX_ATTACHMENTS_BYTES
from tests.fixtures.platform import demo_submission, enrol_at

REPO = Path(__file__).resolve().parents[2]
TIMEOUT = 60.0
HUGE = 64 * MIB
# What refusing a body may leave behind in the platform, and (when its size was declared) what
# it may cost at its peak: far less than the body, so the body was never read.
BOUND = 16 * MIB
_PIECE = b"A" * MIB


@dataclass
class Served:
    """A platform running as `python -m refplatform`, with what it has logged so far."""

    process: subprocess.Popen[str]
    base_url: str
    host: str
    port: int
    token: str
    log: list[str] = field(default_factory=list)

    @property
    def ps(self) -> psutil.Process:
        return psutil.Process(self.process.pid)

    def rss(self) -> int:
        return int(self.ps.memory_info().rss)

    def reset_peak(self) -> None:
        """Start the peak resident size afresh (Linux: 5 to clear_refs resets VmHWM)."""
        Path(f"/proc/{self.process.pid}/clear_refs").write_text("5")

    def peak(self) -> int:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
        raise AssertionError("no VmHWM")


def _read_log(process: subprocess.Popen[str], log: list[str], started: threading.Event) -> None:
    assert process.stderr is not None
    for line in process.stderr:  # drained to the end, so the server never blocks on its log
        log.append(line)
        if "Uvicorn running on" in line:
            started.set()
    started.set()  # the process ended: the waiter looks at what was logged


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    db = tmp_path_factory.mktemp("limits") / "platform.sqlite3"
    token = new_token()
    command = [sys.executable, "-m", "refplatform", "--host", "127.0.0.1", "--port", "0"]
    process = subprocess.Popen(
        [*command, "--db", str(db)],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1", ENVIRONMENT_VARIABLE: token},
    )
    log: list[str] = []
    started = threading.Event()
    reader = threading.Thread(target=_read_log, args=(process, log, started), daemon=True)
    reader.start()
    try:
        assert started.wait(TIMEOUT), "the platform did not start"
        found = re.search(r"Uvicorn running on (http://(\S+):(\d+))", "".join(log))
        assert found is not None, "".join(log)
        yield Served(process, found.group(1), found.group(2), int(found.group(3)), token, log)
    finally:
        process.terminate()
        process.wait(timeout=30)
        reader.join(timeout=30)
        if process.stderr is not None:
            process.stderr.close()


@pytest.fixture(scope="module")
def identity(served: Served, tmp_path_factory: pytest.TempPathFactory) -> TerminalIdentity:
    """Terminal K01 (the demo bodies' terminal_id), enrolled with the served platform."""
    return enrol_at(served.base_url, served.token, tmp_path_factory.mktemp("terminal"))


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes
    sent: int  # body bytes the client got onto the wire before it stopped


def _parse(raw: bytes, sent: int) -> Answer:
    head, _, rest = raw.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", len(rest)))
    return Answer(int(status_line.split()[1]), headers, rest[:length], sent)


def post_raw(
    served: Served,
    path: str,
    prefix: bytes,
    total: int,
    *,
    declare_length: bool,
    headers: dict[str, str] | None = None,
) -> Answer:
    """POST a body of `total` bytes (prefix, then filler) over a raw socket, with a Content-Length
    or chunked; stop sending as soon as an answer arrives or the platform closes the connection.
    """
    lines = [f"POST {API_PREFIX}{path} HTTP/1.1", f"Host: {served.host}:{served.port}"]
    lines += ["Content-Type: application/json"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    lines += [f"Content-Length: {total}" if declare_length else "Transfer-Encoding: chunked"]
    sent = 0
    received = b""
    with socket.create_connection((served.host, served.port), timeout=TIMEOUT) as conn:
        conn.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("ascii"))
        try:
            while sent < total:
                readable, _, _ = select.select([conn], [], [], 0)
                if readable:
                    break  # answered (or closed) before the body was all sent
                piece = (prefix if sent == 0 else _PIECE)[: total - sent]
                framed = piece if declare_length else b"%x\r\n%s\r\n" % (len(piece), piece)
                conn.sendall(framed)
                sent += len(piece)
            else:
                if not declare_length:
                    conn.sendall(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the platform stopped reading and closed; its answer is still to be read
        if sent < total:
            # Stopped part way: the platform has answered already. A client that sent its
            # whole body keeps its side open, as HTTP clients do (a half-close would read as
            # the client going away before the answer).
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_WR)
        while not _complete(received):
            try:
                chunk = conn.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            received += chunk
    assert received, "no answer at all"
    return _parse(received, sent)


def _complete(raw: bytes) -> bool:
    head, _, rest = raw.partition(b"\r\n\r\n")
    found = re.search(rb"(?i)content-length:\s*(\d+)", head)
    return found is not None and len(rest) >= int(found.group(1))


def _submission_prefix(body: dict[str, Any]) -> bytes:
    """The start of a submission whose one file's data never ends: only its size is wrong."""
    text = json.dumps(body)[:-1] + ', "attachments": [{"name": "a.png", "data_base64": "'
    return text.encode("utf-8")


def _warm_up(served: Served, identity: TerminalIdentity) -> None:
    with requests.Session() as http:
        http.auth = identity.auth()
        for _ in range(3):
            body = demo_submission()
            answer = http.post(
                f"{served.base_url}{API_PREFIX}/submissions",
                json=body,
                headers={"Idempotency-Key": body["submission_id"]},
                timeout=TIMEOUT,
            )
            assert answer.status_code == 201
        for declare_length in (True, False):  # the refusals' code and buffers in place too
            body = demo_submission()
            post_raw(
                served,
                "/submissions",
                _submission_prefix(body),
                SUBMISSION_BODY_BYTES + 1,
                declare_length=declare_length,
                headers={"Idempotency-Key": body["submission_id"]},
            )


def _signature(identity: TerminalIdentity, path: str) -> dict[str, str]:
    """Signature headers of an enrolled terminal, as they stand before the body is read: the
    platform refuses an oversize body on its length before it could check the digest."""
    return sign_headers(
        identity.key, identity.terminal_id, "POST", API_PREFIX + path, b"", now=time.time()
    )


def _assert_too_large(answer: Answer, cap: int) -> None:
    assert answer.status == 413, answer
    error = json.loads(answer.body)
    assert error["error"] == "body_too_large"
    assert str(cap) in error["detail"]
    assert answer.headers.get("connection") == "close"


@pytest.mark.parametrize("declare_length", [True, False], ids=["content-length", "chunked"])
def test_a_huge_submission_is_refused_with_memory_bounded_by_the_cap(
    served: Served, identity: TerminalIdentity, declare_length: bool
) -> None:
    _warm_up(served, identity)
    before = served.rss()
    served.reset_peak()
    peak_before = served.peak()
    body = demo_submission()
    answer = post_raw(
        served,
        "/submissions",
        _submission_prefix(body),
        HUGE,
        declare_length=declare_length,
        headers={"Idempotency-Key": body["submission_id"], **_signature(identity, "/submissions")},
    )
    _assert_too_large(answer, SUBMISSION_BODY_BYTES)
    assert answer.sent < HUGE  # refused before the client was done
    after = served.rss()
    peak = served.peak()
    figures = {
        "declared": declare_length,
        "rss_before_mib": round(before / MIB, 1),
        "rss_after_rise_mib": round((after - before) / MIB, 1),
        "peak_rise_mib": round((peak - peak_before) / MIB, 1),
        "sent_mib": round(answer.sent / MIB, 1),
    }
    print(json.dumps(figures))
    assert after - before < BOUND, figures
    if declare_length:
        # Refused on its Content-Length: not a byte of the body was read.
        assert peak - peak_before < BOUND, figures
    else:
        # Read up to the cap, then refused: the cap bounds the cost, not the 64 MiB sent.
        assert peak - peak_before < SUBMISSION_BODY_BYTES + BOUND, figures
    # The platform still serves.
    health = requests.get(f"{served.base_url}{API_PREFIX}/health", timeout=TIMEOUT)
    assert health.status_code == 200


def _files(total: int) -> list[dict[str, Any]]:
    """Files adding up to `total` bytes, each at most the per-file limit."""
    files = []
    left = total
    seed = 0
    while left:
        size = min(left, MAX_ATTACHMENT_BYTES)
        data = hashlib.shake_256(b"file %d" % seed).digest(size)
        files.append(
            {
                "name": f"page-{seed}.png",
                "content_type": "image/png",
                "size": size,
                "sha256": hashlib.sha256(data).hexdigest(),
                "data_base64": base64.b64encode(data).decode("ascii"),
            }
        )
        left -= size
        seed += 1
    return files


def _padded(body: dict[str, Any], length: int) -> bytes:
    """body as JSON, padded with white space to exactly `length` bytes."""
    text = json.dumps(body).encode("utf-8")
    assert len(text) <= length
    return text[:-1] + b" " * (length - len(text)) + b"}"


def test_a_submission_at_the_cap_is_taken_and_one_byte_more_is_not(
    served: Served, identity: TerminalIdentity
) -> None:
    body = demo_submission()
    body["attachments"] = _files(MAX_ATTACHMENTS_BYTES)  # the most files a submission may have
    at_cap = _padded(body, SUBMISSION_BODY_BYTES)
    key = {"Idempotency-Key": body["submission_id"]}
    url = f"{served.base_url}{API_PREFIX}/submissions"
    over = requests.post(
        url,
        data=at_cap + b" ",
        headers={**key, "Content-Type": "application/json"},
        auth=identity.auth(),
        timeout=TIMEOUT,
    )
    _assert_too_large(
        Answer(over.status_code, dict(over.headers), over.content, 0), SUBMISSION_BODY_BYTES
    )
    before = served.rss()
    served.reset_peak()
    peak_before = served.peak()
    taken = requests.post(
        url,
        data=at_cap,
        headers={**key, "Content-Type": "application/json"},
        auth=identity.auth(),
        timeout=TIMEOUT,
    )
    assert taken.status_code == 201, taken.text
    assert taken.json()["submission_id"] == body["submission_id"]
    peak_rise = served.peak() - peak_before
    figures = {
        "accepted_body_mib": round(len(at_cap) / MIB, 1),
        "accepted_peak_rise_mib": round(peak_rise / MIB, 1),
        "accepted_rss_rise_mib": round((served.rss() - before) / MIB, 1),
    }
    print(json.dumps(figures))
    # The body, its text, the files decoded and SQLite's copy of them while storing: not the
    # many whole copies taking a body whole, decoding and hashing it made (over 6 times).
    assert peak_rise < 3 * SUBMISSION_BODY_BYTES, figures
    # Sent in chunks, without a Content-Length, the same body is a replay of the first. (A
    # streamed body is signed here over the whole of it: requests hands auth no bytes to sign.)
    signed = sign_headers(
        identity.key,
        identity.terminal_id,
        "POST",
        f"{API_PREFIX}/submissions",
        at_cap,
        now=time.time(),
    )
    replay = requests.post(
        url,
        data=iter([at_cap[i : i + MIB] for i in range(0, len(at_cap), MIB)]),
        headers={**key, **signed, "Content-Type": "application/json"},
        timeout=TIMEOUT,
    )
    assert replay.status_code == 201
    assert replay.json() == taken.json()


@pytest.mark.parametrize("declare_length", [True, False], ids=["content-length", "chunked"])
def test_an_unsigned_huge_body_is_refused_before_it_is_read(
    served: Served, declare_length: bool
) -> None:
    served.reset_peak()
    peak_before = served.peak()
    body = demo_submission()
    answer = post_raw(
        served,
        "/submissions",
        _submission_prefix(body),
        HUGE,
        declare_length=declare_length,
        headers={"Idempotency-Key": body["submission_id"]},
    )
    # A declared length over the cap is refused first (it costs nothing to see); without one, the
    # missing signature is, before a byte of the body is read.
    expected = (413, "body_too_large") if declare_length else (401, "credentials_missing")
    assert (answer.status, json.loads(answer.body)["error"]) == expected
    assert answer.sent < HUGE
    assert served.peak() - peak_before < BOUND


@pytest.mark.parametrize("declare_length", [True, False], ids=["content-length", "chunked"])
def test_oversize_batch_rating_help_and_status_bodies_are_refused(
    served: Served, identity: TerminalIdentity, declare_length: bool
) -> None:
    sid = demo_submission()["submission_id"]
    batch = post_raw(
        served,
        "/submissions/batch",
        b'{"submissions": [' + _submission_prefix(demo_submission()),
        BATCH_BODY_BYTES + 1,
        declare_length=declare_length,
        headers=_signature(identity, "/submissions/batch"),
    )
    _assert_too_large(batch, BATCH_BODY_BYTES)
    rating = post_raw(
        served,
        f"/submissions/{sid}/rating",
        b'{"level": 5, "comment": "',
        RATING_BODY_BYTES + 1,
        declare_length=declare_length,
        headers=_signature(identity, f"/submissions/{sid}/rating"),
    )
    _assert_too_large(rating, RATING_BODY_BYTES)
    help_request = post_raw(
        served,
        "/help-requests",
        b'{"help_request_id": "',
        HELP_BODY_BYTES + 1,
        declare_length=declare_length,
        headers={"Idempotency-Key": sid, **_signature(identity, "/help-requests")},
    )
    _assert_too_large(help_request, HELP_BODY_BYTES)
    status = post_raw(
        served,
        f"/submissions/{sid}/status",
        b'{"status": "approved", "note": {"en": "',
        STATUS_BODY_BYTES + 1,
        declare_length=declare_length,
        headers={"Authorization": f"Bearer {served.token}"},
    )
    _assert_too_large(status, STATUS_BODY_BYTES)
