"""``dicomtap live`` against real peers (DCMTK, pynetdicom) on the loopback of a namespace.

Each test starts ``dicomtap live`` as a subprocess in its own namespace, makes traffic while
it captures, stops it with SIGINT as Ctrl-C would, and checks what it printed against what
the peers did and against ``dicomtap analyze`` of the capture it kept.
"""

from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path

import pytest

from analyzer.sources.pcap import CaptureFile
from tests.objects import write_image, write_study
from tests.peers import Net, analyze, dcmtk, running

from .harness import HoldScu, by_key, live

pytestmark = pytest.mark.peers

ARCHIVE_PORT = 11112
ODD_PORT = 4100  # a port nobody would guess is DICOM: found all the same, without a filter


def _read_whole(path: Path) -> CaptureFile:
    """The capture read to its end: a valid, complete file (its counters in ``stats``)."""
    capture = CaptureFile(path)
    for _ in capture.segments():
        pass
    capture.close()
    assert not capture.stats.truncated, capture.stats.truncation
    return capture


def test_live_records_equal_analyze_of_the_written_capture(net: Net, tmp_path: Path) -> None:
    images = write_study(tmp_path / "in", 3)
    images.append(write_image(tmp_path / "in" / "big.dcm", index=9, size=400))  # many PDUs
    cap = tmp_path / "live.pcapng"
    archive = [dcmtk("storescp"), "-aet", "ARCHIVE", "--ignore", str(ARCHIVE_PORT)]
    refuser = [dcmtk("storescp"), "--refuse", str(ODD_PORT)]
    with (
        running(net, archive, tmp_path / "archive.log", ARCHIVE_PORT),
        running(net, refuser, tmp_path / "refuser.log", ODD_PORT),
        live(net, "-i", "lo", "--format", "json", "-w", str(cap), "--fail-on-error") as proc,
    ):
        echo = net.run([dcmtk("echoscu"), "-aec", "ARCHIVE", "127.0.0.1", str(ARCHIVE_PORT)])
        store = net.run(
            [
                dcmtk("storescu"),
                "-aet",
                "MODALITY",
                "-aec",
                "ARCHIVE",
                "127.0.0.1",
                str(ARCHIVE_PORT),
                *map(str, images),
            ]
        )
        refused = net.run([dcmtk("echoscu"), "-aec", "ANY", "127.0.0.1", str(ODD_PORT)])
        scu = HoldScu(net, ARCHIVE_PORT, "--echo", "--calling", "PYNETDICOM")
        scu.wait_for("^ECHO 0x0000")
        scu.release()
        proc.wait_count(r'"type":"association"', 4)
        rc = proc.interrupt()
    assert echo.returncode == 0, echo.stderr
    assert store.returncode == 0, store.stderr
    assert refused.returncode != 0  # DCMTK's echoscu: association rejected
    assert rc == 1, proc.describe()  # --fail-on-error: the rejection is an error finding

    seen = proc.json_records()
    assert seen[0]["type"] == "header" and seen[0]["live"]["interface"] == "lo"
    summary = seen[-1]
    assert summary["type"] == "summary" and summary["exit_status"] == 1
    assert "rejected" in summary["verdict"]
    assert summary["capture"]["dropped"]["total"] == 0
    assert summary["capture"]["files"] == [str(cap)]

    # the peers' view, in the live records
    associations = sorted((r for r in seen if r["type"] == "association"), key=lambda r: r["start"])
    assert [(a["calling_ae"], a["called_ae"], a["outcome"]) for a in associations] == [
        ("ECHOSCU", "ARCHIVE", "released"),
        ("MODALITY", "ARCHIVE", "released"),
        ("ECHOSCU", "ANY", "rejected"),
        ("PYNETDICOM", "ANY-SCP", "released"),
    ]
    assert associations[2]["server"]["port"] == ODD_PORT
    stores = [r for r in seen if r["type"] == "exchange" and r["command"] == "C-STORE"]
    assert len(stores) == len(images) and all(r["status"] == 0 for r in stores)

    # the same records as 'dicomtap analyze' of the capture it kept
    capture = _read_whole(cap)
    assert capture.stats.interface_statistics, "no Interface Statistics Block: not closed"
    assert capture.stats.packets == summary["capture"]["packets"]
    live_records = by_key(r for r in seen if r.get("association", r.get("id")) != 0)
    file_records = by_key(analyze([cap]))
    assert live_records.keys() == file_records.keys()
    for key, record in file_records.items():
        assert live_records[key] == record, key
    assert {k[0] for k in file_records} >= {"association", "exchange", "finding"}


