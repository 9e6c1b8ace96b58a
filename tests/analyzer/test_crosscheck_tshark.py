"""Cross-check against Wireshark's own DICOM dissector (tshark, through pyshark) on the same
captures, with the product's cross-check (``dicomtap crosscheck``, :mod:`analyzer.crosscheck`).

Per association, every PDU (type, length, PDVs), association field (AE titles, presentation
contexts, user information, reject and abort codes) and DIMSE field (command field, message
IDs, status, SOP class, pending responses) both tools decode must agree; where tshark
cannot follow, the reason must be the expected one.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from analyzer.cli import main
from analyzer.crosscheck import (
    CaptureCheck,
    Reason,
    Tshark,
    TsharkError,
    check_capture,
    find_tshark,
)
from analyzer.pipeline import analyze_files
from analyzer.store import Store
from tests.pcapgen import read_classic, write_pcap
from tests.peers import tool

ROOT = Path(__file__).resolve().parents[2]
CAPTURES = sorted(
    [p for p in (ROOT / "samples").iterdir() if p.suffix in (".pcap", ".pcapng")]
    + list((ROOT / "tests" / "data" / "corpus").glob("*.pcap")),
    key=lambda p: p.name,
)

#: Where tshark cannot follow in the committed captures: reason -> differences.
CANNOT_FOLLOW: dict[str, dict[Reason, int]] = {
    # The requestor sends a PDU of type 0x09, which tshark does not decode.
    "fail_abort_provider.pcap": {Reason.UNKNOWN_PDU_TYPE: 1},
    # 1448 bytes of a C-STORE data set PDU were not captured: tshark never completes it.
    "fail_capture_gap.pcap": {Reason.HOLE: 1},
    # Captured with a 200-byte snap length: every longer PDU is cut.
    "fail_snaplen.pcap": {Reason.SNAP_LENGTH: 25},
    # The connection drops inside a P-DATA-TF.
    "fail_transport_dropped.pcap": {Reason.INCOMPLETE_PDU: 1},
}


@pytest.fixture(scope="module")
def tshark() -> Tshark:
    tool("tshark")  # fails in CI, skips elsewhere, when tshark is not installed
    return Tshark(find_tshark())


def _reasons(check: CaptureCheck) -> dict[Reason, int]:
    counts: Counter[Reason] = Counter()
    for a in check.associations:
        for u in a.unfollowed:
            counts[u.reason] += u.count
    return dict(counts)


def _disagreements(check: CaptureCheck) -> list[str]:
    return [f"{d.frame}: {d.what}: {d.dicomtap} / {d.tshark}" for a in check.associations
            for d in a.disagreements]  # fmt: skip


@pytest.mark.parametrize("path", CAPTURES, ids=lambda p: p.name)
def test_every_capture_agrees_with_tshark(path: Path, tshark: Tshark) -> None:
    check = check_capture(path, tshark)
    assert check.agrees, _disagreements(check)
    assert _reasons(check) == CANNOT_FOLLOW.get(path.name, {})

    store = Store()
    analyze_files([path], store)
    dicom = [a for a in store.associations() if a.requestor_pdus.total or a.acceptor_pdus.total]
    agreed = check.agreed()
    if not dicom:
        assert not check.associations
        return
    if path.name not in CANNOT_FOLLOW:
        # Every PDU dicomtap saw, tshark showed alike.
        assert agreed.pdus == sum(a.requestor_pdus.total + a.acceptor_pdus.total for a in dicom)
        # Every request and final response matched one tshark decoded: a request gives at
        # least its command field and message ID, a response also its status.
        exchanges = store.exchanges()
        least = sum(2 * (e.request is not None) + 3 * (e.final is not None) for e in exchanges)
        assert agreed.dimse_fields >= least
        # An A-ASSOCIATE-RQ gives two AE titles, a context's two syntaxes, three user
        # information fields.
        assert agreed.association_fields >= 7 * sum(a.rq_frame is not None for a in dicom)


def test_captures_without_dicom_show_none_in_tshark_either(tshark: Tshark) -> None:
    """A port probe, TLS both ways, TLS one way: with DICOM decoded on every port they use,
    tshark finds no more DICOM than dicomtap does."""
    ports = (104, 2762, 4242, 11112)
    for name in ("fail_never_associated.pcap", "fail_tls_client_to_plain.pcap"):
        check = check_capture(ROOT / "samples" / name, tshark, ports=ports)
        assert check.ports == ports
        assert check.agrees and not check.associations, name


def test_expected_counts_on_a_c_echo(tshark: Tshark) -> None:
    """Each fact is counted once: C-ECHO-RQ (command field, message ID, SOP class) and
    C-ECHO-RSP (command field, message ID being responded to, status, SOP class)."""
    check = check_capture(ROOT / "samples" / "echo.pcap", tshark)
    (a,) = check.associations
    assert (a.agreed.pdus, a.agreed.dimse_fields) == (6, 7)
    # RQ: 2 AE titles, 1 context x 2 syntaxes, 3 user information; AC: 1 result, 1 transfer
    # syntax, 3 user information.
    assert a.agreed.association_fields == 12


def test_pending_responses_and_a_cancel(tshark: Tshark, tmp_path: Path) -> None:
    """A C-FIND answered twice pending, cancelled (C-CANCEL-RQ names the request by its
    message ID being responded to), then finally answered Cancel: each message matched."""
    from tests import factories as f
    from tests.pcapgen import Conversation

    def find(field: int, **kw: object) -> bytes:
        return f.command(command_field=field, affected_sop_class_uid=f.STUDY_FIND, **kw)

    level = b"\x08\x00\x52\x00\x06\x00\x00\x00STUDY "  # (0008,0052), implicit VR LE
    c = Conversation(("10.0.0.1", 40000), ("10.0.0.2", 11112)).handshake()
    c.send(True, f.associate_rq(contexts=((1, f.STUDY_FIND, (f.IMPLICIT,)),)))
    c.send(False, f.associate_ac(contexts=((1, 0, f.IMPLICIT),)))
    c.send(True, f.message(1, find(0x0020, message_id=7, priority=0, dataset_type=1), level))
    for _ in range(2):
        pending = find(0x8020, message_id_being_responded_to=7, status=0xFF00, dataset_type=1)
        c.send(False, f.message(1, pending, level))
    c.send(True, f.message(1, f.command(command_field=0x0FFF, message_id_being_responded_to=7)))
    c.send(False, f.message(1, find(0x8020, message_id_being_responded_to=7, status=0xFE00)))
    c.send(True, f.release_rq()).send(False, f.release_rp()).close()
    cap = write_pcap(tmp_path / "cancel.pcap", c.frames)

    check = check_capture(cap, tshark)
    assert check.agrees and not _reasons(check), _disagreements(check)
    # C-FIND-RQ 3 fields, final C-FIND-RSP 4, the pending count 1, the cancel 1.
    assert check.agreed().dimse_fields == 9


# --- real disagreements -------------------------------------------------------------------


def _echo_capture(path: Path, calling: bytes, called: bytes) -> Path:
    """A C-ECHO association whose A-ASSOCIATE-RQ carries the AE title fields as given."""
    from dissectors.pdu import DICOM_APPLICATION_CONTEXT, AssociateRq, PresentationContextRq
    from tests import factories as f
    from tests.pcapgen import Conversation

    rq = AssociateRq(
        called_ae=called,
        calling_ae=calling,
        application_context=DICOM_APPLICATION_CONTEXT,
        presentation_contexts=(PresentationContextRq(1, f.VERIFICATION, (f.IMPLICIT,)),),
        user_information=f.user_info(),
    ).encode()
    c = Conversation(("10.0.0.1", 40000), ("10.0.0.2", 11112)).handshake()
    c.send(True, rq).send(False, f.associate_ac(called="STORESCP", calling="SCU"))
    c.send(True, f.echo_rq()).send(False, f.echo_rsp())
    c.send(True, f.release_rq()).send(False, f.release_rp()).close()
    return write_pcap(path, c.frames)


def test_an_ae_title_tshark_cuts_at_a_nul_is_a_disagreement(tshark: Tshark, tmp_path: Path) -> None:
    """The calling AE title field holds ``AB``, a NUL, ``CD``: tshark's string stops at the
    NUL, dicomtap shows all of it. The two truly show different titles: exit status 1."""
    cap = _echo_capture(tmp_path / "nul.pcap", b"AB\x00CD" + b" " * 11, b"STORESCP".ljust(16))
    result = CliRunner().invoke(main, ["crosscheck", str(cap)])
    assert result.exit_code == 1, result.output
    assert (
        "DISAGREE frame 4, requestor → acceptor: A-ASSOCIATE-RQ calling AE title: "
        "dicomtap AB\\x00CD; tshark AB" in result.output
    )
    assert "verdict: DISAGREE" in result.output
    # Only that field: everything else agrees.
    check = check_capture(cap, tshark)
    assert check.disagreement_count == 1
    assert check.agreed().pdus == 6


def test_wire_text_is_escaped_in_the_report(tmp_path: Path) -> None:
    """An ESC sequence in an AE title is shown escaped, never sent to the terminal."""
    tool("tshark")
    cap = _echo_capture(tmp_path / "esc.pcap", b"CALLING".ljust(16), b"CAL\x1b[31mLED".ljust(16))
    result = CliRunner().invoke(main, ["crosscheck", str(cap)])
    assert "\x1b" not in result.output
    assert "CAL\\x1b[31mLED" in result.output


@pytest.fixture
def wrong_status(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """dicomtap's model made to record a wrong status for the first final response."""
    import dataclasses

    original = Store.add_exchange
    done: list[bool] = []

    def add_exchange(self: Store, exchange: object) -> None:
        from analyzer.model import Exchange

        assert isinstance(exchange, Exchange)
        if exchange.final is not None and not done:
            done.append(True)
            command = dataclasses.replace(exchange.final.command, status=0xA700)
            final = dataclasses.replace(exchange.final, command=command)
            exchange = dataclasses.replace(exchange, final=final, status=0xA700)
        original(self, exchange)

    monkeypatch.setattr(Store, "add_exchange", add_exchange)
    yield


