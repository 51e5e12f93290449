"""Breaking receipt text into lines, for every printer: between Chinese characters or at Latin
spaces, never starting a line with closing punctuation nor ending one with an opening mark. Each
printer measures in its own unit (PDF points, ESC/POS columns)."""

from __future__ import annotations

from collections.abc import Callable

NO_LINE_START = frozenset("，。、；：？！）】」』》〉”’,.;:?!)]}%·…")
NO_LINE_END = frozenset("（【「『《〈“‘([{")


def tokens(text: str, wide: Callable[[str], bool]) -> list[str]:
    """Words of Latin text stay whole; every wide character is a place the line may break; a
    space of any kind is one " "."""
    found: list[str] = []
    word = ""
    for ch in text:
        if ch.isspace() or wide(ch) or ch in NO_LINE_START or ch in NO_LINE_END:
            if word:
                found.append(word)
                word = ""
            found.append(" " if ch.isspace() else ch)
        else:
            word += ch
    if word:
        found.append(word)
    return found


def wrap_paragraph(
    text: str, wide: Callable[[str], bool], measure: Callable[[str], float], limit: float
) -> list[str]:
    """One paragraph as lines no wider than limit (as measure counts)."""
    lines: list[str] = []
    line: list[str] = []
    width = 0.0

    def flush() -> None:
        nonlocal line, width
        while line and line[-1] == " ":
            line.pop()
        lines.append("".join(line))
        line = []
        width = 0.0

    for piece in tokens(text, wide):
        if piece == " " and not line:
            continue
        w = measure(piece)
        if width + w <= limit:
            line.append(piece)
            width += w
            continue
        if piece == " ":
            flush()
            continue
        if w > limit:  # a word longer than the line (a URL, a long number): break inside it
            for ch in piece:
                cw = measure(ch)
                if line and width + cw > limit:
                    flush()
                line.append(ch)
                width += cw
            continue
        carried: list[str] = []
        if piece in NO_LINE_START and len(line) > 1 and line[-1] != " ":
            carried.append(line.pop())  # take the last character along rather than start with 。
        while len(line) > 1 and line[-1] in NO_LINE_END:
            carried.insert(0, line.pop())
        flush()
        line = [*carried, piece]
        width = measure("".join(line))
    if line or not lines:
        flush()
    return lines
