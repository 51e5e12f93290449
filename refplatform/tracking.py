"""The bilingual HTML tracking page the receipt's QR code opens. Every value is escaped.

A receipt's QR code opens /track?t=<token> (kiosk/receipt_token.py): the token is verified with
the key of the terminal that signed it before anything of the case is shown; a case the terminal
has not uploaded yet is shown as waiting for it. /track/<submission id> is the older form.
"""

from __future__ import annotations

from collections.abc import Callable
from html import escape

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from kiosk.receipt_token import ReceiptTokenError, unverified_claim, verify_token

from .models import STATUS_TEXTS
from .storage import SubmissionRecord
from .terminals import EnrolledKey

_STYLE = """
body{font-family:"WenQuanYi Zen Hei","Noto Sans CJK SC","PingFang SC","Microsoft YaHei",
sans-serif;font-size:1.375rem;line-height:1.6;margin:0;padding:1rem;color:#111;background:#fff}
main{max-width:40rem;margin:0 auto}
h1{font-size:1.9rem;line-height:1.3;margin:.5rem 0 1rem}
.en{display:block;font-size:.85em;color:#333}
dl{margin:0 0 1.5rem}dt{font-weight:bold;margin-top:.75rem}dd{margin:0;font-size:1.25em}
.receipt{font-family:monospace;font-size:1.4em;letter-spacing:.05em}
.status{display:inline-block;padding:.25rem .75rem;border:3px solid #0b5394;border-radius:.5rem;
color:#0b5394;font-weight:bold}
ol{padding-left:1.4rem}li{margin-bottom:1rem}time{color:#333}
"""


def _two(zh: str, en: str) -> str:
    return f'{escape(zh)}<span class="en" lang="en">{escape(en)}</span>'


def _page(title_zh: str, title_en: str, body: str) -> str:
    return (
        '<!DOCTYPE html>\n<html lang="zh-CN">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<meta name="robots" content="noindex">\n'
        f"<title>{escape(title_zh)} · {escape(title_en)}</title>\n"
        f"<style>{_STYLE}</style>\n</head>\n<body>\n<main>\n"
        f"<h1>{_two(title_zh, title_en)}</h1>\n{body}</main>\n</body>\n</html>\n"
    )


def _moment(at: str) -> str:
    # "2026-11-23T14:32:05+08:00" reads as "2026-11-23 14:32"; anything odd is shown as it is.
    return at[:16].replace("T", " ") if len(at) >= 16 and at[10:11] == "T" else at


def _status(status: str) -> str:
    texts = STATUS_TEXTS.get(status, {"zh_CN": status, "en": status})
    return _two(texts["zh_CN"], texts["en"])


def tracking_page(record: SubmissionRecord, service_name: dict[str, str] | None) -> str:
    name = service_name or {"zh_CN": record.service_id, "en": record.service_id}
    history = "".join(
        f'<li><time datetime="{escape(entry.at)}">{escape(_moment(entry.at))}</time><br>'
        f"<strong>{_status(entry.status)}</strong>"
        f"{_two(entry.note.get('zh_CN', ''), entry.note.get('en', ''))}</li>\n"
        for entry in reversed(record.history)
    )
    body = (
        "<dl>\n"
        f"<dt>{_two('回执编号', 'Receipt number')}</dt>"
        f'<dd class="receipt">{escape(record.receipt_number)}</dd>\n'
        f"<dt>{_two('办理事项', 'Service')}</dt>"
        f"<dd>{_two(name.get('zh_CN', ''), name.get('en', ''))}</dd>\n"
        f"<dt>{_two('当前状态', 'Current status')}</dt>"
        f'<dd><span class="status">{_status(record.status)}</span></dd>\n'
        "</dl>\n"
        f"<h2>{_two('办理记录', 'History')}</h2>\n<ol reversed>\n{history}</ol>\n"
    )
    return _page("办件进度查询", "Application progress", body)


def not_found_page() -> str:
    body = (
        "<p>"
        + _two(
            "没有找到这个办件。请核对回执上的二维码，或到服务大厅咨询。",
            "We could not find this application. Check the code on your receipt or ask at "
            "the service hall.",
        )
        + "</p>\n"
    )
    return _page("未找到办件", "Application not found", body)


def unverified_page() -> str:
    body = (
        "<p>"
        + _two(
            "这个二维码无法验证，可能不是服务大厅终端打印的回执，或已被改动。请到服务大厅咨询。",
            "This code could not be verified: it may not come from a service hall terminal's "
            "receipt, or it has been changed. Please ask at the service hall.",
        )
        + "</p>\n"
    )
    return _page("二维码无法验证", "Code not verified", body)


def waiting_page(receipt_number: str, service_name: dict[str, str], saved_at: str) -> str:
    """A case whose receipt is genuine but whose terminal has not uploaded it yet."""
    body = (
        "<dl>\n"
        f"<dt>{_two('回执编号', 'Receipt number')}</dt>"
        f'<dd class="receipt">{escape(receipt_number)}</dd>\n'
        f"<dt>{_two('办理事项', 'Service')}</dt>"
        f"<dd>{_two(service_name.get('zh_CN', ''), service_name.get('en', ''))}</dd>\n"
        f"<dt>{_two('提交时间', 'Submitted at')}</dt>"
        f'<dd><time datetime="{escape(saved_at)}">{escape(_moment(saved_at))}</time></dd>\n'
        f"<dt>{_two('当前状态', 'Current status')}</dt>"
        f'<dd><span class="status">{_two("等待上传", "Waiting to upload")}</span></dd>\n'
        "</dl>\n<p>"
        + _two(
            "您的申请已保存在服务大厅的终端上，网络恢复后会自动上传，回执编号有效。",
            "Your application is saved on the service hall's terminal and will be uploaded "
            "automatically when the network is back. Your receipt number is valid.",
        )
        + "</p>\n"
    )
    return _page("办件进度查询", "Application progress", body)


def token_page(
    token: str,
    key_of: Callable[[str], EnrolledKey | None],
    record_of: Callable[[str], SubmissionRecord | None],
    service_name_of: Callable[[str], dict[str, str] | None],
) -> tuple[int, str]:
    """The HTTP status and page for /track?t=<token>: the case, once the token verifies with
    the key of the terminal it names (one in service); 404 with a page saying so otherwise."""
    try:
        named = unverified_claim(token).terminal_id
    except ReceiptTokenError:
        return 404, unverified_page()
    enrolled = key_of(named)
    if enrolled is None or not enrolled.active:
        return 404, unverified_page()
    try:
        claim = verify_token(
            token, {named: Ed25519PublicKey.from_public_bytes(enrolled.public_key)}
        )
    except ReceiptTokenError:
        return 404, unverified_page()
    name = service_name_of(claim.service_id) or {"zh_CN": claim.service_id, "en": claim.service_id}
    record = record_of(claim.submission_id)
    if record is None:
        return 200, waiting_page(claim.receipt_number, name, claim.time)
    if record.receipt_number != claim.receipt_number or record.service_id != claim.service_id:
        return 404, unverified_page()
    return 200, tracking_page(record, name)
