#!/usr/bin/python3
"""An assistive-technology client for the hall terminal: what a screen reader sees, through AT-SPI.

Runs under the system Python (pyatspi is a Debian package, python3-pyatspi), as its own process
beside the terminal, on the same D-Bus session bus with the accessibility bus launched on it.

    /usr/bin/python3 tests/a11y/atspi_client.py [--pid PID] dump
    /usr/bin/python3 tests/a11y/atspi_client.py [--pid PID] visit pension-certification ...

`dump` prints the page on the screen (what is showing: role, name, description, states, actions)
as JSON lines. `visit` does what a blind citizen's screen reader would let them do: present the
demo ID card, choose each named service, start, answer every question, check, submit and read the
receipt number, then finish. Every step is printed as a JSON line with what a screen reader would
read out ("name, role"); the last line is the summary: receipts, controls without a name, actions
that could not be performed.

Controls are found by role and accessible name, in either language (the English message id or
its Chinese translation from assets/i18n/zh_CN/*.po, the service and question names from the
catalogue), never by position in the tree, so pages may be rearranged without breaking it.

Waiting: the client listens to the application's AT-SPI events (showing, name, text and children
changes, focus) and looks at the tree again whenever one arrives. Qt does not announce every
change (a label's text set while its page is hidden, for one), so the GLib loop also wakes every
RECHECK_S to look again; every wait has a deadline. Nothing here sleeps. The AT-SPI cache is off
for the application, so a look reads what is there now; a look during which events arrived (the
page changed while it was walked) is taken again. Waits on one control (a key's character in the
field, the date picker's date, an option checked) ask that control only.

The module imports pyatspi only when a client is made, so it can be imported anywhere (for its
constants and parsers).
"""

from __future__ import annotations

import argparse
import calendar
import datetime as dt
import json
import re
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

ROOT = Path(__file__).resolve().parents[2]
PO_DIR = ROOT / "assets" / "i18n" / "zh_CN"
CATALOGUE = ROOT / "assets" / "catalogue" / "demo_catalogue.json"
APP_NAME = "hall-terminal"

RECHECK_S = 0.25  # the safety net for changes Qt sends no event for
PAGE_TIMEOUT_S = 15.0  # the longest one page may take to follow a press (a save, an upload)
RETRY_PRESS_S = 1.0  # a press the terminal was not ready for yet is made again after this
LOOK_ATTEMPTS = 10  # a page that keeps changing (a countdown) is taken as last seen

# Roles a person acts on. A node of another role counts as a control when it offers an action
# other than taking the focus.
CONTROL_ROLES = frozenset(
    {
        "push button",
        "toggle button",
        "check box",
        "radio button",
        "text",
        "entry",
        "password text",
        "combo box",
        "spin button",
        "slider",
        "link",
        "menu item",
        "check menu item",
        "radio menu item",
        "list item",
        "page tab",
        "date editor",
        "table cell",
        "tree item",
    }
)
BUTTON_ROLES = frozenset({"push button", "toggle button", "radio button", "check box"})
WINDOW_ROLES = frozenset({"application", "frame", "window", "dialog"})
TEXT_ROLES = frozenset({"text", "entry", "password text"})
FOCUS_ACTIONS = frozenset({"SetFocus", "Set Focus", "setFocus", "focus"})
PRESS_ACTIONS = ("Press", "press", "click", "Click", "activate", "Activate", "Toggle", "toggle")
KEYPAD_DELETE = "Delete"
# Paging of long content: the names of its buttons (message ids), and words they may carry.
NEXT_PAGE_IDS = ("More: next page", "Next page", "More")
PREVIOUS_PAGE_IDS = ("Previous page", "Previous")
NEXT_PAGE = re.compile(r"next page|下一页|更多", re.IGNORECASE)
PREVIOUS_PAGE = re.compile(r"previous page|上一页", re.IGNORECASE)
# The date picker's buttons (message ids) by part and step, and where it says the date chosen.
DATE_STEPS = {
    ("year", -10): "Ten years earlier",
    ("year", -1): "One year earlier",
    ("year", 1): "One year later",
    ("year", 10): "Ten years later",
    ("month", -1): "One month earlier",
    ("month", 1): "One month later",
    ("day", -1): "One day earlier",
    ("day", 1): "One day later",
}
DATE_CHOSEN = "The date chosen: {date}"

