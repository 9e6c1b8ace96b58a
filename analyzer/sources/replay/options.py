"""What one ``dicomtap replay`` is asked to do."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from dissectors.observer import DEFAULT_KEEP

__all__ = ["Framing", "Pace", "ReplayOptions"]


class Pace(StrEnum):
    """When the played side's PDUs go out."""

    FAST = "fast"
    """As soon as the peer has answered what the captured side waited for."""
    CAPTURED = "captured"
    """With the pauses of the capture, counted from what the captured side waited for."""


class Framing(StrEnum):
    """How P-DATA-TF PDUs are cut."""

    AUTO = "auto"
    """As captured; a PDU longer than the live peer's Maximum Length is split, unless it
    was already too long for the captured peer (the defect is then replayed)."""
    CAPTURED = "captured"
    """Exactly as captured, whatever the live peer's Maximum Length."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ReplayOptions:
    """``target`` for a replay of the requestor, ``listen`` for one of the acceptor."""

    capture: str
    association: int
    target: tuple[str, int] | None = None
    listen: tuple[str, int] | None = None
    calling_ae: str | None = None
    called_ae: str | None = None
    max_pdu: int | None = None
    pace: Pace = Pace.FAST
    framing: Framing = Framing.AUTO
    timeout: float = 30.0
    allow_incomplete: bool = False
    dry_run: bool = False
    max_slowdown: float | None = None
    keep: int = DEFAULT_KEEP

    @property
    def requestor(self) -> bool:
        """The replay plays the captured requestor (else the acceptor)."""
        return self.listen is None

    @property
    def side(self) -> str:
        return "requestor" if self.requestor else "acceptor"

    @property
    def peer_side(self) -> str:
        return "acceptor" if self.requestor else "requestor"
