"""``analyze`` on every bundled sample: what the real peers did, as the model records it.

The expectations come from what the peers themselves reported when the samples were made
(samples/README.md) and agree with tshark (tests/analyzer/test_crosscheck_tshark.py).
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path

import pytest

from analyzer.findings import Diagnosis
from analyzer.model import Outcome
from analyzer.pipeline import analyze_files
from analyzer.store import Store
from tests.peers import tool

SAMPLES = Path(__file__).resolve().parents[2] / "samples"


def load(*names: str) -> Store:
    store = Store(keep_pdus=True)
    analyze_files([SAMPLES / n for n in names], store, rules=Diagnosis())
    return store


# file -> [(calling, called, outcome, [(command, status, pending), ...]), ...] in start order
Exchanges = Sequence[tuple[str, int | None, int]]
EXPECTED: dict[str, list[tuple[str | None, str | None, Outcome, Exchanges]]] = {
    "echo.pcap": [("ECHOSCU", "STORESCP", Outcome.RELEASED, [("C-ECHO", 0, 0)])],
    "store.pcap": [
        ("STORESCU", "STORESCP", Outcome.RELEASED, [("C-STORE", 0, 0)] * 4),
        ("STORESCU", "STORESCP", Outcome.RELEASED, [("C-STORE", 0, 0)]),
    ],
    "store_mtu1500.pcap": [
        ("STORESCU", "STORESCP", Outcome.RELEASED, [("C-STORE", 0, 0)] * 4),
        ("STORESCU", "STORESCP", Outcome.RELEASED, [("C-STORE", 0, 0)]),
    ],
    "store_pdu4096.pcapng": [("STORESCU", "STORESCP", Outcome.RELEASED, [("C-STORE", 0, 0)] * 3)],
    "find_orthanc.pcap": [
        ("FINDSCU", "ORTHANC", Outcome.RELEASED, [("C-FIND", 0, 3)]),
        ("FINDSCU", "ORTHANC", Outcome.RELEASED, [("C-FIND", 0, 3)]),
    ],
    "move_orthanc.pcap": [
        ("MOVESCU", "ORTHANC", Outcome.RELEASED, [("C-MOVE", 0, 2)]),
        ("ORTHANC", "STORESCP", Outcome.RELEASED, [("C-STORE", 0, 0)] * 3),
    ],
    "get_orthanc.pcap": [
        ("GETSCU", "ORTHANC", Outcome.RELEASED, [("C-STORE", 0, 0)] * 3 + [("C-GET", 0, 3)])
    ],
    "reject_called_ae.pcap": [("ECHOSCU", "WRONGAE", Outcome.REJECTED, [])],
    "reject_context.pcap": [("STORESCU", "STORESCP", Outcome.RELEASED, [("C-STORE", 0, 0)])],
    "abort.pcap": [
        ("ECHOSCU", "STORESCP", Outcome.ABORTED, [("C-ECHO", 0, 0)]),
        ("STORESCU", "STORESCP", Outcome.ABORTED, [("C-STORE", None, 0)]),  # never answered
    ],
    "move_concurrent_orthanc.pcap": [
        ("MOVESCU", "ORTHANC", Outcome.RELEASED, [("C-MOVE", 0, 2)]),
        ("ORTHANC", "STORESCP", Outcome.RELEASED, [("C-STORE", 0, 0)] * 3),
        ("MOVESCU", "ORTHANC", Outcome.RELEASED, [("C-MOVE", 0, 0)]),
        ("ORTHANC", "STORESCP", Outcome.RELEASED, [("C-STORE", 0, 0)]),
        ("MODALITY2", "STORESCP", Outcome.RELEASED, [("C-STORE", 0, 0)]),
    ],
    "commitment_same_pynetdicom.pcap": [
        ("MODALITY", "PYARCHIVE", Outcome.RELEASED, [("N-ACTION", 0, 0), ("N-EVENT-REPORT", 0, 0)])
    ],
    "commitment_reverse_orthanc.pcap": [
        ("MODALITY", "ORTHANC", Outcome.RELEASED, [("N-ACTION", 0, 0)]),
        ("ORTHANC", "MODALITY", Outcome.RELEASED, [("N-EVENT-REPORT", 0, 0)]),
    ],
    "pynetdicom.pcap": [
        (
            "PYSCU",
            "PYSCP",
            Outcome.RELEASED,
            [("C-ECHO", 0, 0), ("C-STORE", 0, 0), ("C-STORE", 0, 0)],
        )
    ],
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_sample(name: str) -> None:
    store = load(name)
    got = []
    for a in sorted(store.associations(), key=lambda a: a.start_ts):
        exchanges = [(e.service, e.status, e.pending) for e in store.exchanges(a.id)]
        got.append((a.calling_ae_title, a.called_ae_title, a.outcome, exchanges))
        assert not a.partial
        assert store.violations(a.id) == [], store.violations(a.id)
        assert store.gaps(a.id) == []
    assert got == EXPECTED[name]


def test_every_sample_is_covered() -> None:
    on_disk = {
        p.name
        for p in SAMPLES.iterdir()
        if p.suffix in (".pcap", ".pcapng") and not p.name.startswith("fail_")
    }
    assert on_disk <= set(EXPECTED)


def test_move_links_to_its_sub_association() -> None:
    store = load("move_orthanc.pcap")
    move_assoc, sub_assoc = sorted(store.associations(), key=lambda a: a.start_ts)
    (move,) = store.exchanges(move_assoc.id)
    assert move.request is not None and move.request.command.move_destination == "STORESCP"
    assert move.suboperations == (None, 3, 0, 0)
    stores = store.exchanges(sub_assoc.id)
    assert {e.request.command.move_originator_ae for e in stores if e.request} == {"MOVESCU"}
    assert {e.request.command.move_originator_message_id for e in stores if e.request} == {
        move.message_id
    }


def test_get_sub_operations_come_from_the_acceptor_with_the_scp_role() -> None:
    store = load("get_orthanc.pcap")
    (a,) = store.associations()
    stores = [e for e in store.exchanges(a.id) if e.service == "C-STORE"]
    assert stores and all(not e.from_requestor for e in stores)
    used = {e.request.context_id for e in stores if e.request}
    for ctx_id in used:
        ctx = a.context(ctx_id)
        assert ctx is not None and ctx.scp_role == 1 and ctx.accepted_scp_role == 1


def test_store_data_sets_are_counted_not_held() -> None:
    store = load("store.pcap")
    first = sorted(store.associations(), key=lambda a: a.start_ts)[0]
    sizes = [e.request_dataset_bytes for e in store.exchanges(first.id)]
    assert max(sizes) > 290_000  # big1.dcm, ~18 P-DATA-TF PDUs
    for e in store.exchanges(first.id):
        assert e.request is not None and e.request.dataset is not None
        ds = e.request.dataset
        assert len(ds.kept) < 4096  # cut after the Pixel Data header
        assert ds.decode().PatientName in ("DOE^JOHN", "POE^EDGAR")
    big = max(store.exchanges(first.id), key=lambda e: e.request_dataset_bytes)
    p_data = [p for p in store.pdus(first.id) if p.pdu_type == 4 and p.from_requestor]
    assert len(p_data) >= 18
    assert big.request is not None and big.request.dataset is not None
    assert big.request.dataset.transfer_syntax == "1.2.840.10008.1.2.1"


def test_implicit_and_explicit_contexts() -> None:
    store = load("store.pcap")
    first, second = sorted(store.associations(), key=lambda a: a.start_ts)
    assert [c.accepted_transfer_syntax for c in first.contexts if c.accepted] == [
        "1.2.840.10008.1.2.1"
    ]
    assert [c.accepted_transfer_syntax for c in second.contexts if c.accepted] == [
        "1.2.840.10008.1.2"
    ]


def test_mtu_1500_capture_gives_the_same_records_as_loopback() -> None:
    def summary(store: Store) -> list[object]:
        return [
            (
                a.calling_ae_title,
                a.outcome,
                [(e.service, e.status, e.request_dataset_bytes) for e in store.exchanges(a.id)],
            )
            for a in sorted(store.associations(), key=lambda a: a.start_ts)
        ]

    assert summary(load("store_mtu1500.pcap")) == summary(load("store.pcap"))


def test_snap_length_capture_gives_what_the_first_bytes_of_each_segment_hold() -> None:
    """fail_snaplen.pcap is store.pcap with every frame cut to 200 bytes (134 bytes of TCP
    payload): the A-ASSOCIATE-RQ/AC are cut after 128 bytes of body, past the AE titles,
    the application context, and (in the AC) the one presentation context."""
    cut, whole = load("fail_snaplen.pcap"), load("store.pcap")
    pairs = list(
        zip(
            sorted(cut.associations(), key=lambda a: a.start_ts),
            sorted(whole.associations(), key=lambda a: a.start_ts),
            strict=True,
        )
    )
    assert len(pairs) == 2
    for c, w in pairs:
        assert (c.calling_ae, c.called_ae) == (w.calling_ae, w.called_ae)
        assert (c.rq_frame, c.ac_frame) == (w.rq_frame, w.ac_frame)
        assert c.application_context == w.application_context == "1.2.840.10008.3.1.1.1"
        assert c.outcome == w.outcome == Outcome.RELEASED
        assert [(e.service, e.message_id, e.status) for e in cut.exchanges(c.id)] == [
            (e.service, e.message_id, e.status) for e in whole.exchanges(w.id)
        ]
        assert cut.violations(c.id) == []
        # What was cut is said, by the bytes the capture lost of each PDU.
        gaps = {g.frame: g.size for g in cut.gaps(c.id)}
        assert (c.rq_missing, c.ac_missing) == (gaps[c.rq_frame], gaps[c.ac_frame])
        assert c.rq_missing > 0 and c.ac_missing > 0
        # The AC's answer was captured whole; the RQ's proposal and both user information
        # items were not, and are not made up.
        assert [(x.id, x.result, x.accepted_transfer_syntax) for x in c.contexts] == [
            (x.id, x.result, x.accepted_transfer_syntax) for x in w.contexts
        ]
        assert [x.abstract_syntax for x in c.contexts] == [None]
        assert c.requestor_info is None
        assert c.acceptor_info is not None and c.acceptor_info.max_pdu_length is None
        assert {f.code for f in cut.findings(c.id)} == {"capture-gap"}


def test_snap_length_ae_titles_are_tsharks() -> None:
    """tshark decodes no association PDU of fail_snaplen.pcap (it needs them whole): the AE
    titles found there are those tshark shows in the same frames of the capture it was cut
    from."""
    tshark = tool("tshark")
    fields = ["frame.number", "dicom.assoc.ae.calling", "dicom.assoc.ae.called"]
    argv = [tshark, "-n", "-d", "tcp.port==11112,dicom", "-Y", "dicom.pdu.type == 1"]
    argv += ["-T", "fields", *(x for f in fields for x in ("-e", f))]

    def titles(name: str) -> dict[int, tuple[str, str]]:
        out = subprocess.run(
            [*argv, "-r", str(SAMPLES / name)], capture_output=True, text=True, timeout=120
        )
        assert out.returncode == 0, out.stderr
        rows = [line.split("\t") for line in out.stdout.splitlines()]
        return {int(r[0]): (r[1], r[2]) for r in rows if r[1]}

    assert titles("fail_snaplen.pcap") == {}
    theirs = titles("store.pcap")
    ours = {
        a.rq_frame: (
            (a.calling_ae or b"").decode("latin-1"),
            (a.called_ae or b"").decode("latin-1"),
        )
        for a in load("fail_snaplen.pcap").associations()
    }
    assert (
        ours
        == theirs
        == {
            4: ("STORESCU        ", "STORESCP        "),
            57: ("STORESCU        ", "STORESCP        "),
        }
    )


def test_public_corpus() -> None:
    corpus = Path(__file__).resolve().parent.parent / "data" / "corpus"
    store = Store()
    analyze_files([corpus / "profuzzbench_dicom_echo.pcap"], store)
    (a,) = store.associations()
    assert (a.calling_ae_title, a.called_ae_title, a.outcome) == (
        "ECHOSCU",
        "ANY-SCP",
        Outcome.RELEASED,
    )
    assert [(e.service, e.status) for e in store.exchanges(a.id)] == [("C-ECHO", 0)]
    store = Store()
    analyze_files([corpus / "profuzzbench_dicom_find.pcap"], store)
    (a,) = store.associations()
    (find,) = store.exchanges(a.id)
    assert (find.service, find.status, find.pending) == ("C-FIND", 0, 0)
    assert find.request is not None and find.request.dataset is not None
    assert find.request.dataset.decode().QueryRetrieveLevel == "PATIENT"
