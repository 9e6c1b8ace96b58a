"""``dicomtap proxy`` whose observer is slow: every DIMSE message it observes takes SECONDS
more to record (as a loaded machine or a heavy rule might make it), wherever recording runs
(``DICOMTAP_PROXY_RECORDING``): on the relay's thread, or in the recording process, which is
this script again with ``--recorder``.

Usage: slowproxy.py SECONDS PROXY-ARGS... (the arguments of ``dicomtap proxy``).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from analyzer.cli import main
from analyzer.sources.proxy import recchild, recproc
from analyzer.sources.proxy.records import LocalRecording
from dissectors import DissectorEvent
from dissectors.events import DimseMessageObserved

recorder = sys.argv[1] == "--recorder"
if recorder:
    sys.argv.pop(1)
delay = float(sys.argv.pop(1))
observe = LocalRecording._emit


def slow(self: LocalRecording, event: DissectorEvent) -> None:
    if isinstance(event, DimseMessageObserved):
        time.sleep(delay)
    observe(self, event)


LocalRecording._emit = slow  # type: ignore[method-assign]
if recorder:  # the recording process: argv is [script, FD]
    sys.exit(recchild.main())
recproc.CHILD = [sys.executable, __file__, "--recorder", str(delay)]
sys.argv = ["dicomtap", "proxy", *sys.argv[1:]]
main()