@pytest.mark.usefixtures("wrong_status")
def test_a_wrong_status_in_the_model_is_a_disagreement(tshark: Tshark) -> None:
    """The comparison is not blind: a status dicomtap got wrong (injected here) is
    reported against the status tshark decoded, with its frame and side."""
    result = CliRunner().invoke(main, ["crosscheck", str(ROOT / "samples" / "echo.pcap")])
    assert result.exit_code == 1, result.output
    assert (
        "DISAGREE frame 14, acceptor → requestor: C-ECHO-RSP (message ID 1) status: "
        "dicomtap 0xA700; tshark 0x0000" in result.output
    )


def test_a_wrong_pdu_length_in_the_model_is_a_disagreement(
    tshark: Tshark, monkeypatch: pytest.MonkeyPatch
) -> None:
    import dataclasses

    from analyzer.model import PduRecord

    original = Store.add_pdu

    def add_pdu(self: Store, pdu: PduRecord) -> None:
        if pdu.pdu_type == 5:
            pdu = dataclasses.replace(pdu, length=pdu.length + 1)
        original(self, pdu)

    monkeypatch.setattr(Store, "add_pdu", add_pdu)
    check = check_capture(ROOT / "samples" / "echo.pcap", tshark)
    assert _disagreements(check) == ["16: PDUs: A-RELEASE-RQ (5 bytes) / A-RELEASE-RQ (4 bytes)"]


