"""What a new user meets first: odd inputs, odd times, redirected and failing outputs.

Timestamps past the year 9999 (tests/data/repros), standard input and compressed captures,
files given out of time order, unsupported link types, a full disk, a closed pipe, the
progress bar with the report redirected.
"""

from __future__ import annotations

import bz2
import gzip
import json
import lzma
import os
import pty
import select
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

import dpkt
import pytest
from click.testing import CliRunner

from analyzer.cli import main
from analyzer.reports.common import iso_time
from tests.analyzer.test_pcap_source import ng_epb, ng_idb, ng_shb
from tests.factories import echo_association
from tests.pcapgen import Conversation, read_classic, write_pcap
from tests.peers import dicomtap_argv

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "samples"
REPROS = ROOT / "tests" / "data" / "repros"


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def dicomtap(
    *args: str, input: bytes | None = None, stdout: int | IO[bytes] = subprocess.PIPE
) -> subprocess.CompletedProcess[bytes]:
    """The installed command in a fresh interpreter, as a user runs it."""
    return subprocess.run(
        dicomtap_argv(*args),
        input=input,
        stdout=stdout,
        stderr=subprocess.PIPE,
        timeout=120,
        check=False,
    )


def records(text: str | bytes) -> list[dict[str, object]]:
    lines = text.decode() if isinstance(text, bytes) else text
    return [json.loads(line) for line in lines.splitlines()]


def without_sources(recs: list[dict[str, object]]) -> list[dict[str, object]]:
    """The records, but for the header's and the summary's words about the files read."""
    out = []
    for r in recs:
        r = dict(r)
        if r["type"] == "header":
            r.pop("sources")
        if r["type"] == "summary":
            r.pop("warnings")
        out.append(r)
    return out


# --- times past the year 9999 -------------------------------------------------------------


def test_iso_time_beyond_the_datetime_range() -> None:
    last = int(datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC).timestamp()) * 10**9
    assert iso_time(last) == "9999-12-31T23:59:59.000000Z"
    assert iso_time(last + 10**9 + 5_000) == "+010000-01-01T00:00:00.000005Z"
    assert iso_time(-1) == "1969-12-31T23:59:59.999999Z"
    year_1 = int(datetime(1, 1, 1, tzinfo=UTC).timestamp()) * 10**9
    assert iso_time(year_1 - 1) == "0000-12-31T23:59:59.999999Z"
    assert iso_time(year_1 - 366 * 86_400 * 10**9) == "0000-01-01T00:00:00.000000Z"  # leap
    assert iso_time(year_1 - 367 * 86_400 * 10**9) == "-000001-12-31T00:00:00.000000Z"
    assert str(iso_time(2**64 * 10**9)).startswith("+584554051223-")  # 2^64 seconds


@pytest.mark.parametrize("name", ["iso_time_min.pcapng", "iso_time_echo.pcapng"])
@pytest.mark.parametrize("command", ["analyze", "diagnose"])
@pytest.mark.parametrize("fmt", ["text", "json", "csv"])
def test_timestamps_past_the_year_9999(name: str, command: str, fmt: str) -> None:
    code, out, err = run(command, "--format", fmt, str(REPROS / name))
    assert code == 0, err
    if name == "iso_time_echo.pcapng" and command == "analyze":
        if fmt == "text":
            assert "Started: +586438-03-27T03:49:22.812251Z" in out
            assert "C-ECHO" in out and "0x0000 Success" in out
        if fmt == "json":
            (association,) = [r for r in records(out) if r["type"] == "association"]
            assert association["start"] == "+586438-03-27T03:49:22.812251Z"
            assert association["outcome"] == "released"


