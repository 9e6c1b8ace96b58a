"""Every finding of the capture; enter jumps to its evidence on the association's timeline."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import DataTable, Footer, Static

from analyzer.model import Finding, Severity
from tui.core import SEVERITY_MARK
from tui.frames import FrameNames
from tui.messages import StoreUpdated
from tui.rows import ae_pair
from tui.safe import printable, safe_text
from tui.screens.base import BaseScreen, Throttle

_STYLE = {Severity.ERROR: "bold red", Severity.WARNING: "yellow", Severity.INFO: "cyan"}


class FindingsScreen(BaseScreen):
    """Findings across all associations, worst first."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back"),
        Binding("n", "next_finding(1)", "Next finding"),
        Binding("N", "next_finding(-1)", "Previous finding", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.findings: list[Finding] = []
        self._throttle = Throttle(self, self.fill)

    def compose(self) -> ComposeResult:
        yield Static(id="findings-title", classes="title-bar")
        yield DataTable(id="findings-table", cursor_type="row", zebra_stripes=True)
        yield Static(id="finding-detail")
        yield Footer()

    @property
    def table(self) -> DataTable[str | Text]:
        return self.query_one("#findings-table", DataTable)

    def on_mount(self) -> None:
        self.table.add_columns("Sev", "Code", "Association", "Title")
        self.fill()
        self.table.focus()

    @on(StoreUpdated)
    def store_updated(self, message: StoreUpdated) -> None:
        if message.update.findings or message.update.done:
            self._throttle.request()

    def fill(self) -> None:
        """(Re)build the table from the index, worst first, keeping the cursor's finding."""
        table = self.table
        keep = self.findings[table.cursor_row] if self.findings else None
        summaries = self.index.summaries
        self.findings = sorted(
            self.index.findings, key=lambda f: (-f.severity, f.evidence.association)
        )
        table.clear()
        for f in self.findings:
            s = summaries.get(f.evidence.association)
            who = f"#{f.evidence.association} {ae_pair(s.association)}" if s else "?"
            table.add_row(
                Text(f"{SEVERITY_MARK[f.severity]} {f.severity.label}", style=_STYLE[f.severity]),
                f.code,
                safe_text(who),
                safe_text(f.title),
            )
        if keep is not None and keep in self.findings:
            table.move_cursor(row=self.findings.index(keep))
        counts = {sev: sum(1 for f in self.findings if f.severity == sev) for sev in Severity}
        title = Text.assemble(("Findings", "bold"), f"  {len(self.findings)}")
        for sev in reversed(Severity):
            if counts[sev]:
                title.append(f" · {counts[sev]} {sev.label}", style=_STYLE[sev])
        self.query_one("#findings-title", Static).update(title)
        self.show_detail()

    @on(DataTable.RowHighlighted, "#findings-table")
    def show_detail(self) -> None:
        detail = self.query_one("#finding-detail", Static)
        if not self.findings:
            detail.update(
                Text("No findings: the diagnosis rules reported nothing.", style="italic")
            )
            return
        f = self.findings[min(self.table.cursor_row, len(self.findings) - 1)]
        ev = f.evidence
        names = FrameNames.of(self.store.source)
        where = ", ".join(names.name(n) for n in ev.frames[:8]) if ev.frames else "-"
        text = Text.assemble(
            (f"{printable(f.title)}\n", "bold"),
            f"{printable(f.explanation)}\n",
            ("hint: ", "bold"),
            (f"{printable(f.hint)}\n", "italic"),
            (f"evidence: association #{ev.association}, frames {where}", "dim"),
            (f" — {printable(ev.detail)}" if ev.detail else "", "dim"),
            ("   enter: show on the timeline", "dim italic"),
        )
        detail.update(text)

    @on(DataTable.RowSelected, "#findings-table")
    def jump(self, message: DataTable.RowSelected) -> None:
        from tui.screens.association import AssociationScreen

        f = self.findings[message.cursor_row]
        if self.store.association(f.evidence.association) is None:
            self.notify("That association is not in the store.", severity="warning")
            return
        self.app.push_screen(AssociationScreen(f.evidence.association, finding=f))

    def action_next_finding(self, step: int) -> None:
        if self.findings:
            row = (self.table.cursor_row + step) % len(self.findings)
            self.table.move_cursor(row=row)

    def action_back(self) -> None:
        self.app.pop_screen()
