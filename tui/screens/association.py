"""One association: timeline, negotiation, exchanges and findings, with two small charts."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import ClassVar

from rich.text import Text
from textual import events, on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
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
from tui import charts, links, timeline, wireshark
from tui.core import SEVERITY_MARK, outcome_look
from tui.frames import FrameNames
from tui.messages import StoreUpdated
from tui.rows import ae_pair
from tui.safe import printable, safe_text
from tui.screens import negotiation
from tui.screens.base import BaseScreen, QueryInput, Throttle
from tui.widgets.timeline import TimelineHeader, TimelineView

COMPACT_BELOW = 32
"""Terminals with fewer rows than this get the compact header (one title line, one chart
line)."""
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
        # priority: decided as the key arrives, so keys typed right after / reach the box
        Binding("slash", "search", "Search", key_display="/", priority=True),
        Binding("down", "search_key(1)", "Next match", show=False),
        Binding("up", "search_key(-1)", "Previous match", show=False),
        Binding("greater_than_sign", "step_match(1)", "Next match", key_display=">", show=False),
        Binding("less_than_sign", "step_match(-1)", "Previous match", key_display="<", show=False),
        Binding("n", "next_finding(1)", "Next finding"),
        Binding("N", "next_finding(-1)", "Previous finding", show=False),
        Binding("1", "tab('timeline')", "Timeline", show=False),
        Binding("2", "tab('negotiation')", "Negotiation", show=False),
        Binding("3", "tab('exchanges')", "Exchanges", show=False),
        Binding("4", "tab('findings')", "Findings tab", show=False),
        Binding("l", "follow_link", "Follow the workflow link", show=False),
        Binding("left_square_bracket", "step(-1)", "Previous association", key_display="["),
        Binding("right_square_bracket", "step(1)", "Next association", key_display="]"),
        Binding("w", "save", "Save"),
        Binding("y", "copy_filter", "Copy a Wireshark filter", show=False),
        Binding("Y", "copy_ids", "Copy AE titles", show=False),
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
        with Vertical(id="charts"):
            with Horizontal(classes="chart"):
                yield Label("throughput", classes="chart-name")
                yield Sparkline([], id="throughput")
                yield Label(id="throughput-caption", classes="chart-caption")
            with Horizontal(classes="chart"):
                yield Label("latencies ", classes="chart-name")
                yield Label(id="latency-low", classes="chart-axis")
                yield Sparkline([], id="latency")
                yield Label(id="latency-high", classes="chart-axis")
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
        with Horizontal(id="search-bar"):
            yield QueryInput(
                placeholder="search the timeline (enter: next match, esc: close)",
                id="search",
                classes="query",
            )
            yield Static(id="search-count")
        yield Footer()

    @property
    def view(self) -> TimelineView:
        return self.query_one(TimelineView)

    def on_mount(self) -> None:
        self.view.frames = FrameNames.of(self.store.source)
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

    def on_resize(self, event: events.Resize) -> None:
        # a short terminal (80×24) keeps its rows for the timeline: a one-line title, the
        # two charts side by side without captions
        compact = event.size.height < COMPACT_BELOW
        if compact != self.has_class("compact"):
            self.set_class(compact, "compact")
            self._title(self.association)

    def _title(self, a: Association) -> None:
        look = outcome_look(a.outcome).value
        outcome_style = self.view.style(f"timeline--{_LOOK_ROW[look]}")
        if self.has_class("compact"):
            text = Text.assemble(
                (f"#{a.id} ", "bold"),
                (ae_pair(a), "bold"),
                "  ",
                (outcome_text(a), outcome_style),
                f" · {duration_text(a.duration_ns)} · {plural(a.exchanges, 'exchange')} · "
                f"{plural(len(self._findings), 'finding')}",
                no_wrap=True,
                overflow="ellipsis",
            )
            workflow = links.workflow_line(self.store, a)
            if workflow is not None:  # the way to a C-MOVE's sub-association and back
                text.append(f"\n{workflow}", style="italic")
            self.query_one("#assoc-title", Static).update(text)
            return
        text = Text.assemble(
            (f"#{a.id} ", "bold"), (ae_pair(a), "bold"), f"  {a.client} → {a.server}  "
        )
        text.append(outcome_text(a), style=outcome_style)
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
        # the histogram's ends are latencies, not times: its axis says so
        self.query_one("#latency-low", Label).update(f"{spread.low} ▕" if spread.low else "")
        self.query_one("#latency-high", Label).update(f"▏{spread.high}" if spread.high else "")
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
            frames = view.frames.span(row.first_frame, row.last_frame)
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

    def action_step(self, step: int) -> None:
        """To the previous or next association of the list (as filtered and sorted)."""
        order = self.list_order()
        if self.association_id not in order:
            self.notify("This association is not in the list.", timeout=3)
            return
        i = order.index(self.association_id) + step
        if not 0 <= i < len(order):
            self.notify("No more associations this way.", timeout=2)
            return
        self.app.switch_screen(AssociationScreen(order[i]))

    def list_order(self) -> list[int]:
        """The association list's rows, as the list screen shows them."""
        from tui.screens.main import MainScreen

        for screen in self.app.screen_stack:
            if isinstance(screen, MainScreen):
                return list(screen.table.ids)
        return sorted(self.index.summaries)

    def action_save(self) -> None:
        aid = self.association_id
        self.save_associations([aid], f"association #{aid}", f"assoc{aid}")

    def action_copy_filter(self) -> None:
        self.copy(
            wireshark.display_filter(self.association, wireshark.frame_names(self.store.source)),
            "Wireshark filter",
        )

    def action_copy_ids(self) -> None:
        self.copy(wireshark.identifiers(self.association), "AE titles")

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
        # the tab without focusing its view: a deferred focus would take it from the box
        self.query_one(TabbedContent).active = "timeline"
        self.query_one("#search-bar").add_class("shown")
        # at once, not after the keys already queued behind / (Widget.focus waits for them)
        self.set_focus(self.query_one("#search", Input))

    @on(Input.Changed, "#search")
    def search_changed(self, message: Input.Changed) -> None:
        view = self.view
        view.search(message.value)
        found = view.cursor if view.cursor in view.matches else view.step_match(1)
        if found is not None:
            view.move_to(found)
        self._search_count()

    @on(Input.Submitted, "#search")
    def search_submitted(self, message: Input.Submitted) -> None:
        self.action_step_match(1)

    def action_step_match(self, step: int) -> None:
        """To the next (1) or previous (-1) row the search matches."""
        view = self.view
        if not view.needle:
            self.action_search()
            return
        found = view.step_match(step)
        if found is None:
            missing = f"'{printable(view.needle)}' is not in the timeline."
            self.notify(missing, timeout=3, markup=False)  # what was typed is no markup
        else:
            view.move_to(found)
        self._search_count()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "search_key":  # ↑ and ↓ step through matches while typing only
            return self.query_one("#search", Input).has_focus
        if action == "search":  # in the box, / is typed
            return not self.query_one("#search", Input).has_focus
        return True

    def action_search_key(self, step: int) -> None:
        self.action_step_match(step)

    def _search_count(self) -> None:
        view = self.view
        count = self.query_one("#search-count", Static)
        if not view.needle:
            count.update("")
            return
        where = view.match_position()
        total = len(view.matches)
        text = f"{where}/{total}" if where else f"{total} match{'es' if total != 1 else ''}"
        count.update(Text(f"{text}  enter/↓ next · ↑ previous", style="bold" if total else "red"))

    @on(TimelineView.Highlighted)
    def _cursor_moved(self) -> None:
        if self.view.needle:
            self._search_count()

    def action_back(self) -> None:
        bar = self.query_one("#search-bar")
        if bar.has_class("shown"):
            bar.remove_class("shown")  # the matches stay highlighted; > and < still step
            self.view.focus()
            return
        self.app.pop_screen()


_LOOK_ROW = {"failed": "failed", "warning": "warning", "ok": "ok", "open": "info"}
