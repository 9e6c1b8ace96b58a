"""The parts of live capture that need no capture: the pcapng tee and its ring, reading
dumpcap's messages, the backlog measure, the capture-wide findings, the filter."""

from __future__ import annotations

import os
import random
import struct
import threading
import time
from pathlib import Path

import pytest

from analyzer.sources.live import LiveOptions
from analyzer.sources.live.dumpcap import explain_failure, parse_stats
from analyzer.sources.live.findings import Drops, capture_drops, capture_lag
from analyzer.sources.live.monitor import FULL_FOR, NOTICE_EVERY, Backlog
from analyzer.sources.live.tee import PcapngFiles, TeeReader, ring_name
from analyzer.sources.pcap import CaptureFile, CaptureStats, read_packets

DATA = Path(__file__).resolve().parents[1] / "data" / "pcap"
SAMPLES = [DATA / "dicom_echo.pcapng", DATA / "merged.pcapng"]


def _packets(paths: list[Path]) -> list[tuple[int, int, bytes, int]]:
    out = []
    for path in paths:
        with open(path, "rb") as f:
            out += [(ts, lt, data, n) for ts, _, lt, data, n in read_packets(f)]
    return out


def _feed(files: PcapngFiles, data: bytes, cuts: list[int]) -> None:
    start = 0
    for cut in [*sorted(cuts), len(data)]:
        files.feed(data[start:cut])
        start = cut
    files.close()


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda p: p.name)
def test_tee_writes_the_stream_unchanged_however_it_is_cut(sample: Path, tmp_path: Path) -> None:
    data = sample.read_bytes()
    rng = random.Random(6)
    cuttings = [[], list(range(1, len(data))), rng.sample(range(1, len(data)), 40)]
    for n, cuts in enumerate(cuttings):
        out = tmp_path / f"{n}.pcapng"
        _feed(PcapngFiles(out), data, cuts)
        assert out.read_bytes() == data


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda p: p.name)
def test_ring_files_are_captures_of_their_own_and_together_the_stream(
    sample: Path, tmp_path: Path
) -> None:
    data = sample.read_bytes()
    size = len(data) // 6
    files = PcapngFiles(tmp_path / "ring.pcapng", (1000, size))
    _feed(files, data, random.Random(1).sample(range(1, len(data)), 30))
    assert files.files == sorted(tmp_path.iterdir())
    assert len(files.files) > 3
    frames = 0
    for path in files.files:
        capture = CaptureFile(path)
        for _ in capture.segments():
            pass
        assert not capture.stats.truncated
        assert capture.stats.packets >= 1
        frames += capture.stats.packets
        head = path.read_bytes()[:4]
        assert head == b"\x0a\x0d\x0d\x0a"  # each starts with the section header
    assert _packets(files.files) == _packets([sample])
    assert frames == len(_packets([sample]))


def test_ring_keeps_the_newest_files(tmp_path: Path) -> None:
    data = (DATA / "merged.pcapng").read_bytes()
    files = PcapngFiles(tmp_path / "cap.pcapng", (2, 1000))
    files.feed(data)
    files.close()
    kept = sorted(tmp_path.iterdir())
    assert kept == files.files and len(kept) == 2
    assert kept[-1] == ring_name(tmp_path / "cap.pcapng", files._index)  # the last one written
    all_packets = _packets([DATA / "merged.pcapng"])
    assert _packets(kept) == all_packets[-len(_packets(kept)) :]


def test_ring_names() -> None:
    assert ring_name("/x/cap.pcapng", 1) == Path("/x/cap_00001.pcapng")
    assert ring_name("night", 12) == Path("night_00012.pcapng")


def test_tee_reader_hands_every_chunk_over(tmp_path: Path) -> None:
    data = (DATA / "dicom_echo.pcapng").read_bytes()
    r, w = os.pipe()
    os.write(w, data)
    os.close(w)
    files = PcapngFiles(tmp_path / "t.pcapng")
    with open(r, "rb", buffering=0) as raw:
        tee = TeeReader(raw, files)
        got = b""
        while chunk := tee.read(100):
            got += chunk
    files.close()
    assert got == data == (tmp_path / "t.pcapng").read_bytes()


