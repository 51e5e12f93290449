"""The elder-friendly look: large type, high contrast, large touch targets.

Numbers follow the MIIT 2021 elder-friendly specification and WCAG 2.2 AAA contrast (7:1 for
text, 3:1 for borders and focus rings); tests measure them on the real widgets. A citizen can
make the text larger in steps (TEXT_STEPS) and switch to a high-contrast palette; `style_for`
builds the window's style sheet for either choice.
"""

from __future__ import annotations

from dataclasses import dataclass, fields


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
    notice_border: str = "#8a5a00"
    focus: str = "#b35c00"
    focus_on_primary: str = "#ffd400"  # the ring on a dark primary button
    focus_on_header: str = "#ffd400"
    header: str = "#0a2f5c"
    header_text: str = "#ffffff"


# Black ground, white and yellow type, a yellow focus ring; the primary action is a yellow
# button with black type.
HIGH_CONTRAST = Palette(
    background="#000000",
    text="#ffffff",
    muted="#c0c0c0",
    primary="#ffff00",
    primary_text="#000000",
    secondary="#000000",
    secondary_text="#ffffff",
    error="#ff9999",
    error_background="#000000",
    success="#66ff66",
    notice_background="#000000",
    notice_border="#ffff00",
    focus="#ffff00",
    focus_on_primary="#000000",
    focus_on_header="#ffff00",
    header="#000000",
    header_text="#ffff00",
)

PALETTES: tuple[Palette, ...] = (Palette(), HIGH_CONTRAST)

# Every (foreground, background) pair of palette fields the style sheet puts together.
# Text must reach 7:1 on its background; borders, focus rings and scroll handles 3:1.
TEXT_PAIRS: tuple[tuple[str, str], ...] = (
    ("text", "background"),
    ("muted", "background"),
    ("primary", "background"),  # the big number on a receipt
    ("error", "background"),
    ("success", "background"),
    ("error", "error_background"),
    ("text", "notice_background"),
    ("header_text", "header"),
    ("secondary_text", "secondary"),
    ("primary_text", "primary"),
    ("muted", "secondary"),  # a button that cannot be pressed now
)
EDGE_PAIRS: tuple[tuple[str, str], ...] = (
    ("secondary_text", "background"),  # a button's outline on the page
    ("header_text", "header"),  # a header button's outline
    ("secondary_text", "secondary"),  # a scroll handle on its track
    ("muted", "background"),  # a text field's outline, a table's grid
    ("muted", "secondary"),  # a disabled button's outline
    ("error", "background"),
    ("error", "error_background"),
    ("notice_border", "background"),
    ("notice_border", "notice_background"),
    ("focus", "background"),
    ("focus", "secondary"),
    ("focus_on_header", "header"),
    ("focus_on_primary", "primary"),
)


@dataclass(frozen=True, slots=True)
class Sizes:
    body_px: int = 30
    help_px: int = 30  # help, muted and progress lines, the header: a citizen reads them too
    question_px: int = 42
    title_px: int = 46
    button_px: int = 32
    input_px: int = 38
    target_px: int = 88  # minimum height of anything touched; spec asks >= 60
    spacing_px: int = 20


# Text size steps a citizen can choose: normal, larger, largest.
TEXT_STEPS: tuple[float, ...] = (1.0, 1.2, 1.4)
_TEXT_FIELDS = ("body_px", "help_px", "question_px", "title_px", "button_px", "input_px")


def scaled(sizes: Sizes, factor: float) -> Sizes:
    return Sizes(**{name: round(getattr(sizes, name) * factor) for name in Sizes.__slots__})


def sizes_for(step: int, base_scale: float = 1.0) -> Sizes:
    """The sizes at a text step: type grows by the step's factor; targets and spacing keep the
    terminal's own scale (a larger type makes its buttons taller by itself)."""
    base = scaled(Sizes(), base_scale)
    factor = TEXT_STEPS[step]
    grown = {name: round(getattr(base, name) * factor) for name in _TEXT_FIELDS}
    return Sizes(**{name: grown.get(name, getattr(base, name)) for name in Sizes.__slots__})


def palette_for(high_contrast: bool) -> Palette:
    return HIGH_CONTRAST if high_contrast else Palette()


