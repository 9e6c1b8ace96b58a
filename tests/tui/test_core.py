"""The TUI's headless core: query language, index, columns, timeline, details, charts."""

from __future__ import annotations

import dataclasses
import itertools

import pytest

from analyzer.model import Association, DimseMessage, PduRecord, Severity
from analyzer.pdulog import PduLog
from analyzer.reports.common import duration_text
from analyzer.store import Change, ChangeKind, Store
from tui import charts, details, diagram, query, timeline
from tui.core import Look, SortKey, StoreIndex, Summary
from tui.rows import COLUMNS, cells, layout

from .conftest import finding, sample_store, with_findings

# --- the query language --------------------------------------------------------------------


def test_query_wraps_the_filter_language() -> None:
    """The box's text becomes an analyzer filter; a mistake is kept with its place, never
    raised (the language itself: tests/analyzer/filter)."""
    assert not query.parse("   ") and query.parse("   ").error is None
    good = query.parse("called=PACS* and latency>2s")
    assert good and good.filter is not None and good.error is None
    bad = query.parse("calling=CT and latency>fast")
    assert not bad and bad.filter is None
    assert bad.error is not None and bad.error.position == len("calling=CT and latency>")
    assert "calling=CT*" in query.KEYS and "latency>500ms" in query.KEYS


# --- the index ---------------------------------------------------------------------------------


def test_index_reads_a_filled_store_and_filters_sorts() -> None:
    store = with_findings(sample_store("store.pcap", "reject_called_ae.pcap", "abort.pcap"))
    index = StoreIndex(store)
    update = index.drain()
    assert update is not None and update.done
    assert update.new_associations == len(store.associations()) == 5
    assert update.findings == len(store.findings()) == 4
    assert index.drain() is None  # nothing new
    everything = index.rows(query.Query())
    assert index.rows(query.Query(), SortKey.START, reverse=True) == everything[::-1]
    assert index.rows(query.parse("not nothing-like-this")) == everything
    assert everything == sorted(everything, key=lambda i: store.association(i).start_ts)  # type: ignore[union-attr]
    rejected = index.rows(query.parse("outcome=rejected"))
    assert [store.association(i).called_ae_title for i in rejected] == ["WRONGAE"]  # type: ignore[union-attr]
    # calling is the requestor's AE title only (it used to match the called one too)
    assert index.rows(query.parse("calling=WRONGAE")) == []
    assert index.rows(query.parse("called=WRONGAE")) == rejected
    assert index.rows(query.parse("ae=WRONGAE")) == rejected
    assert len(index.rows(query.parse("code=association-aborted"))) == 2
    assert len(index.rows(query.parse("sop=*MR*"))) == 1
    failed = index.rows(query.parse("outcome=rejected or outcome=aborted"))
    assert failed == [i for i in everything if i in failed] and len(failed) == 3  # start order
    by_id = index.rows(query.parse("outcome=rejected or outcome=aborted"), SortKey.ID)
    assert by_id == sorted(failed)
    by_bytes = index.rows(query.Query(), SortKey.BYTES, reverse=True)
    sizes = [
        store.association(i).requestor_pdus.bytes + store.association(i).acceptor_pdus.bytes  # type: ignore[union-attr]
        for i in by_bytes
    ]
    assert sizes == sorted(sizes, reverse=True)
    worst_first = index.rows(query.Query(), SortKey.FINDING)
    assert index.summaries[worst_first[0]].worst.severity == Severity.ERROR  # type: ignore[union-attr]
    counts = index.counts()
    assert counts == {Look.FAILED: 3, Look.WARNING: 1, Look.OK: 1, Look.OPEN: 0}


