"""``dicomtap anonymize`` on every sample capture: the copy verifies itself, tshark decodes
the same PDUs in the same frames, the frames keep their times and sizes, dicomtap gives the
same records, and no PHI value of the original (found by pydicom in the exported data sets)
is anywhere in the output bytes."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from analyzer.anonymize.run import anonymize_files
from tests.peers import analyze

from .oracle import frames, phi_values, tshark_pdus

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = sorted((ROOT / "samples").glob("*.pcap*"))


def ports(records: list[dict[str, object]]) -> set[int]:
    out = set()
    for r in records:
        if r["type"] == "association":
            server = r["server"]
            assert isinstance(server, dict)
            out.add(int(server["port"]))
    return out


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda p: p.name)
def test_sample(sample: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.pcapng"
    result = anonymize_files([sample], str(out))
    assert result.verified, (result.differences, result.leftovers)
    data = out.read_bytes()
    for value in phi_values(sample):
        assert value not in data, value
    assert frames(out) == frames(sample)
    before, after = analyze([sample]), analyze([out])
    assert [r["type"] for r in before] == [r["type"] for r in after]
    for x, y in zip(before, after, strict=True):
        if x["type"] == "exchange":
            assert (x["command"], x["status"], x["message_id"]) == (
                y["command"],
                y["status"],
                y["message_id"],
            )
    server_ports = ports(before)
    if lossy(before):
        # Where segments were lost and sent again, what tshark's reassembly makes of the
        # stream depends on the bytes it holds (zeroed pixels let it find a PDU start the
        # original's pixel bytes hide): compare its view on a copy that keeps the pixels.
        out = tmp_path / "kept.pcapng"
        assert anonymize_files([sample], str(out), keep_pixels=True).verified
    assert tshark_pdus(out, server_ports) == tshark_pdus(sample, server_ports)


def lossy(records: list[dict[str, object]]) -> bool:
    """Whether the capture lost or retransmitted bytes of an association."""
    for r in records:
        if r["type"] != "association":
            continue
        gaps, tcp = r.get("gaps"), r.get("tcp")
        if isinstance(gaps, dict) and gaps.get("count"):
            return True
        if isinstance(tcp, dict) and any(
            isinstance(side, dict) and side.get("retransmissions")
            for side in (tcp.get("requestor"), tcp.get("acceptor"))
        ):
            return True
    return False


def test_names_and_uids_are_gone(tmp_path: Path) -> None:
    sample = ROOT / "samples" / "store.pcap"
    out = tmp_path / "out.pcapng"
    result = anonymize_files([sample], str(out))
    data = out.read_bytes()
    for name in (b"DOE^JOHN", b"ROE^JANE", b"POE^EDGAR", b"NOBODY^REFERRING", b"ACC0001"):
        assert name in sample.read_bytes() and name not in data
    uids = [str(r["sop_instance"]) for r in analyze([sample]) if r["type"] == "exchange"]
    assert uids and not any(u.encode() in data for u in uids)
    anonymized = [str(r["sop_instance"]) for r in analyze([out]) if r["type"] == "exchange"]
    # Replaced consistently (request and response alike), same lengths, still valid UIDs.
    assert [len(u) for u in anonymized] == [len(u) for u in uids]
    assert len(set(anonymized)) == len(set(uids))
    assert result.uids >= len(set(uids))
    assert result.tally.pixel_bytes > 0


def test_pixels_kept(tmp_path: Path) -> None:
    sample = ROOT / "samples" / "store.pcap"
    out = tmp_path / "out.pcapng"
    result = anonymize_files([sample], str(out), keep_pixels=True)
    assert result.verified and result.tally.pixel_bytes == 0


def test_hosts_pseudonymized(tmp_path: Path) -> None:
    sample = ROOT / "samples" / "store_mtu1500.pcap"
    out = tmp_path / "out.pcapng"
    result = anonymize_files([sample], str(out), pseudonymize_hosts=True)
    assert result.verified, result.differences
    before, after = analyze([sample]), analyze([out])
    a, b = before[1], after[1]
    assert a["type"] == b["type"] == "association"
    for end in ("client", "server"):
        ip = a[end]["ip"]
        assert not ipaddress.ip_address(ip).is_loopback
        assert ipaddress.ip_address(ip).packed not in out.read_bytes()
        assert b[end]["port"] == a[end]["port"]
    for field in ("calling_ae", "called_ae"):
        assert str(b[field]).startswith("HOST") and str(a[field]).encode() not in out.read_bytes()
