"""dicomtap's event engine: pure, deterministic, sans-IO.

Bytes or TCP segments in, typed events out (:mod:`dissectors.events`). Nothing here opens a
file or a socket, starts a thread or logs: the analyzer owns all I/O.

* :class:`FlowTable` takes TCP segments from a capture and reassembles each connection;
* :class:`AssociationObserver` takes the ordered bytes of one connection (from the flow
  table or the proxy) and reports the association, its PDUs, DIMSE messages, exchanges and
  violations;
* :mod:`dissectors.pdu` decodes and encodes PDUs; :mod:`dissectors.dimse` command and data
  sets; :mod:`dissectors.ul_fsm` holds the PS3.8 state machine, whose log
  :func:`dissectors.outcome.ending` reads the outcome from.
"""

from .events import (
    AnalysisError,
    AssociationEnded,
    AssociationStarted,
    CloseKind,
    ConnectionClosed,
    ConnectionWithoutDicom,
    Detection,
    DimseMessageObserved,
    DissectorEvent,
    Endpoint,
    ExchangeObserved,
    Outcome,
    PduObserved,
    StreamGap,
    StreamResynced,
    TcpAnomaly,
    Violation,
    ViolationKind,
)
from .observer import AssociationObserver
from .outcome import Ending, ending
from .tcp import FlowTable, Segment
from .tcphealth import ResetInfo, TcpSide, TcpSummary, UnansweredBurst
from .ul_fsm import Action, Party, State

__all__ = [
    "Action",
    "AnalysisError",
    "AssociationEnded",
    "AssociationObserver",
    "AssociationStarted",
    "CloseKind",
    "ConnectionClosed",
    "ConnectionWithoutDicom",
    "Detection",
    "DimseMessageObserved",
    "DissectorEvent",
    "Ending",
    "Endpoint",
    "ExchangeObserved",
    "FlowTable",
    "Outcome",
    "Party",
    "PduObserved",
    "ResetInfo",
    "Segment",
    "State",
    "StreamGap",
    "StreamResynced",
    "TcpAnomaly",
    "TcpSide",
    "TcpSummary",
    "UnansweredBurst",
    "Violation",
    "ViolationKind",
    "ending",
]
