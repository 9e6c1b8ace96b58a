"""``dicomtap live --filter``: only the associations that match are reported (DCMTK peers)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.peers import Net, dcmtk, running

from .harness import live

pytestmark = pytest.mark.peers

PORT = 11112


def test_live_reports_only_matching_associations(net: Net, tmp_path: Path) -> None:
    archive = [dcmtk("storescp"), "-aet", "ARCHIVE", str(PORT)]
    echo = [dcmtk("echoscu"), "-aec", "ARCHIVE", "127.0.0.1", str(PORT)]
    with (
        running(net, archive, tmp_path / "archive.log", PORT),
        live(net, "-i", "lo", "--port", str(PORT), "--filter", "calling=KEEP*") as proc,
    ):
        dropped = net.run([*echo[:1], "-aet", "DROPSCU", *echo[1:]])
        kept = net.run([*echo[:1], "-aet", "KEEPSCU", *echo[1:]])
        proc.wait_for(r"#2 released after")
        rc = proc.interrupt()
    assert dropped.returncode == 0 and kept.returncode == 0, dropped.stderr + kept.stderr
    assert rc == 0, proc.describe()
    out = proc.out.text()
    assert "#2 started KEEPSCU → ARCHIVE" in out
    assert "#2 C-ECHO Verification SOP Class: 0x0000 Success" in out
    assert "DROPSCU" not in out and " #1 " not in out
    assert "2 associations" in out  # the summary covers everything captured