@pytest.mark.parametrize(
    ("tsresol", "tsoffset", "units", "seconds"),
    [
        (0, None, 2**60, 2**60),  # whole seconds: far in the future
        (6, -(2**62), 10**6, 1 - 2**62),  # an offset far into the past
        (0x80 | 1, 2**40, 2**63, 2**62 + 2**40),  # halves of a second, plus an offset
    ],
)
def test_wild_interface_time_settings(
    tmp_path: Path, tsresol: int, tsoffset: int | None, units: int, seconds: int
) -> None:
    _, frames = read_classic(ROOT / "tests" / "data" / "pcap" / "dicom_echo.pcap")
    blocks = [ng_shb(), ng_idb(1, tsresol=tsresol, tsoffset=tsoffset)]
    blocks += [ng_epb(0, units + i, data, orig) for i, (_, data, orig) in enumerate(frames)]
    path = tmp_path / "wild.pcapng"
    path.write_bytes(b"".join(blocks))
    for command in ("analyze", "diagnose"):
        for fmt in ("text", "json", "csv"):
            code, _, err = run(command, "--format", fmt, str(path))
            assert code == 0, err
    recs = records(run("analyze", "--format", "json", str(path))[1])
    (association,) = [r for r in recs if r["type"] == "association"]
    start = str(association["start"])
    year = int(start[: start.index("-", 1)])
    assert abs(year - (1970 + seconds / 31_556_952)) < 1  # the mean Gregorian year
    assert [r["command"] for r in recs if r["type"] == "exchange"] == ["C-ECHO"]


# --- outputs that fail -------------------------------------------------------------------


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full on this system")
@pytest.mark.parametrize("command", ["analyze", "diagnose"])
def test_a_full_disk_is_one_line_and_exit_2(command: str) -> None:
    sample = str(SAMPLES / "store.pcap")
    with open("/dev/full", "wb") as full:
        done = dicomtap(command, sample, stdout=full)
    assert done.returncode == 2
    assert (
        done.stderr == b"dicomtap: error: cannot write standard output: No space left on device\n"
    )
    done = dicomtap(command, "--format", "json", "-o", "/dev/full", sample)
    assert done.returncode == 2 and done.stdout == b""
    assert done.stderr == b"dicomtap: error: cannot write /dev/full: No space left on device\n"


def _many_echoes(path: Path, count: int) -> Path:
    frames: list[tuple[float, bytes]] = []
    for n in range(count):
        talk = Conversation(("10.0.0.1", 20000 + n), ("10.0.0.2", 104), t0=1_700_000_000.0 + n)
        talk.handshake()
        for from_client, pdu in echo_association():
            talk.send(from_client, pdu)
        frames += talk.close().frames
    return write_pcap(path, sorted(frames, key=lambda f: f[0]))