# Answers a citizen would give, per service; "how" says how a screen-reader user enters them:
# keypad (the on-screen digit keys), set (the field's whole text) or insert (typed in).
DEFAULT_ANSWERS: dict[str, dict[str, tuple[Any, str]]] = {
    "pension-certification": {
        "phone": ("13800138000", "keypad"),
        "living_at_registered_address": (True, "press"),
        "receiving_other_pension": (False, "press"),
        "bank_card_last4": ("0427", "set"),
    },
    "residence-permit": {
        "phone": ("13800138000", "insert"),
        "address": ("本市幸福路12号3栋502室", "set"),
        "reason": ("family", "press"),
        "residence_start": ("2026-03-01", "keypad"),
        "collection": ("hall", "press"),
    },
    "senior-card": {
        "phone": ("13800138000", "keypad"),
        "address": ("北京市东城区景山前街4号院2号楼3单元101室", "set"),
        "emergency_contact_name": ("王小明", "set"),
        "emergency_contact_phone": ("13912345678", "insert"),
        "collection": ("post", "press"),
    },
}

T = TypeVar("T")


class ClientError(Exception):
    """The visit could not go on; the message says where and what was on the screen."""


# -- words: the English message ids and their Chinese translations ------------------------------
def _po_string(line: str) -> str:
    return json.loads(line.strip())  # a .po string literal is a JSON string for these escapes


def read_po(path: Path) -> dict[str, str]:
    """msgid → msgstr of one .po file (fuzzy entries and plurals left out)."""
    messages: dict[str, str] = {}
    msgid: list[str] = []
    msgstr: list[str] = []
    target: list[str] | None = None
    fuzzy = False

    def flush() -> None:
        nonlocal fuzzy
        key, value = "".join(msgid), "".join(msgstr)
        if key and value and not fuzzy:
            messages[key] = value
        msgid.clear()
        msgstr.clear()
        fuzzy = False

    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line:
            flush()
            target = None
        elif line.startswith("#,") and "fuzzy" in line:
            fuzzy = True
        elif line.startswith("#"):
            continue
        elif line.startswith("msgid "):
            if msgstr:
                flush()
            target = msgid
            target.append(_po_string(line[6:]))
        elif line.startswith("msgstr "):
            target = msgstr
            target.append(_po_string(line[7:]))
        elif line.startswith('"') and target is not None:
            target.append(_po_string(line))
        else:
            target = None  # msgctxt, msgid_plural, msgstr[n]: not used by the pages here
    flush()
    return messages


class Words:
    """Both spellings of each user-facing string, so the client works in either language."""

    def __init__(self, po_dir: Path = PO_DIR) -> None:
        self.zh: dict[str, str] = {}
        for path in sorted(po_dir.glob("*.po")):
            self.zh.update(read_po(path))

    def both(self, msgid: str) -> set[str]:
        return {msgid, self.zh.get(msgid, msgid)}


# -- the catalogue: service and question names in both languages --------------------------------
@dataclass(frozen=True)
class QuestionInfo:
    field: str
    widget: str
    names: frozenset[str]
    readonly: bool
    options: dict[str, frozenset[str]]  # value → its names


@dataclass(frozen=True)
class ServiceInfo:
    id: str
    names: frozenset[str]
    questions: tuple[QuestionInfo, ...]


def _names(text: object) -> frozenset[str]:
    if isinstance(text, dict):
        return frozenset(str(v) for v in text.values() if v)
    return frozenset({str(text)}) if text else frozenset()


def read_catalogue(path: Path = CATALOGUE) -> dict[str, ServiceInfo]:
    data = json.loads(path.read_text(encoding="utf-8"))
    services: dict[str, ServiceInfo] = {}
    for service in data["services"]:
        questions = tuple(
            QuestionInfo(
                field=q["field"],
                widget=q.get("widget", "text"),
                names=_names(q.get("label")),
                readonly=bool(q.get("readonly")),
                options={o["value"]: _names(o.get("label")) for o in q.get("options", ())},
            )
            for q in service["questions"]
        )
        services[service["id"]] = ServiceInfo(service["id"], _names(service["name"]), questions)
    return services


# -- what is on the screen ----------------------------------------------------------------------
@dataclass
class Node:
    acc: Any = field(repr=False)
    path: str  # "frame/layered pane/filler[2]/push button": for reports only, never for finding
    role: str
    name: str
    description: str
    states: frozenset[str]
    actions: tuple[str, ...]
    text: str | None  # a text field's content

    @property
    def said(self) -> str:
        """Roughly what a screen reader reads out for it: its name, then its role."""
        words = [self.name or "(no name)", self.role]
        if self.text:
            words.insert(1, repr(self.text))
        if "checked" in self.states:
            words.append("checked")
        if self.is_control and "enabled" not in self.states:
            words.append("unavailable")
        return ", ".join(words)

    @property
    def is_control(self) -> bool:
        if self.role in CONTROL_ROLES:
            return True
        return any(a not in FOCUS_ACTIONS for a in self.actions)

    def to_json(self) -> dict[str, object]:
        return {
            "path": self.path,
            "role": self.role,
            "name": self.name,
            "description": self.description,
            "states": sorted(self.states),
            "actions": list(self.actions),
            **({"text": self.text} if self.text is not None else {}),
        }


