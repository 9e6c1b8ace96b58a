"""``dicomtap proxy`` whose observer is slow: every DIMSE message it observes takes SECONDS
more to record (as a loaded machine or a heavy rule might make it). The observer is patched in
this process, so recording runs in it (on the relay's thread).

Usage: slowproxy.py SECONDS PROXY-ARGS... (the arguments of ``dicomtap proxy``).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from analyzer.cli import main
from analyzer.sources.proxy.records import LocalRecording
from analyzer.sources.proxy.server import RECORDING_ENV
from dissectors import DissectorEvent
from dissectors.events import DimseMessageObserved

delay = float(sys.argv.pop(1))
observe = LocalRecording._emit


def slow(self: LocalRecording, event: DissectorEvent) -> None:
    if isinstance(event, DimseMessageObserved):
        time.sleep(delay)
    observe(self, event)


LocalRecording._emit = slow  # type: ignore[method-assign]
os.environ[RECORDING_ENV] = "thread"
sys.argv = ["dicomtap", "proxy", *sys.argv[1:]]
main()