# --- where tshark cannot follow -----------------------------------------------------------


def _reordered(tmp_path: Path, swaps: list[tuple[int, int]]) -> Path:
    """store_mtu1500.pcap with pairs of frames swapped (1-based), in capture order."""
    _, frames = read_classic(ROOT / "samples" / "store_mtu1500.pcap")
    for a, b in swaps:
        frames[a - 1], frames[b - 1] = frames[b - 1], frames[a - 1]
    return write_pcap(
        tmp_path / "reordered.pcap",
        [(1.7e9 + i * 1e-6, data) for i, (_, data, _) in enumerate(frames)],
    )


def test_out_of_order_segments(tshark: Tshark, tmp_path: Path) -> None:
    """Segments that arrive out of order across PDU boundaries (the PDV header of a
    C-STORE-RQ after its command set; a data set PDU's first segment before it): with its
    reassembly of them off (Wireshark's default), tshark loses those PDUs, which is named;
    with it on (what ``auto`` picks when no bytes were lost), the two agree on everything."""
    cap = _reordered(tmp_path, [(8, 9), (24, 25)])
    off = check_capture(cap, tshark, reorder=False)
    assert off.agrees
    assert set(_reasons(off)) == {Reason.OUT_OF_ORDER}
    (group,) = off.associations[0].unfollowed
    assert group.from_requestor and group.first_frame == 9
    assert group.causes[:2] == ["frame 9 out of order", "frame 25 out of order"]

    auto = check_capture(cap, tshark)
    assert auto.reorder and auto.agrees and not _reasons(auto)
    assert auto.agreed().pdus == off.agreed().pdus + off.unfollowed_count - 2


def _cut(tmp_path: Path, first: int) -> Path:
    """store_mtu1500.pcap from frame ``first`` on: the capture starts mid-association."""
    _, frames = read_classic(ROOT / "samples" / "store_mtu1500.pcap")
    return write_pcap(
        tmp_path / f"from{first}.pcap", [(t / 1e9, d) for t, d, _ in frames[first - 1 :]]
    )


