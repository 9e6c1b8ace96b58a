"""The rewritten packets: checksums computed again are right (the receiver's check passes,
as dpkt computes it), and the ones' complement sum is RFC 1071's."""

from __future__ import annotations

from pathlib import Path

import dpkt
from hypothesis import given
from hypothesis import strategies as st

from analyzer.anonymize.packets import _ones_sum
from analyzer.anonymize.run import anonymize_files

ROOT = Path(__file__).resolve().parents[2]


def rfc1071(data: bytes) -> int:
    """The sum word by word, with end-around carry (RFC 1071's reference)."""
    if len(data) % 2:
        data += b"\0"
    total = 0
    for i in range(0, len(data), 2):
        total += data[i] << 8 | data[i + 1]
        total = (total & 0xFFFF) + (total >> 16)
    return total


@given(st.binary(max_size=3000))
def test_ones_sum(data: bytes) -> None:
    assert _ones_sum(data) == rfc1071(data)


def test_edge_sums() -> None:
    for data in (b"", b"\0" * 7, b"\xff\xff", b"\xff\xff" * 9, b"\xff", b"\x80\x00\x80\x00"):
        assert _ones_sum(data) == rfc1071(data), data


def test_checksums_of_rewritten_packets(tmp_path: Path) -> None:
    # The capture was taken where the kernel leaves checksums to the card: the packets not
    # rewritten keep theirs; each rewritten one gets right ones.
    sample = ROOT / "samples" / "store_mtu1500.pcap"
    out = tmp_path / "out.pcapng"
    result = anonymize_files([sample], str(out))
    assert result.verified and result.packets.rewritten > 10
    checked = 0
    with sample.open("rb") as a, out.open("rb") as b:
        for (_, before), (_, frame) in zip(dpkt.pcap.Reader(a), dpkt.pcapng.Reader(b), strict=True):
            if frame == before:
                continue
            ip = dpkt.ethernet.Ethernet(frame).data
            assert isinstance(ip, dpkt.ip.IP) and isinstance(ip.data, dpkt.tcp.TCP)
            seen_ip, seen_tcp = ip.sum, ip.data.sum
            ip.sum = ip.data.sum = 0  # dpkt computes both again when serializing
            again = dpkt.ip.IP(bytes(ip))
            assert (again.sum, again.data.sum) == (seen_ip, seen_tcp)
            checked += 1
    assert checked == result.packets.rewritten
