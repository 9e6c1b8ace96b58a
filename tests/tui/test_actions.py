"""Acting from the TUI: saving the selection, copying filters, stepping between views."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import Input

from analyzer.pipeline import analyze_files
from analyzer.store import Store
from tests.peers import tool, tshark_frames
from tui import wireshark
from tui.app import DicomtapApp
from tui.frames import FrameNames
from tui.save import FrameSource, SaveError, save, save_datasets
from tui.screens.association import AssociationScreen
from tui.screens.exchange import ExchangeScreen
from tui.screens.main import MainScreen
from tui.screens.save import SaveScreen
from tui.widgets.timeline import TimelineView

from .conftest import SAMPLES, sample_store
from .test_pilot import line_text, run, static_text

MIXED = ("store.pcap", "reject_called_ae.pcap")


async def save_as(pilot: Pilot[None], app: DicomtapApp, key: str, path: Path) -> None:
    await pilot.press(key)
    await pilot.pause()
    assert isinstance(app.screen, SaveScreen)
    app.screen.query_one("#save-name", Input).value = str(path)
    await pilot.press("enter")
    await app.workers.wait_for_complete()
    await pilot.pause()


def test_save_the_filtered_list_as_jsonl_and_csv(tmp_path: Path) -> None:
    store = sample_store(*MIXED)

    async def scenario(pilot: Pilot[None], app: DicomtapApp) -> None:
        screen = app.screen
        assert isinstance(screen, MainScreen)
        screen.apply_filter("called=STORESCP")
        await pilot.pause()
        await save_as(pilot, app, "w", tmp_path / "stores.jsonl")
        await save_as(pilot, app, "w", tmp_path / "stores.csv")
        await save_as(pilot, app, "w", tmp_path / "stores.csv")  # exists: not overwritten

    run(store, scenario)
    records = [json.loads(line) for line in (tmp_path / "stores.jsonl").read_text().splitlines()]
    saved = [r for r in records if r["type"] == "association"]
    assert len(saved) == 2 and {r["called_ae"] for r in saved} == {"STORESCP"}
    rows = (tmp_path / "stores.csv").read_text().splitlines()
    exchanges = sum(len(store.exchanges(a.id)) for a in store.associations() if a.id in (1, 2))
    assert len(rows) == 1 + exchanges and all("WRONGAE" not in r for r in rows)


def test_save_one_association_as_pcapng_reads_back_the_same(tmp_path: Path) -> None:
    store = sample_store(*MIXED)
    out = tmp_path / "one.pcapng"

    async def scenario(pilot: Pilot[None], app: DicomtapApp) -> None:
        await pilot.press("enter")  # the first association
        await pilot.pause()
        assert isinstance(app.screen, AssociationScreen)
        await save_as(pilot, app, "w", out)

    run(store, scenario)
    again = Store()
    analyze_files([out], again)
    (a,) = again.associations()
    first = store.associations()[0]
    assert (a.client, a.server) == (first.client, first.server)
    assert [e.service for e in again.exchanges(a.id)] == [
        e.service for e in store.exchanges(first.id)
    ]
    assert a.outcome == first.outcome
    listed = subprocess.run(
        [tool("tshark"), "-r", str(out)], capture_output=True, text=True, timeout=60
    )
    assert listed.returncode == 0 and len(listed.stdout.splitlines()) > 10


def test_save_refuses_what_it_cannot_do(tmp_path: Path) -> None:
    store = sample_store("echo.pcap")
    ids = [a.id for a in store.associations()]
    with pytest.raises(SaveError, match=r"pcapng, \.jsonl or \.csv"):
        save(store, ids, str(tmp_path / "x.txt"))
    with pytest.raises(SaveError, match="is not a folder"):
        save(store, ids, str(tmp_path / "missing" / "x.csv"))
    (tmp_path / "there.csv").write_text("keep me")
    with pytest.raises(SaveError, match="already exists"):
        save(store, ids, str(tmp_path / "there.csv"))
    assert (tmp_path / "there.csv").read_text() == "keep me"
    relayed = Store()  # a proxy's store: no capture file to read frames from
    relayed.source.files = ["proxy 127.0.0.1:11112"]
    for a in store.associations():
        relayed.put_association(a)
    with pytest.raises(SaveError, match="only be saved from capture files"):
        save(relayed, ids, str(tmp_path / "x.pcapng"))


def test_wireshark_filter_selects_the_association_s_frames(tmp_path: Path) -> None:
    store = sample_store("store.pcap")
    a = store.associations()[1]
    text = wireshark.display_filter(a, wireshark.frame_names(store.source))
    assert f"tcp.port=={a.client.port}" in text and "frame.number>=" in text
    assert "calling=STORESCU called=STORESCP" in wireshark.identifiers(a)
    frames = tshark_frames(SAMPLES / "store.pcap", text)
    assert frames[0] == a.start_frame and frames[-1] == a.end_frame


def test_copy_keys_put_the_filter_on_the_clipboard() -> None:
    store = sample_store("store.pcap")

    async def scenario(pilot: Pilot[None], app: DicomtapApp) -> None:
        await pilot.press("y")
        first = store.associations()[0]
        assert app.clipboard == wireshark.display_filter(first, FrameNames.of(store.source))
        await pilot.press("enter", "Y")
        assert app.clipboard.startswith("calling=STORESCU called=STORESCP")
        await pilot.press("3", "enter")  # the first exchange
        await pilot.pause()
        assert isinstance(app.screen, ExchangeScreen)
        await pilot.press("Y")
        assert f"sop_instance={app.screen.exchange.sop_instance}" in app.clipboard

    run(store, scenario)


def test_brackets_step_between_associations_and_exchanges() -> None:
    store = sample_store(*MIXED)

    async def scenario(pilot: Pilot[None], app: DicomtapApp) -> None:
        await pilot.press("enter")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, AssociationScreen) and screen.association_id == 1
        await pilot.press("right_square_bracket")
        await pilot.pause()
        assert isinstance(app.screen, AssociationScreen) and app.screen.association_id == 2
        await pilot.press("left_square_bracket")
        await pilot.pause()
        assert isinstance(app.screen, AssociationScreen) and app.screen.association_id == 1
        await pilot.press("3", "enter")
        await pilot.pause()
        assert isinstance(app.screen, ExchangeScreen) and app.screen.exchange.index == 1
        await pilot.press("right_square_bracket", "right_square_bracket")
        await pilot.pause()
        assert isinstance(app.screen, ExchangeScreen) and app.screen.exchange.index == 3
        await pilot.press("escape")  # one step back goes to the association, not via each exchange
        await pilot.pause()
        assert isinstance(app.screen, AssociationScreen) and app.screen.association_id == 1
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, MainScreen)

    run(store, scenario)


def test_several_files_name_frames_by_file_as_wireshark_does(tmp_path: Path) -> None:
    """Frames continue from one file to the next inside dicomtap; on screen and in the
    filters a frame is its file and its number in that file."""
    store = sample_store(*MIXED)
    rejected = next(a for a in store.associations() if a.reject is not None)
    names = FrameNames.of(store.source)
    assert names.locate(1) == ("store.pcap", 1)
    assert rejected.start_frame is not None and rejected.start_frame > 1
    file, number = names.locate(rejected.start_frame)
    assert file == "reject_called_ae.pcap" and number == 1
    text = wireshark.display_filter(rejected, wireshark.frame_names(store.source))
    assert "frame.number>=1 &&" in text
    shown = tshark_frames(SAMPLES / file, text)
    assert shown[0] == 1 and shown[-1] == names.locate(rejected.end_frame or 0)[1]

    async def scenario(pilot: Pilot[None], app: DicomtapApp) -> None:
        screen = app.screen
        assert isinstance(screen, MainScreen)
        screen.table.move_to(screen.table.ids.index(rejected.id))
        await pilot.press("enter")
        await pilot.pause()
        view = app.screen.query_one(TimelineView)
        frames = [line_text(view, y).split()[-1] for y in range(len(view.rows))]
        assert "#1" in frames and f"#{rejected.start_frame}" not in frames
        view.move_to(next(i for i, r in enumerate(view.rows) if r.first_frame is not None))
        await pilot.pause()
        assert "(frame reject_called_ae.pcap:1)" in static_text(app, "#row-detail")

    run(store, scenario)


def test_save_an_exchange_s_data_set_as_dicom(tmp_path: Path) -> None:
    import pydicom

    store = sample_store("store.pcap")
    first = store.exchanges(store.associations()[0].id)[0]
    folder = tmp_path / "out"

    async def scenario(pilot: Pilot[None], app: DicomtapApp) -> None:
        await pilot.press("enter", "3", "enter")
        await pilot.pause()
        assert isinstance(app.screen, ExchangeScreen) and app.screen.exchange.index == 1
        await save_as(pilot, app, "w", folder)
        await save_as(pilot, app, "w", folder)  # again: a second name, nothing overwritten
        messages = [str(n.message) for n in app._notifications]
        assert any(m.startswith("saved 1 data set to") for m in messages), messages

    run(store, scenario)
    files = sorted(p.name for p in folder.iterdir())
    assert files == [f"{first.sop_instance}.2.dcm", f"{first.sop_instance}.dcm"]
    ds = pydicom.dcmread(folder / files[1])
    assert ds.SOPInstanceUID == first.sop_instance
    assert ds.file_meta.MediaStorageSOPClassUID == first.sop_class


def test_data_sets_cannot_be_saved_from_a_relay(tmp_path: Path) -> None:
    store = sample_store("store.pcap")
    relayed = Store()
    relayed.source.files = ["proxy 127.0.0.1:11112"]
    e = store.exchanges()[0]
    with pytest.raises(SaveError, match="only be saved from capture files"):
        save_datasets(relayed, e, str(tmp_path / "out"))
    assert not (tmp_path / "out").exists()


def _written(path: Path) -> int:
    """Frames the pcapng at ``path`` holds, as the project's reader counts them."""
    from analyzer.sources.pcap import read_packets

    with open(path, "rb") as f:
        return sum(1 for _ in read_packets(f))