def test_index_follows_a_growing_store() -> None:
    source = sample_store("store.pcap")
    store = Store()
    index = StoreIndex(store)
    assert index.drain() is None
    first = source.associations()[0]
    store.put_association(dataclasses.replace(first, outcome=None, end_ts=None))
    update = index.drain()
    assert update is not None and update.new_associations == 1
    summary = index.summaries[first.id]
    assert summary.look is Look.OPEN
    assert index.rows(query.parse("outcome=in-progress")) == [first.id]
    assert index.rows(query.parse("status=0000")) == []
    version = summary.version
    for e in source.exchanges(first.id):
        store.add_exchange(e)
    store.put_association(first)
    store.add_finding(finding(first.id, "test-warning", Severity.WARNING))
    update = index.drain()
    assert update is not None and update.associations == {first.id} and update.findings == 1
    assert summary.version > version
    assert index.summaries[first.id].look is Look.WARNING
    assert len(summary.facts.exchanges) == len(source.exchanges(first.id))
    assert index.rows(query.parse("status=0000")) == [first.id]
    assert index.rows(query.parse("code=test*")) == [first.id]
    assert index.rows(query.parse("outcome=in-progress")) == []


def test_index_does_not_count_twice_what_raced_with_its_first_read() -> None:
    source = sample_store("echo.pcap")
    store = Store()
    a = source.associations()[0]
    store.put_association(a)
    f = finding(a.id, "raced")
    store.add_finding(f)
    index = StoreIndex(store)
    # the same record notified after the index read the store's contents
    store._notify(Change(ChangeKind.FINDING, f))
    later = finding(a.id, "later")
    store.add_finding(later)
    update = index.drain()
    assert update is not None and update.findings == 2
    assert index.findings == [f, later]
    assert index.summaries[a.id].findings == [f, later]


def test_index_counts_only_what_a_batch_changed(monkeypatch: pytest.MonkeyPatch) -> None:
    """The title's counts of failed, warning, ok associations are kept from the associations
    each batch changed: a batch that touches one association of many looks at that one, not
    at every association again (which made a large capture's reading quadratic)."""
    source = with_findings(sample_store("store.pcap", "reject_called_ae.pcap", "abort.pcap"))
    store = Store()
    index = StoreIndex(store)
    ordered = sorted(source.associations(), key=lambda a: a.id)
    for a in ordered:
        store.put_association(dataclasses.replace(a, outcome=None, end_ts=None))
    index.drain()
    assert index.counts() == {Look.FAILED: 0, Look.WARNING: 0, Look.OK: 0, Look.OPEN: 5}
    looked: list[int] = []
    plain = Summary.__dict__["look"]
    assert isinstance(plain, property) and plain.fget is not None
    judge = plain.fget

    def counted(self: Summary) -> Look:
        looked.append(self.id)
        look = judge(self)
        assert isinstance(look, Look)
        return look

    monkeypatch.setattr(Summary, "look", property(counted))
    first = ordered[0]
    store.put_association(first)
    for f in source.findings():
        if f.evidence.association == first.id:
            store.add_finding(f)
    index.drain()
    expected = {Look.FAILED: 0, Look.WARNING: 0, Look.OK: 0, Look.OPEN: 4}
    expected[index.summaries[first.id].look] += 1
    looked.clear()
    assert index.counts() == expected
    assert looked == []  # counting reads no association
    for a in ordered[1:]:
        store.put_association(a)
    for f in source.findings():
        if f.evidence.association != first.id:
            store.add_finding(f)
    index.drain()
    assert sorted(looked) == [a.id for a in ordered[1:]]  # each changed one, once
    assert index.counts() == {Look.FAILED: 3, Look.WARNING: 1, Look.OK: 1, Look.OPEN: 0}


# --- columns -----------------------------------------------------------------------------------


@pytest.mark.parametrize("width", [60, 80, 99, 120, 200])
def test_layout_fills_the_width_and_keeps_the_essentials(width: int) -> None:
    cols = layout(width)
    keys = [c.key for c, _ in cols]
    assert {SortKey.ID, SortKey.AES, SortKey.OUTCOME} <= set(keys)
    used = sum(w for _, w in cols) + (len(cols) - 1)
    assert used == width or (width < 60 and used <= width)
    assert keys == [c.key for c in COLUMNS if c.key in keys]  # display order is stable


