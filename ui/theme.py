"""The elder-friendly look: large type, high contrast, large touch targets.

Numbers follow the MIIT 2021 elder-friendly specification and WCAG 2.2 AAA contrast (7:1 for
body text); tests measure them on the real widgets.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Palette:
    background: str = "#ffffff"
    text: str = "#1a1a1a"
    muted: str = "#3d3d3d"
    primary: str = "#0a4a8f"
    primary_text: str = "#ffffff"
    secondary: str = "#e6edf5"
    secondary_text: str = "#0a2f5c"
    error: str = "#a30000"
    error_background: str = "#fdecec"
    success: str = "#0b5d1e"
    notice_background: str = "#fff4d6"
    focus: str = "#d97a00"
    header: str = "#0a2f5c"
    header_text: str = "#ffffff"


@dataclass(frozen=True, slots=True)
class Sizes:
    body_px: int = 28
    help_px: int = 26
    question_px: int = 40
    title_px: int = 44
    button_px: int = 32
    input_px: int = 38
    target_px: int = 88  # minimum height of anything touched; spec asks >= 60
    spacing_px: int = 20


def scaled(sizes: Sizes, factor: float) -> Sizes:
    return Sizes(**{name: round(getattr(sizes, name) * factor) for name in Sizes.__slots__})


def _linear(channel: int) -> float:
    c = channel / 255
    return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4


def luminance(color: str) -> float:
    value = color.lstrip("#")
    r, g, b = (int(value[i : i + 2], 16) for i in (0, 2, 4))
    return 0.2126 * _linear(r) + 0.7152 * _linear(g) + 0.0722 * _linear(b)


def contrast(foreground: str, background: str) -> float:
    """WCAG 2.x contrast ratio."""
    hi, lo = sorted((luminance(foreground), luminance(background)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def stylesheet(p: Palette, s: Sizes) -> str:
    return f"""
QWidget {{
    background: {p.background}; color: {p.text};
    font-size: {s.body_px}px;
}}
QLabel#title {{ font-size: {s.title_px}px; font-weight: bold; }}
QLabel#question {{ font-size: {s.question_px}px; font-weight: bold; }}
QLabel#help, QLabel#muted {{ font-size: {s.help_px}px; color: {p.muted}; }}
QLabel#progress {{ font-size: {s.help_px}px; color: {p.muted}; }}
QLabel#big_number {{ font-size: {s.title_px + 8}px; font-weight: bold; color: {p.primary}; }}
QLabel#field_error {{ font-size: {s.body_px}px; color: {p.error}; font-weight: bold; }}
QFrame#error_summary {{
    background: {p.error_background}; border: 3px solid {p.error}; border-radius: 8px;
}}
QFrame#error_summary QLabel {{ background: {p.error_background}; color: {p.error}; }}
QFrame#notice {{
    background: {p.notice_background}; border: 2px solid #8a5a00; border-radius: 8px;
}}
QFrame#notice QLabel {{ background: {p.notice_background}; color: {p.text}; }}
QFrame#header {{ background: {p.header}; }}
QFrame#header QLabel {{ background: {p.header}; color: {p.header_text}; font-size: {s.help_px}px; }}
QFrame#header QPushButton {{
    min-height: {max(60, s.target_px - 20)}px; font-size: {s.help_px}px;
    background: {p.secondary}; color: {p.secondary_text};
}}
QPushButton {{
    min-height: {s.target_px}px; min-width: {s.target_px}px; padding: 4px 28px;
    font-size: {s.button_px}px; border-radius: 10px;
    background: {p.secondary}; color: {p.secondary_text}; border: 2px solid {p.secondary_text};
}}
QPushButton#key {{ min-height: {max(64, s.target_px - 20)}px; }}
QPushButton#primary {{ background: {p.primary}; color: {p.primary_text}; border: none; }}
QPushButton#service, QPushButton#choice {{ text-align: left; padding: 12px 28px; }}
QPushButton#service QLabel {{
    background: transparent; color: {p.secondary_text}; font-size: {s.button_px}px;
}}
QPushButton#choice:checked {{ background: {p.primary}; color: {p.primary_text}; }}
QPushButton:focus {{ border: 5px solid {p.focus}; }}
QPushButton:disabled {{ color: {p.muted}; border-color: {p.muted}; }}
QLineEdit {{
    min-height: {s.target_px}px; font-size: {s.input_px}px; padding: 0 16px;
    border: 3px solid {p.muted}; border-radius: 8px;
}}
QLineEdit:focus {{ border: 4px solid {p.focus}; }}
QLineEdit[invalid="true"] {{ border: 4px solid {p.error}; }}
QScrollArea {{ border: none; }}
QLabel#photo {{
    border: 2px solid {p.muted}; background: {p.secondary}; color: {p.secondary_text};
    font-size: {s.help_px}px; padding: 8px;
}}
QHeaderView::section {{
    font-size: {s.help_px}px; padding: 4px 8px;
    background: {p.secondary}; color: {p.secondary_text};
}}
"""