def test_a_running_source_without_a_capture_says_which_option_keeps_one(tmp_path: Path) -> None:
    store = sample_store("echo.pcap")
    relayed = Store()  # a proxy's store: its source names no file
    relayed.source.name = "proxy"
    relayed.source.files = ["proxy 127.0.0.1:11112"]
    for a in store.associations():
        relayed.put_association(a)
    ids = [a.id for a in relayed.associations()]
    hint = "start the proxy with --pcap FILE.pcapng to keep them"
    with pytest.raises(SaveError) as caught:
        save(relayed, ids, str(tmp_path / "x.pcapng"), FrameSource(None, hint))
    assert str(caught.value) == (
        f"frames can only be saved from capture files, not from proxy: {hint}, "
        "or save .jsonl or .csv"
    )
    assert not (tmp_path / "x.pcapng").exists()
    # a file named like the source's description is never taken for its capture
    (tmp_path / "proxy 127.0.0.1:11112").write_bytes((SAMPLES / "echo.pcap").read_bytes())
    relayed.source.files = [str(tmp_path / "proxy 127.0.0.1:11112")]
    with pytest.raises(SaveError, match=r"--pcap FILE\.pcapng"):
        save(relayed, ids, str(tmp_path / "x.pcapng"), FrameSource(None, hint))