def test_layout_adds_columns_as_the_screen_widens() -> None:
    assert SortKey.PEERS not in [c.key for c, _ in layout(80)]
    assert SortKey.PEERS in [c.key for c, _ in layout(120)]
    assert SortKey.FINDING in [c.key for c, _ in layout(80)]
    assert SortKey.DURATION not in [c.key for c, _ in layout(79)]
    assert SortKey.DURATION in [c.key for c, _ in layout(99)]
    aes = {w for c, w in layout(79) if c.key is SortKey.AES}
    assert aes.pop() >= 22  # two AE titles and an arrow fit at 80 columns
    finding = {w for c, w in layout(80) if c.key is SortKey.FINDING}
    assert finding.pop() >= len("✖ association-rejected")  # a whole finding code at 80


def test_cells_are_fitted() -> None:
    store = sample_store("move_orthanc.pcap")
    index = StoreIndex(store)
    index.drain()
    cols = layout(80)
    row = cells(index.summaries[1], cols)
    assert [len(text) for _, text in row] == [w for _, w in cols]
    text = " ".join(t for _, t in row)
    assert "MOVESCU → ORTHANC" in text and "released" in text and "19:41:29.139" in text


# --- the timeline ------------------------------------------------------------------------------


def build(store: Store, a: Association) -> list[timeline.Row]:
    return timeline.build(
        a,
        store.pdus(a.id),
        store.exchanges(a.id),
        gaps=store.gaps(a.id),
        violations=store.violations(a.id),
        notes=store.notes(a.id),
        findings=store.findings(a.id),
    )


def test_timeline_collapses_a_data_set_into_one_row() -> None:
    store = sample_store("store.pcap")
    a = store.associations()[0]
    rows = build(store, a)
    big = [r for r in rows if r.label.startswith("C-STORE-RQ #4")]
    assert len(big) == 1
    assert big[0].pdus == 20  # the command PDU and 19 data set PDUs
    assert "289.0 KiB" in big[0].detail
    kinds = [r.kind for r in rows]
    assert kinds[0] is timeline.Kind.START and kinds[-1] is timeline.Kind.END
    pdus = [r.label for r in rows if r.kind is timeline.Kind.PDU]
    assert pdus == ["A-ASSOCIATE-RQ", "A-ASSOCIATE-AC", "A-RELEASE-RQ", "A-RELEASE-RP"]
    directions = [r.from_requestor for r in rows if r.kind is timeline.Kind.MESSAGE]
    assert directions == [True, False] * 4
    assert all(r.ts <= s.ts for r, s in itertools.pairwise(rows))


def test_timeline_names_pending_responses_and_latency() -> None:
    store = sample_store("find_orthanc.pcap")
    a = store.associations()[0]
    labels = [r.label for r in build(store, a) if r.kind is timeline.Kind.MESSAGE]
    assert labels[0].startswith("C-FIND-RQ #1")
    assert sum("pending" in label for label in labels) == 3
    assert labels[-1].startswith("C-FIND-RSP #1 Success") and "⏱" in labels[-1]


def test_timeline_without_pdu_records_uses_the_exchanges() -> None:
    store = sample_store("store.pcap")
    plain = Store()
    for a in store.associations():
        plain.put_association(a)
    a = store.associations()[1]
    rows = timeline.build(a, [], store.exchanges(a.id))
    labels = [r.label for r in rows]
    assert labels[1] == "A-ASSOCIATE-RQ" and labels[2] == "A-ASSOCIATE-AC"
    assert any(label.startswith("C-STORE-RQ #1 MR Image Storage") for label in labels)