def test_interface_statistics_block_is_read(tmp_path: Path) -> None:
    # an ISB as dumpcap writes one when it stops: ifrecv 1234, ifdrop 56, osdrop 7
    base = (DATA / "dicom_echo.pcapng").read_bytes()
    opts = b"".join(
        struct.pack("<HHQ", code, 8, value) for code, value in ((4, 1234), (5, 56), (7, 7))
    )
    opts += b"\x00\x00\x00\x00"
    body = struct.pack("<III", 0, 0, 1_000_000) + opts
    isb = struct.pack("<II", 5, 12 + len(body)) + body + struct.pack("<I", 12 + len(body))
    path = tmp_path / "isb.pcapng"
    path.write_bytes(base + isb)
    stats = CaptureStats()
    with open(path, "rb") as f:
        assert sum(1 for _ in read_packets(f, stats)) == 20
    (isb_read,) = stats.interface_statistics
    assert (isb_read.interface, isb_read.received, isb_read.dropped, isb_read.os_dropped) == (
        0,
        1234,
        56,
        7,
    )
    assert isb_read.filter_accepted is None and isb_read.ts is not None


# dumpcap 4.0.17's own words, copied from its stderr
STATS_LINE = (
    "Packets received/dropped on interface 'Loopback: lo': 30992/887 "
    "(pcap:887/dumpcap:0/flushed:0/ps_ifdrop:0) (97.2%)"
)
NO_DEVICE = (
    "Capturing on 'nosuch'\n"
    'dumpcap: There is no device named "nosuch".\n'
    "(No such device exists)\n"
)
NO_PERMISSION = (
    "Capturing on 'Loopback: lo'\n"
    'dumpcap: You do not have permission to capture on device "lo".\n'
    "(socket: Operation not permitted)\n"
    "Please check to make sure you have sufficient permissions.\n"
)
BAD_FILTER = (
    "Capturing on 'Loopback: lo'\n"
    "dumpcap: Invalid capture filter \"tcp porrt 5\" for interface 'lo'.\n\n"
    "That string isn't a valid capture filter (can't parse filter expression: syntax error).\n"
    "See the User's Guide for a description of the capture filter syntax.\n"
)


def test_dumpcap_statistics_line() -> None:
    stats = parse_stats(STATS_LINE)
    assert stats is not None
    assert (stats.interface, stats.received, stats.dropped, stats.kernel) == (
        "Loopback: lo",
        30992,
        887,
        887,
    )
    assert (stats.dumpcap, stats.flushed, stats.interface_drops) == (0, 0, 0)
    assert parse_stats("Packets captured: 12") is None


def test_dumpcap_errors_in_plain_words() -> None:
    assert "no permission to capture on lo" in str(explain_failure(NO_PERMISSION, "lo"))
    assert "no capture interface named 'nosuch'" in str(explain_failure(NO_DEVICE, "nosuch"))
    bad = str(explain_failure(BAD_FILTER, "lo", bpf="tcp porrt 5"))
    assert "invalid capture filter 'tcp porrt 5': can't parse filter expression" in bad
    other = str(explain_failure("Capturing on 'eth9'\ndumpcap: The interface went down.\n", "x"))
    assert other == "dumpcap could not capture on x: The interface went down."