def test_events_show_within_a_second_and_open_association_is_open_at_end(
    net: Net, tmp_path: Path
) -> None:
    cap = tmp_path / "live.pcapng"
    archive = [dcmtk("storescp"), "-aet", "ARCHIVE", "--ignore", str(ARCHIVE_PORT)]
    delays = []
    scus: list[HoldScu] = []
    try:
        with (
            running(net, archive, tmp_path / "archive.log", ARCHIVE_PORT),
            live(net, "-i", "lo", "-w", str(cap)) as proc,
        ):
            for n in (1, 2, 3):
                scu = HoldScu(net, ARCHIVE_PORT, "--echo", "--calling", f"HOLD{n}")
                scus.append(scu)
                sent = scu.sent_at()
                shown = proc.wait_for(rf"#{n} started HOLD{n} → ANY-SCP, 127\.0\.0\.1:\d+ →")
                delays.append(shown - sent)
                proc.wait_for(rf"#{n} accepted 1 of 1 context: Verification SOP Class")
                proc.wait_for(rf"#{n} C-ECHO Verification SOP Class: 0x0000 Success, latency")
                if n < 3:
                    scu.release()
                    proc.wait_for(rf"#{n} released after ")
            # the third association is still open: Ctrl-C now
            assert proc.count(r"#3 (released|ended|open at end)") == 0
            stopped_at = time.monotonic()
            rc = proc.interrupt()
            stop_seconds = time.monotonic() - stopped_at
    finally:
        for scu in scus:
            scu.stop()
    print(f"\ndelay from A-ASSOCIATE-RQ sent to 'started' line: {[f'{d:.3f}' for d in delays]} s")
    assert max(delays) < 1.0, delays
    assert rc == 0, proc.describe()
    assert stop_seconds < 10, stop_seconds
    out = proc.out.text()
    assert re.search(r"#3 open at end: still open when the capture ended", out), out
    assert "Verdict: No failure in 3 associations" in out
    assert re.search(r"Capture: lo, filter 'tcp', [\d.]+ s, \d+ packets .*, none dropped\.", out)
    assert f"Capture kept in {cap}." in out
    assert "Traceback" not in proc.err.text()

    capture = _read_whole(cap)  # valid, complete, and closed by dumpcap's clean end
    assert capture.stats.interface_statistics
    records = analyze([cap])
    outcomes = {r["calling_ae"]: r["outcome"] for r in records if r["type"] == "association"}
    assert outcomes == {"HOLD1": "released", "HOLD2": "released", "HOLD3": "open-at-end"}