def test_timeline_shows_silences_and_findings_where_they_happen() -> None:
    store = sample_store("echo.pcap")
    a = store.associations()[0]
    pdus = store.pdus(a.id)
    # push everything after the C-ECHO-RQ 30 s later: a silence while the SCP thinks
    late = 30_000_000_000
    shifted = [
        dataclasses.replace(p, ts=p.ts + late, end_ts=p.end_ts + late) if i >= 3 else p
        for i, p in enumerate(pdus)
    ]
    a2 = dataclasses.replace(a, end_ts=(a.end_ts or 0) + late)
    f = finding(a.id, "slow-response", Severity.WARNING, ts=pdus[3].ts + late)
    rows = timeline.build(a2, shifted, [], findings=[f])
    silences = [r for r in rows if r.kind is timeline.Kind.SILENCE]
    assert [r.label for r in silences] == ["— 30.0 s silence —"]
    i = timeline.index_of_finding(rows, f)
    assert rows[i].finding is f and rows[i - 1].first_frame == pdus[3].frame
    assert rows.index(silences[0]) < i


def test_nearest_row_for_a_frame() -> None:
    store = sample_store("reject_called_ae.pcap")
    a = store.associations()[0]
    rows = build(store, a)
    assert a.reject is not None
    i = timeline.nearest(rows, (a.reject.frame or 0,), None)
    assert rows[i].label == "A-ASSOCIATE-RJ"
    assert timeline.nearest(rows, (), a.start_ts) == 0


def test_diagram_arrows_point_from_the_sender() -> None:
    store = sample_store("echo.pcap")
    a = store.associations()[0]
    lines = [diagram.plain(diagram.line(r, a, 100)) for r in build(store, a)]
    assert all(len(line) == 100 for line in lines)
    rq = next(line for line in lines if "A-ASSOCIATE-RQ" in line)
    ac = next(line for line in lines if "A-ASSOCIATE-AC" in line)
    assert rq.index("A-ASSOCIATE-RQ") < rq.index("▶") and "◀" not in rq
    assert ac.index("◀") < ac.index("A-ASSOCIATE-AC") and "▶" not in ac
    assert lines[0].lstrip().startswith("+0.000 ms")
    assert diagram.plain(diagram.header(a, 100)).split() == [
        "ECHOSCU",
        "(requestor)",
        "(acceptor)",
        "STORESCP",
    ]
    narrow = [diagram.plain(diagram.line(r, a, 80)) for r in build(store, a)]
    assert all(len(line) == 80 for line in narrow)


# --- negotiation, exchange, bytes ------------------------------------------------------------


def test_rejected_contexts_are_marked() -> None:
    store = sample_store("reject_context.pcap")
    rows = details.context_rows(store.associations()[0])
    looks = {r.id: (r.look, r.result.split()[0]) for r in rows}
    assert looks == {1: ("failed", "4"), 3: ("ok", "0"), 5: ("failed", "3"), 7: ("failed", "3")}
    assert "transfer-syntaxes-not-supported" in rows[0].result


def test_user_info_side_by_side_without_passcode() -> None:
    store = sample_store("get_orthanc.pcap")
    a = store.associations()[0]
    rows = details.user_info_rows(a)
    fields = [r.field for r in rows]
    assert fields[:3] == ["Max PDU length", "Implementation class UID", "Implementation version"]
    roles = [r for r in rows if r.field.startswith("Role selection")]
    assert len(roles) == 120 and all(r.requestor == "SCU=0 SCP=1" for r in roles)
    assert all(r.look == "" for r in roles)  # Orthanc accepted what getscu proposed
    assert dataclasses.replace(a.requestor_info, user_identity_type=2)  # type: ignore[type-var]
    b = dataclasses.replace(
        a,
        requestor_info=dataclasses.replace(
            a.requestor_info,  # type: ignore[type-var]
            user_identity_type=2,
            user_identity_username="alice",
            user_identity_has_passcode=True,
            user_identity_response_requested=True,
        ),
    )
    identity = next(r for r in details.user_info_rows(b) if r.field == "User identity")
    assert "alice" in identity.requestor and "passcode sent (not shown)" in identity.requestor
    assert identity.look == "warning"  # asked for a response and got none


