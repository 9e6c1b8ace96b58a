"""``dicomtap anonymize`` on every sample capture: the copy verifies itself, tshark decodes
the same PDUs in the same frames, the frames keep their times and sizes, dicomtap gives the
same records, and no PHI value of the original (found by pydicom in the exported data sets)
is anywhere in the output bytes."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from pathlib import Path

import pytest

from analyzer import redact
from analyzer.anonymize.run import anonymize_files
from analyzer.redact.uids import UidMap
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


def test_titles_of_cut_association_pdus_pseudonymized(tmp_path: Path) -> None:
    """A snap length cut every A-ASSOCIATE-RQ/AC: the AE titles that were captured are
    replaced all the same, and the check passes."""
    sample = ROOT / "samples" / "fail_snaplen.pcap"
    out = tmp_path / "out.pcapng"
    result = anonymize_files([sample], str(out), pseudonymize_hosts=True)
    assert result.verified, result.differences
    before, after = analyze([sample]), analyze([out])
    titles = [(a, b) for a, b in zip(before, after, strict=True) if a["type"] == "association"]
    assert len(titles) == 2
    for a, b in titles:
        for field in ("calling_ae", "called_ae"):
            assert str(a[field]) in ("STORESCU", "STORESCP")
            assert str(b[field]).startswith("HOST")
            assert str(a[field]).encode() not in out.read_bytes()


def test_pseudonym_digits_never_spell_a_hidden_value(tmp_path: Path) -> None:
    """A pseudonym UID's digits are drawn; with this key one of pynetdicom.pcap's spells
    ``110000``, a StudyTime of the capture (any run draws such a UID about once in 270):
    it is drawn again, the copy verifies and holds no hidden value anywhere."""
    sample = ROOT / "samples" / "pynetdicom.pcap"
    key = b"collide-220"
    drawn = UidMap(key)
    first = [drawn.replace(u) for u in sorted(set(instance_uids(sample)))]
    assert any("110000" in u for u in first)  # the key still draws the colliding pseudonym
    out = tmp_path / "out.pcapng"
    result = anonymize_files([sample], str(out), uids=UidMap(key))
    assert result.verified, (result.differences, result.leftovers)
    data = out.read_bytes()
    assert b"110000" in sample.read_bytes() and b"110000" not in data
    for value in phi_values(sample):
        assert value not in data, value


def instance_uids(sample: Path) -> list[str]:
    """The UIDs the anonymizer replaces in ``sample`` (found by pydicom in its exports)."""
    return [
        v.decode()
        for v in phi_values(sample)
        if v[:1].isdigit() and b"." in v and v.replace(b".", b"").isdigit()
    ]


@pytest.fixture
def redaction_on() -> Iterator[None]:
    redact.redact_phi(True)
    yield
    redact.redact_phi(False)


@pytest.mark.usefixtures("redaction_on")
def test_check_ignores_the_process_redaction(tmp_path: Path) -> None:
    """``--redact phi`` is a setting of the process; the check compares the records of the
    original and of the copy themselves, whatever an earlier command set."""
    sample = ROOT / "samples" / "pynetdicom.pcap"
    result = anonymize_files([sample], str(tmp_path / "out.pcapng"))
    assert result.verified, result.differences
    assert redact.phi_redacted()  # the setting is left as it was