def test_ring_buffer_rotates_and_its_files_in_order_give_the_same_records(
    net: Net, tmp_path: Path
) -> None:
    images = write_study(tmp_path / "in", 12, size=160)  # ~50 KB each
    archive = [dcmtk("storescp"), "-aet", "ARCHIVE", "--ignore", str(ARCHIVE_PORT)]
    storescu = [dcmtk("storescu"), "-aec", "ARCHIVE", "127.0.0.1", str(ARCHIVE_PORT)]
    keep_all = tmp_path / "all" / "ring.pcapng"
    keep_two = tmp_path / "two" / "ring.pcapng"
    keep_all.parent.mkdir()
    keep_two.parent.mkdir()
    with running(net, archive, tmp_path / "archive.log", ARCHIVE_PORT):
        runs = []
        for base, ring in ((keep_all, "100:0.1"), (keep_two, "2:0.1")):
            with live(net, "-i", "lo", "--format", "json", "-w", str(base), "--ring", ring) as p:
                sent = net.run([*storescu, *map(str, images)])
                assert sent.returncode == 0, sent.stderr
                p.wait_count(r'"type":"association"', 1)
                assert p.interrupt() == 0, p.describe()
                runs.append(p)

    all_files = sorted(keep_all.parent.iterdir())
    assert len(all_files) >= 4, all_files  # ~600 KB in 100 KB files
    assert [f.name for f in all_files] == [
        f"ring_{i:05d}.pcapng" for i in range(1, 1 + len(all_files))
    ]
    summary = runs[0].json_records()[-1]
    assert summary["capture"]["files"] == [str(f) for f in all_files]
    packets = 0
    for f in all_files:  # each file a capture of its own, none much past the size
        packets += _read_whole(f).stats.packets
        assert f.stat().st_size <= 100_000 + 70_000, (f, f.stat().st_size)
    assert packets == summary["capture"]["packets"]
    live_records = by_key(r for r in runs[0].json_records() if r.get("association", 1) != 0)
    file_records = by_key(analyze(all_files))
    assert live_records.keys() == file_records.keys()
    for key, record in file_records.items():
        assert live_records[key] == record, key

    two = sorted(keep_two.parent.iterdir())  # the oldest files were deleted as new ones came
    assert len(two) == 2
    assert int(two[0].name[5:10]) >= 3 and int(two[1].name[5:10]) == int(two[0].name[5:10]) + 1
    assert runs[1].json_records()[-1]["capture"]["files"] == [str(f) for f in two]
    for f in two:
        _read_whole(f)


def test_drops_and_falling_behind_are_reported(net: Net, tmp_path: Path) -> None:
    # dicomtap is frozen (SIGSTOP) while 60 MB go by: the pipe from dumpcap fills, dumpcap
    # blocks, and its 1 MiB kernel buffer overflows. Thawed, it must say it is behind, and
    # at the end report the drops and the delay as capture-wide findings.
    (tmp_path / "in").mkdir()
    big = write_image(tmp_path / "in" / "big.dcm", index=1, size=2048)  # 8 MiB
    archive = [dcmtk("storescp"), "-aet", "ARCHIVE", "--ignore", str(ARCHIVE_PORT)]
    with (
        running(net, archive, tmp_path / "archive.log", ARCHIVE_PORT),
        live(net, "-i", "lo", "--port", str(ARCHIVE_PORT), "-B", "1", "--format", "json") as p,
    ):
        os.kill(p.pid, signal.SIGSTOP)
        try:
            frozen = time.monotonic()
            sent = net.run(
                [dcmtk("storescu"), "-aec", "ARCHIVE", "127.0.0.1", str(ARCHIVE_PORT)]
                + [str(big)] * 8
            )
            time.sleep(max(0.0, 3.0 - (time.monotonic() - frozen)))
        finally:
            os.kill(p.pid, signal.SIGCONT)
        assert sent.returncode == 0, sent.stderr
        p.wait_for(r"warning: analysis is falling behind the capture", stderr=True)
        time.sleep(1.0)
        rc = p.interrupt()
    assert rc == 0, p.describe()
    records = p.json_records()
    summary = records[-1]
    capture = summary["capture"]
    assert capture["dropped"]["total"] > 0 and capture["dropped"]["kernel"] > 0, capture
    assert capture["fell_behind"] >= 1, capture
    codes = {r["code"]: r for r in records if r["type"] == "finding" and r["association"] == 0}
    assert set(codes) == {"capture-drops", "capture-lag"}, codes
    assert codes["capture-drops"]["severity"] == "warning"
    assert f"{capture['dropped']['total']} packets" in codes["capture-drops"]["explanation"]
    assert summary["exit_status"] == 0  # warnings only (without --fail-on-error, 0 anyway)