class Screen:
    """One look at the showing part of the application's tree, in reading order."""

    def __init__(self, nodes: list[Node]) -> None:
        self.nodes = nodes

    def controls(self) -> list[Node]:
        return [n for n in self.nodes if n.is_control]

    def find(
        self, role: str | Iterable[str], names: Iterable[str], *, numbered: bool = False
    ) -> Node | None:
        """The first node of the role with one of the names; `numbered`: also as an item of a
        numbered list ("2. Pension certification")."""
        roles = {role} if isinstance(role, str) else set(role)
        wanted = {_norm(n) for n in names}
        for node in self.nodes:
            if node.role not in roles:
                continue
            name = _norm(node.name)
            if name in wanted or (numbered and LIST_NUMBER.sub("", name) in wanted):
                return node
        return None

    def button(self, names: Iterable[str], *, numbered: bool = False) -> Node | None:
        """A button that can be pressed now (showing and enabled)."""
        node = self.find(BUTTON_ROLES, names, numbered=numbered)
        return node if node is not None and "enabled" in node.states else None

    def label_after(self, names: Iterable[str]) -> Node | None:
        """The first non-empty label after the label with one of these names (a value under its
        caption, as a screen reader reads them)."""
        wanted = {_norm(n) for n in names}
        seen = False
        for node in self.nodes:
            if node.role != "label":
                continue
            if seen and node.name.strip():
                return node
            if _norm(node.name) in wanted:
                seen = True
        return None

    def has_label(self, names: Iterable[str]) -> bool:
        return self.find("label", names) is not None

    def reading(self) -> list[str]:
        """The page as a screen reader's "read all" would go through it."""
        return [n.said for n in self.nodes if n.name or n.is_control or n.text]


LIST_NUMBER = re.compile(r"^\s*\d+\s*[.、．)]\s*")


def _norm(text: str) -> str:
    return " ".join(text.split())


# -- the client -----------------------------------------------------------------------------------
@dataclass
class Report:
    unnamed: list[dict[str, object]] = field(default_factory=list)
    failed_actions: list[dict[str, object]] = field(default_factory=list)
    receipts: list[dict[str, object]] = field(default_factory=list)
    controls_seen: int = 0
    # text read a second time: a label inside a node whose name already says it
    read_twice: list[dict[str, object]] = field(default_factory=list)
    # page buttons read out as "unavailable" (there is no page to turn to: they should be gone)
    unavailable: list[dict[str, object]] = field(default_factory=list)
    option_roles: list[str] = field(default_factory=list)  # how each option chosen was called
    _seen: set[tuple[str, str, str]] = field(default_factory=set)


