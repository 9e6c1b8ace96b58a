"""``dicomtap proxy`` whose observer is slow: every DIMSE message it observes takes SECONDS
more to record (as a loaded machine or a heavy rule might make it).

Usage: slowproxy.py SECONDS PROXY-ARGS... (the arguments of ``dicomtap proxy``).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from analyzer.cli import main
from analyzer.sources.proxy.runtime import Runtime
from dissectors import DissectorEvent
from dissectors.events import DimseMessageObserved

delay = float(sys.argv.pop(1))
observe = Runtime._emit


def slow(self: Runtime, event: DissectorEvent) -> None:
    if isinstance(event, DimseMessageObserved):
        time.sleep(delay)
    observe(self, event)


Runtime._emit = slow  # type: ignore[method-assign]
sys.argv = ["dicomtap", "proxy", *sys.argv[1:]]
main()