def test_capture_that_starts_inside_a_data_set(tshark: Tshark, tmp_path: Path) -> None:
    """The capture starts between two PDUs of a large data set (frame 56 of the original).
    tshark, told the port, takes the next segment as a PDU start and shows the rest of the
    data set; dicomtap waits for a PDU header it can check (the next command) and shows
    them only from there. Named as mid-stream, not as a disagreement; they agree after."""
    check = check_capture(_cut(tmp_path, 56), tshark)
    assert check.agrees
    assert _reasons(check) == {Reason.MID_STREAM: 18}
    first = check.associations[0]
    assert first.association is not None and first.association.partial
    (group,) = first.unfollowed
    assert group.example.dicomtap == "no PDU" and group.example.tshark.startswith("P-DATA-TF")
    # The C-STORE-RSP, the release and the whole second association agree.
    assert first.agreed.pdus == 3 and check.associations[1].agreed.pdus == 7


def test_capture_that_starts_inside_a_pdu(tshark: Tshark, tmp_path: Path) -> None:
    """The capture starts inside a P-DATA-TF (frame 71): tshark takes the first bytes as a
    PDU header and waits for a PDU that never ends, missing the A-RELEASE-RQ; dicomtap
    finds its way in."""
    check = check_capture(_cut(tmp_path, 71), tshark)
    assert check.agrees
    assert _reasons(check) == {Reason.MID_STREAM: 1}
    (group,) = check.associations[0].unfollowed
    assert group.example.dicomtap == "A-RELEASE-RQ (4 bytes)"
    assert group.example.tshark == "no PDU"


def test_mid_stream_capture_decoded_whole_by_dicomtap(tshark: Tshark, tmp_path: Path) -> None:
    """A capture that begins inside the third C-STORE of store_mtu1500.pcap: dicomtap
    decodes the partial association (the next C-STORE whole, its data set's encoding
    sniffed) and tshark, told the port, agrees on every PDU and command."""
    cut = _cut(tmp_path, 40)
    store = Store()
    analyze_files([cut], store)
    first = min(store.associations(), key=lambda a: a.start_ts)
    assert first.partial
    exchanges = store.exchanges(first.id)
    assert exchanges and all(e.status == 0 for e in exchanges)
    (complete,) = [e for e in exchanges if e.request is not None and e.final is not None]
    assert complete.message_id == 4
    ds = complete.request.dataset if complete.request else None
    assert ds is not None and ds.sniffed and ds.transfer_syntax == "1.2.840.10008.1.2.1"
    assert ds.decode().PatientName == "POE^EDGAR"

    check = check_capture(cut, tshark)
    assert check.agrees and not _reasons(check)
    assert (check.associations[0].agreed.pdus, check.agreed().pdus) == (24, 31)


def test_malformed_frames_are_named_from_tsharks_own_error(tshark: Tshark, tmp_path: Path) -> None:
    """PDVs of odd length: tshark flags each frame malformed ("Invalid PDV length (not
    even)") and shows the PDU without its PDVs; named with tshark's own words."""
    from dissectors.pdu import PDataTf, Pdv
    from tests import factories as f
    from tests.pcapgen import Conversation

    c = Conversation(("10.0.0.1", 40000), ("10.0.0.2", 11112)).handshake()
    c.send(True, f.associate_rq()).send(False, f.associate_ac())
    c.send(True, f.echo_rq()).send(False, f.echo_rsp())
    c.send(True, PDataTf((Pdv(1, 0, b"odd"),)).encode())
    c.send(True, f.release_rq()).send(False, f.release_rp()).close()
    check = check_capture(write_pcap(tmp_path / "odd.pcap", c.frames), tshark)
    assert check.agrees
    (group,) = check.associations[0].unfollowed
    assert group.reason == Reason.MALFORMED and group.causes == ["Invalid PDV length (not even)"]
    assert group.example.dicomtap == "P-DATA-TF (9 bytes), PDVs ctx 1 flags 0 len 5"
    assert group.example.tshark == "P-DATA-TF (9 bytes)"


def _children(pid: int | str = "self") -> dict[int, str]:
    """The children of a process: PID -> command name."""
    found = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            for child in (task / "children").read_text().split():
                with contextlib.suppress(OSError):
                    found[int(child)] = Path(f"/proc/{child}/comm").read_text().strip()
    return found