class Client:
    """Finds the terminal on the accessibility bus and acts on it as a screen reader user."""

    EVENTS = (
        "object:state-changed:showing",
        "object:state-changed:enabled",
        "object:property-change:accessible-name",
        "object:children-changed",
        "object:text-changed",
        "object:state-changed:focused",
        "window:activate",
    )

    def __init__(
        self,
        *,
        pid: int | None = None,
        name: str = APP_NAME,
        out: Callable[[dict[str, object]], None] | None = None,
        timeout_s: float = PAGE_TIMEOUT_S,
    ) -> None:
        import pyatspi
        from gi.repository import Atspi, GLib

        self._pyatspi = pyatspi
        self._atspi = Atspi
        self._glib = GLib
        # What AT-SPI raises for an object that has gone (its page was rebuilt) or lacks an
        # interface; anything else is a fault of this client and is not swallowed.
        self._gone: tuple[type[BaseException], ...] = (GLib.GError, NotImplementedError)
        self._pid = pid
        self._name = name
        self._out = out or _print_json
        self.timeout_s = timeout_s
        self.words = Words()
        self.services = read_catalogue()
        self.report = Report()
        self._events = 0
        self._started = time.monotonic()
        self._last = ""
        self._app: Any = None
        self._page = ""
        self._listening = False

    # -- bus and events -------------------------------------------------------------------------
    def listen(self) -> None:
        """Ask for the events a screen reader hears (Qt sends only those someone listens to)."""
        if not self._listening:
            self._pyatspi.Registry.registerEventListener(self._on_event, *self.EVENTS)
            self._listening = True

    def close(self) -> None:
        if self._listening:
            self._pyatspi.Registry.deregisterEventListener(self._on_event, *self.EVENTS)
            self._listening = False

    def _on_event(self, _event: object) -> None:
        self._events += 1

    def _wait_event(self, seconds: float) -> None:
        """Run the GLib loop until an AT-SPI event arrives or `seconds` pass."""
        before = self._events
        fired: list[bool] = []

        def wake() -> bool:
            fired.append(True)
            return False

        source = self._glib.timeout_add(max(1, int(seconds * 1000)), wake)
        context = self._glib.MainContext.default()
        try:
            while not fired and self._events == before:
                context.iteration(True)
        finally:
            if not fired:
                self._glib.source_remove(source)

    def wait_for(
        self, what: str, probe: Callable[[], T | None], timeout_s: float | None = None
    ) -> T:
        """probe() until it gives something, looking again on every event (see the docstring)."""
        deadline = time.monotonic() + (self.timeout_s if timeout_s is None else timeout_s)
        while True:
            result = probe()
            if result is not None and result is not False:
                return result
            left = deadline - time.monotonic()
            if left <= 0:
                raise ClientError(f"timed out waiting for {what}")
            self._wait_event(min(RECHECK_S, left))

    # -- the application ------------------------------------------------------------------------
    def app(self) -> Any:
        if self._app is None:
            self._app = self.wait_for("the terminal on the accessibility bus", self._find_app)
            self._atspi.Accessible.set_cache_mask(self._app, self._atspi.Cache.NONE)
            self._log("app", name=self._app.name, pid=self._app.get_process_id())
        return self._app

    def _find_app(self) -> Any:
        desktop = self._pyatspi.Registry.getDesktop(0)
        for index in range(desktop.childCount):
            try:
                candidate = desktop.getChildAtIndex(index)
                if candidate is None:
                    continue
                if self._pid is not None:
                    if candidate.get_process_id() == self._pid:
                        return candidate
                elif candidate.name == self._name:
                    return candidate
            except self._gone:  # an application leaving meanwhile
                continue
        return None

    def screen(self, *, full: bool = False) -> Screen:
        """The showing part of the tree, depth first (reading order). Labels are read by name
        only (they offer nothing to do and hold no children in Qt) unless `full`."""
        nodes: list[Node] = []
        app = self.app()
        for index in range(app.childCount):
            window = app.getChildAtIndex(index)
            if window is not None:
                self._collect(window, "", index, nodes, full)
        return Screen(nodes)

    def _collect(self, acc: Any, parent: str, index: int, nodes: list[Node], full: bool) -> None:
        atspi = self._atspi
        try:
            states = frozenset(self._pyatspi.stateToString(s) for s in acc.getState().getStates())
            if "showing" not in states:
                return  # a hidden page, and everything on it
            role = acc.getRoleName()
            brief = role == "label" and not full
            actions: tuple[str, ...] = ()
            text: str | None = None
            interfaces = () if brief else set(acc.get_interfaces())
            if "Action" in interfaces:
                action = acc.queryAction()
                actions = tuple(action.getName(i) for i in range(action.nActions))
            if role in TEXT_ROLES and "Text" in interfaces:
                text = atspi.Text.get_text(acc, 0, atspi.Text.get_character_count(acc))
            node = Node(
                acc=acc,
                path=f"{parent}/{role}[{index}]" if parent else f"{role}[{index}]",
                role=role,
                name=acc.name or "",
                description="" if brief else acc.description or "",
                states=states,
                actions=actions,
                text=text,
            )
            count = 0 if brief else acc.childCount
            children = [acc.getChildAtIndex(i) for i in range(count)]
        except self._gone:  # the object went away while we looked (a page change)
            return
        nodes.append(node)
        for position, child in enumerate(children):
            if child is not None:
                self._collect(child, node.path, position, nodes, full)

    # -- acting ---------------------------------------------------------------------------------
    def press(self, node: Node) -> None:
        """Press through the Action interface, as a screen reader's "activate" does."""
        self._log("press", said=node.said)
        try:
            action = node.acc.queryAction()
            names = [action.getName(i) for i in range(action.nActions)]
            index = next((names.index(n) for n in PRESS_ACTIONS if n in names), 0)
            if not action.doAction(index):
                raise ClientError(f"the {names[index] if names else '?'} action was refused")
        except (NotImplementedError, ClientError, IndexError) as exc:
            self._failed("press", node, str(exc) or type(exc).__name__)
            raise ClientError(f"cannot press {node.said}: {exc}") from exc

    def set_text(self, node: Node, value: str, how: str = "set") -> None:
        """Fill a field through EditableText: the whole text at once, or typed in at the end."""
        self._log("type", said=node.said, value=value, how=how)
        try:
            editable = node.acc.queryEditableText()
            if how == "insert":
                length = node.acc.queryText().characterCount
                if length:
                    editable.deleteText(0, length)
                ok = editable.insertText(0, value, len(value))
            else:
                ok = editable.setTextContents(value)
        except NotImplementedError as exc:
            self._failed("type", node, "no EditableText interface")
            raise ClientError(f"cannot type into {node.said}: no EditableText") from exc
        if not ok:
            self._failed("type", node, "refused")
            raise ClientError(f"typing into {node.said} was refused")

    def _failed(self, what: str, node: Node, why: str) -> None:
        entry = {"page": self._page, "what": what, **node.to_json(), "why": why}
        self.report.failed_actions.append(entry)
        self._log("failed", **entry)

    # -- looking --------------------------------------------------------------------------------
    def look(self) -> Screen:
        """The screen as it is between two changes: a page changing while its tree is walked
        gives a torn picture (the new question under the old progress line), so a look during
        which events arrived is taken again."""
        screen = self.screen()
        for _attempt in range(LOOK_ATTEMPTS):
            self._drain()
            before = self._events
            screen = self.screen()
            self._drain()
            if self._events == before:
                break
        return screen

    def _drain(self) -> None:
        """Take in the events that have arrived, without waiting."""
        context = self._glib.MainContext.default()
        while context.pending():
            context.iteration(False)

    def announce(self, page: str, screen: Screen) -> None:
        """Read the page out as a screen reader would; note every control without a name."""
        self._page = page
        self._log("page", page=page, said=screen.reading())
        for node in screen.controls():
            key = (page, node.role, node.path)
            if key in self.report._seen:
                continue
            self.report._seen.add(key)
            self.report.controls_seen += 1
            if not node.name.strip():
                entry = {"page": page, **node.to_json()}
                self.report.unnamed.append(entry)
                self._log("unnamed", **entry)
            turns = NEXT_PAGE.search(node.name) or PREVIOUS_PAGE.search(node.name)
            if turns and "enabled" not in node.states:
                entry = {"page": page, "said": node.said, "path": node.path}
                self.report.unavailable.append(entry)
                self._log("unavailable", **entry)
        self._note_read_twice(page, screen)

    def _note_read_twice(self, page: str, screen: Screen) -> None:
        """Labels under a named node other than a window (a button, a row) that say what the
        node's name or description has said already (or what the name is part of)."""
        named = {n.path: n for n in screen.nodes if n.name.strip() and n.role not in WINDOW_ROLES}
        for node in screen.nodes:
            if node.role != "label" or not node.name.strip():
                continue
            parts = node.path.split("/")
            holder = next(
                (
                    named["/".join(parts[:end])]
                    for end in range(len(parts) - 1, 0, -1)
                    if "/".join(parts[:end]) in named
                ),
                None,
            )
            key = (page, "read twice", node.path)
            if holder is None or key in self.report._seen:
                continue
            text, told = _norm(node.name), _norm(f"{holder.name} {holder.description}")
            if text not in told and _norm(holder.name) not in text:
                continue  # a panel's own texts under its heading: read once each
            self.report._seen.add(key)
            entry = {"page": page, "said": node.said, "inside": holder.said}
            self.report.read_twice.append(entry)
            self._log("read twice", **entry)

    def dump(self) -> list[dict[str, object]]:
        return [node.to_json() for node in self.screen(full=True).nodes]

    def last_step(self) -> str:
        return self._last

    def _log(self, event: str, **details: object) -> None:
        self._last = f"{event} {details.get('said', details.get('page', ''))}"
        self._out({"event": event, "t": round(time.monotonic() - self._started, 2), **details})

    # -- a whole visit --------------------------------------------------------------------------
    # Each step hands the screen it last looked at to the next: a look walks the whole tree.
    def t(self, msgid: str) -> set[str]:
        return self.words.both(msgid)

    def visit(
        self, service_id: str, answers: dict[str, tuple[Any, str]] | None = None
    ) -> dict[str, object]:
        """Present the demo card, apply for `service_id`, submit, read the receipt, finish."""
        service = self.services[service_id]
        answers = DEFAULT_ANSWERS[service_id] if answers is None else answers
        demo = self.t("Demo ID card (F2)")
        start = self.t("Start the application")
        caption = self.t("Your receipt number")
        self.listen()

        screen = self.wait_for(
            "the welcome page", lambda: _if(self.look(), lambda s: s.button(demo))
        )
        self.announce("welcome", screen)
        screen = self._go("welcome", screen, lambda s: s.button(demo), self._on_services)
        self.announce("services", screen)
        screen = self._reveal("services", screen, lambda s: s.button(service.names, numbered=True))
        screen = self._go(
            "services",
            screen,
            lambda s: s.button(service.names, numbered=True),
            lambda s: s.button(start) is not None,
        )
        self.announce("guide", screen)
        screen = self._go(
            "guide",
            screen,
            lambda s: s.button(start),
            lambda s: self._question_on(s, service) is not None or self._review_on(s),
        )
        screen = self._answer_all(service, answers, screen)
        self.announce("review", screen)
        screen = self._go(
            "review",
            screen,
            lambda s: s.button(self.t("Submit")),
            lambda s: _receipt_on(s, caption),
        )
        receipt = self._read_receipt(service, screen)
        screen = self._go(
            "done",
            screen,
            lambda s: s.button(self.t("Finish")),
            lambda s: s.button(demo) is not None,
        )
        self.announce("welcome", screen)
        self.report.receipts.append(receipt)
        return receipt

    def _go(
        self,
        page: str,
        screen: Screen,
        target: Callable[[Screen], Node | None],
        arrived: Callable[[Screen], bool],
    ) -> Screen:
        """Press `target` until `arrived` says the next page is there; that page's screen. A
        press the terminal was not ready for is made again (the first page is up before the
        rest of the terminal is built behind it)."""
        deadline = time.monotonic() + self.timeout_s
        last_press = 0.0
        while not arrived(screen):
            now = time.monotonic()
            if now > deadline:
                raise ClientError(f"{page}: nothing happened; on the screen: {screen.reading()}")
            node = target(screen)
            if node is not None and now - last_press >= RETRY_PRESS_S:
                if last_press:
                    self._log("retry", page=page, said=node.said)
                self.press(node)
                last_press = time.monotonic()
            self._wait_event(RECHECK_S)
            screen = self.look()
        return screen

    def _on_services(self, screen: Screen) -> bool:
        return screen.has_label(self.t("Choose a service"))

    def _reveal(self, page: str, screen: Screen, find: Callable[[Screen], Node | None]) -> Screen:
        """Turn the pages of long content (More, then Previous) until `find` finds its control;
        the screen that shows it."""
        seen: set[tuple[str, ...]] = set()
        forward = True
        while find(screen) is None:
            content = tuple(n.said for n in screen.nodes)
            seen.add(content)
            turn = self._page_button(screen, forward)
            if turn is None and forward:
                forward = False
                turn = self._page_button(screen, forward)
            if turn is None and len(seen) == 1:
                # Nothing to press yet: the page may still be laying itself out.
                before = content
                screen = self.wait_for(
                    f"{page}: the control or a page button",
                    lambda: _if(
                        self.look(),
                        lambda s: (
                            find(s) is not None
                            or self._page_button(s, True) is not None
                            or self._page_button(s, False) is not None
                        ),
                    ),
                )
                if _said(screen) != before:
                    seen.clear()
                    forward = True
                continue
            if turn is None or len(seen) > 20:
                raise ClientError(f"{page}: not on any page; on the screen: {screen.reading()}")
            self.press(turn)
            screen = self.wait_for(
                f"{page}: the page to turn",
                lambda content=content: _if(self.look(), lambda s: _said(s) != content),
            )
            self.announce(page, screen)
            if _said(screen) in seen and not forward:
                raise ClientError(f"{page}: not on any page")
        return screen

    def _page_button(self, screen: Screen, forward: bool) -> Node | None:
        ids = NEXT_PAGE_IDS if forward else PREVIOUS_PAGE_IDS
        names = set().union(*(self.t(i) for i in ids))
        node = screen.button(names)
        if node is not None:
            return node
        pattern = NEXT_PAGE if forward else PREVIOUS_PAGE
        return next(
            (
                n
                for n in screen.nodes
                if n.role in BUTTON_ROLES and "enabled" in n.states and pattern.search(n.name)
            ),
            None,
        )

    def _question_on(self, screen: Screen, service: ServiceInfo) -> QuestionInfo | None:
        """The question the page asks: its heading is one of the service's question names."""
        for node in screen.nodes:
            if node.role != "label":
                continue
            for question in service.questions:
                if _norm(node.name) in {_norm(n) for n in question.names}:
                    return question
        return None

    def _review_on(self, screen: Screen) -> bool:
        return screen.has_label(self.t("Please check your answers")) and (
            screen.button(self.t("Submit")) is not None
        )

    def _progress(self, screen: Screen) -> str:
        pattern = "|".join(
            re.escape(t).replace(r"\{number\}", r"\d+").replace(r"\{total\}", r"\d+")
            for t in self.t("Question {number} of {total}")
        )
        node = next(
            (n for n in screen.nodes if n.role == "label" and re.fullmatch(pattern, n.name)), None
        )
        return node.name if node is not None else ""

    def _answer_all(
        self, service: ServiceInfo, answers: dict[str, tuple[Any, str]], screen: Screen
    ) -> Screen:
        """Answer each question the pages ask; the review page's screen."""
        asked: list[str] = []
        while not self._review_on(screen):
            question = self._question_on(screen, service)
            if question is None:
                screen = self.wait_for(
                    "a question or the review page",
                    lambda: _if(
                        self.look(),
                        lambda s: self._question_on(s, service) is not None or self._review_on(s),
                    ),
                )
                continue
            if len(asked) > 3 * len(service.questions):
                raise ClientError(f"the questions do not end: {asked}")
            asked.append(question.field)
            page = f"question:{question.field}"
            self.announce(page, screen)
            if not question.readonly:
                if question.field not in answers:
                    raise ClientError(f"no answer for {question.field}")
                value, how = answers[question.field]
                self._answer(page, screen, question, value, how)
            screen = self._next(page, question, service, screen)
        return screen

    def _next(
        self, page: str, question: QuestionInfo, service: ServiceInfo, screen: Screen
    ) -> Screen:
        """Press Next; another question's or the review page's screen (a refusal: an error)."""
        progress = self._progress(screen)
        error_title = self.t("Please correct the answer marked below.")

        def moved(screen: Screen) -> bool:
            if self._review_on(screen):
                return True
            other = self._question_on(screen, service)
            if other is not None and (other is not question or self._progress(screen) != progress):
                return True
            if screen.has_label(error_title):
                errors = [n.name for n in screen.nodes if n.role == "label" and "⚠" in n.name]
                raise ClientError(f"{page}: the answer was refused: {errors}")
            return False

        button = screen.button(self.t("Next"))
        if button is None:
            raise ClientError(f"{page}: no Next button; on the screen: {screen.reading()}")
        self.press(button)
        return self.wait_for(f"{page}: the next page", lambda: _if(self.look(), moved))

    def _read_receipt(self, service: ServiceInfo, screen: Screen) -> dict[str, object]:
        self.announce("done", screen)
        number = screen.label_after(self.t("Your receipt number"))
        if number is None:
            raise ClientError(f"done: no receipt number; on the screen: {screen.reading()}")
        received = screen.has_label(
            self.t("Your application has been received by the service platform.")
        )
        saved = screen.has_label(self.t("Your application is saved on this terminal."))
        receipt = {
            "service": service.id,
            "receipt_number": number.name.strip(),
            "said": number.said,
            "status": "received" if received else "saved" if saved else "unknown",
            "title": screen.has_label(self.t("Application received")),
        }
        self._log("receipt", **receipt)
        return receipt

    def _answer(
        self, page: str, screen: Screen, question: QuestionInfo, value: Any, how: str
    ) -> None:
        if question.widget in ("yesno", "choice"):
            if question.widget == "yesno":
                names = self.t("Yes") if value else self.t("No")
            else:
                names = set(question.options[str(value)])
            screen = self._reveal(page, screen, lambda s: s.button(names))
            option = screen.button(names)
            assert option is not None
            self.report.option_roles.append(option.role)
            self.press(option)
            self.wait_for(
                f"{page}: the option to be chosen", lambda: "checked" in self._states(option)
            )
            return
        if question.widget == "date" and self._date_chosen(screen) is not None:
            self._pick_date(page, screen, str(value))
            return
        field_node = screen.find(TEXT_ROLES, question.names) or next(
            (n for n in screen.nodes if n.role in TEXT_ROLES), None
        )
        if field_node is None:
            raise ClientError(f"{page}: no text field; on the screen: {screen.reading()}")
        if not field_node.name.strip():
            self._log("note", page=page, said=field_node.said, note="the field has no name")
        text = str(value)
        if how == "keypad":
            self._keypad(page, screen, field_node, text)
        else:
            self.set_text(field_node, text, how)
        self.wait_for(
            f"{page}: the field to show {text!r}",
            lambda: self._shown_if(field_node, text),
        )

    # Waits on one control ask that control only: a whole look walks the tree.
    def _states(self, node: Node) -> frozenset[str]:
        try:
            states = node.acc.getState().getStates()
            return frozenset(self._pyatspi.stateToString(s) for s in states)
        except self._gone:
            return frozenset()

    def _field_text(self, node: Node) -> str | None:
        try:
            content = node.acc.queryText()
            return str(content.getText(0, content.characterCount))
        except self._gone:
            return None

    def _keypad(self, page: str, screen: Screen, field_node: Node, text: str) -> None:
        """Clear the field with the keypad's delete key, then press one key per character,
        each once its previous one shows in the field (as a person listening to each key would:
        Qt's Press animates a click for 100 ms and presses of a key meanwhile are merged)."""
        delete = screen.button(self.t(KEYPAD_DELETE))
        keys = {ch: screen.button({ch}) for ch in set(text)}
        missing = sorted(ch for ch, node in keys.items() if node is None)
        if missing or delete is None:
            self._log("note", page=page, note=f"no keypad keys for {missing}; typing instead")
            self.set_text(field_node, text, "set")
            return
        shown = _bare(field_node.text) or ""
        while shown:
            self.press(delete)
            shown = self.wait_for(
                f"{page}: the delete key to take a character",
                lambda shown=shown: self._shown_if(field_node, shown[:-1]),
            )[0]
        for count, ch in enumerate(text, start=1):
            node = keys[ch]
            assert node is not None
            self.press(node)
            self.wait_for(
                f"{page}: the key {ch!r} to show in the field",
                lambda count=count: self._shown_if(field_node, text[:count]),
            )

    def _shown_if(self, field_node: Node, expected: str) -> tuple[str] | None:
        """The field's text, once it holds `expected` (grouping spaces aside: 138 0013 8000)."""
        shown = _bare(self._field_text(field_node))
        return (shown,) if shown == _bare(expected) else None

    # -- the date picker: nothing to type, a year, a month and a day at a time ------------------
    def _date_chosen(self, screen: Screen) -> dt.date | None:
        """The date the picker says it holds (each of its buttons describes it)."""
        for node in screen.nodes:
            date = self._date_in(node.description)
            if date is not None:
                return date
        return None

    def _date_in(self, description: str) -> dt.date | None:
        for text in self.t(DATE_CHOSEN):
            pattern = re.escape(text).replace(r"\{date\}", r"(\d{4}-\d{2}-\d{2})")
            found = re.fullmatch(pattern, description.strip())
            if found:
                return dt.date.fromisoformat(found.group(1))
        return None

    def _date_after(self, node: Node, before: dt.date) -> dt.date | None:
        """The date the picker holds, once it is another than `before`."""
        date = self._date_on(node)
        return date if date is not None and date != before else None

    def _date_on(self, node: Node) -> dt.date | None:
        try:
            return self._date_in(node.acc.description or "")
        except self._gone:
            return None

    def _pick_date(self, page: str, screen: Screen, wanted_text: str) -> None:
        wanted = dt.date.fromisoformat(wanted_text)
        buttons = {key: screen.button(self.t(msgid)) for key, msgid in DATE_STEPS.items()}
        now = self._date_chosen(screen)
        for _step in range(200):
            if now is None:
                raise ClientError(f"{page}: the date picker does not say its date")
            if now == wanted:
                return
            key = _date_step(now, wanted)
            node = buttons[key]
            if node is None:
                raise ClientError(f"{page}: no {DATE_STEPS[key]!r} button; {screen.reading()}")
            self.press(node)
            before = now
            now = self.wait_for(
                f"{page}: the date to change from {before}",
                lambda node=node, before=before: self._date_after(node, before),
            )
        raise ClientError(f"{page}: the date picker did not reach {wanted}")


