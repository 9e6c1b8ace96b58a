"""``dicomtap proxy --log-filter``: the live log shows only the associations that match;
the JSON Lines records and the pcapng keep everything (DCMTK on both sides)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.peers import Net, dcmtk, running

from .harness import PROXY_PORT, UPSTREAM_PORT, proxy, storescp

pytestmark = pytest.mark.peers


def test_log_filter_keeps_matching_associations_in_the_log(net: Net, tmp_path: Path) -> None:
    def echo(calling: str) -> None:
        result = net.run(
            [dcmtk("echoscu"), "-aet", calling, "-aec", "ARCHIVE", "127.0.0.1", str(PROXY_PORT)]
        )
        assert result.returncode == 0, result.stderr

    with (
        running(net, storescp(tmp_path), tmp_path / "scp.log", port=UPSTREAM_PORT),
        proxy(
            net,
            tmp_path,
            "--upstream",
            f"127.0.0.1:{UPSTREAM_PORT}",
            "--log-filter",
            "calling=KEEP* and cmd=C-ECHO",
        ) as px,
    ):
        echo("DROPSCU")
        echo("KEEPSCU")
        px.wait_log(r"#2 released after")
        assert px.stop() == 0
    log = px.log()
    assert "#2 started KEEPSCU → ARCHIVE" in log
    assert "#2 C-ECHO Verification SOP Class: 0x0000 Success" in log
    assert "DROPSCU" not in log
    assert "#1 connection from" in log  # the proxy's own lines are all kept
    recs = px.records()
    calling = {r["calling_ae"] for r in recs if r["type"] == "association"}
    assert calling == {"DROPSCU", "KEEPSCU"}