def _alive(pid: int) -> bool:
    """Running, not a zombie waiting to be reaped."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _busy_capture(path: Path) -> Path:
    """One P-DATA-TF of 20,000 two-byte PDVs: tshark's dissector needs tens of seconds
    for it (the time grows with the square of the count)."""
    from dissectors.pdu import PDataTf, Pdv
    from tests import factories as f
    from tests.pcapgen import Conversation

    n = 20_000
    pdvs = PDataTf(tuple(Pdv(1, 0 if i < n - 1 else 2, b"\0\0") for i in range(n))).encode()
    c = Conversation(("10.0.0.1", 40000), ("10.0.0.2", 11112)).handshake()
    c.send(True, f.associate_rq()).send(False, f.associate_ac())
    c.send(True, f.p_data(1, f.command(command_field=1, message_id=1), is_command=True))
    c.send(True, pdvs, mss=60_000).close()
    return write_pcap(path, c.frames)


def test_tshark_that_runs_too_long_is_stopped(tshark: Tshark, tmp_path: Path) -> None:
    """The timeout stops both reads and says so; no tshark is left behind."""
    cap = _busy_capture(tmp_path / "tiny_pdvs.pcap")
    started = time.monotonic()
    with pytest.raises(TsharkError, match=r"did not finish reading .* within 3 s"):
        check_capture(cap, tshark, timeout=3)
    assert time.monotonic() - started < 60
    assert "tshark" not in _children().values()


def test_sigterm_stops_the_tshark_reads(tmp_path: Path) -> None:
    """dicomtap stopped with SIGTERM while tshark works: tshark does not outlive it."""
    tool("tshark")
    cap = _busy_capture(tmp_path / "tiny_pdvs.pcap")
    argv = [sys.executable, "-c", "from analyzer.cli import main; main()", "crosscheck",
            "--tshark-timeout", "0", str(cap)]  # fmt: skip
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        readers: list[int] = []
        while len(readers) < 2 and time.monotonic() < deadline:
            readers = [pid for pid, name in _children(proc.pid).items() if name == "tshark"]
            time.sleep(0.1)
        assert len(readers) == 2, "both tshark reads should be running"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 128 + signal.SIGTERM
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    for pid in readers:
        for _ in range(50):
            if not _alive(pid):
                break
            time.sleep(0.1)
        assert not _alive(pid), f"tshark {pid} outlived dicomtap"
    assert b"Traceback" not in (proc.stderr.read() if proc.stderr else b"")


# --- the command line ----------------------------------------------------------------------


def test_json_output(tshark: Tshark) -> None:
    gap = ROOT / "samples" / "fail_capture_gap.pcap"
    result = CliRunner().invoke(main, ["crosscheck", "--format", "json", str(gap)])
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.output.splitlines()]
    assert [r["type"] for r in records] == ["header", "capture", "association_check", "summary"]
    capture, assoc, summary = records[1:]
    assert capture["tshark_reorder"] is False  # bytes were lost: auto leaves it off
    assert "tcp.port==11112,dicom" in capture["tshark_options"]
    (follow,) = assoc["tshark_cannot_follow"]
    assert follow["reason"] == "hole" and follow["causes"] == ["1448 bytes lost at frame 12"]
    assert follow["frames"] == {"first": 17, "last": 17} and follow["from"] == "requestor"
    assert summary["verdict"] == "agree" and summary["exit_status"] == 0
    assert summary["agreed"] == {"pdus": 6, "association_fields": 12, "dimse_fields": 7}


def test_an_unreadable_input_is_reported_and_the_others_checked(tmp_path: Path) -> None:
    tool("tshark")
    text = tmp_path / "notes.txt"
    text.write_text("not a capture\n")
    result = CliRunner().invoke(
        main, ["crosscheck", str(text), str(ROOT / "samples" / "echo.pcap")]
    )
    assert result.exit_code == 2
    assert "is not a pcap or pcapng capture" in result.output
    assert "samples/echo.pcap: agree" in result.output


def test_missing_tshark_gives_one_clear_line(tmp_path: Path) -> None:
    """With no tshark on PATH: one line saying how to install it, exit status 2."""
    empty = tmp_path / "bin"
    empty.mkdir()
    env = {**os.environ, "PATH": str(empty)}
    out = subprocess.run(
        [sys.executable, "-c", "from analyzer.cli import main; main()", "crosscheck",
         str(ROOT / "samples" / "echo.pcap")],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60,
    )  # fmt: skip
    assert out.returncode == 2
    assert out.stdout == ""
    lines = out.stderr.splitlines()
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith("dicomtap: error: tshark (Wireshark's dissector")
    assert "apt install tshark" in lines[0]