def _if(screen: Screen, test: Callable[[Screen], object]) -> Screen | None:
    """The screen, if `test` holds for it (for waits)."""
    result = test(screen)
    return screen if result is not None and result is not False else None


def _said(screen: Screen) -> tuple[str, ...]:
    return tuple(n.said for n in screen.nodes)


def _receipt_on(screen: Screen, caption: set[str]) -> bool:
    """A receipt number under its caption: the done page is up and filled in."""
    number = screen.label_after(caption)
    return number is not None and bool(RECEIPT_NUMBER.fullmatch(number.name.strip()))


def _bare(text: str | None) -> str | None:
    return None if text is None else "".join(text.split())


def _date_step(now: dt.date, wanted: dt.date) -> tuple[str, int]:
    """The picker button that brings `now` closest to `wanted`: the year (ten at a time while
    far), then the month, then the day (months and days go round, so the shorter way)."""
    years = wanted.year - now.year
    if years:
        sign = 1 if years > 0 else -1
        return "year", sign * (10 if abs(years) >= 10 else 1)
    if wanted.month != now.month:
        ahead = (wanted.month - now.month) % 12
        return "month", 1 if ahead <= 6 else -1
    length = calendar.monthrange(now.year, now.month)[1]
    ahead = (wanted.day - now.day) % length
    return "day", 1 if ahead <= length // 2 else -1


