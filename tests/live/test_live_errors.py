"""``dicomtap live`` and ``dicomtap interfaces`` when capturing cannot happen: one clear
message with the fix, exit status 2. dumpcap itself is run where it can be (an unknown
interface, an invalid filter, no permission); only its absence is arranged."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from analyzer.cli import main
from tests.peers import Net, dicomtap_argv, missing, tool

pytestmark = pytest.mark.peers


def _run(net: Net | None, *args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    argv = dicomtap_argv(*args)
    out = subprocess.run(
        net.wrap(argv) if net else argv, capture_output=True, text=True, timeout=60, env=env
    )
    return out.returncode, out.stdout, out.stderr


def _one_error(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert lines[0].startswith("dicomtap: error: "), stderr
    assert "Traceback" not in stderr
    return lines[0]


def test_missing_dumpcap_on_path(tmp_path: Path) -> None:
    env = dict(os.environ, PATH=str(tmp_path))  # nothing there: no dumpcap
    rc, out, err = _run(None, "live", "-i", "lo", env=env)
    line = _one_error(err)
    assert rc == 2 and out == ""
    assert "dumpcap (Wireshark's capture engine) was not found" in line
    assert "apt install wireshark-common" in line and "tshark" in line
    assert "--dumpcap PATH" in line


@pytest.mark.parametrize("how", ["option", "environment"])
def test_dumpcap_path_that_does_not_exist(how: str, tmp_path: Path) -> None:
    absent = str(tmp_path / "no" / "dumpcap")
    args = ["live", "-i", "lo"]
    env = dict(os.environ)
    if how == "option":
        args += ["--dumpcap", absent]
    else:
        env["DICOMTAP_DUMPCAP"] = absent
    rc, _, err = _run(None, *args, env=env)
    assert rc == 2
    line = _one_error(err)
    assert f"dumpcap: {absent} does not exist" in line and "wireshark-common" in line


def test_interfaces_without_dumpcap(tmp_path: Path) -> None:
    rc, _, err = _run(None, "interfaces", "--dumpcap", str(tmp_path / "dumpcap"))
    assert rc == 2 and "does not exist" in _one_error(err)


def test_no_permission_to_capture(net: Net, tmp_path: Path) -> None:
    # the real dumpcap, run as 'nobody' (no capabilities) through a wrapper script
    setpriv = shutil.which("setpriv")
    if setpriv is None or os.geteuid() != 0:
        missing("setpriv, as root")
    dumpcap = tool("dumpcap")
    wrapper = tmp_path / "dumpcap-as-nobody"
    wrapper.write_text(
        f'#!/bin/sh\nexec {setpriv} --reuid=65534 --regid=65534 --clear-groups {dumpcap} "$@"\n'
    )
    wrapper.chmod(0o755)
    out_file = tmp_path / "never.pcapng"
    rc, out, err = _run(net, "live", "-i", "lo", "--dumpcap", str(wrapper), "-w", str(out_file))
    line = _one_error(err)
    assert rc == 2 and out == ""
    assert "no permission to capture on lo" in line
    assert "'wireshark' group" in line and "root" in line
    assert not out_file.exists()  # no empty capture file left behind


def test_unknown_interface_lists_the_available_ones(net: Net) -> None:
    tool("dumpcap")
    rc, _, err = _run(net, "live", "-i", "nosuch0")
    line = _one_error(err)
    assert rc == 2
    assert "no capture interface named 'nosuch0'" in line
    assert "available interfaces:" in line and "lo (Loopback)" in line


def test_invalid_capture_filter(net: Net) -> None:
    tool("dumpcap")
    rc, _, err = _run(net, "live", "-i", "lo", "-f", "tcp portt 104")
    line = _one_error(err)
    assert rc == 2 and "invalid capture filter 'tcp portt 104'" in line


def test_interfaces_lists_lo(net: Net) -> None:
    tool("dumpcap")
    rc, out, err = _run(net, "interfaces")
    assert rc == 0, err
    rows = [line.split() for line in out.splitlines()]
    assert rows[0] == ["Name", "Description", "Addresses"]
    lo = next(r for r in rows if r[0] == "lo")
    assert "Loopback" in lo and "127.0.0.1," in lo


def test_usage_errors() -> None:
    runner = CliRunner()
    result = runner.invoke(main, ["live", "-i", "lo", "--ring", "3:10"])
    assert result.exit_code == 2 and "--ring needs --write" in result.output
    result = runner.invoke(main, ["live", "-i", "lo", "-w", "x.pcapng", "--ring", "3"])
    assert result.exit_code == 2 and "FILES:SIZE_MB" in result.output
    result = runner.invoke(main, ["live"])
    assert result.exit_code == 2 and "--interface" in result.output


def test_tui_not_available_is_one_clear_error(tmp_path: Path) -> None:
    # as if the tui package were not there: importing tui.app fails
    code = "import sys; sys.modules['tui.app'] = None; from analyzer.cli import main; main()"
    out = subprocess.run(
        [sys.executable, "-c", code, "live", "-i", "lo", "--tui"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2
    assert "--tui: the terminal UI is not available yet" in _one_error(out.stderr)


def test_capture_file_that_cannot_be_written(net: Net, tmp_path: Path) -> None:
    tool("dumpcap")
    target = tmp_path / "no" / "such" / "dir" / "cap.pcapng"
    rc, _, err = _run(net, "live", "-i", "lo", "-w", str(target))
    line = _one_error(err)
    assert rc == 2 and f"cannot write {target}" in line