@pytest.mark.parametrize("command", ["analyze", "diagnose"])
def test_a_reader_that_goes_away_ends_it_quietly(tmp_path: Path, command: str) -> None:
    capture = _many_echoes(tmp_path / "echoes.pcap", 200)  # reports far beyond a pipe's 64 KiB
    proc = subprocess.Popen(
        dicomtap_argv(command, "--format", "json", str(capture)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    assert json.loads(proc.stdout.readline())["type"] == "header"
    proc.stdout.close()  # as `| head -1` does
    err = proc.stderr.read()
    assert proc.wait(timeout=60) == 0
    assert err == b""


def test_the_progress_bar_goes_to_stderr_and_only_to_a_terminal() -> None:
    sample = str(SAMPLES / "move_orthanc.pcap")
    plain = dicomtap("analyze", "--no-progress", sample).stdout
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        dicomtap_argv("analyze", sample),
        stdout=subprocess.PIPE,
        stderr=slave,
        stdin=subprocess.DEVNULL,
    )
    os.close(slave)
    out, _ = proc.communicate(timeout=60)
    drawn = b""
    while select.select([master], [], [], 0.5)[0]:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # the terminal's other side is closed
            break
        if not chunk:
            break
        drawn += chunk
    os.close(master)
    assert proc.returncode == 0
    assert out == plain  # the report redirected to a pipe: not a byte of the bar in it
    assert b"reading" in drawn  # the bar was drawn on the terminal
    # stderr not a terminal: no bar at all
    assert dicomtap("analyze", sample).stderr == b""


# --- inputs ----------------------------------------------------------------------------------


def test_standard_input_and_compressed_captures(tmp_path: Path) -> None:
    sample = SAMPLES / "move_orthanc.pcap"
    data = sample.read_bytes()
    expected = without_sources(records(dicomtap("analyze", "--format", "json", str(sample)).stdout))
    compressed = {"gzip": gzip.compress(data), "xz": lzma.compress(data), "bz2": bz2.compress(data)}
    for kind, body in compressed.items():
        path = tmp_path / f"capture-{kind}.bin"  # recognised by content, not by name
        path.write_bytes(body)
        done = dicomtap("analyze", "--format", "json", str(path))
        assert done.returncode == 0 and done.stderr == b"", done.stderr
        assert without_sources(records(done.stdout)) == expected, kind
        piped = dicomtap("analyze", "--format", "json", "-", input=body)
        assert without_sources(records(piped.stdout)) == expected, kind
    done = dicomtap("analyze", "--format", "json", "-", input=data)
    assert without_sources(records(done.stdout)) == expected
    assert records(done.stdout)[0]["sources"] == ["<stdin>"]
    assert dicomtap("diagnose", "-", input=data).returncode == 0


def test_a_compressed_capture_cut_short_is_analysed_up_to_the_cut(tmp_path: Path) -> None:
    path = tmp_path / "cut.pcap.gz"
    path.write_bytes(gzip.compress((SAMPLES / "store.pcap").read_bytes())[:3000])
    done = dicomtap("analyze", str(path))
    assert done.returncode == 0
    assert b"the gzip stream is cut or damaged" in done.stderr
    assert b"analysed up to the cut" in done.stderr
    assert b"Association 1:" in done.stdout


def test_what_is_not_a_capture_inside_compression_is_named(tmp_path: Path) -> None:
    path = tmp_path / "notes.gz"
    path.write_bytes(gzip.compress(b"just some text\n"))
    code, _, err = run("analyze", str(path))
    assert code == 2
    assert "(gzip-compressed) is not a pcap or pcapng capture" in err
    zstd = tmp_path / "capture.zst"
    zstd.write_bytes(b"\x28\xb5\x2f\xfd" + bytes(20))
    code, _, err = run("analyze", str(zstd))
    assert code == 2 and "zstd-compressed: decompress it first" in err


def test_files_given_out_of_time_order_are_read_in_time_order(tmp_path: Path) -> None:
    # A ring buffer's two files, cut in the middle of an association (C-MOVE with its
    # sub-association), given newest first as a careless glob or user would.
    linktype, frames = read_classic(SAMPLES / "move_orthanc.pcap")
    assert linktype == 1
    half = len(frames) // 2
    first, second = tmp_path / "ring_b.pcap", tmp_path / "ring_a.pcap"  # names sort wrongly
    write_pcap(first, [(ts / 1e9, data) for ts, data, _ in frames[:half]])
    write_pcap(second, [(ts / 1e9, data) for ts, data, _ in frames[half:]])
    in_order = dicomtap("analyze", "--format", "json", str(first), str(second))
    assert in_order.stderr == b""
    given_backwards = dicomtap("analyze", "--format", "json", str(second), str(first))
    assert given_backwards.stderr == (
        b"dicomtap: note: files read in the order of their first packets, not as given: "
        + f"{first}, {second}\n".encode()
    )
    recs = records(given_backwards.stdout)
    assert recs[0]["sources"] == [str(first), str(second)]
    assert without_sources(recs) == without_sources(records(in_order.stdout))
    assert all(r["outcome"] == "released" for r in recs if r["type"] == "association")


def test_an_unsupported_link_type_is_named(tmp_path: Path) -> None:
    path = tmp_path / "user0.pcap"
    with path.open("wb") as f:
        writer = dpkt.pcap.Writer(f, linktype=147)
        _, frames = read_classic(SAMPLES / "echo.pcap")
        for ts, data, _ in frames:
            writer.writepkt(data, ts=ts / 1e9)
    code, out, err = run("analyze", str(path))
    assert code == 0
    assert f"No DICOM found in {len(frames)} packet(s) (unsupported link type 147 (USER0))." in out
    assert "no TCP traffic" not in out + err
    assert f"{len(frames)} frames of unsupported link type 147 (USER0) skipped" in err


def test_tui_refuses_standard_input() -> None:
    code, _, err = run("tui", "-")
    assert code == 2 and "save the capture to a file" in err


@pytest.mark.parametrize("command", ["analyze", "diagnose", "tui", "live"])
def test_help_has_examples_and_exit_status(command: str) -> None:
    code, out, _ = run(command, "--help")
    assert code == 0
    assert "Examples:" in out and "Exit status" in out
    example = out.split("Examples:")[1].splitlines()[1].strip()
    assert example.startswith(f"dicomtap {command} ")


def test_readme_newcomer_commands_need_no_sudo() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "\nbash .ci/run\n" in readme and "sudo bash .ci/run" not in readme
    install = (ROOT / ".ci" / "install").read_text()
    assert '[[ $(id -u) -eq 0 ]] || sudo="sudo"' in install  # sudo only when not root
