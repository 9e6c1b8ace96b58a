"""A spilling store (``dicomtap analyze`` and ``diagnose``) moves ended associations out of
memory, and nothing read from it changes: every report, the findings and their ranking, the
links across associations, filters and the totals are those of a store that keeps
everything in memory."""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from analyzer import builder, redact, unlisted
from analyzer.cli import main
from analyzer.filter import Filter, select
from analyzer.findings import Diagnosis
from analyzer.model import Severity
from analyzer.pipeline import analyze_files
from analyzer.reports import csvout, diagnosis, jsonl, text
from analyzer.spill import BUDGET_VARIABLE, Spill, SpillError, SpillFile
from analyzer.store import Store
from tests.factories import (
    abort,
    associate_ac,
    associate_rj,
    associate_rq,
    echo_rq,
    echo_rsp,
    release_rp,
    release_rq,
)
from tests.pcapgen import SYN, Conversation, frame, write_pcap

SAMPLES = sorted((Path(__file__).resolve().parents[2] / "samples").glob("*.pcap"))
T0 = 1_700_000_000.0


def crowd(path: Path) -> Path:
    """A capture of many associations that overlap in time: C-ECHOs (a few to many per
    association), rejections while others are open, aborts, SYNs never answered, and one
    association open from the first packet to the last with hundreds of exchanges."""
    frames: list[tuple[float, bytes]] = []
    long = Conversation(("10.9.0.1", 30000), ("10.0.0.2", 104), T0).handshake()
    long.send(True, associate_rq()).send(False, associate_ac())
    for i in range(240):
        client = (f"10.9.{1 + i // 200}.{2 + i % 200}", 20000 + i)
        c = Conversation(client, ("10.0.0.2", 104), T0 + i * 0.004).handshake()
        c.send(True, associate_rq(calling=f"SCU{i % 7}"))
        if i % 11 == 3:
            c.send(False, associate_rj(1, 1, 7)).close(False)
        else:
            c.send(False, associate_ac())
            for n in range(i % 6):
                c.send(True, echo_rq(n + 1)).send(False, echo_rsp(n + 1, status=0x0110 * (n % 2)))
            if i % 13 == 5:
                c.send(True, abort()).close(True)
            else:
                c.send(True, release_rq()).send(False, release_rp()).close()
        frames += c.frames
        long.send(True, echo_rq(i + 1), dt=0.0005).send(False, echo_rsp(i + 1), dt=0.0005)
    for i in range(60):
        syn = frame(f"10.8.0.{1 + i}", 40000 + i, "10.0.0.2", 104, 77 * i, 0, SYN)
        frames.append((T0 + 0.5 + i * 0.001, syn))
    long.send(True, release_rq()).send(False, release_rp()).close()
    frames += long.frames
    frames.sort(key=lambda f: f[0])
    return write_pcap(path, frames)


def analysed(paths: list[Path], spill: Spill | None) -> Store:
    store = Store(spill=spill)
    analyze_files(paths, store, rules=Diagnosis())
    return store


def reports(store: Store) -> dict[str, str]:
    """Every report of ``store``, and of a filtered view of it."""
    out: dict[str, str] = {}
    writers: dict[str, Callable[[Store, io.StringIO], None]] = {
        "json": lambda s, o: jsonl.write(s, o, "test"),
        "text": text.write,
        "csv": csvout.write,
        "findings.csv": lambda s, o: csvout.write_findings(s, o, Severity.WARNING),
        "diagnosis": diagnosis.write,
    }
    views = {"": store, "filtered:": select(store, Filter.parse("status!=0 or calling=SCU3"))}
    for prefix, view in views.items():
        for name, write in writers.items():
            buffer = io.StringIO()
            write(view, buffer)
            out[prefix + name] = buffer.getvalue()
        out[prefix + "verdict"] = diagnosis.verdict(view)
        out[prefix + "exit"] = str(diagnosis.exit_status(view))
        out[prefix + "summary"] = text.summary_line(view)
        out[prefix + "len"] = str(len(view))
    return out


@pytest.fixture(scope="module")
def crowded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return crowd(tmp_path_factory.mktemp("spill") / "crowd.pcap")


@pytest.mark.parametrize("budget", [0, 40_000], ids=["everything spilled", "40 kB"])
def test_crowd_reports_unchanged(crowded: Path, budget: int) -> None:
    kept = analysed([crowded], None)
    spilled = analysed([crowded], Spill(budget=budget))
    assert len(kept) == 240 + 1 + 60
    # The spill was used: ended associations left memory, and the long association's
    # exchanges went out while it was open.
    assert spilled._file is not None and spilled._file.size > 0
    assert len(spilled._spilled) >= 200
    assert spilled._chunks_of
    assert reports(spilled) == reports(kept)
    assert spilled.findings() and sorted(map(repr, spilled.findings())) == sorted(
        map(repr, kept.findings())
    )


def test_crowd_held_in_memory_is_bounded(crowded: Path) -> None:
    """With everything spilled, only the records added after an association was spilled
    (the findings and links made once it ended) stay in memory."""
    store = analysed([crowded], Spill(budget=0))
    assert len(store._associations) <= 2
    assert sum(map(len, store._exchanges_of.values())) <= 2
    assert not store._exchanges and not store._findings


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda p: p.stem)
def test_each_sample_unchanged(sample: Path) -> None:
    assert reports(analysed([sample], Spill(budget=0))) == reports(analysed([sample], None))