def style_for(palette: Palette, step: int, base_scale: float = 1.0) -> str:
    """The window's style sheet for a palette and a text step (an index into TEXT_STEPS)."""
    return stylesheet(palette, sizes_for(step, base_scale))


def palette_fields() -> tuple[str, ...]:
    return tuple(f.name for f in fields(Palette))


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
    # Every rule that sets a colour names its background too, so each pair is in TEXT_PAIRS or
    # EDGE_PAIRS and tests/unit/test_theme_contrast.py can check it. Rules for a widget's states
    # (focus, disabled, checked) come after its plain rules. A focus ring is thicker than the
    # plain border and the padding gives way by as much, so the text keeps its room: a button
    # is sized before it takes the focus.
    header_box = 64  # a header control's least height and width, borders and padding included
    dense_px = round(s.body_px * 0.75)  # staff's own pages at a counter: more on one screen
    return f"""
QWidget {{
    background: {p.background}; color: {p.text};
    font-size: {s.body_px}px;
}}
QLabel#title {{ font-size: {s.title_px}px; font-weight: bold; }}
QLabel#question {{ font-size: {s.question_px}px; font-weight: bold; }}
QLabel#help, QLabel#muted, QLabel#progress {{
    font-size: {s.help_px}px; color: {p.muted}; background: {p.background};
}}
QLabel#big_number {{
    font-size: {s.title_px + 8}px; font-weight: bold; color: {p.primary};
    background: {p.background};
}}
QLabel#field_error {{
    font-size: {s.body_px}px; font-weight: bold; color: {p.error}; background: {p.background};
}}
QFrame#error_summary {{
    background: {p.error_background}; border: 3px solid {p.error}; border-radius: 8px;
}}
QFrame#error_summary QLabel {{ background: {p.error_background}; color: {p.error}; }}
QFrame#notice {{
    background: {p.notice_background}; border: 3px solid {p.notice_border};
    border-radius: 8px;
}}
QFrame#notice QLabel {{ background: {p.notice_background}; color: {p.text}; }}
QFrame#header {{ background: {p.header}; border-bottom: 3px solid {p.header_text}; }}
QFrame#header QLabel {{
    background: {p.header}; color: {p.header_text}; font-size: {s.help_px}px;
}}
QPushButton {{
    min-height: {s.target_px}px; min-width: {s.target_px}px; padding: 4px 28px;
    font-size: {s.button_px}px; border-radius: 10px;
    background: {p.secondary}; color: {p.secondary_text}; border: 2px solid {p.secondary_text};
}}
QFrame#header QPushButton {{
    min-height: {header_box - 12}px; min-width: {header_box - 36}px; padding: 4px 16px;
    font-size: {s.help_px}px;
    background: {p.secondary}; color: {p.secondary_text}; border: 2px solid {p.header_text};
}}
QPushButton#key {{ min-height: {max(64, s.target_px - 20)}px; }}
QWidget#text_inputs > QPushButton {{ min-height: {max(64, s.target_px - 24)}px; }}
QPushButton#primary {{
    background: {p.primary}; color: {p.primary_text}; border: 2px solid {p.primary};
}}
QPushButton#service, QPushButton#choice {{ text-align: left; padding: 12px 28px; }}
QPushButton#service QLabel, QPushButton#choice QLabel {{
    background: {p.secondary}; color: {p.secondary_text}; font-size: {s.button_px}px;
}}
QPushButton#choice:checked {{ background: {p.primary}; color: {p.primary_text}; }}
QPushButton#choice:checked QLabel {{ background: {p.primary}; color: {p.primary_text}; }}
QPushButton:focus {{ border: 5px solid {p.focus}; padding: 1px 25px; background: {p.secondary}; }}
QFrame#header QPushButton:focus {{
    border: 5px solid {p.focus_on_header}; padding: 1px 13px; background: {p.secondary};
}}
QPushButton#service:focus, QPushButton#choice:focus {{ padding: 9px 25px; }}
QPushButton#primary:focus {{
    border: 5px solid {p.focus_on_primary}; padding: 1px 25px; background: {p.primary};
}}
QPushButton#choice:checked:focus {{
    border: 5px solid {p.focus_on_primary}; padding: 9px 25px; background: {p.primary};
}}
QPushButton:disabled, QPushButton#primary:disabled {{
    color: {p.muted}; border: 2px solid {p.muted}; background: {p.secondary};
}}
QLineEdit {{
    min-height: {s.target_px}px; font-size: {s.input_px}px; padding: 0 16px;
    background: {p.background}; color: {p.text};
    border: 3px solid {p.muted}; border-radius: 8px;
}}
QLineEdit:focus {{ border: 4px solid {p.focus}; background: {p.background}; }}
QLineEdit[invalid="true"] {{ border: 4px solid {p.error}; background: {p.background}; }}
QComboBox {{
    min-height: {s.target_px}px; font-size: {s.input_px}px; padding: 0 16px;
    background: {p.background}; color: {p.text};
    border: 3px solid {p.muted}; border-radius: 8px;
}}
QComboBox:focus {{ border: 4px solid {p.focus}; padding: 0 15px; background: {p.background}; }}
QComboBox[invalid="true"] {{
    border: 4px solid {p.error}; padding: 0 15px; background: {p.background};
}}
QComboBox QAbstractItemView {{
    background: {p.background}; color: {p.text};
    selection-background-color: {p.primary}; selection-color: {p.primary_text};
}}
QScrollArea {{ border: none; }}
QWidget#dense QLabel {{ font-size: {dense_px}px; }}
QWidget#dense QLabel#title {{ font-size: {dense_px + 8}px; font-weight: bold; }}
QWidget#dense QLabel#help {{
    font-size: {dense_px}px; color: {p.muted}; background: {p.background};
}}
QWidget#dense QLabel#field_error {{
    font-size: {dense_px}px; font-weight: bold; color: {p.error}; background: {p.background};
}}
QWidget#dense QFrame#error_summary QLabel, QWidget#dense QFrame#error_summary QLabel#field_error {{
    color: {p.error}; background: {p.error_background};
}}
QWidget#dense QLineEdit, QWidget#dense QComboBox {{
    min-height: 44px; font-size: {dense_px}px; padding: 0 8px;
    background: {p.background}; color: {p.text};
    border: 2px solid {p.muted}; border-radius: 6px;
}}
QWidget#dense QLineEdit:focus, QWidget#dense QComboBox:focus {{
    border: 4px solid {p.focus}; padding: 0 6px; background: {p.background};
}}
QWidget#dense QLineEdit[invalid="true"], QWidget#dense QComboBox[invalid="true"] {{
    border: 4px solid {p.error}; padding: 0 6px; background: {p.background};
}}
QWidget#dense QComboBox QAbstractItemView {{
    font-size: {dense_px}px; background: {p.background}; color: {p.text};
    selection-background-color: {p.primary}; selection-color: {p.primary_text};
}}
QWidget#dense QPushButton {{ min-height: 56px; font-size: {dense_px}px; padding: 4px 20px; }}
QWidget#dense QPushButton:focus {{ padding: 1px 17px; }}
QLabel#photo {{
    border: 2px solid {p.muted}; background: {p.secondary}; color: {p.secondary_text};
    font-size: {s.help_px}px; padding: 8px;
}}
QTableView {{
    background: {p.background}; color: {p.text}; gridline-color: {p.muted};
    selection-background-color: {p.primary}; selection-color: {p.primary_text};
}}
QHeaderView::section {{
    font-size: {s.help_px}px; padding: 4px 8px;
    background: {p.secondary}; color: {p.secondary_text};
}}
QProgressBar {{
    background: {p.background}; color: {p.text}; border: 2px solid {p.muted};
    border-radius: 6px; text-align: center;
}}
QProgressBar::chunk {{ background: {p.primary}; }}
QScrollBar:vertical {{ width: 44px; margin: 0; background: {p.secondary}; border: none; }}
QScrollBar:horizontal {{ height: 44px; margin: 0; background: {p.secondary}; border: none; }}
QScrollBar::handle:vertical {{
    min-height: 96px; border-radius: 10px; margin: 4px;
    background: {p.secondary_text};
}}
QScrollBar::handle:horizontal {{
    min-width: 96px; border-radius: 10px; margin: 4px;
    background: {p.secondary_text};
}}
QScrollBar::add-line, QScrollBar::sub-line {{ width: 0; height: 0; border: none; }}
QScrollBar::add-page, QScrollBar::sub-page {{ background: {p.secondary}; }}
"""