RECEIPT_NUMBER = re.compile(r"[A-Za-z0-9]+(?:-[A-Za-z0-9]+)+")


def _print_json(record: dict[str, object]) -> None:
    print(json.dumps(record, ensure_ascii=False), flush=True)


def iter_json_lines(text: str) -> Iterator[dict[str, Any]]:
    """The records a client run printed (for the test, which reads them from its output)."""
    for line in text.splitlines():
        if line.lstrip().startswith("{"):
            yield json.loads(line)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pid", type=int, help="the terminal's process id (else found by name)")
    parser.add_argument("--name", default=APP_NAME, help="the application's accessible name")
    parser.add_argument("--timeout", type=float, default=PAGE_TIMEOUT_S, help="per page, seconds")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("dump", help="print the showing part of the tree as JSON lines")
    visit = sub.add_parser("visit", help="complete services through AT-SPI actions only")
    visit.add_argument("services", nargs="+", choices=sorted(DEFAULT_ANSWERS))
    args = parser.parse_args(argv)

    client = Client(pid=args.pid, name=args.name, timeout_s=args.timeout)
    try:
        if args.command == "dump":
            for record in client.dump():
                _print_json(record)
            return 0
        error = ""
        try:
            for service_id in args.services:
                client.visit(service_id)
        except ClientError as exc:
            error = str(exc)
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc} (after {client.last_step()})"
        report = client.report
        _print_json(
            {
                "event": "summary",
                "ok": not error,
                "error": error,
                "receipts": report.receipts,
                "controls_seen": report.controls_seen,
                "unnamed": report.unnamed,
                "failed_actions": report.failed_actions,
                "read_twice": report.read_twice,
                "unavailable": report.unavailable,
                "option_roles": report.option_roles,
            }
        )
        return 1 if error else 0
    finally:
        client.close()


if __name__ == "__main__":
    sys.exit(main())