def test_samples_as_one_capture_unchanged() -> None:
    """Links across associations (C-MOVE sub-associations, storage commitment on a reverse
    association) made after one of their ends was spilled."""
    kept = analysed(SAMPLES, None)
    spilled = analysed(SAMPLES, Spill(budget=0))
    assert any(spilled.links(a.id) for a in spilled.iter_associations())
    assert reports(spilled) == reports(kept)


@pytest.mark.parametrize(
    "argv",
    [
        ["analyze", "--format", "json"],
        ["analyze", "--format", "text", "--redact", "phi"],
        ["analyze", "--format", "csv", "--filter", "cmd=C-ECHO"],
        ["analyze", "--format", "json", "--jobs", "2"],
        ["diagnose", "--format", "json"],
        ["diagnose", "--format", "text"],
    ],
    ids=" ".join,
)
def test_cli_unchanged(crowded: Path, argv: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """The commands that spill, with every association spilled and with nothing spilled."""
    outputs = []
    for budget in ("0", str(1 << 40)):
        monkeypatch.setenv(BUDGET_VARIABLE, budget)
        try:
            result = CliRunner().invoke(main, [*argv, "--no-progress", str(crowded)])
        finally:
            redact.redact_phi(False)  # --redact sets it for the rest of the process
        assert result.exit_code in (0, 1), result.output
        outputs.append((result.exit_code, result.output))
    assert outputs[0] == outputs[1]
    assert outputs[0][1].count("\n") > 100


def test_spill_file_has_no_name(tmp_path: Path) -> None:
    """Nothing is left behind however the process ends: the file never has a name."""
    spill = SpillFile(str(tmp_path))
    ref = spill.append(("a record", b"\x00" * 70_000, [1, 2, 3]))
    assert spill.read(ref) == ("a record", b"\x00" * 70_000, [1, 2, 3])
    assert list(tmp_path.iterdir()) == []
    assert os.readlink(f"/proc/self/fd/{spill._fd}").endswith("(deleted)")
    spill.close()


def test_budget_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(BUDGET_VARIABLE, "1234")
    assert Spill.from_environment().budget == 1234
    monkeypatch.setenv(BUDGET_VARIABLE, "lots")
    assert Spill.from_environment() == Spill()


def test_no_room_for_the_spill_is_one_clear_error(crowded: Path, tmp_path: Path) -> None:
    """A temporary directory that cannot take the file: an error the command reports in
    one line (not a traceback)."""
    with pytest.raises(SpillError, match="TMPDIR"):
        analysed([crowded], Spill(budget=0, directory=str(tmp_path / "missing")))
    full = SpillFile(str(tmp_path))
    full._fd = os.open("/dev/full", os.O_WRONLY)
    with pytest.raises(SpillError, match="No space left"):
        full.append(b"x" * 10)
    os.close(full._fd)
    full.close()


def list_every_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    """Connections without DICOM are all associations (not counted past the bounds of
    :mod:`analyzer.unlisted`): thousands of small records to spill."""
    monkeypatch.setattr(unlisted, "LISTED", 1 << 30)
    monkeypatch.setattr(unlisted, "LISTED_PER_SERVER", 1 << 30)


def test_small_associations_are_spilled_in_blocks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A SYN flood's thousands of small associations are pickled a block at a time (the
    CPU a spill costs is per pickling, not per record), and read back the same."""
    frames = [
        (T0 + i * 1e-5, frame(f"10.1.{i >> 8}.{i & 255}", 1024 + i, "10.0.0.2", 104, i, 0, SYN))
        for i in range(3000)
    ]
    capture = write_pcap(tmp_path / "syn.pcap", frames)
    list_every_connection(monkeypatch)
    writes: list[int] = []
    append = SpillFile.append

    def counted(self: SpillFile, batch: object) -> tuple[int, int]:
        writes.append(1)
        return append(self, batch)

    monkeypatch.setattr(SpillFile, "append", counted)
    spilled = analysed([capture], Spill(budget=1 << 20))
    kept = analysed([capture], None)
    assert len(spilled._spilled) >= 2000
    assert len(writes) <= len(spilled._spilled) // 50
    assert reports(spilled) == reports(kept)


def test_connections_without_dicom_are_kept_out_of_memory_in_blocks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Connections without DICOM wait for the end of the capture (whether they are reported
    depends on what follows): a spilling store keeps them in blocks on disk, so a port scan
    or a SYN flood does not grow the builder, and they are reported the same."""
    frames = [
        (T0 + i * 1e-5, frame(f"10.2.{i >> 8}.{i & 255}", 2048 + i, "10.0.0.2", 104, i, 0, SYN))
        for i in range(3000)
    ]
    capture = write_pcap(tmp_path / "scan.pcap", frames)
    list_every_connection(monkeypatch)
    monkeypatch.setattr(builder, "_SILENT_BLOCK", 500)
    held: list[int] = []
    keep = builder.ModelBuilder._keep_silent

    def watched(self: builder.ModelBuilder, *args: Any) -> None:
        keep(self, *args)
        held.append(len(self._silent))

    monkeypatch.setattr(builder.ModelBuilder, "_keep_silent", watched)
    spilled = analysed([capture], Spill(budget=1 << 20))
    assert len(held) == 3000 and max(held) < 500
    held.clear()
    kept = analysed([capture], None)
    assert max(held) == 3000  # a store that keeps everything keeps them in memory too
    assert len(spilled) == len(kept) == 3000
    assert reports(spilled) == reports(kept)
