"""Every colour pair the style sheet puts together reaches WCAG AAA in both palettes: 7:1 for
text on its background, 3:1 for borders, focus rings and scroll handles."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest

from ui.theme import (
    EDGE_PAIRS,
    HIGH_CONTRAST,
    PALETTES,
    TEXT_PAIRS,
    TEXT_STEPS,
    Palette,
    Sizes,
    contrast,
    palette_fields,
    sizes_for,
    style_for,
    stylesheet,
)

HEX = re.compile(r"#[0-9a-fA-F]{6}\b")
RULE = re.compile(r"([^{}]+)\{([^{}]*)\}")


def _sentinel() -> tuple[Palette, dict[str, str]]:
    """A palette whose every field has a colour of its own, to tell in the style sheet which
    field each colour came from."""
    names = palette_fields()
    colours = {name: f"#0000{index + 1:02x}" for index, name in enumerate(names)}
    return replace(Palette(), **colours), {c: n for n, c in colours.items()}


def _rules() -> list[tuple[str, dict[str, str]]]:
    palette, field_of = _sentinel()
    rules = []
    for selector, body in RULE.findall(stylesheet(palette, Sizes())):
        props: dict[str, str] = {}
        for declaration in body.split(";"):
            if ":" not in declaration:
                continue
            name, value = (part.strip() for part in declaration.split(":", 1))
            colours = HEX.findall(value)
            if colours:
                assert len(colours) == 1, (selector, declaration)
                props[name] = field_of[colours[0]]
        rules.append((" ".join(selector.split()), props))
    return rules


def _pairs_in_style_sheet() -> tuple[set[tuple[str, str]], set[tuple[str, str, str]]]:
    """(text pairs, (border, inside, outside) triples) the style sheet puts together."""
    text: set[tuple[str, str]] = set()
    edges: set[tuple[str, str, str]] = set()
    for selector, props in _rules():
        background = props.get("background")
        outside = "header" if selector.startswith("QFrame#header ") else "background"
        for fg_name, bg_name in (
            ("color", "background"),
            ("selection-color", "selection-background-color"),
        ):
            if fg_name in props:
                assert bg_name in props, f"{selector}: a colour without its background"
                text.add((props[fg_name], props[bg_name]))
        for name, field in props.items():
            if name.startswith("border") or name == "gridline-color":
                edges.add((field, background or outside, outside))
    return text, edges


def test_the_palettes_have_distinct_looks() -> None:
    assert Palette() != HIGH_CONTRAST
    assert HIGH_CONTRAST.background == "#000000"


@pytest.mark.parametrize("palette", PALETTES, ids=["normal", "high contrast"])
def test_every_declared_pair_reaches_aaa(palette: Palette) -> None:
    weak = {
        (fg, bg): round(contrast(getattr(palette, fg), getattr(palette, bg)), 2)
        for fg, bg in TEXT_PAIRS
        if contrast(getattr(palette, fg), getattr(palette, bg)) < 7.0
    }
    weak |= {
        (fg, bg): round(contrast(getattr(palette, fg), getattr(palette, bg)), 2)
        for fg, bg in EDGE_PAIRS
        if contrast(getattr(palette, fg), getattr(palette, bg)) < 3.0
    }
    assert weak == {}


def test_the_style_sheet_uses_only_declared_pairs() -> None:
    text, edges = _pairs_in_style_sheet()
    assert len(text) >= 8 and len(edges) >= 8  # the parse found the rules
    assert text - set(TEXT_PAIRS) == set()
    declared = set(TEXT_PAIRS) | set(EDGE_PAIRS)
    # a border shows if it stands out from the widget it edges or from what lies around it
    hidden = {e for e in edges if (e[0], e[1]) not in declared and (e[0], e[2]) not in declared}
    assert hidden == set()


def test_the_style_sheet_has_no_colour_outside_the_palette() -> None:
    palette, field_of = _sentinel()
    assert set(HEX.findall(stylesheet(palette, Sizes()))) <= set(field_of)
    for real in PALETTES:
        assert set(HEX.findall(stylesheet(real, Sizes()))) <= {
            getattr(real, name) for name in palette_fields()
        }


def test_every_text_is_at_least_30_px_and_grows_with_the_steps() -> None:
    assert TEXT_STEPS[0] == 1.0 and len(TEXT_STEPS) >= 3
    sheet = style_for(Palette(), 0)
    rules = re.findall(r"([^{}]+)\{\{?([^}]*)\}", sheet)
    citizen = [body for selector, body in rules if "#dense" not in selector]
    staff = [body for selector, body in rules if "#dense" in selector]
    sizes = [int(px) for body in citizen for px in re.findall(r"font-size: (\d+)px", body)]
    assert sizes and min(sizes) >= 30
    # Staff's dense counter pages (never shown to a citizen alone) keep 20 px at the least.
    dense = [int(px) for body in staff for px in re.findall(r"font-size: (\d+)px", body)]
    assert dense and min(dense) >= 20
    for step, factor in enumerate(TEXT_STEPS):
        grown = sizes_for(step)
        assert grown.body_px == round(30 * factor)
        assert grown.question_px > grown.body_px and grown.title_px > grown.question_px
        assert grown.target_px == Sizes().target_px  # targets need not grow with the type


def test_scroll_bars_are_wide_enough_for_a_finger() -> None:
    sheet = style_for(Palette(), 0)
    width = re.search(r"QScrollBar:vertical \{[^}]*width: (\d+)px", sheet)
    handle = re.search(r"QScrollBar::handle:vertical \{[^}]*min-height: (\d+)px", sheet)
    assert width is not None and int(width.group(1)) >= 40
    assert handle is not None and int(handle.group(1)) >= 80
