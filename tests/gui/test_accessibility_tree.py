"""What a screen reader is told of the visit's pages, read through Qt's accessibility interfaces
(the tree the AT-SPI bridge serves): the order things are read in is the order they are shown,
nothing is read twice, a single choice is a set of radio buttons, the date picker says its
numbers, and a page button that cannot be used is not there to be read as "unavailable"."""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import Qt
from PySide6.QtGui import QAccessible, QAccessibleActionInterface, QAccessibleInterface
from PySide6.QtWidgets import QWidget
from pytestqt.qtbot import QtBot

from kiosk.i18n import _
from kiosk.session import Step
from tests.gui.conftest import MakeTerminal
from tests.gui.test_visit import (
    answer_residence_permit,
    checked,
    open_form,
    present_card,
    submit,
    type_digits,
    wait_step,
)
from ui.screens import MessagePage

Role = QAccessible.Role
NAME = QAccessible.Text.Name
DESCRIPTION = QAccessible.Text.Description
CONTROLS = {Role.Button, Role.RadioButton, Role.CheckBox, Role.EditableText}


def reading(widget: QWidget) -> list[tuple[Role, str]]:
    """The showing nodes under `widget` that a screen reader's "read all" goes through (those
    with a name, and every control), depth first: the tree's order."""
    read: list[tuple[Role, str]] = []

    def walk(node: QAccessibleInterface) -> None:
        if node.state().invisible:
            return
        role, name = node.role(), node.text(NAME)
        if name or role in CONTROLS:
            read.append((role, name))
        for index in range(node.childCount()):
            child = node.child(index)
            if child is not None:
                walk(child)

    root = QAccessible.queryAccessibleInterface(widget)
    assert root is not None
    walk(root)
    return read


def names(widget: QWidget) -> list[str]:
    return [name for _role, name in reading(widget)]


def in_order(read: Sequence[object], *wanted: object) -> None:
    """Each of `wanted` is read, once, and in this order."""
    for item in wanted:
        assert read.count(item) == 1, f"{item!r} read {read.count(item)} times in {read}"
    positions = [read.index(item) for item in wanted]
    assert positions == sorted(positions), f"{wanted} read out of order: {read}"


def interface(widget: QWidget) -> QAccessibleInterface:
    node = QAccessible.queryAccessibleInterface(widget)
    assert node is not None
    return node


def test_the_services_page_reads_the_greeting_then_each_service_once(
    qtbot: QtBot, make_terminal: MakeTerminal
) -> None:
    terminal = make_terminal()
    page = terminal.visit.services
    present_card(qtbot, terminal)
    buttons = page.service_buttons
    read = names(page)
    in_order(
        read,
        page.title.text(),
        page.greeting.text(),
        page.masked_id.text(),
        *(b.accessibleName() for b in buttons),
        page.end_button.text(),
    )
    for widget in buttons:
        node = interface(widget)
        assert node.role() == Role.Button
        assert node.childCount() == 0  # its text is not read again after its name
        name, summary = widget.text().split("\n", 1)
        assert node.text(NAME) == name and node.text(DESCRIPTION) == summary
        assert summary not in " ".join(read)
    # a screen reader's press chooses the service
    action = interface(buttons[0]).actionInterface()
    assert action is not None
    assert QAccessibleActionInterface.pressAction() in action.actionNames()
    action.doAction(QAccessibleActionInterface.pressAction())
    wait_step(qtbot, terminal, Step.GUIDE)


def test_a_long_guide_reads_its_sections_before_its_page_buttons(
    qtbot: QtBot, make_terminal: MakeTerminal
) -> None:
    terminal = make_terminal()
    visit = terminal.visit
    present_card(qtbot, terminal)
    qtbot.mouseClick(visit.services.service_buttons[0], Qt.MouseButton.LeftButton)
    wait_step(qtbot, terminal, Step.GUIDE)
    page, pager = visit.guide, visit.guide.sections
    qtbot.waitUntil(lambda: pager.page_count() > 1, timeout=3000)
    first_page = pager.visible_items()
    read = names(page)
    in_order(
        read,
        page.title.text(),
        *(w.accessibleName() for w in first_page),
        pager.status_text(),
        pager.more_button.accessibleName(),
        page.back_button.text(),
        page.start_button.text(),
    )
    # each section once: its heading and text are not read again under it
    for widget in first_page:
        node = interface(widget)
        assert node.role() == Role.StaticText and node.childCount() == 0
    # no "Previous" on the first page, none "More" on the last, and the row does not move
    assert pager.previous_button.accessibleName() not in read
    status = pager.status.geometry()
    more = pager.more_button.geometry()
    while pager.page() + 1 < pager.page_count():
        qtbot.mouseClick(pager.more_button, Qt.MouseButton.LeftButton)
    read = names(page)
    assert pager.more_button.accessibleName() not in read
    in_order(read, pager.previous_button.accessibleName(), pager.status_text())
    assert pager.status.geometry() == status
    assert pager.previous_button.isVisible() and pager.previous_button.isEnabled()
    assert not pager.more_button.isVisible() and pager.more_button.geometry() == more


def test_a_question_is_read_before_its_keypad_and_the_progress_between_back_and_next(
    qtbot: QtBot, make_terminal: MakeTerminal
) -> None:
    terminal = make_terminal()
    page = terminal.visit.question
    open_form(qtbot, terminal)
    assert page.keypad is not None
    keys = page.keypad.buttons
    label, button = Role.StaticText, Role.Button
    in_order(
        reading(page),
        (label, page.question.text()),
        (label, page.help.text()),
        (Role.EditableText, page.line.accessibleName()),
        (button, keys["1"].accessibleName()),
        (button, keys["0"].accessibleName()),
        (button, keys["⌫"].accessibleName()),
        (button, page.back_button.text()),
        (label, page.progress.text()),
        (button, page.next_button.text()),
    )