def test_backlog_full_pipe_and_old_packets() -> None:
    r, w = os.pipe()
    size = 65536
    notices: list[str] = []
    with open(r, "rb", buffering=0) as raw:
        backlog = Backlog(raw, r, size, lag_warning=2.0, notice=notices.append)
        os.write(w, b"x" * 60000)  # a full pipe, once: a hiccup, not falling behind
        assert len(backlog.read(1 << 20)) == 60000
        assert backlog.episodes == 0 and notices == []
    os.close(w)
    t0 = time.time_ns()
    # full, read after read, for FULL_FOR seconds: dumpcap is blocked, behind
    backlog.look(60000, 60000, 0, t0)
    backlog.look(0, 62000, 0, t0 + int(FULL_FOR * 1e9) // 2)
    assert backlog.episodes == 0
    backlog.look(61000, 60000, 0, t0 + int(FULL_FOR * 1e9) + 1)
    assert backlog.episodes == 1 and "the pipe from dumpcap has stayed full" in notices[-1]
    backlog.look(0, 100, 0, t0 + 2_000_000_000)  # room again, nothing old: caught up
    assert "caught up" in notices[-1] and backlog.behind_ns >= FULL_FOR * 1e9
    # the packets just analysed had waited 5 s in the pipe: behind again
    backlog.look(100, 100, 5_000_000_000, t0 + 2_000_000_000)
    assert backlog.episodes == 2 and backlog.max_lag_ns == 5_000_000_000
    assert len(notices) == 2  # one "behind" notice per NOTICE_EVERY seconds at most
    assert NOTICE_EVERY >= 5
    backlog.finish()
    finding = capture_lag(
        backlog.episodes, backlog.max_lag_ns, backlog.behind_ns, backlog.first_behind_ts
    )
    assert finding is not None and finding.code == "capture-lag"
    assert "2 times" in finding.explanation and "waited up to 5.0 s" in finding.explanation
    assert finding.evidence.association == 0


def test_backlog_idle_link_is_not_behind() -> None:
    # the last packet was analysed ten minutes ago; a read waits, and a packet comes: the
    # last packet is old, but nothing had waited for the analysis
    r, w = os.pipe()
    with open(r, "rb", buffering=0) as raw:
        backlog = Backlog(raw, r, 65536, lag_warning=2.0, notice=print)
        backlog.last_ts = time.time_ns() - 600_000_000_000
        later = threading.Timer(0.2, os.write, (w, b"x" * 300))
        later.start()
        assert backlog.read(1000) == b"x" * 300
        later.join()
    os.close(w)
    assert backlog.episodes == 0 and backlog.max_lag_ns == 0


def test_capture_findings() -> None:
    assert capture_drops(Drops(received=10), None, False) is None
    assert capture_lag(0, 0, 0, None) is None
    drops = capture_drops(Drops(received=100, kernel=3, interface=1), 5, True)
    assert drops is not None
    assert (drops.code, drops.severity.label, drops.evidence.association) == (
        "capture-drops",
        "warning",
        0,
    )
    assert "4 packets of 100 received" in drops.explanation
    assert "3 by the kernel" in drops.explanation and "falling behind" in drops.explanation


def test_default_filter() -> None:
    assert LiveOptions("lo").bpf == "tcp"
    assert LiveOptions("lo", ports=(11112, 104, 104)).bpf == "tcp port 104 or tcp port 11112"
    assert LiveOptions("lo", capture_filter="host 10.0.0.9", ports=(104,)).bpf == "host 10.0.0.9"


class _Failing:
    """An output whose writes fail as a full disk or a closed pipe makes them fail."""

    def __init__(self, error: OSError) -> None:
        self.error = error

    def write(self, text: str) -> int:
        raise self.error

    def flush(self) -> None:
        raise self.error


@pytest.mark.parametrize(
    ("error", "said"),
    [
        (OSError(28, "No space left on device"), "No space left on device"),
        (BrokenPipeError(), None),
    ],
)
def test_the_live_log_stops_when_its_output_fails(error: OSError, said: str | None) -> None:
    """A full disk is an error ``dicomtap live`` reports; a reader gone away is none."""
    from analyzer.sources.live.log import LiveLog
    from analyzer.store import Store

    stopped = threading.Event()
    log = LiveLog(Store(), _Failing(error), closed=stopped.set)  # type: ignore[arg-type]
    log.line(None, "first")
    log.line(None, "second")  # not tried again
    assert stopped.is_set() and log.stopped and log.error == said


def test_the_live_log_stamps_times_past_the_year_9999(tmp_path: Path) -> None:
    """Its clock gives the time of day of any capture time, even 2^60 s after 1970 (an
    interface whose if_tsresol says whole seconds), where time.localtime gives up."""
    import io

    from analyzer.findings import Diagnosis
    from analyzer.pipeline import analyze_files
    from analyzer.sources.live.log import LiveLog
    from analyzer.store import Store
    from tests.analyzer.test_pcap_source import ng_epb, ng_idb, ng_shb
    from tests.pcapgen import read_classic

    _, frames = read_classic(DATA / "dicom_echo.pcap")
    blocks = [ng_shb(), ng_idb(1, tsresol=0)]
    blocks += [ng_epb(0, 2**60 + i, data, orig) for i, (_, data, orig) in enumerate(frames)]
    wild = tmp_path / "wild.pcapng"
    wild.write_bytes(b"".join(blocks))
    store, out = Store(), io.StringIO()
    LiveLog(store, out)
    analyze_files([wild], store, rules=Diagnosis())
    lines = out.getvalue().splitlines()
    assert any("#1 C-ECHO Verification SOP Class: 0x0000 Success" in line for line in lines)
    assert len(lines) >= 4 and all(line[2] == ":" and line[12] == " " for line in lines)
