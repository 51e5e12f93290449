"""Handwriting recognition with the real zinnia library and the packaged Simplified Chinese model.

The characters are written as a person writes them: strokes in the usual order, each a line of
points about 8 px apart (what a finger moving across a touch screen reports), in a 300×300 box.
"""

from __future__ import annotations

import gc
import itertools
import math
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from kiosk import handwriting
from kiosk.handwriting import MODEL_ENV, HandwritingUnavailable, Recognizer, find_model

Point = tuple[float, float]
BOX = 300.0


def path(*corners: Point, step: float = 8.0) -> list[Point]:
    """A stroke through the corners, sampled every `step` px like touch-move events."""
    points = [corners[0]]
    for a, b in itertools.pairwise(corners):
        n = max(1, int(math.dist(a, b) / step))
        points += [
            (a[0] + (b[0] - a[0]) * i / n, a[1] + (b[1] - a[1]) * i / n) for i in range(1, n + 1)
        ]
    return points


# Each character as it is written, stroke by stroke, in writing order.
CHARACTERS: dict[str, list[list[Point]]] = {
    "一": [path((40, 150), (260, 150))],
    "十": [path((40, 140), (260, 140)), path((150, 40), (150, 270))],
    "人": [
        path((150, 40), (140, 140), (50, 260)),  # 撇: down and off to the left
        path((148, 135), (255, 260)),  # 捺: from its middle down to the right
    ],
    "大": [
        path((50, 110), (250, 107)),  # 横
        path((150, 30), (150, 110), (120, 200), (50, 265)),  # 撇 through the 横
        path((150, 110), (200, 200), (260, 265)),  # 捺 from the crossing
    ],
    "王": [
        path((60, 60), (240, 60)),
        path((60, 150), (240, 150)),
        path((150, 60), (150, 250)),
        path((40, 250), (260, 250)),
    ],
    "口": [
        path((60, 90), (62, 240)),  # 竖
        path((60, 90), (240, 90), (238, 240)),  # 横折
        path((62, 240), (238, 240)),  # 横 closing the bottom
    ],
}
# Written like this, 口 is also 囗 (the enclosure radical), the same shape in a larger box: the
# model may rank either first. Every other character here must come first.
FIRST = ("一", "十", "人", "大", "王")


@pytest.fixture(scope="module")
def recognizer() -> Iterator[Recognizer]:
    with Recognizer() as opened:
        yield opened


@pytest.mark.parametrize("character", FIRST)
def test_a_simple_character_comes_first(recognizer: Recognizer, character: str) -> None:
    found = recognizer.classify(CHARACTERS[character], BOX, BOX)
    assert found, "no candidates"
    assert found[0].text == character, [c.text for c in found]


def test_a_square_is_among_the_first_three(recognizer: Recognizer) -> None:
    found = [c.text for c in recognizer.classify(CHARACTERS["口"], BOX, BOX)]
    assert "口" in found[:3], found


def test_candidates_are_ranked_best_first_and_limited_to_count(recognizer: Recognizer) -> None:
    found = recognizer.classify(CHARACTERS["王"], BOX, BOX, count=4)
    assert len(found) == 4
    scores = [c.score for c in found]
    assert scores == sorted(scores, reverse=True)
    assert len({c.text for c in found}) == 4


def test_the_box_size_does_not_matter(recognizer: Recognizer) -> None:
    big = [[(x * 3, y * 3) for x, y in stroke] for stroke in CHARACTERS["大"]]
    assert recognizer.classify(big, BOX * 3, BOX * 3)[0].text == "大"


def test_stroke_order_is_what_is_read(recognizer: Recognizer) -> None:
    # 十 written as one horizontal stroke only is 一, not 十: the strokes given are what counts.
    first = recognizer.classify(CHARACTERS["十"][:1], BOX, BOX)[0].text
    assert first == "一"


def test_no_strokes_give_no_candidates(recognizer: Recognizer) -> None:
    assert recognizer.classify([], BOX, BOX) == []
    assert recognizer.classify([[], []], BOX, BOX) == []


def test_points_outside_the_box_are_kept_at_its_edge(recognizer: Recognizer) -> None:
    spilling = [path((-80, 150), (400, 150))]
    assert recognizer.classify(spilling, BOX, BOX)[0].text == "一"


def test_a_box_without_size_or_no_count_is_refused(recognizer: Recognizer) -> None:
    with pytest.raises(ValueError):
        recognizer.classify(CHARACTERS["一"], 0, BOX)
    with pytest.raises(ValueError):
        recognizer.classify(CHARACTERS["一"], BOX, BOX, count=0)