def test_a_single_choice_is_a_set_of_radio_buttons(
    qtbot: QtBot, make_terminal: MakeTerminal
) -> None:
    terminal = make_terminal()
    visit = terminal.visit
    page = visit.question
    open_form(qtbot, terminal, index=1)  # pension certification: yes/no questions
    type_digits(qtbot, terminal, "13912345678")
    qtbot.mouseClick(page.next_button, Qt.MouseButton.LeftButton)
    checked(qtbot, terminal)
    assert visit.session.current_question.widget == "yesno"
    yes, no = page.choices.buttons()
    for widget in (yes, no):
        node = interface(widget)
        assert node.role() == Role.RadioButton
        assert node.state().checkable and not node.state().checked
    in_order(names(page), page.question.text(), _("Yes"), _("No"), page.next_button.text())
    # a screen reader's action on a radio button is Toggle, which checks it without a click
    action = interface(no).actionInterface()
    assert action is not None
    assert action.actionNames()[0] == QAccessibleActionInterface.toggleAction()
    action.doAction(QAccessibleActionInterface.toggleAction())
    assert interface(no).state().checked and page.value() is False
    qtbot.mouseClick(yes, Qt.MouseButton.LeftButton)  # and a touch, as before
    assert yes.isChecked() and not no.isChecked() and page.value() is True
    assert interface(yes).state().checked and not interface(no).state().checked
    qtbot.mouseClick(yes, Qt.MouseButton.LeftButton)  # a single choice: it stays chosen
    assert yes.isChecked() and page.value() is True


def test_the_date_picker_says_its_numbers(qtbot: QtBot, make_terminal: MakeTerminal) -> None:
    terminal = make_terminal()
    visit = terminal.visit
    page = visit.question
    open_form(qtbot, terminal)
    type_digits(qtbot, terminal, "13912345678")
    qtbot.mouseClick(page.next_button, Qt.MouseButton.LeftButton)
    checked(qtbot, terminal)
    page.line.setText("本市和平路12号3单元401室")
    qtbot.mouseClick(page.next_button, Qt.MouseButton.LeftButton)
    checked(qtbot, terminal)
    work = page.choices.button_for("work")
    assert work is not None
    qtbot.mouseClick(work, Qt.MouseButton.LeftButton)
    qtbot.mouseClick(page.next_button, Qt.MouseButton.LeftButton)
    checked(qtbot, terminal)
    assert visit.session.current_question.widget == "date"
    picker = page.date_picker
    picker.set_value("2026-11-29")
    values = picker.values
    assert [interface(values[p]).text(NAME) for p in ("year", "month", "day")] == [
        "2026年",
        "11月",
        "29日",
    ]
    for part in ("year", "month", "day"):
        assert interface(values[part]).text(DESCRIPTION) == "已选日期：2026-11-29"
    qtbot.mouseClick(picker.buttons["day:+1"], Qt.MouseButton.LeftButton)
    assert interface(values["day"]).text(NAME) == "30日"
    read = names(page)
    in_order(
        read,
        page.question.text(),
        "2026年",
        "11月",
        "30日",
        page.back_button.text(),
        page.next_button.text(),
    )


def test_each_answer_on_the_review_page_is_one_item(
    qtbot: QtBot, make_terminal: MakeTerminal
) -> None:
    terminal = make_terminal()
    visit = terminal.visit
    open_form(qtbot, terminal)
    answer_residence_permit(qtbot, terminal)
    page = visit.review
    read = names(page)
    rows = page.rows.visible_items()
    assert rows
    said = []
    for row in rows:
        items = [(role, name) for role, name in reading(row) if role not in CONTROLS and name]
        assert len(items) <= 2, items  # the answer, and "From your ID card" beside it
        role, name = items[0]
        assert role == Role.StaticText
        said.append(name)
    assert said[0].startswith("姓名。") and "张*英" in said[0]
    assert "姓名" not in read  # the question is not read again on its own
    assert all(name in page.spoken_text() for name in said)  # and the voice reads the same
    change = page.edit_buttons["phone"]
    phone_row = next(n for n in said if "手机号码" in n)
    in_order(
        read,
        page.title.text(),
        page.service_name.text(),
        phone_row,
        change.accessibleName(),
        page.back_button.text(),
        page.submit_button.text(),
    )


def test_the_done_page_reads_the_outcome_before_the_finish_button(
    qtbot: QtBot, make_terminal: MakeTerminal
) -> None:
    terminal = make_terminal()
    visit = terminal.visit
    open_form(qtbot, terminal)
    answer_residence_permit(qtbot, terminal)
    result = submit(qtbot, terminal)
    page = visit.done
    in_order(
        names(page),
        page.title.text(),
        page.status.text(),
        page.number_label.text(),
        result.receipt_number,
        page.rating_prompt.text(),
        *(b.text() for b in page.rating_buttons.values()),
        page.finish_button.text(),
    )


def test_the_welcome_and_message_pages_read_top_to_bottom(
    qtbot: QtBot, make_terminal: MakeTerminal
) -> None:
    terminal = make_terminal()
    welcome = terminal.visit.welcome
    assert welcome.demo_button is not None
    in_order(
        names(welcome),
        welcome.title.text(),
        welcome.instruction.text(),
        welcome.hint.text(),
        welcome.browse_button.text(),
        welcome.demo_button.text(),
    )
    message = MessagePage()
    qtbot.addWidget(message)
    message.show_message("Out of paper", "Please ask staff for help.")
    message.show()
    in_order(names(message), "Out of paper", "Please ask staff for help.", _("Back to the start"))
