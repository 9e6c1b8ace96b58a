"""One DIMSE exchange: summary, command sets, data sets (decoded lazily) and kept bytes."""

from __future__ import annotations

from typing import ClassVar

from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from rich import box
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Footer, Input, Static, TabbedContent, TabPane, Tree
from textual.widgets.tree import NodeID, TreeNode

from analyzer.model import DimseMessage, Exchange
from analyzer.names import uid_name
from analyzer.reports.common import duration_text
from tui import dataset, details, links, save, wireshark
from tui.frames import FrameNames
from tui.safe import printable, safe_text
from tui.screens.base import BaseScreen, QueryInput
from tui.widgets.hexview import HexView

TreeData = DimseMessage | DataElement | Dataset | None
"""What a data set tree node stands for: a message (its data set, not yet decoded), a
sequence element or a sequence item (children not yet added), or nothing more to open."""


class ExchangeScreen(BaseScreen):
    """Everything about one request and its final response."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back"),
        Binding("1", "tab('summary')", "Summary", show=False),
        Binding("2", "tab('command')", "Command", show=False),
        Binding("3", "tab('dataset')", "Data set", show=False),
        Binding("4", "tab('hex')", "Hex", show=False),
        Binding("l", "follow_link", "Open the linked association", show=False),
        Binding("left_square_bracket", "step(-1)", "Previous exchange", key_display="["),
        Binding("right_square_bracket", "step(1)", "Next exchange", key_display="]"),
        # priority: decided as the key arrives, so keys typed right after / reach the box
        Binding("slash", "search", "Search the data sets", key_display="/", priority=True),
        Binding("down", "search_key(1)", "Next match", show=False),
        Binding("up", "search_key(-1)", "Previous match", show=False),
        Binding("w", "save", "Save .dcm"),
        Binding("y", "copy_filter", "Copy a Wireshark filter", show=False),
        Binding("Y", "copy_ids", "Copy AE titles and UIDs", show=False),
    ]

    def __init__(self, exchange: Exchange) -> None:
        super().__init__()
        self.exchange = exchange
        self._matches: list[TreeNode[TreeData]] = []
        self._labels: dict[NodeID, Text] = {}
        """The labels of the matched nodes as they were before being highlighted."""
        self._match = 0

    def compose(self) -> ComposeResult:
        e = self.exchange
        title = Text.assemble(
            (f"{e.service} #{e.message_id}", "bold"),
            f"  {printable(uid_name(e.sop_class)) if e.sop_class else ''}  ",
            (e.status_meaning, "bold"),
            f"  latency {duration_text(e.latency_ns)}",
            (f"  (association #{e.association}, exchange {e.index})", "dim"),
        )
        targets = links.exchange_targets(self.store, e)
        if targets:
            shown = ", ".join(f"#{t}" for t in targets[:4]) + (" …" if len(targets) > 4 else "")
            title.append(f"\nworkflow: → association {shown}   (l: open)", style="italic")
        yield Static(title, classes="title-bar")
        with TabbedContent(initial="summary"):
            with TabPane("1 Summary", id="summary"), VerticalScroll(id="summary-scroll"):
                yield Static(self._summary(), id="summary-text")
            with TabPane("2 Command", id="command"), VerticalScroll(id="command-scroll"):
                yield Static(self._commands(), id="command-text")
            with TabPane("3 Data set", id="dataset"):
                yield Tree[TreeData]("Data sets", id="dataset-tree")
            with TabPane("4 Hex", id="hex"):
                yield HexView(details.hex_sections(e), id="hex-view")
        with Horizontal(id="tree-search-bar", classes="search-bar"):
            yield QueryInput(
                placeholder="search the data sets (enter: next match, esc: close)",
                id="tree-search",
                classes="query",
            )
            yield Static(id="tree-search-count", classes="search-count")
        yield Footer()

    def on_mount(self) -> None:
        tree = self.query_one("#dataset-tree", Tree)
        tree.show_root = False
        tree.guide_depth = 2
        e = self.exchange
        for title, msg in ((f"{e.service}-RQ", e.request), (f"{e.service}-RSP", e.final)):
            if msg is None:
                continue
            info = msg.dataset
            if info is None:
                tree.root.add_leaf(f"{title}: no data set")
            else:
                tree.root.add(safe_text(f"{title} data set: {dataset.describe(msg)}"), data=msg)
        # at once: a deferred focus would land after keys typed as the screen opens (/)
        self.set_focus(self.query_one("#summary-scroll"))

    def _summary(self) -> RenderableType:
        a = self.store.association(self.exchange.association)
        table = Table(show_header=False, box=None, expand=True, padding=(0, 1))
        table.add_column(style="bold", no_wrap=True)
        table.add_column(overflow="fold")
        frames = FrameNames.of(self.store.source)
        for name, value, look in details.exchange_rows(self.exchange, a, frames):
            table.add_row(name, safe_text(value, style=_LOOK.get(look, "")))
        return table

    def _commands(self) -> RenderableType:
        e = self.exchange
        parts: list[RenderableType] = []
        for title, msg in ((f"{e.service}-RQ", e.request), (f"{e.service}-RSP (final)", e.final)):
            if msg is None:
                parts.append(Text(f"{title}: not seen", style="italic"))
                continue
            table = Table(
                title=f"{title} command set", title_justify="left", box=box.SIMPLE_HEAD, expand=True
            )
            table.add_column("Tag", no_wrap=True)
            table.add_column("Keyword", no_wrap=True)
            table.add_column("Value", overflow="fold")
            for tag, name, value in details.command_rows(msg, e):
                table.add_row(tag, name, safe_text(value))
            parts.append(table)
        if e.pending:
            parts.append(Text(f"{e.pending} pending response(s) were not kept.", style="italic"))
        return Group(*parts)

    # --- the data set tree, opened lazily ----------------------------------------------------

    @on(TabbedContent.TabActivated)
    def tab_activated(self, message: TabbedContent.TabActivated) -> None:
        if message.pane.id == "dataset":
            tree = self.query_one("#dataset-tree", Tree)
            if tree.root.children and not tree.root.children[0].is_expanded:
                tree.root.children[0].expand()
            if not self.query_one("#tree-search-bar").has_class("shown"):  # / opened it
                tree.focus()

    @on(Tree.NodeExpanded, "#dataset-tree")
    def node_expanded(self, message: Tree.NodeExpanded[TreeData]) -> None:
        self._fill(message.node)

    def _fill(self, node: TreeNode[TreeData]) -> None:
        """Add the children of ``node`` (once): decode a message's data set, or list the
        items of a sequence or the elements of an item."""
        data = node.data
        if data is None or node.children:
            return
        if isinstance(data, DimseMessage):
            ds, what = dataset.decode(data)
            if ds is None:
                node.add_leaf(safe_text(what))
                return
            self._add_elements(node, ds)
        elif isinstance(data, DataElement):
            for title, item in dataset.items(data):
                node.add(title, data=item)
        else:
            self._add_elements(node, data)

    @staticmethod
    def _add_elements(node: TreeNode[TreeData], ds: Dataset) -> None:
        for elem in ds:
            if elem.VR == "SQ" and elem.value:
                node.add(element_label(elem), data=elem)
            else:
                node.add_leaf(element_label(elem))

    # --- searching the data set tree --------------------------------------------------------

    def action_search(self) -> None:
        # the tab without focusing the tree: a deferred focus would take it from the box
        self.query_one(TabbedContent).active = "dataset"
        self.query_one("#tree-search-bar").add_class("shown")
        # at once, not after the keys already queued behind / (Widget.focus waits for them)
        self.set_focus(self.query_one("#tree-search", Input))

    def _all_nodes(self) -> list[TreeNode[TreeData]]:
        """Every node of the tree, each data set decoded and every sequence opened (in
        the tree's model, not on screen), up to :data:`SEARCH_NODES` nodes."""
        out: list[TreeNode[TreeData]] = []
        todo = list(reversed(self.query_one("#dataset-tree", Tree).root.children))
        while todo and len(out) < SEARCH_NODES:
            node = todo.pop()
            out.append(node)
            self._fill(node)
            todo.extend(reversed(node.children))
        return out

    @on(Input.Changed, "#tree-search")
    def tree_search_changed(self, message: Input.Changed) -> None:
        needle = message.value.lower()
        for node in self._matches:  # the previous matches look as they did
            node.set_label(self._labels.pop(node.id))
        self._matches = []
        if needle:
            for node in self._all_nodes():
                label = Text(node.label) if isinstance(node.label, str) else node.label
                if needle in label.plain.lower():
                    self._labels[node.id] = label
                    shown = label.copy()
                    shown.stylize(MATCH_STYLE)
                    node.set_label(shown)
                    self._matches.append(node)
        self._match = 0
        if self._matches:
            self._show(self._matches[0])
        self._tree_search_count()

    @on(Input.Submitted, "#tree-search")
    def tree_search_submitted(self) -> None:
        self.action_step_match(1)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "search_key":  # ↑ and ↓ step through matches while typing only
            return self.query_one("#tree-search", Input).has_focus
        if action == "search":  # in the box, / is typed
            return not self.query_one("#tree-search", Input).has_focus
        return True

    def action_search_key(self, step: int) -> None:
        self.action_step_match(step)

    def action_step_match(self, step: int) -> None:
        """To the next (1) or previous (-1) element the search matches."""
        if not self._matches:
            return
        self._match = (self._match + step) % len(self._matches)
        self._show(self._matches[self._match])
        self._tree_search_count()

    def _show(self, node: TreeNode[TreeData]) -> None:
        parent = node.parent
        while parent is not None:
            parent.expand()
            parent = parent.parent
        tree = self.query_one("#dataset-tree", Tree)

        def move() -> None:  # once the opened branches are laid out
            tree.move_cursor(node)
            tree.scroll_to_node(node, animate=False)

        self.call_after_refresh(move)

    def _tree_search_count(self) -> None:
        box = self.query_one("#tree-search", Input)
        count = self.query_one("#tree-search-count", Static)
        total = len(self._matches)
        if not box.value:
            count.update("")
        elif total:
            count.update(Text(f"{self._match + 1}/{total}  enter/↓ next · ↑ previous"))
        else:
            count.update(Text("no match", style="red"))

    def action_tab(self, tab: str) -> None:
        self.query_one(TabbedContent).active = tab
        target = {
            "summary": "#summary-scroll",
            "command": "#command-scroll",
            "dataset": "#dataset-tree",
            "hex": "#hex-view",
        }[tab]
        self.query_one(target).focus()

    def action_follow_link(self) -> None:
        """To the association this exchange led to (a C-MOVE's sub-association)."""
        targets = links.exchange_targets(self.store, self.exchange)
        if not targets:
            self.notify("No other association is linked to this exchange.", timeout=3)
            return
        from tui.screens.association import AssociationScreen

        self.app.push_screen(AssociationScreen(targets[0]))

    def action_step(self, step: int) -> None:
        """To the previous or next exchange of the association."""
        e = self.exchange
        exchanges = self.store.exchanges(e.association)
        i = next((k for k, x in enumerate(exchanges) if x.index == e.index), None)
        if i is None or not 0 <= i + step < len(exchanges):
            self.notify("No more exchanges this way.", timeout=2)
            return
        self.app.switch_screen(ExchangeScreen(exchanges[i + step]))

    def action_save(self) -> None:
        """Ask for a folder, then write the exchange's data sets there as DICOM files."""
        from tui.screens.save import SaveScreen

        e = self.exchange
        if all(m is None or m.dataset is None for m in (e.request, e.final)):
            self.notify("This exchange carried no data set.", timeout=3)
            return

        def chosen(folder: str | None) -> None:
            if folder:
                self._save_datasets(folder)

        what = f"the data sets of {e.service} #{e.message_id} as DICOM files into the folder"
        hint = "a folder (made if missing); files are named after their SOP instance UIDs"
        self.app.push_screen(SaveScreen(what, "dicomtap-export", hint), chosen)

    @work(thread=True, group="save")
    def _save_datasets(self, folder: str) -> None:
        try:
            done = save.save_datasets(self.store, self.exchange, folder, self.dicomtap.frames)
        except save.SaveError as exc:
            message, severity = f"Not saved: {exc}", "error"
        else:
            message, severity = str(done), "information" if done.files else "warning"
        self.app.call_from_thread(
            self.notify, printable(message), severity=severity, timeout=10, markup=False
        )

    def action_copy_filter(self) -> None:
        a = self.store.association(self.exchange.association)
        if a is not None:
            self.copy(
                wireshark.display_filter(a, wireshark.frame_names(self.store.source)),
                "Wireshark filter",
            )

    def action_copy_ids(self) -> None:
        a = self.store.association(self.exchange.association)
        if a is not None:
            self.copy(wireshark.identifiers(a, self.exchange), "AE titles and UIDs")

    def action_back(self) -> None:
        bar = self.query_one("#tree-search-bar")
        if bar.has_class("shown"):
            bar.remove_class("shown")  # the matches stay highlighted
            self.query_one("#dataset-tree").focus()
            return
        self.app.pop_screen()


def element_label(elem: DataElement) -> Text:
    """A tree label coloured by part: the tag dim, the value by its VR group."""
    text = Text()
    for piece, part in dataset.label_parts(elem):
        text.append(printable(piece), style=PART_STYLE.get(part, ""))
    return text


PART_STYLE = {
    "tag": "dim",
    "vr": "dim bold",
    "keyword": "",
    "name": "bold magenta",
    "time": "green",
    "uid": "cyan",
    "code": "yellow",
    "number": "bright_blue",
    "binary": "dim italic",
    "sequence": "bold",
    "text": "",
}
"""Colours of the label's parts and of the value's VR groups (:func:`tui.dataset.vr_group`)."""
MATCH_STYLE = "reverse"
SEARCH_NODES = 50_000
"""Most tree nodes a search opens (a data set is kept up to its pixel data: far fewer)."""


_LOOK = {"ok": "green", "warning": "yellow", "failed": "bold red", "muted": "dim"}