def test_threads_sharing_one_recognizer_get_the_same_answers(recognizer: Recognizer) -> None:
    expected = {c: recognizer.classify(s, BOX, BOX)[0].text for c, s in CHARACTERS.items()}
    seen: list[tuple[str, str]] = []
    lock = threading.Lock()

    def work() -> None:
        for _round in range(5):
            for character, strokes in CHARACTERS.items():
                text = recognizer.classify(strokes, BOX, BOX)[0].text
                with lock:
                    seen.append((character, text))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(seen) == 4 * 5 * len(CHARACTERS)
    assert all(text == expected[character] for character, text in seen)


def test_a_missing_model_is_handwriting_unavailable(tmp_path: Path) -> None:
    with pytest.raises(HandwritingUnavailable) as raised:
        Recognizer(tmp_path / "absent.model")
    assert "absent.model" in raised.value.detail
    assert str(raised.value) == "本机暂不能手写输入，请使用键盘输入。"  # the citizen's message


def test_the_model_path_comes_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(MODEL_ENV, str(tmp_path / "elsewhere.model"))
    with pytest.raises(HandwritingUnavailable) as raised:
        Recognizer()
    assert "elsewhere.model" in raised.value.detail
    monkeypatch.setenv(MODEL_ENV, str(find_model(handwriting.MODEL_CANDIDATES[0])))
    with Recognizer() as recognizer:
        assert recognizer.classify(CHARACTERS["一"], BOX, BOX)[0].text == "一"


def test_a_file_that_is_no_model_is_handwriting_unavailable(tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.model"
    bogus.write_bytes(b"not a zinnia model" * 100)
    with pytest.raises(HandwritingUnavailable) as raised:
        Recognizer(bogus)
    assert "bogus.model" in raised.value.detail


def test_a_missing_library_is_handwriting_unavailable() -> None:
    with pytest.raises(HandwritingUnavailable) as raised:
        Recognizer(library_names=["libzinnia-absent.so.9"])
    assert "libzinnia-absent.so.9" in raised.value.detail


def test_close_is_final_and_idempotent() -> None:
    recognizer = Recognizer()
    assert not recognizer.closed
    recognizer.close()
    recognizer.close()
    assert recognizer.closed
    with pytest.raises(RuntimeError):
        recognizer.classify(CHARACTERS["一"], BOX, BOX)
    with Recognizer() as scoped:
        scoped.classify(CHARACTERS["一"], BOX, BOX)
    assert scoped.closed


class _Counts:
    """Wraps the native calls that make or destroy a zinnia object and counts them."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.made: dict[str, int] = {"recognizer": 0, "character": 0, "result": 0}
        self.destroyed: dict[str, int] = {"recognizer": 0, "character": 0, "result": 0}
        zinnia = handwriting.load_library()
        for kind, new, destroy in (
            ("recognizer", "recognizer_new", "recognizer_destroy"),
            ("character", "character_new", "character_destroy"),
            ("result", "recognizer_classify", "result_destroy"),
        ):
            monkeypatch.setattr(zinnia, new, self._making(getattr(zinnia, new), kind))
            monkeypatch.setattr(zinnia, destroy, self._destroying(getattr(zinnia, destroy), kind))

    def _making(self, function: Callable[..., object], kind: str) -> Callable[..., object]:
        def call(*args: object) -> object:
            handle = function(*args)
            if handle:  # NULL: nothing was made
                self.made[kind] += 1
            return handle

        return call

    def _destroying(self, function: Callable[..., object], kind: str) -> Callable[..., object]:
        def call(*args: object) -> object:
            self.destroyed[kind] += 1
            return function(*args)

        return call


def test_every_native_object_made_is_destroyed(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    counts = _Counts(monkeypatch)
    with Recognizer() as recognizer:
        for _round in range(20):
            for strokes in CHARACTERS.values():
                recognizer.classify(strokes, BOX, BOX)
            recognizer.classify([], BOX, BOX)
    bogus = tmp_path / "bogus.model"
    bogus.write_bytes(b"not a zinnia model" * 100)
    with pytest.raises(HandwritingUnavailable):
        Recognizer(bogus)  # made, failed to open, destroyed
    assert counts.made["recognizer"] == 2
    assert counts.made["character"] >= 20 * len(CHARACTERS)
    assert counts.made["result"] == 20 * len(CHARACTERS)
    assert counts.made == counts.destroyed


def test_a_recognizer_never_closed_is_destroyed_when_collected(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    counts = _Counts(monkeypatch)
    recognizer = Recognizer()
    recognizer.classify(CHARACTERS["一"], BOX, BOX)
    del recognizer
    gc.collect()
    assert counts.made == counts.destroyed == {"recognizer": 1, "character": 1, "result": 1}
