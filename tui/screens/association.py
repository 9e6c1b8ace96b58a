"""One association: timeline, negotiation, exchanges and findings, with two small charts."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import (
    DataTable,
    Footer,
    Input,
    Label,
    OptionList,
    Sparkline,
    Static,
    TabbedContent,
    TabPane,
)
from textual.widgets.option_list import Option

from analyzer.model import Association, Exchange, Finding
from analyzer.names import uid_name
from analyzer.reports.common import (
    duration_text,
    iso_time,
    outcome_text,
    plural,
    size_text,
    status_text,
)
from analyzer.reports.tcp import tcp_line
from tui import charts, links, timeline
from tui.core import SEVERITY_MARK
from tui.messages import StoreUpdated
from tui.rows import ae_pair
from tui.safe import printable, safe_text
from tui.screens import negotiation
from tui.screens.base import BaseScreen, QueryInput, Throttle
from tui.widgets.timeline import TimelineHeader, TimelineView

THREAD_ABOVE = 20_000
"""An association of more PDUs than this is read in a worker thread (0.1 s and more)."""


@dataclass(frozen=True, slots=True)
class _Reading:
    """What :meth:`AssociationScreen._read` got from the store."""

    generation: int
    association: Association
    rows: list[timeline.Row]
    exchanges: list[Exchange]
    findings: list[Finding]
    flow: charts.Series
    spread: charts.Series
    cost: float
    """Seconds the reading took."""


class AssociationScreen(BaseScreen):
    """Everything about one association; ``finding`` puts the timeline cursor on it."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back"),
        Binding("slash", "search", "Search", key_display="/"),
        Binding("n", "next_finding(1)", "Next finding"),
        Binding("N", "next_finding(-1)", "Previous finding", show=False),
        Binding("1", "tab('timeline')", "Timeline", show=False),
        Binding("2", "tab('negotiation')", "Negotiation", show=False),
        Binding("3", "tab('exchanges')", "Exchanges", show=False),
        Binding("4", "tab('findings')", "Findings tab", show=False),
        Binding("l", "follow_link", "Follow the workflow link", show=False),
    ]

    def __init__(self, association_id: int, finding: Finding | None = None) -> None:
        super().__init__()
        self.association_id = association_id
        self._throttle = Throttle(self, self.rebuild)
        self._exchanges: list[Exchange] = []
        self._findings: list[Finding] = []
        self._generation = 0
        self._in_flight = False
        self._again = False
        self._pending_finding = finding
        """Where to put the cursor once the timeline is read."""

    @property
    def association(self) -> Association:
        a = self.store.association(self.association_id)
        assert a is not None
        return a

    def compose(self) -> ComposeResult:
        a = self.association
        yield Static(id="assoc-title", classes="title-bar")
        with Horizontal(classes="chart"):
            yield Label("throughput", classes="chart-name")
            yield Sparkline([], id="throughput")
            yield Label(id="throughput-caption", classes="chart-caption")
        with Horizontal(classes="chart"):
            yield Label("latency   ", classes="chart-name")
            yield Sparkline([], id="latency")
            yield Label(id="latency-caption", classes="chart-caption")
        with TabbedContent(initial="timeline"):
            with TabPane("1 Timeline", id="timeline"):
                yield TimelineHeader(a, id="timeline-header")
                yield TimelineView(a, id="timeline-view")
                yield Static(id="row-detail")
            with (
                TabPane("2 Negotiation", id="negotiation"),
                VerticalScroll(id="negotiation-scroll"),
            ):
                yield Static(id="contexts")
                yield Static(id="user-info")
            with TabPane("3 Exchanges", id="exchanges"):
                yield DataTable(id="exchange-table", cursor_type="row", zebra_stripes=True)
            with TabPane("4 Findings", id="findings"):
                yield OptionList(id="finding-list")
        yield QueryInput(
            placeholder="search the timeline (enter: next match, esc: close)",
            id="search",
            classes="query",
        )
        yield Footer()

    @property
    def view(self) -> TimelineView:
        return self.query_one(TimelineView)

    def on_mount(self) -> None:
        table = self.query_one("#exchange-table", DataTable)
        table.add_columns("#", "Command", "By", "Msg", "SOP class", "Status", "Latency", "Data")
        self.view.focus()
        self.rebuild()

    # --- building -------------------------------------------------------------------------

    @on(StoreUpdated)
    def store_updated(self, message: StoreUpdated) -> None:
        if message.update.touches(self.association_id):
            # a timeline of many PDUs is rebuilt at most every ten times it takes to build
            self._throttle.request()

    def rebuild(self) -> None:
        """Read the association again from the store and refresh every part.

        A long association (many PDUs) is read and laid out in a worker thread, so that the
        screen stays responsive; the result is applied here, in the UI thread.
        """
        a = self.association
        if a.requestor_pdus.total + a.acceptor_pdus.total <= THREAD_ABOVE:
            self._generation += 1
            self._apply(self._read(self._generation))
        elif self._in_flight:
            self._again = True  # one reading at a time; read once more when it is done
        else:
            self._generation += 1
            self._in_flight = True
            if not self.view.rows:
                self.query_one("#row-detail", Static).update(Text("reading the timeline…"))
            self._read_in_thread(self._generation)

    def _read(self, generation: int) -> _Reading:
        """Everything the screen shows, from the store (safe in any thread)."""
        started = time.monotonic()
        store, aid = self.store, self.association_id
        a = store.association(aid)
        assert a is not None
        pdus = store.pdus(aid)
        exchanges, findings = store.exchanges(aid), store.findings(aid)
        rows = timeline.build(
            a,
            pdus,
            exchanges,
            gaps=store.gaps(aid),
            violations=store.violations(aid),
            notes=store.notes(aid),
            findings=findings,
        )
        width = max(8, self.size.width - 50)
        flow = charts.throughput(a, pdus, exchanges, width)
        spread = charts.latency_distribution(exchanges, min(width, 24))
        cost = time.monotonic() - started
        return _Reading(generation, a, rows, exchanges, findings, flow, spread, cost)

    @work(thread=True, exclusive=True, group="timeline")
    def _read_in_thread(self, generation: int) -> None:
        reading = self._read(generation)
        self.app.call_from_thread(self._read_done, reading)

    def _read_done(self, reading: _Reading) -> None:
        self._in_flight = False
        self._throttle.note_cost(reading.cost)
        self._apply(reading)
        if self._again:
            self._again = False
            self._throttle.request()

    def _apply(self, reading: _Reading) -> None:
        if reading.generation != self._generation:
            return  # a newer reading is on its way
        a = reading.association
        self._exchanges, self._findings = reading.exchanges, reading.findings
        self.view.set_rows(a, reading.rows)
        self.query_one(TimelineHeader).association = a
        self.query_one(TimelineHeader).refresh()
        self._title(a)
        self._charts(reading.flow, reading.spread)
        self._negotiation(a)
        self._exchange_table()
        self._finding_list()
        self._row_detail()
        if self._pending_finding is not None and reading.rows:
            self.view.move_to(timeline.index_of_finding(reading.rows, self._pending_finding))
            self._pending_finding = None

    def _title(self, a: Association) -> None:
        summary = self.index.summaries.get(a.id)
        look = summary.look.value if summary is not None else "open"
        text = Text.assemble(
            (f"#{a.id} ", "bold"), (ae_pair(a), "bold"), f"  {a.client} → {a.server}  "
        )
        text.append(outcome_text(a), style=self.view.style(f"timeline--{_LOOK_ROW[look]}"))
        total = a.requestor_pdus.bytes + a.acceptor_pdus.bytes
        text.append(
            f"\n{iso_time(a.start_ts)} · {duration_text(a.duration_ns)} · "
            f"{plural(a.exchanges, 'exchange')} · {size_text(total)} · "
            f"{plural(len(self._findings), 'finding')}"
        )
        workflow = links.workflow_line(self.store, a)
        if workflow is not None:
            text.append(f"\n{workflow}", style="italic")
        tcp = tcp_line(a.tcp)
        if tcp is not None:
            text.append(f"\n{tcp}")
        self.query_one("#assoc-title", Static).update(text)

    def _charts(self, flow: charts.Series, spread: charts.Series) -> None:
        self.query_one("#throughput", Sparkline).data = flow.values
        self.query_one("#throughput-caption", Label).update(flow.caption)
        self.query_one("#latency", Sparkline).data = spread.values
        self.query_one("#latency-caption", Label).update(spread.caption)

    def _negotiation(self, a: Association) -> None:
        look = self.view.style
        self.query_one("#contexts", Static).update(negotiation.contexts(a, look))
        self.query_one("#user-info", Static).update(negotiation.user_info(a, look))

    def _exchange_table(self) -> None:
        table = self.query_one("#exchange-table", DataTable)
        cursor = table.cursor_row
        table.clear()
        for e in self._exchanges:
            data = e.request_dataset_bytes + e.response_dataset_bytes
            status = status_text(e)
            look = timeline.STATUS_LOOK.get(e.status_category, "warning")
            table.add_row(
                str(e.index),
                e.service,
                "SCU" if e.from_requestor else "SCP",
                "-" if e.message_id is None else str(e.message_id),
                safe_text(uid_name(e.sop_class) if e.sop_class else "-"),
                Text(status, style=self.view.style(f"timeline--{look}")),
                duration_text(e.latency_ns),
                size_text(data) if data else "",
                key=str(e.index),
            )
        if self._exchanges:
            table.move_cursor(row=min(cursor, len(self._exchanges) - 1))

    def _finding_list(self) -> None:
        options = self.query_one("#finding-list", OptionList)
        highlighted = options.highlighted
        options.clear_options()
        if not self._findings:
            options.add_option(Option("No findings for this association.", disabled=True))
            return
        for f in self._findings:
            look = self.view.style(f"timeline--{timeline.SEVERITY_LOOK[f.severity]}")
            prompt = Text.assemble(
                (f"{SEVERITY_MARK[f.severity]} {f.code}", look),
                f"  {printable(f.title)}\n",
                (f"  {printable(f.explanation)}\n", ""),
                (f"  hint: {printable(f.hint)}", "italic"),
            )
            options.add_option(Option(prompt))
        if highlighted is not None:
            options.highlighted = min(highlighted, len(self._findings) - 1)

    # --- the timeline --------------------------------------------------------------------------

    @on(TimelineView.Highlighted)
    def _row_detail(self) -> None:
        view = self.view
        if not view.rows:
            return
        row = view.rows[min(view.cursor, len(view.rows) - 1)]
        text = Text(no_wrap=False)
        if row.finding is not None:
            f = row.finding
            # the hint first: at 80×24 the explanation may be cut
            text.append(f"hint: {printable(f.hint)}\n", style="italic")
            text.append(printable(f.explanation))
        elif row.exchange is not None:
            e = row.exchange
            text.append(
                f"{e.service} #{e.message_id} · {e.status_category} · "
                f"latency {duration_text(e.latency_ns)}"
            )
            text.append("   enter: command, data set, bytes", style="italic")
        else:
            frames = (
                f"frames {row.first_frame}-{row.last_frame}"
                if row.last_frame and row.last_frame != row.first_frame
                else f"frame {row.first_frame}"
            )
            text.append(f"{row.label}  {row.detail}  ({frames})" if row.first_frame else row.label)
        self.query_one("#row-detail", Static).update(text)

    @on(TimelineView.Selected)
    def row_selected(self, message: TimelineView.Selected) -> None:
        row = self.view.rows[message.index]
        if row.exchange is not None:
            self.open_exchange(row.exchange)
        elif row.finding is not None:
            self.action_tab("findings")
            self.query_one("#finding-list", OptionList).highlighted = self._findings.index(
                row.finding
            )

    def open_exchange(self, exchange: Exchange) -> None:
        from tui.screens.exchange import ExchangeScreen

        self.app.push_screen(ExchangeScreen(exchange))

    @on(DataTable.RowSelected, "#exchange-table")
    def exchange_selected(self, message: DataTable.RowSelected) -> None:
        self.open_exchange(self._exchanges[message.cursor_row])

    @on(OptionList.OptionSelected, "#finding-list")
    def finding_selected(self, message: OptionList.OptionSelected) -> None:
        finding = self._findings[message.option_index]
        self.action_tab("timeline")
        self.view.move_to(timeline.index_of_finding(self.view.rows, finding))

    def action_follow_link(self) -> None:
        """To the request this association was opened for (a C-MOVE, a storage commitment
        N-ACTION), or else to the first association its own requests led to."""
        a = self.association
        back = links.origin(self.store, a)
        if back is not None:
            request = links.origin_exchange(self.store, back)
            if request is not None:
                self.open_exchange(request)
                return
        onward = links.onward(self.store, a)
        if onward:
            self.app.push_screen(AssociationScreen(onward[0].target_association))
            return
        self.notify("No workflow link from or to this association.", timeout=3)

    def action_next_finding(self, step: int) -> None:
        self.action_tab("timeline")
        found = self.view.next_finding(step)
        if found is None:
            self.notify("No findings on this association.", timeout=3)
        else:
            self.view.move_to(found)

    def action_tab(self, tab: str) -> None:
        self.query_one(TabbedContent).active = tab
        target = {
            "timeline": self.view,
            "negotiation": self.query_one("#negotiation-scroll"),
            "exchanges": self.query_one("#exchange-table"),
            "findings": self.query_one("#finding-list"),
        }[tab]
        target.focus()

    # --- search and back ---------------------------------------------------------------

    def action_search(self) -> None:
        self.action_tab("timeline")
        box = self.query_one("#search", Input)
        box.display = True
        box.focus()

    @on(Input.Changed, "#search")
    def search_changed(self, message: Input.Changed) -> None:
        if message.value:
            found = self.view.find(message.value, self.view.cursor)
            if found is not None:
                self.view.move_to(found)

    @on(Input.Submitted, "#search")
    def search_next(self, message: Input.Submitted) -> None:
        if not message.value:
            return
        found = self.view.find(message.value, self.view.cursor + 1)
        if found is None:
            missing = f"'{printable(message.value)}' is not in the timeline."
            self.notify(missing, timeout=3, markup=False)  # what was typed is no markup
        else:
            self.view.move_to(found)

    def action_back(self) -> None:
        box = self.query_one("#search", Input)
        if box.display:
            box.display = False
            self.view.focus()
            return
        self.app.pop_screen()


_LOOK_ROW = {"failed": "failed", "warning": "warning", "ok": "ok", "open": "info"}
