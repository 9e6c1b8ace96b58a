"""Many associations at once: all relayed, all logged, none mixed up with another."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest
from pydicom import dcmread

from tests.objects import write_image
from tests.peers import Net, analyze, dcmtk, running

from .harness import PROXY_PORT, UPSTREAM_PORT, leg_records, proxy, storescp

pytestmark = pytest.mark.peers

COUNT = 50


def test_fifty_concurrent_storescu(net: Net, tmp_path: Path) -> None:
    files = {
        f"MOD{i:02d}": write_image(tmp_path / f"{i}.dcm", index=i, patient_id=f"P{i:02d}", size=32)
        for i in range(1, COUNT + 1)
    }
    scp = storescp(tmp_path, UPSTREAM_PORT, "--fork")
    with (
        running(net, scp, tmp_path / "storescp.log", port=UPSTREAM_PORT),
        proxy(net, tmp_path, "--upstream", f"127.0.0.1:{UPSTREAM_PORT}", "-q") as px,
    ):
        procs = {
            ae: subprocess.Popen(
                net.wrap(
                    [
                        dcmtk("storescu"),
                        "-aet",
                        ae,
                        "-aec",
                        "PACS",
                        "127.0.0.1",
                        str(PROXY_PORT),
                        str(path),
                    ]
                ),
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            for ae, path in files.items()
        }
        for ae, p in procs.items():
            out, _ = p.communicate(timeout=120)
            assert p.returncode == 0, f"{ae}: {out}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and px.jsonl.read_text().count('"association"') < COUNT:
            time.sleep(0.1)
        assert px.stop() == 0
    recs = px.records()
    assocs = {r["id"]: r for r in recs if r["type"] == "association"}
    assert len(assocs) == COUNT
    assert sorted(a["calling_ae"] for a in assocs.values()) == sorted(files)
    assert {a["outcome"] for a in assocs.values()} == {"released"}
    ports = {a["client"]["port"] for a in assocs.values()}
    assert len(ports) == COUNT
    exchanges = [r for r in recs if r["type"] == "exchange"]
    assert len(exchanges) == COUNT
    for e in exchanges:
        a = assocs[e["association"]]
        sent = dcmread(files[a["calling_ae"]], stop_before_pixels=True)
        assert e["sop_instance"] == sent.SOPInstanceUID, a["calling_ae"]
        assert e["status"] == 0
    assert len(list((tmp_path / "received").iterdir())) == COUNT
    client_leg = leg_records(analyze([px.pcap]), PROXY_PORT)
    assert client_leg == leg_records(recs)
