"""Every field of the filter language: what it tests, on what, with which kind of value.

A field describes the association (``calling``, ``ip``, ``outcome``, ``code``...), one
DIMSE exchange (``cmd``, ``status``, ``latency``), or either (``sop``, ``ts``, ``bytes``,
``duration``, ``time``): the exchange's when joined with exchange fields, the
association's otherwise (see :mod:`.evaluate`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import Enum
from typing import Any

from analyzer.findings import CODES
from analyzer.model import Exchange, Outcome
from dissectors.dimse import CommandField

from . import values
from .facts import Facts
from .values import Kind, Text

__all__ = ["FIELDS", "Field", "Level"]


class Level(Enum):
    """What a field describes."""

    ASSOCIATION = "association"
    EXCHANGE = "exchange"
    EITHER = "either"


@dataclass(frozen=True, slots=True)
class Field:
    """One field: its values on an association (``association``: all of them; a test holds
    when one does) and on an exchange (``exchange``: one value, None if missing)."""

    name: str
    kind: Kind
    level: Level
    help: str
    association: Callable[[Facts], Iterable[Any]] | None = None
    exchange: Callable[[Exchange, Facts], Any] | None = None
    flag: Callable[[Facts], bool] | None = None
    """What the field alone means (``partial``), for yes/no fields."""
    example: str = ""

    @property
    def usage(self) -> str:
        """An example of use, for help screens."""
        return self.example or f"{self.name}={self.kind.example}"


def _services() -> list[str]:
    return sorted({c.service for c in CommandField})


def _outcomes() -> list[str]:
    return [*(str(o) for o in Outcome), "in-progress"]


_A, _X, _E = Level.ASSOCIATION, Level.EXCHANGE, Level.EITHER

_ALL = (
    Field("calling", values.TEXT, _A, "calling AE title (the requestor's)",
          lambda f: (f.calling,), example="calling=CT*"),
    Field("called", values.TEXT, _A, "called AE title (the acceptor's)",
          lambda f: (f.called,), example="called=PACS"),
    Field("ae", values.TEXT, _A, "either AE title", lambda f: f.aes, example='ae~"^(CT|MR)"'),
    Field("ip", values.IP, _A, "either address, or a network (CIDR)", lambda f: f.ips),
    Field("port", values.INTEGER, _A, "either TCP port", lambda f: f.ports, example="port=104"),
    Field("id", values.INTEGER, _A, "association number (# in the list)",
          lambda f: (f.association.id,), example="id=10..20"),
    Field("impl", values.TEXT, _A, "implementation class UID or version name, either side",
          lambda f: f.impl, example="impl=OFFIS_DCMTK*"),
    Field("outcome", Text("outcome", _outcomes, "rejected"), _A,
          "released, rejected, aborted, transport-dropped, ... in-progress",
          lambda f: (f.outcome,)),
    Field("code", Text("finding code", lambda: CODES, "association-rejected"), _A,
          "code of a finding", lambda f: f.codes),
    Field("severity", values.SEVERITY, _A, "severity of a finding: info, warning, error",
          lambda f: f.severities, example="severity>=warning"),
    Field("partial", values.BOOL, _A, "the capture missed the start (yes/no; alone: yes)",
          lambda f: (f.association.partial,), flag=lambda f: f.association.partial,
          example="partial"),
    Field("gap", values.SIZE, _A, "bytes the capture lost (alone: any)",
          lambda f: (f.association.gap_bytes,), flag=lambda f: f.association.gaps > 0,
          example="gap"),
    Field("cmd", Text("command", _services, "C-STORE"), _X, "DIMSE command: C-STORE, N-ACTION ...",
          exchange=lambda e, f: e.service, example="cmd=C-MOVE"),
    Field("status", values.STATUS, _X,
          "final DIMSE status: code (A801, 0xA801, A700..A7FF) or class "
          "(success, warning, failure, cancel, pending = unanswered)",
          exchange=lambda e, f: (e.status, e.status_category.lower())),
    Field("latency", values.DURATION, _X, "request's end to final response",
          exchange=lambda e, f: e.latency_ns, example="latency>500ms"),
    Field("sop", values.SOP_CLASS, _E,
          "SOP class: keyword, name or UID (association: proposed or used)",
          lambda f: f.sops, lambda e, f: e.sop_class, example="sop=CTImageStorage"),
    Field("ts", values.TRANSFER_SYNTAX, _E,
          "transfer syntax: keyword, name or UID (association: proposed or accepted)",
          lambda f: f.transfer_syntaxes, lambda e, f: f.exchange_ts(e), example="ts=JPEG2000*"),
    Field("bytes", values.SIZE, _E, "association: PDU bytes both ways; exchange: data sets",
          lambda f: (f.bytes,), lambda e, f: e.request_dataset_bytes + e.response_dataset_bytes,
          example="bytes>=10MB"),
    Field("duration", values.DURATION, _E, "association: first to last packet; exchange: "
          "request's start to final response", lambda f: (f.association.duration_ns,),
          lambda e, f: e.duration_ns, example="duration<2s"),
    Field("time", values.TIME, _E, "start time (UTC unless an offset is given)",
          lambda f: (f.association.start_ts,), lambda e, f: e.start_ts,
          example="time=19:00..19:30"),
)  # fmt: skip

FIELDS: dict[str, Field] = {f.name: f for f in _ALL}
"""Every field by name, in the order the help lists them."""