def test_a_running_source_s_frames_are_read_up_to_its_last_whole_block(tmp_path: Path) -> None:
    """A capture still being written ends inside a block: what came before is saved."""
    store = sample_store("store.pcap")
    first = store.associations()[0]
    whole = tmp_path / "whole.pcapng"
    save(store, [first.id], str(whole))
    frames = _written(whole)
    growing = tmp_path / "growing.pcapng"
    data = whole.read_bytes()
    growing.write_bytes(data[: len(data) - 10])  # the last packet block is cut
    relayed = Store()
    relayed.put_association(first)
    calls: list[int] = []

    def files() -> list[str]:
        calls.append(1)
        return [str(growing)]

    done = save(relayed, [first.id], str(tmp_path / "out.pcapng"), FrameSource(files))
    assert calls == [1] and done.frames == frames - 1
    assert _written(tmp_path / "out.pcapng") == frames - 1


def test_an_exchange_s_data_set_from_a_running_source(tmp_path: Path) -> None:
    """A running source's files number associations otherwise than its store (the proxy's
    hold the upstream legs too): the exchange's data set is found by its association's
    frames, not by its number."""
    import pydicom

    store = sample_store("store.pcap")
    e = store.exchanges(store.associations()[0].id)[0]
    # another association comes first in the files: it is number 1 there
    capture = [str(SAMPLES / "echo.pcap"), str(SAMPLES / "store.pcap")]
    done = save_datasets(store, e, str(tmp_path / "out"), FrameSource(lambda: capture))
    assert done.files == (f"{e.sop_instance}.dcm",), done
    ds = pydicom.dcmread(tmp_path / "out" / done.files[0])
    assert ds.SOPInstanceUID == e.sop_instance
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [f"{e.sop_instance}.dcm"]


def test_the_proxy_s_pcapng_holds_every_packet_once_synced_while_it_is_open(
    tmp_path: Path,
) -> None:
    """What the UI reads while the proxy runs: everything written so far, although the
    writer thread keeps its file open and buffered."""
    from analyzer.sources.proxy.pcapng import Interface, PcapngWriter, TcpLeg
    from analyzer.sources.proxy.writer import BackgroundWriter

    output = BackgroundWriter(lambda line: None)
    writer = PcapngWriter(tmp_path / "relay.pcapng", output=output)
    try:
        leg = TcpLeg(writer, Interface.CLIENT_LEG, ("127.0.0.1", 50000), ("127.0.0.1", 104))
        leg.open(1_000)
        for i in range(20):
            leg.data(True, 2_000 + i, b"x" * 100)
        time.sleep(0.1)  # the writer thread has had its rounds: the packets wait in its buffer
        assert (tmp_path / "relay.pcapng").stat().st_size == 0
        assert writer.sync() == [tmp_path / "relay.pcapng"]
        assert _written(tmp_path / "relay.pcapng") == 23
    finally:
        writer.close()
        output.close()