def test_command_fields_and_hex_dump() -> None:
    store = sample_store("move_orthanc.pcap")
    e = store.exchanges(2)[0]
    assert e.request is not None
    rows = {name: value for _, name, value in details.command_rows(e.request, e)}
    assert rows["CommandField"] == "0x0001 C-STORE-RQ"
    assert rows["MoveOriginatorApplicationEntityTitle"] == "MOVESCU"
    lines = list(details.iter_lines(details.hex_sections(e)))
    assert lines[0].startswith("── C-STORE-RQ command set")
    assert lines[1].startswith("00000000  00 00 00 00 04 00")
    raw = e.request.command.raw
    assert sum(1 for line in lines if line[:8].strip("0123456789abcdef") == "") >= len(raw) // 16


def test_charts() -> None:
    store = sample_store("store.pcap")
    a = store.associations()[0]
    flow = charts.throughput(a, store.pdus(a.id), [], 20)
    assert len(flow.values) == 20
    total = sum(p.length + 6 for p in store.pdus(a.id))
    assert sum(flow.values) == total
    spread = charts.latency_distribution(store.exchanges(a.id), 10)
    assert sum(spread.values) == 4 and spread.caption.startswith("4 answered")
    assert "log scale" in spread.caption
    latencies = sorted(e.latency_ns or 0 for e in store.exchanges(a.id))
    assert (spread.low, spread.high) == (
        duration_text(latencies[0]),
        duration_text(latencies[-1]),
    )
    assert charts.latency_distribution([], 10).values == []


def test_peak_rate_does_not_depend_on_the_width() -> None:
    store = sample_store("store.pcap")
    a = store.associations()[0]
    captions = {charts.throughput(a, store.pdus(a.id), [], n).caption for n in (8, 30, 110)}
    assert len(captions) == 1
    # 1,000 bytes in the first 100 ms window and 3,000 in a later one: 30 kB/s
    points = [(0, 1000), (250_000_000, 1000), (260_000_000, 2000)]
    assert charts.peak_rate(points, 0, 1_000_000_000) == 30_000


# --- the compact PDU log (analyzer.pdulog, added for large captures) ----------------------


def test_pdu_log_round_trip() -> None:
    full = sample_store("store.pcap", compact=False)
    compact = sample_store("store.pcap", compact=True)
    for a in full.associations():
        assert compact.pdus(a.id) == full.pdus(a.id)  # one PDV per PDU here: exact


def test_pdu_log_summarises_several_pdvs() -> None:
    log = PduLog()
    pdu = PduRecord(
        association=1,
        from_requestor=False,
        pdu_type=4,
        length=300,
        ts=5,
        frame=None,
        end_ts=6,
        end_frame=9,
        pdvs=((3, 2, 100), (3, 3, 60), (3, 1, 10)),
        complete=False,
        size=200,
    )
    log.append(pdu)
    back = log.record(1, 0)
    assert back.pdvs == ((3, 2, 100), (3, 3, 70)) and back.size == 200
    assert (back.frame, back.end_frame, back.complete, back.from_requestor) == (
        None,
        9,
        False,
        False,
    )
    assert log.nbytes() == 39


def test_timeline_pairs_messages_without_frame_numbers() -> None:
    """A proxy writing no pcapng numbers no frame: each response still goes under its
    own request, not under the last response of its direction."""
    store = sample_store("store.pcap")
    a = store.associations()[0]

    def unnumbered(m: DimseMessage | None) -> DimseMessage | None:
        return None if m is None else dataclasses.replace(m, frame=None, end_frame=None)

    pdus = [dataclasses.replace(p, frame=None, end_frame=None) for p in store.pdus(a.id)]
    exchanges = [
        dataclasses.replace(e, request=unnumbered(e.request), final=unnumbered(e.final))
        for e in store.exchanges(a.id)
    ]
    rows = [r for r in timeline.build(a, pdus, exchanges) if r.kind is timeline.Kind.MESSAGE]
    numbers = [r.label.split()[1] for r in rows]
    assert numbers == ["#1", "#1", "#2", "#2", "#3", "#3", "#4", "#4"]
    assert all(r.exchange is not None for r in rows)
    assert [r.exchange.index for r in rows if r.exchange] == [
        e.index for e in exchanges for _ in (0, 1)
    ]
