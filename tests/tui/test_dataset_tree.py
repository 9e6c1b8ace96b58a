"""The data set tree: coloured by VR group, searchable, and redacted under --redact phi."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from rich.text import Span, Text
from textual.pilot import Pilot
from textual.widgets import Input, Tree
from textual.widgets.tree import TreeNode

from analyzer import redact
from tui import dataset
from tui.app import DicomtapApp
from tui.screens.exchange import MATCH_STYLE, PART_STYLE, ExchangeScreen

from .conftest import sample_store
from .test_pilot import run, static_text

# move_orthanc.pcap: the sub-association ORTHANC → STORESCP, its first C-STORE
OPEN = ["down", "enter", "3", "enter"]


@pytest.fixture
def phi_hidden() -> Iterator[None]:
    redact.redact_phi(True)
    yield
    redact.redact_phi(False)


def test_vr_groups() -> None:
    assert [dataset.vr_group(vr) for vr in ("PN", "DA", "UI", "CS", "US", "OB", "SQ", "LO")] == [
        "name",
        "time",
        "uid",
        "code",
        "number",
        "binary",
        "sequence",
        "text",
    ]


def label(node: TreeNode[Any]) -> Text:
    return node.label if isinstance(node.label, Text) else Text(node.label)


def plain(node: TreeNode[Any] | None) -> str:
    assert node is not None
    return label(node).plain


def spans(node: TreeNode[Any] | None) -> list[Span]:
    assert node is not None
    return label(node).spans


def _labels(tree: Tree[object]) -> list[str]:
    out = []
    todo = list(tree.root.children)
    while todo:
        node = todo.pop(0)
        out.append(plain(node))
        todo.extend(node.children)
    return out


def test_tree_colours_and_search() -> None:
    store = sample_store("move_orthanc.pcap")

    async def scenario(pilot: Pilot[None], app: DicomtapApp) -> None:
        await pilot.press(*OPEN)
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, ExchangeScreen)
        await pilot.press("3")
        await pilot.pause()
        tree = screen.query_one("#dataset-tree", Tree)
        first = tree.root.children[0]
        name = next(n for n in first.children if "PatientName" in plain(n))
        value = plain(name).split(": ", 1)[1]
        pieces = [(plain(name)[s.start : s.end], str(s.style)) for s in spans(name)]
        assert (value, PART_STYLE["name"]) in pieces  # a person's name reads as one
        uid = next(n for n in first.children if "SOPInstanceUID" in plain(n))
        assert any(str(s.style) == PART_STYLE["uid"] for s in spans(uid))

        await pilot.press("slash")
        box = screen.query_one("#tree-search", Input)
        assert box.has_focus
        await pilot.press(*"uid")
        await pilot.pause()
        count = static_text(app, "#tree-search-count")
        total = sum("uid" in label.lower() for label in _labels(tree))
        assert total >= 3 and count.startswith(f"1/{total}")
        assert "uid" in plain(tree.cursor_node).lower()
        assert any(str(s.style) == MATCH_STYLE for s in spans(tree.cursor_node))
        before = tree.cursor_node
        await pilot.press("down")
        await pilot.pause()
        assert tree.cursor_node is not before
        assert static_text(app, "#tree-search-count").startswith(f"2/{total}")
        await pilot.press("up", "up")
        await pilot.pause()
        assert static_text(app, "#tree-search-count").startswith(f"{total}/{total}")
        box.value = "no such thing"
        await pilot.pause()
        assert static_text(app, "#tree-search-count").startswith("no match")
        assert not any(  # the old matches are no longer highlighted
            str(s.style) == MATCH_STYLE for n in [before] for s in spans(n)
        )
        await pilot.press("escape")
        await pilot.pause()
        assert not screen.query_one("#tree-search-bar").has_class("shown")
        assert isinstance(app.screen, ExchangeScreen)

    run(store, scenario)


def test_redacted_tree_hides_the_patient_and_search_cannot_find_it(phi_hidden: None) -> None:
    store = sample_store("move_orthanc.pcap")

    async def scenario(pilot: Pilot[None], app: DicomtapApp) -> None:
        await pilot.press(*OPEN, "3")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, ExchangeScreen)
        tree = screen.query_one("#dataset-tree", Tree)
        name = next(n for n in tree.root.children[0].children if "PatientName" in plain(n))
        assert plain(name).endswith(f": {redact.REDACTED}")
        request = screen.exchange.request
        assert request is not None and request.dataset is not None
        real = str(request.dataset.decode().PatientName)  # what the wire carried
        assert real and real != redact.REDACTED
        await pilot.press("slash")
        box = screen.query_one("#tree-search", Input)
        box.value = real
        await pilot.pause()
        assert static_text(app, "#tree-search-count").startswith("no match")
        assert not any(real in label for label in _labels(tree))
        box.value = "redacted"
        await pilot.pause()
        assert not static_text(app, "#tree-search-count").startswith("no match")

    run(store, scenario)
