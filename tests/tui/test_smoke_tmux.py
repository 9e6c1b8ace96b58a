"""The real command in a real terminal: ``dicomtap tui`` started in tmux, driven by keys.

Every wait is bounded; the tmux session is killed at the end whatever happens.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.peers import missing

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "samples"
WAIT = 30.0


@pytest.fixture(autouse=True)
def _tmux() -> None:
    """A real terminal is needed: without tmux this fails in CI and skips elsewhere."""
    if shutil.which("tmux") is None:
        missing("tmux")


def command() -> list[str]:
    """The console script of this environment, or the same entry point through Python."""
    script = shutil.which("dicomtap")
    if script is not None:
        return [script]
    return [sys.executable, "-c", "from analyzer.cli import main; main()"]


class Terminal:
    """One tmux session running one command."""

    def __init__(self, name: str, argv: list[str], size: tuple[int, int] = (100, 30)) -> None:
        self.name = name
        shell = (
            f"cd {shlex.quote(str(ROOT))} && TZ=UTC TERM=xterm-256color "
            f"PYTHONPATH={shlex.quote(str(ROOT))} {shlex.join(argv)}; echo EXITED $?; sleep 60"
        )
        subprocess.run(
            [
                "tmux",
                "new-session",
                "-d",
                "-s",
                name,
                "-x",
                str(size[0]),
                "-y",
                str(size[1]),
                shell,
            ],
            check=True,
            timeout=10,
        )

    def screen(self) -> str:
        out = subprocess.run(
            ["tmux", "capture-pane", "-p", "-t", self.name],
            capture_output=True,
            text=True,
            timeout=10,
        )
        return out.stdout

    def keys(self, *keys: str) -> None:
        for key in keys:  # one at a time: ESC then a letter would read as alt+letter
            subprocess.run(["tmux", "send-keys", "-t", self.name, key], check=True, timeout=10)
            time.sleep(0.15)

    def type(self, text: str) -> None:
        """Type ``text`` as it is (one send: no key names)."""
        subprocess.run(["tmux", "send-keys", "-t", self.name, "-l", text], check=True, timeout=10)
        time.sleep(0.15)

    def wait(self, test: Callable[[str], bool], what: str) -> str:
        deadline = time.monotonic() + WAIT
        while True:
            screen = self.screen()
            if test(screen):
                return screen
            if time.monotonic() > deadline:
                raise AssertionError(f"waited {WAIT} s for {what}; the screen:\n{screen}")
            time.sleep(0.1)

    def kill(self) -> None:
        subprocess.run(["tmux", "kill-session", "-t", self.name], capture_output=True, timeout=10)


def toasts(screen: str) -> str:
    """The notifications on ``screen``, their wrapped lines joined again."""
    return " ".join(line.split("▌", 1)[1].strip() for line in screen.splitlines() if "▌" in line)


@pytest.fixture
def terminal() -> Iterator[Callable[[list[str]], Terminal]]:
    started: list[Terminal] = []

    def start(argv: list[str]) -> Terminal:
        t = Terminal(f"dicomtap-smoke-{os.getpid()}-{len(started)}", argv)
        started.append(t)
        return t

    yield start
    for t in started:
        t.kill()


def test_dicomtap_tui_in_tmux(terminal: Callable[[list[str]], Terminal]) -> None:
    files = [str(SAMPLES / "store.pcap"), str(SAMPLES / "reject_called_ae.pcap")]
    t = terminal([*command(), "tui", *files])
    screen = t.wait(lambda s: "3 associations" in s and "Quit" in s, "the list")
    lines = screen.rstrip("\n").splitlines()
    assert "dicomtap" in lines[0] and "store.pcap" in lines[0]
    rows = [line for line in lines if "STORESCU → STORESCP" in line]
    assert len(rows) == 2 and all("released" in r for r in rows)
    assert any("ECHOSCU → WRONGAE" in line and "rejected" in line for line in lines)
    assert "Quit" in lines[-1] and "Help" in lines[-1]  # the footer shows the keys

    # the diagnosis rules run too: n goes to the association with a finding (the rejected one)
    t.keys("n")
    t.wait(lambda s: "WRONGAE" in s and "rejected:" in s.rstrip("\n").splitlines()[-2], "n")
    t.keys("Enter")
    screen = t.wait(lambda s: "A-ASSOCIATE-RJ" in s, "the rejected association's timeline")
    assert "ECHOSCU (requestor)" in screen and "(acceptor) WRONGAE" in screen
    assert "rejected: called-AE-title-not-recognized" in screen

    t.keys("Escape")
    t.wait(lambda s: "3 associations" in s, "back to the list")
    t.keys("/")
    for ch in "outcome=rejected":
        t.keys(ch)
    screen = t.wait(lambda s: "1 of 3 shown" in s, "the filter")
    assert "STORESCU → STORESCP" not in screen

    t.keys("Enter", "?")
    t.wait(lambda s: "Keys" in s and "Next finding" in s, "the help screen")
    t.keys("Escape")
    t.wait(lambda s: "1 of 3 shown" in s, "the help screen closed")
    t.keys("q")
    t.wait(lambda s: "EXITED 0" in s, "a clean exit")


def test_unreadable_capture_fails_before_the_ui(tmp_path: Path) -> None:
    bad = tmp_path / "notes.txt"
    bad.write_text("not a capture\n")
    out = subprocess.run(
        [*command(), "tui", str(bad)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert out.returncode == 2
    assert "dicomtap: error:" in out.stderr and "notes.txt" in out.stderr


@pytest.mark.peers
def test_proxy_with_the_tui(terminal: Callable[[list[str]], Terminal], tmp_path: Path) -> None:
    """``dicomtap proxy --tui``: associations relayed to a real storescp appear as they
    happen, in the same app as for a capture; q quits and the proxy shuts down."""
    from tests.objects import write_study
    from tests.peers import Net, dcmtk, running

    files = write_study(tmp_path / "in", 2)
    with Net() as net:
        listen, upstream = net.port(11104), net.port(11105)
        scp = [dcmtk("storescp"), "-aet", "PACS", "--ignore", str(upstream)]
        with running(net, scp, tmp_path / "scp.log", upstream):
            argv = net.wrap(
                [
                    *command(),
                    "proxy",
                    "--listen",
                    f"127.0.0.1:{listen}",
                    "--upstream",
                    f"127.0.0.1:{upstream}",
                    "--tui",
                ]
            )
            t = terminal(argv)
            t.wait(lambda s: "live" in s and "0 associations" in s, "the empty live list")
            deadline = time.monotonic() + WAIT
            while not net.listening(listen):
                assert time.monotonic() < deadline, t.screen()
                time.sleep(0.1)
            store = net.run(
                [
                    dcmtk("storescu"),
                    "-aet",
                    "MODALITY",
                    "-aec",
                    "PACS",
                    "127.0.0.1",
                    str(listen),
                    *map(str, files),
                ]
            )
            assert store.returncode == 0, store.stderr
            screen = t.wait(lambda s: "MODALITY → PACS" in s and "released" in s, "the association")
            row = next(line for line in screen.splitlines() if "MODALITY → PACS" in line)
            assert " 2 " in f"{row} ", screen  # two exchanges (the last column shown at 80)
            # without --pcap no frame is numbered: each response still pairs with its request
            t.keys("Enter")
            screen = t.wait(lambda s: "C-STORE-RSP #2" in s, "the timeline")
            messages = [
                line.split("C-STORE-")[1].split()[:2]
                for line in screen.splitlines()
                if "C-STORE-" in line
            ]
            assert messages == [["RQ", "#1"], ["RSP", "#1"], ["RQ", "#2"], ["RSP", "#2"]], screen
            t.keys("Escape")
            t.wait(lambda s: "MODALITY → PACS" in s and "Quit" in s, "back to the list")
            # without --pcap there are no frames to save: the message says what to add
            t.keys("W")
            t.wait(lambda s: "enter: save" in s, "the save box")
            t.keys("C-a", "C-k")
            t.type(str(tmp_path / "one.pcapng"))
            t.keys("Enter")
            said = "Not saved: frames can only be saved from capture files, not from proxy: "
            said += "start the proxy with --pcap FILE.pcapng to keep them, or save .jsonl or .csv"
            t.wait(lambda s: said in toasts(s), "the message naming --pcap")
            assert not (tmp_path / "one.pcapng").exists()
            t.keys("q")  # the relay is live: q asks first
            t.wait(lambda s: "Stop the proxy and quit?" in s, "the question")
            t.keys("n")
            t.wait(lambda s: "Stop the proxy" not in s and "live" in s, "the relay still running")
            t.keys("q", "y")
            t.wait(lambda s: "EXITED 0" in s, "the proxy to shut down")
