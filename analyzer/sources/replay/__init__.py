"""``dicomtap replay``: one side of a captured association, played against a live peer.

The capture is analysed (:mod:`.captured`), then read again as a script of what the played
side sent and waited for (:mod:`.script`); the player (:mod:`.player`) sends it over a
connection observed like any traffic (:mod:`.link`), waits for the live peer as the capture
shows, and the live records are compared with the captured ones (:mod:`.compare`).
"""

from .captured import Captured, ReplayError
from .compare import Row, Verdict
from .options import Framing, Pace, ReplayOptions
from .render import dry_run_lines, result_lines
from .run import ReplayResult, prepare, replay
from .script import script

__all__ = [
    "Captured",
    "Framing",
    "Pace",
    "ReplayError",
    "ReplayOptions",
    "ReplayResult",
    "Row",
    "Verdict",
    "dry_run_lines",
    "prepare",
    "replay",
    "result_lines",
    "script",
]
