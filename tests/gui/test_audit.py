"""The accessibility audit on the real terminal: every page of every demo service on a portrait
panel, in both languages, keeps every rule of ui/audit.py. (scripts/audit.py runs every panel
size and text step and writes the report and screenshots.)"""

from __future__ import annotations

from collections import Counter

from pytestqt.qtbot import QtBot

from kiosk.catalogue import Catalogue
from tests.fixtures.platform import DEMO_ANSWERS
from tests.gui.conftest import MakeTerminal
from ui.audit import Report, walk

SIZE = (1080, 1920)  # the portrait panel: the narrowest, where most is cut off or paged
LANGUAGES = ["zh_CN", "en"]


def expected_pages(catalogue: Catalogue) -> set[str]:
    """Names of the pages a whole walk must have reached."""
    names = {"welcome", "services", "welcome:after-visit", "message"}
    for service in catalogue.services:
        names |= {f"guide:{service.id}", f"review:{service.id}", f"done:{service.id}"}
        for question in service.questions:
            if question.readonly:
                continue
            name = f"question:{service.id}:{question.field}"
            names.add(name)
            if question.widget == "yesno":
                names |= {f"{name}=true", f"{name}=false"}
            for option in question.options:
                names.add(f"{name}={option.value}")
    return names


def summary(report: Report, top: int = 30) -> str:
    groups = Counter((v.rule, v.page.split("=")[0]) for v in report.items)
    lines = [f"{report.violations} violation(s); by rule: {dict(report.by_rule().most_common())}"]
    lines += [f"  {n:4d}  {rule:18s} {page}" for (rule, page), n in groups.most_common(top)]
    lines += [f"  first: {v.page} {v.language} {v.rule} {v.widget}: {v.measured}"
              for v in report.items[:10]]
    lines += [f"  note: {note}" for note in report.notes]
    return "\n".join(lines)


def test_every_citizen_page_keeps_the_accessibility_rules(
    qtbot: QtBot, make_terminal: MakeTerminal
) -> None:
    terminal = make_terminal(idle_timeout_s=3600)
    answers = {k: v for service in DEMO_ANSWERS.values() for k, v in service.items()}
    report = walk(terminal, [SIZE], LANGUAGES, [0], answers=answers)
    seen = {p.page.split("~")[0] for p in report.pages}
    missing = expected_pages(terminal.visit.session.catalogue) - seen
    assert not missing, f"the walk did not reach {sorted(missing)}; notes: {report.notes}"
    assert {p.language for p in report.pages} == set(LANGUAGES)
    assert report.checked["font sizes"] > 0 and report.checked["contrast"] > 0
    assert report.checked["targets"] > 0 and report.checked["accessible names"] > 0
    assert report.violations == 0, summary(report)
