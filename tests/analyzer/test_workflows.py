"""Links across associations on real captures (samples/README.md says how each was made):
C-MOVE → sub-associations, C-GET → sub-operations, storage commitment N-ACTION → report.

What each link must be is checked against what the wire itself says independently of the
linker (the UIDs in the C-MOVE identifier and in the data sets sent, the Transaction UIDs),
and against the order in which associations end or files are read.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
from pathlib import Path
from typing import Any

import dpkt
import pytest
from click.testing import CliRunner

from analyzer.cli import main
from analyzer.findings import Diagnosis
from analyzer.model import Association, LinkHow, LinkKind, Outcome
from analyzer.pipeline import analyze_files
from analyzer.reports import jsonl
from analyzer.store import Change, Store
from analyzer.workflows import (
    Delivery,
    Linker,
    commitment_data,
    get_sub_operations,
    initiated_by,
    sub_associations,
    transaction_uid,
)
from analyzer.workflows.linker import MOVE_RETENTION_NS

SAMPLES = Path(__file__).resolve().parents[2] / "samples"


def load(*paths: str | Path) -> Store:
    store = Store()
    analyze_files(
        [SAMPLES / p if isinstance(p, str) else p for p in paths], store, rules=Diagnosis()
    )
    return store


def by_start(store: Store) -> list[Association]:
    return sorted(store.associations(), key=lambda a: (a.start_ts, a.id))


def link_set(store: Store) -> set[tuple[object, ...]]:
    """Links by what they tie (association numbers are those of the store)."""
    return {
        (x.kind, x.association, x.exchange, x.target_association, x.target_exchange, x.how)
        for a in store.associations()
        for x in store.links(a.id)
    }


def describe_links(store: Store) -> set[tuple[object, ...]]:
    """Links by the AE titles, start times and Message IDs they tie (independent of the
    numbering, which differs when files are read in another order)."""

    def who(aid: int) -> tuple[object, ...]:
        a = store.association(aid)
        assert a is not None
        return (a.calling_ae_title, a.called_ae_title, a.start_ts)

    def ex(aid: int, index: int | None) -> object:
        if index is None:
            return None
        e = next(e for e in store.exchanges(aid) if e.index == index)
        return (e.service, e.message_id, e.start_ts)

    return {
        (
            x.kind,
            who(x.association),
            ex(x.association, x.exchange),
            who(x.target_association),
            ex(x.target_association, x.target_exchange),
            x.how,
        )
        for a in store.associations()
        for x in store.links(a.id)
    }


# --- C-MOVE ---------------------------------------------------------------------------


def test_two_concurrent_moves_with_the_same_originator_go_to_their_own_sub_associations() -> None:
    store = load("move_concurrent_orthanc.pcap")
    moves = [
        (a, e) for a in by_start(store) for e in store.exchanges(a.id) if e.service == "C-MOVE"
    ]
    assert len(moves) == 2
    # both C-MOVEs come from MOVESCU with Message ID 1: the fields alone cannot tell them apart
    assert {(a.calling_ae_title, e.message_id) for a, e in moves} == {("MOVESCU", 1)}
    linked: set[int] = set()
    for _, move in moves:
        (link,) = sub_associations(store, move)
        assert link.how == LinkHow.ORIGINATOR_FIELDS
        sub = store.association(link.target_association)
        assert sub is not None and sub.called_ae_title == "STORESCP"
        assert move.request is not None and move.request.dataset is not None
        asked = move.request.dataset.decode().StudyInstanceUID
        stores = store.exchanges(sub.id)
        sent = set()
        for s in stores:
            assert s.request is not None and s.request.dataset is not None
            sent.add(s.request.dataset.decode().StudyInstanceUID)
        assert sent == {asked}, "the sub-association carries the study this C-MOVE asked for"
        assert move.suboperations is not None and move.suboperations[1] == len(stores)
        linked.add(sub.id)
    unrelated = [a for a in by_start(store) if a.calling_ae_title == "MODALITY2"]
    assert len(unrelated) == 1 and unrelated[0].called_ae_title == "STORESCP"
    assert unrelated[0].id not in linked
    assert initiated_by(store, unrelated[0]) is None
    # started while both C-MOVEs were running, to the same destination
    assert all(e.start_ts < unrelated[0].start_ts < (e.end_ts or 0) for _, e in moves), (
        "the unrelated association overlaps both C-MOVEs"
    )


@pytest.mark.parametrize(
    "name",
    [
        "move_concurrent_orthanc.pcap",
        "fail_move_sub_rejected_orthanc.pcap",
        "fail_move_dest_down_orthanc.pcap",
        "commitment_reverse_orthanc.pcap",
        "fail_commitment_reverse_rejected.pcap",
        "fail_commitment_reverse_refused.pcap",
    ],
)
def test_links_do_not_depend_on_the_order_associations_end(name: str) -> None:
    whole = load(name)
    expected = link_set(whole)
    assert expected
    associations = by_start(whole)
    for order in itertools.permutations(associations):
        store = Store()
        for a in associations:
            store.put_association(a)
            for e in whole.exchanges(a.id):
                store.add_exchange(e)
        linker = Linker()
        for a in order:
            linker.association_ended(store, a)
        linker.source_ended(store)
        assert link_set(store) == expected, [a.id for a in order]


def _split_by_connection(path: Path, out: Path) -> list[Path]:
    """One classic pcap per TCP connection of ``path``, in order of first packet."""
    groups: dict[tuple[int, int], list[tuple[float, bytes]]] = {}
    with open(path, "rb") as f:
        reader = dpkt.pcap.Reader(f)
        for ts, buf in reader:
            tcp = dpkt.ethernet.Ethernet(buf).data.data
            key = (min(tcp.sport, tcp.dport), max(tcp.sport, tcp.dport))
            groups.setdefault(key, []).append((ts, buf))
    files = []
    for n, frames in enumerate(groups.values()):
        target = out / f"part{n}.pcap"
        with open(target, "wb") as f:
            writer = dpkt.pcap.Writer(f)
            for ts, buf in frames:
                writer.writepkt(buf, ts)
        files.append(target)
    return files


@pytest.mark.parametrize(
    "name",
    [
        "move_orthanc.pcap",
        "move_concurrent_orthanc.pcap",
        "commitment_reverse_orthanc.pcap",
        "fail_commitment_failed_refs.pcap",
    ],
)
def test_links_are_the_same_whatever_the_order_of_the_capture_files(
    name: str, tmp_path: Path
) -> None:
    whole = load(name)
    parts = _split_by_connection(SAMPLES / name, tmp_path)
    assert len(parts) >= 2
    forward = load(*parts)
    backward = load(*reversed(parts))
    assert describe_links(forward) == describe_links(whole)
    assert describe_links(backward) == describe_links(whole)


@pytest.mark.parametrize("name", ["move_orthanc.pcap", "move_concurrent_orthanc.pcap"])
def test_sub_association_without_originator_fields_is_inferred_and_the_unrelated_one_is_not(
    name: str,
) -> None:
    # Orthanc sends the originator fields; take them out of its C-STOREs, as an archive that
    # does not send them would: the sub-association is still found (from the SCP's address
    # and AE title, the Move Destination, the time, and for two C-MOVEs at once the UIDs
    # each asked for), and MODALITY2's is still not.
    whole = load(name)
    store = Store()
    for a in by_start(whole):
        store.put_association(a)
        for e in whole.exchanges(a.id):
            if e.request is not None and e.request.command.move_originator_ae:
                command = dataclasses.replace(
                    e.request.command, move_originator_ae=None, move_originator_message_id=None
                )
                e = dataclasses.replace(e, request=dataclasses.replace(e.request, command=command))
            store.add_exchange(e)
    linker = Linker()
    for a in by_start(whole):
        linker.association_ended(store, a)
    inferred = {
        (x.association, x.target_association)
        for a in store.associations()
        for x in store.links(a.id)
        if x.kind == LinkKind.MOVE
    }
    exact = {
        (x.association, x.target_association)
        for a in whole.associations()
        for x in whole.links(a.id)
        if x.kind == LinkKind.MOVE
    }
    assert inferred == exact and exact
    hows = {x.how for a in store.associations() for x in store.links(a.id)}
    assert hows == {LinkHow.INFERRED}


def test_rejected_sub_association_is_inferred() -> None:
    store = load("fail_move_sub_rejected_orthanc.pcap")
    move_assoc, sub = by_start(store)
    (move,) = store.exchanges(move_assoc.id)
    (link,) = sub_associations(store, move)
    assert (link.target_association, link.how) == (sub.id, LinkHow.INFERRED)
    assert sub.outcome == Outcome.REJECTED and sub.called_ae_title == "REJDEST"
    assert "calling AE 'ORTHANC'" in link.reason


def test_pynetdicom_sub_association_is_linked_although_it_names_itself_as_originator() -> None:
    store = load("fail_move_wrong_ae_pynetdicom.pcap")
    move_assoc, sub = by_start(store)
    (move,) = store.exchanges(move_assoc.id)
    (link,) = sub_associations(store, move)
    assert (link.target_association, link.how) == (sub.id, LinkHow.ORIGINATOR_FIELDS)
    originators = {
        e.request.command.move_originator_ae for e in store.exchanges(sub.id) if e.request
    }
    assert originators == {"PYQRSCP"}  # pynetdicom's own title, not MOVESCU
    assert sub.called_ae_title == "ARCHIVE2" and move.request is not None
    assert move.request.command.move_destination == "STORESCP"


def test_refused_connection_is_linked_as_the_attempt() -> None:
    for name in ("fail_move_dest_down_dcmqrscp.pcap", "fail_move_dest_down_orthanc.pcap"):
        store = load(name)
        move_assoc, attempt = by_start(store)
        (move,) = store.exchanges(move_assoc.id)
        (link,) = sub_associations(store, move)
        assert link.target_association == attempt.id and link.how == LinkHow.INFERRED
        assert attempt.outcome == Outcome.NEVER_ASSOCIATED and not attempt.syn_answered


def test_unknown_destination_links_nothing() -> None:
    for name in ("fail_move_unknown_dest_dcmqrscp.pcap", "fail_move_unknown_dest_orthanc.pcap"):
        store = load(name)
        for a in store.associations():
            assert store.links(a.id) == []


def test_a_move_settles_after_its_retention_without_the_source_ending() -> None:
    whole = load("move_orthanc.pcap")
    move_assoc, sub = by_start(whole)
    store = Store()
    for a in (move_assoc, sub):
        store.put_association(a)
        for e in whole.exchanges(a.id):
            store.add_exchange(e)
    linker = Linker()
    first = linker.association_ended(store, sub)
    assert not first.settled_moves
    second = linker.association_ended(store, move_assoc)
    assert [x.target_association for x in second.links] == [sub.id]
    later = dataclasses.replace(
        sub,
        id=99,
        start_ts=sub.start_ts + 2 * MOVE_RETENTION_NS,
        end_ts=sub.end_ts and sub.end_ts + 2 * MOVE_RETENTION_NS,
    )
    store.put_association(later)
    third = linker.association_ended(store, later)
    (settled,) = third.settled_moves
    assert settled.exchange.association == move_assoc.id and [s.id for s in settled.subs] == [
        sub.id
    ]
    assert not linker.source_ended(store).settled_moves  # already forgotten


# --- C-GET ------------------------------------------------------------------------------


def test_get_links_its_sub_operations_and_counts_them() -> None:
    store = load("get_orthanc.pcap")
    (a,) = store.associations()
    get = next(e for e in store.exchanges(a.id) if e.service == "C-GET")
    stores = [e.index for e in store.exchanges(a.id) if e.service == "C-STORE"]
    assert [x.target_exchange for x in get_sub_operations(store, get)] == stores
    assert get.suboperations is not None and get.suboperations[1] == len(stores) == 3
    assert not [f for f in store.findings() if f.code == "suboperation-count-mismatch"]


def test_get_seen_from_its_middle_is_an_orphan_response_with_two_of_three_sub_operations() -> None:
    store = load("fail_get_partial.pcap")
    (a,) = store.associations()
    get = next(e for e in store.exchanges(a.id) if e.service == "C-GET")
    assert get.request is None and get.final is not None  # the C-GET-RQ is before the capture
    assert len(get_sub_operations(store, get)) == 2
    (mismatch,) = [f for f in store.findings() if f.code == "suboperation-count-mismatch"]
    assert "3 completed" in mismatch.title and "began" in mismatch.explanation
    records = [json.loads(jsonl.json_line(r)) for r in jsonl.records(store, "test")]
    orphans = [r for r in records if r["type"] == "orphan_response"]
    assert [r["command"] for r in orphans] == ["C-GET"]
    assert "before the capture began" in orphans[0]["orphan_reason"]
    (assoc,) = [r for r in records if r["type"] == "association"]
    exchanges = [r for r in records if r["type"] == "exchange"]
    assert assoc["exchanges"] == len(exchanges) == 2 and assoc["orphan_responses"] == 1


# --- storage commitment -----------------------------------------------------------------


def _commitment(name: str) -> tuple[Store, Any]:
    store = load(name)
    actions = [
        (a, e) for a in by_start(store) for e in store.exchanges(a.id) if e.service == "N-ACTION"
    ]
    assert len(actions) == 1
    return store, actions[0]


@pytest.mark.parametrize(
    ("name", "delivery"),
    [
        ("commitment_same_pynetdicom.pcap", Delivery.SAME_ASSOCIATION),
        ("commitment_reverse_orthanc.pcap", Delivery.REVERSE_ASSOCIATION),
        ("fail_commitment_failed_refs.pcap", Delivery.REVERSE_ASSOCIATION),
        ("fail_commitment_reverse_rejected.pcap", Delivery.NONE),
        ("fail_commitment_reverse_refused.pcap", Delivery.NONE),
        ("fail_commitment_no_report.pcap", Delivery.NONE),
    ],
)
def test_commitment_delivery(name: str, delivery: Delivery) -> None:
    store, (a, action) = _commitment(name)
    records = [json.loads(jsonl.json_line(r)) for r in jsonl.records(store, "test")]
    (record,) = [r for r in records if r["type"] == "exchange" and r["command"] == "N-ACTION"]
    uid = transaction_uid(action)
    assert uid and record["transaction_uid"] == uid
    assert record["commitment"]["delivery"] == str(delivery)
    reports = [
        (r["association"], r["index"])
        for r in records
        if r["type"] == "exchange" and r["command"] == "N-EVENT-REPORT"
    ]
    if delivery == Delivery.NONE:
        assert reports == [] and record["commitment_reports"] == []
        assert record["commitment"]["time_to_report_ms"] is None
        return
    (report,) = reports
    assert record["commitment_reports"] == [{"association": report[0], "exchange": report[1]}]
    back = next(r for r in records if (r.get("association"), r.get("index")) == report)
    assert back["transaction_uid"] == uid
    assert back["commitment_request"] == {"association": a.id, "exchange": action.index}
    assert 0 < record["commitment"]["time_to_report_ms"] < 5000
    if delivery == Delivery.REVERSE_ASSOCIATION:
        reverse = next(r for r in records if r["type"] == "association" and r["id"] == report[0])
        assert reverse["initiated_by"] == {
            "association": a.id,
            "exchange": action.index,
            "kind": "commitment",
            "how": "transaction-uid",
        }


def test_report_with_failures_lists_them() -> None:
    store, (_, action) = _commitment("fail_commitment_failed_refs.pcap")
    report = next(
        e
        for a in store.associations()
        for e in store.exchanges(a.id)
        if e.service == "N-EVENT-REPORT"
    )
    data = commitment_data(report)
    assert data is not None and data.references == 1
    (failed,) = data.failed
    assert failed.sop_instance == "1.2.826.0.1.3680043.8.498.999" and failed.reason == 0x0112
    (finding,) = [f for f in store.findings() if f.code == "commitment-failed-references"]
    assert "1.2.826.0.1.3680043.8.498.999" in finding.explanation
    assert "0x0112 No Such SOP Instance" in finding.explanation
    assert finding.evidence.association == action.association


@pytest.mark.parametrize(
    ("name", "what"),
    [
        ("fail_commitment_reverse_rejected.pcap", "calling-AE-title-not-recognized"),
        ("fail_commitment_reverse_refused.pcap", "refused"),
    ],
)
def test_failed_reverse_association_is_tied_to_the_request(name: str, what: str) -> None:
    store, (a, _) = _commitment(name)
    reverse = [x for x in by_start(store) if x.id != a.id]
    (attempt,) = reverse
    records = [json.loads(jsonl.json_line(r)) for r in jsonl.records(store, "test")]
    (record,) = [r for r in records if r["type"] == "exchange" and r["command"] == "N-ACTION"]
    assert record["commitment"]["reverse_attempts"] == [attempt.id]
    (finding,) = [f for f in store.findings() if f.code == "commitment-reverse-association-failed"]
    assert what in finding.explanation and finding.evidence.association == a.id
    assert not [f for f in store.findings() if f.code == "commitment-report-missing"]


def test_report_on_the_same_association_with_default_roles_is_not_a_role_error() -> None:
    store, (a, _) = _commitment("commitment_same_pynetdicom.pcap")
    assert all(c.scp_role is None for c in a.contexts)  # no SCP/SCU role selection at all
    assert [f.code for f in store.findings()] == []
    # a C-STORE from the acceptor without the role still is one
    assert "role-not-negotiated" in {
        f.code for f in load("fail_get_no_role_orthanc.pcap").findings()
    }


# --- outputs and streams ----------------------------------------------------------------


def test_json_records_carry_the_links() -> None:
    result = CliRunner().invoke(
        main,
        [
            "analyze",
            "--format",
            "json",
            "--no-progress",
            str(SAMPLES / "move_concurrent_orthanc.pcap"),
        ],
    )
    assert result.exit_code == 0
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert records[0]["schema_version"] == 6
    moves = [r for r in records if r["type"] == "exchange" and r["command"] == "C-MOVE"]
    associations = {r["id"]: r for r in records if r["type"] == "association"}
    for move in moves:
        (sub,) = move["sub_associations"]
        assert associations[sub]["initiated_by"] == {
            "association": move["association"],
            "exchange": move["index"],
            "kind": "move",
            "how": "originator-fields",
        }
    stores = [r for r in records if r["type"] == "exchange" and r["command"] == "C-STORE"]
    assert all(r["sub_associations"] is None and r["transaction_uid"] is None for r in stores)
    links = [r for r in records if r["type"] == "link"]
    assert sorted((x["association"], x["to"]["association"]) for x in links) == sorted(
        (m["association"], m["sub_associations"][0]) for m in moves
    )
    assert {x["how"] for x in links} == {"originator-fields"} and all(x["reason"] for x in links)


def test_text_shows_the_links() -> None:
    result = CliRunner().invoke(
        main, ["analyze", "--no-progress", str(SAMPLES / "commitment_reverse_orthanc.pcap")]
    )
    text = result.stdout
    assert "N-ACTION #1 (storage commitment, Transaction UID" in text
    assert "report N-EVENT-REPORT #1 on association 2 ORTHANC → MODALITY" in text
    assert "#1 is the storage commitment report for N-ACTION #1 of association 1" in text
    result = CliRunner().invoke(
        main, ["analyze", "--no-progress", str(SAMPLES / "move_orthanc.pcap")]
    )
    assert "C-MOVE #1 to 'STORESCP' → association 2 ORTHANC → STORESCP" in result.stdout
    assert "opened by the C-MOVE SCP for C-MOVE #1 of association 1" in result.stdout


@pytest.mark.parametrize("name", ["move_concurrent_orthanc.pcap", "get_orthanc.pcap"])
def test_a_stream_written_as_things_happen_gets_every_link(name: str) -> None:
    # As `dicomtap live` and the proxy write JSON Lines: records as the store changes.
    store = Store()
    streamed: list[dict[str, Any]] = []

    def changed(change: Change) -> None:
        record = jsonl.change_record(change, store)
        if record is not None:
            streamed.append(record)

    store.subscribe(changed)
    analyze_files([SAMPLES / name], store, rules=Diagnosis())
    in_file = list(jsonl.records(store, "test"))
    links = [r for r in in_file if r["type"] == "link"]
    assert sorted(map(str, (r for r in streamed if r["type"] == "link"))) == sorted(map(str, links))
    assert links
    # a C-GET's sub-operations are linked as it completes: its streamed record names them
    gets = [r for r in in_file if r["type"] == "exchange" and r["command"] == "C-GET"]
    assert [r for r in streamed if r["type"] == "exchange" and r["command"] == "C-GET"] == gets


def test_captures_analysed_one_after_another_do_not_share_what_the_linker_read(
    tmp_path: Path,
) -> None:
    # Association and exchange numbers restart with every store: nothing the linker reads
    # from one capture (the UIDs a C-MOVE asked for) may be taken for another's.
    parts = _split_by_connection(SAMPLES / "move_concurrent_orthanc.pcap", tmp_path)
    # in order of first packet: C-MOVE 1, its sub-association, C-MOVE 2, its
    # sub-association, the unrelated one. Read so that C-MOVE 1 is association 3, which is
    # C-MOVE 2 in the whole capture.
    shuffled = [parts[1], parts[3], parts[0], parts[2], parts[4]]
    whole = load("move_concurrent_orthanc.pcap")
    other = load(*shuffled)
    assert describe_links(other) == describe_links(whole)
    assert len(link_set(whole)) == 2


def test_a_failed_reverse_association_goes_to_the_oldest_request_still_waiting() -> None:
    # Commitment SCPs work through their requests in order: with two requests waiting, an
    # attempt (even one delayed past the second request) is for the first.
    whole = load("fail_commitment_reverse_refused.pcap")
    action_assoc, attempt = by_start(whole)
    (action,) = whole.exchanges(action_assoc.id)
    shift = (attempt.start_ts - action.start_ts) // 2
    second = dataclasses.replace(action_assoc, id=50, start_ts=action_assoc.start_ts + shift)
    second_action = dataclasses.replace(action, association=50, start_ts=action.start_ts + shift)
    store = Store()
    for a, exchanges in ((action_assoc, [action]), (second, [second_action]), (attempt, [])):
        store.put_association(a)
        for e in exchanges:
            store.add_exchange(e)
    linker = Linker()
    for a in (action_assoc, second, attempt):
        linker.association_ended(store, a)
    (link,) = store.links(attempt.id)
    assert (link.association, link.target_association) == (action_assoc.id, attempt.id)
    assert "the oldest one not tried yet" in link.reason


def test_a_request_before_the_capture_is_not_a_report_that_never_came() -> None:
    # The capture began between the N-ACTION-RQ and its response: the Transaction UID is
    # unknown, so the report that does come cannot be tied to it, and nothing is missing.
    whole = load("commitment_reverse_orthanc.pcap")
    store = Store()
    rules = Diagnosis()
    found = []
    for a in by_start(whole):
        store.put_association(a)
        for e in whole.exchanges(a.id):
            if e.service == "N-ACTION":
                e = dataclasses.replace(e, request=None)
            store.add_exchange(e)
    for a in by_start(whole):
        found += rules.association_ended(store, a)
    found += rules.source_ended(store)
    assert not [f for f in found if f.code.startswith("commitment-")]


def test_live_logs_say_each_link() -> None:
    from analyzer.reports.eventlines import EventLines
    from analyzer.store import ChangeKind

    store = load("move_orthanc.pcap")
    (link,) = store.links(1)
    ((ts, text),) = EventLines(store).lines(Change(ChangeKind.LINK, link))
    assert ts == link.ts
    assert text == (
        "#1 C-MOVE #1 → association 2 ORTHANC → STORESCP (released) [Move Originator fields]"
    )
