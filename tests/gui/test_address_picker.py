"""The address picker, touched as a person would: buttons, letters, pages, the card's address."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from PySide6.QtCore import QRect, Qt
from PySide6.QtWidgets import (
    QAbstractScrollArea,
    QLineEdit,
    QPushButton,
    QScrollBar,
    QVBoxLayout,
    QWidget,
)
from pytestqt.qtbot import QtBot

from kiosk.i18n import set_language
from ui.address_picker import AddressPicker, ValueButton
from ui.theme import palette_for, style_for

# The room the question page gives the picker: 1080 wide portrait, 1280x1024.
ROOMS = ((1000, 560), (1180, 520))


class Host:
    def __init__(self, qtbot: QtBot, width: int, height: int) -> None:
        self.window = QWidget()
        qtbot.addWidget(self.window)
        self.window.setStyleSheet(style_for(palette_for(False), 0))
        layout = QVBoxLayout(self.window)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        self.line = QLineEdit(self.window)
        self.picker = AddressPicker(self.window)
        self.picker.setFixedSize(width, height)
        self.picker.set_target(self.line)
        layout.addWidget(self.line)
        layout.addWidget(self.picker)
        self.window.show()
        qtbot.waitExposed(self.window)
        self.qtbot = qtbot

    def places(self) -> dict[str, ValueButton]:
        """The place buttons a person can see now, by code."""
        return {b.value: b for b in self.picker.grid.visible_buttons() if b.isVisible()}

    def place_names(self) -> list[str]:
        return [b.accessibleName() for b in self.picker.grid.visible_buttons()]

    def touch(self, widget: QWidget) -> None:
        assert widget.isVisible() and widget.isEnabled(), widget.accessibleName()
        self.qtbot.mouseClick(widget, Qt.MouseButton.LeftButton)

    def touch_place(self, code: str) -> None:
        self.touch(self.places()[code])

    def buttons(self) -> list[QPushButton]:
        return [b for b in self.picker.findChildren(QPushButton) if b.isVisible()]


@pytest.fixture
def host(qtbot: QtBot) -> Iterator[Host]:
    set_language("zh_CN")
    yield Host(qtbot, *ROOMS[0])


def test_guangdong_shenzhen_futian_goes_into_the_field(host: Host, qtbot: QtBot) -> None:
    assert host.picker.spoken_text() == "请选择省份"
    assert "广东" in [b.text() for b in host.places().values()]
    host.touch_place("440000")
    assert host.picker.spoken_text() == "请选择城市"
    assert "广东省" in host.picker.crumb.text()
    host.touch_place("440300")
    assert host.picker.spoken_text() == "请选择区县"
    with qtbot.waitSignal(host.picker.picked, timeout=1000) as signal:
        host.touch_place("440304")
    assert signal.args == ["广东省深圳市福田区"]
    assert host.line.text() == "广东省深圳市福田区"
    assert host.line.cursorPosition() == len(host.line.text())
    assert host.picker.is_done()
    assert host.picker.spoken_text().startswith("广东省深圳市福田区已填入答案")


def test_a_street_already_typed_stays_after_the_new_region(host: Host) -> None:
    host.line.setText("北京市东城区景山前街4号")
    host.touch_place("440000")
    host.touch_place("440300")
    host.touch_place("440304")
    assert host.line.text() == "广东省深圳市福田区景山前街4号"
    # The street is selected: writing or typing replaces it, Next keeps it.
    assert host.line.selectedText() == "景山前街4号"
    assert host.picker.spoken_text().startswith("广东省深圳市福田区已填入答案。后面的街道已选中")
    host.line.insert("福华路88号")  # what the pad or the keys put in
    assert host.line.text() == "广东省深圳市福田区福华路88号"


def test_municipalities_have_no_city_step(host: Host) -> None:
    host.touch_place("110000")
    assert host.picker.spoken_text() == "请选择区县"
    assert "东城区" in host.place_names()
    assert "市辖区" not in host.place_names()
    host.touch_place("110101")
    assert host.line.text() == "北京市东城区"


def test_back_one_step_walks_back_up(host: Host) -> None:
    host.touch_place("440000")
    host.touch_place("440300")
    host.touch_place("440304")
    host.touch(host.picker.back_button)
    assert not host.picker.is_done() and host.picker.chosen() == ("440000", "440300")
    assert "福田区" in host.place_names()
    host.touch(host.picker.back_button)
    host.touch(host.picker.back_button)
    assert host.picker.chosen() == ()
    assert not host.picker.back_button.isEnabled()


def test_the_card_address_chooses_and_the_person_confirms_or_changes(
    host: Host, qtbot: QtBot
) -> None:
    host.picker.preselect_from("广东省深圳市福田区福华路88号12栋803")
    assert host.picker.is_done()
    assert host.picker.chosen_label.text() == "广东省深圳市福田区"
    assert "身份证" in host.picker.spoken_text()
    assert host.line.text() == ""  # nothing is written until the person says so
    with qtbot.waitSignal(host.picker.picked, timeout=1000):
        host.touch(host.picker.use_button)
    assert host.line.text() == "广东省深圳市福田区"
    host.touch(host.picker.change_button)
    assert host.picker.chosen() == () and "广东" in [b.text() for b in host.places().values()]


def test_a_card_address_naming_only_a_city_opens_its_counties(host: Host) -> None:
    host.picker.preselect_from("广东省深圳市")
    assert not host.picker.is_done()
    assert "福田区" in host.place_names()
    host.picker.preselect_from("not an address")
    assert host.picker.chosen() == ()
    host.picker.preselect_from(None)
    assert host.picker.spoken_text() == "请选择省份"


def test_letters_narrow_the_list(host: Host) -> None:
    host.touch(host.picker.letters_button)
    keys = host.picker.letter_keys.keys
    assert not keys["i"].isEnabled() and not keys["u"].isEnabled()  # no name starts so
    assert keys["q"].isEnabled()  # 青海
    host.touch(keys["g"])
    assert set(host.place_names()) == {"广东省", "广西壮族自治区", "贵州省", "甘肃省"}
    assert keys["d"].isEnabled() and not keys["a"].isEnabled()
    host.touch(keys["d"])
    assert host.place_names() == ["广东省"]
    assert "GD" in host.picker.filter_label.text()
    host.touch(keys["delete"])
    assert len(host.place_names()) == 4
    host.touch(keys["clear"])
    assert len(host.picker.grid.buttons()) == 34
    host.touch(keys["s"])
    host.touch(keys["x"])
    assert set(host.place_names()) == {"山西省", "陕西省"}
    host.touch_place("610000")
    assert host.picker.letter_keys.isHidden() and host.picker.filter_label.text() == ""


def test_long_lists_are_paged_never_scrolled(qtbot: QtBot) -> None:
    set_language("zh_CN")
    host = Host(qtbot, 1000, 360)
    assert host.picker.grid.page_count() > 1  # even the provinces need two pages here
    host.picker.preselect_from("新疆维吾尔自治区")  # long names on two lines
    grid = host.picker.grid
    assert grid.page_count() > 1
    assert host.picker.more_button.isVisible() and not host.picker.previous_button.isEnabled()
    assert host.picker.page_label.text() == f"第 1 页，共 {grid.page_count()} 页"
    first = host.place_names()
    host.touch(host.picker.more_button)
    assert grid.page() == 1 and host.place_names() and set(first).isdisjoint(host.place_names())
    assert host.picker.page_label.text().startswith("第 2 页")
    host.touch(host.picker.previous_button)
    assert host.place_names() == first
    seen: set[str] = set()
    for _page in range(grid.page_count()):
        seen.update(host.place_names())
        if host.picker.more_button.isEnabled():
            host.touch(host.picker.more_button)
    assert seen == {b.accessibleName() for b in grid.buttons()}
    assert not host.picker.findChildren(QScrollBar)
    assert not host.picker.findChildren(QAbstractScrollArea)


def test_wipe_forgets_the_choice_and_the_card(host: Host) -> None:
    host.picker.preselect_from("广东省深圳市福田区福华路88号12栋803")
    host.picker.wipe()
    assert host.picker.chosen() == () and not host.picker.is_done()
    texts = [w.text() for w in host.picker.findChildren(QWidget) if hasattr(w, "text")]
    texts += [w.accessibleName() for w in host.picker.findChildren(QWidget)]
    assert not any("福田" in str(t) or "深圳" in str(t) for t in texts)
    assert host.picker.spoken_text() == "请选择省份"
    host.touch(host.picker.letters_button)
    host.touch(host.picker.letter_keys.keys["g"])
    host.picker.wipe()
    assert host.picker.letter_keys.isHidden() and len(host.picker.grid.buttons()) == 34


def test_skip_hands_the_field_back(host: Host, qtbot: QtBot) -> None:
    with qtbot.waitSignal(host.picker.skipped, timeout=1000):
        host.touch(host.picker.skip_button)
    assert host.line.text() == ""


def _check_sizes(host: Host) -> None:
    picker = host.picker.rect()
    buttons = host.buttons()
    assert buttons
    for widget in buttons:
        area = QRect(widget.mapTo(host.picker, widget.rect().topLeft()), widget.size())
        assert widget.width() >= 60 and widget.height() >= 60, widget.accessibleName()
        assert picker.contains(area), (widget.accessibleName(), area, picker)
        assert widget.accessibleName(), widget.text()
        assert widget.font().pixelSize() >= 30 or widget.fontInfo().pixelSize() >= 30
    places = [b for b in host.picker.grid.visible_buttons() if b.isVisible()]
    for a in places:
        for b in places:
            if a is not b:
                assert not a.geometry().adjusted(-7, -7, 7, 7).intersects(b.geometry())


@pytest.mark.parametrize(("width", "height"), ROOMS)
def test_every_button_is_big_and_inside_at_each_panel_width(
    qtbot: QtBot, width: int, height: int
) -> None:
    set_language("zh_CN")
    host = Host(qtbot, width, height)
    grid = host.picker.grid
    assert len(grid.buttons()) == 34 and grid.page_count() == 1  # all provinces at once
    _check_sizes(host)
    host.touch(host.picker.letters_button)
    _check_sizes(host)
    host.touch(host.picker.letters_button)
    host.touch_place("440000")
    _check_sizes(host)
    host.touch_place("440300")
    _check_sizes(host)
    host.touch_place("440304")
    _check_sizes(host)
    host.picker.preselect_from("新疆维吾尔自治区伊犁哈萨克自治州伊宁市")
    host.touch(host.picker.back_button)
    host.touch(host.picker.back_button)
    _check_sizes(host)


def test_retranslate_switches_the_words(host: Host) -> None:
    set_language("en")
    host.picker.retranslate()
    assert host.picker.spoken_text() == "Choose your province"
    assert host.picker.skip_button.text() == "Skip: type it myself"
    set_language("zh_CN")
    host.picker.retranslate()
    assert host.picker.skip_button.text() == "跳过，自己输入"
