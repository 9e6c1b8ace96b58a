"""Who gets a place: connections waiting for their A-ASSOCIATE-RQ, and associations.

A connection that has not sent its A-ASSOCIATE-RQ yet is *pending*: it holds no association
slot, only a place among the pending, for at most the first-PDU timeout. There are
``max_pending`` places, ``max_pending_per_ip`` per client address. Going over is allowed for a
moment, because a burst of connections is accepted before any of them could send its
A-ASSOCIATE-RQ; but a connection still pending :data:`GRACE` seconds after its arrival
put the proxy over a limit is closed, the longest waiting first, until the proxy is within
its limits again. A modality sends its A-ASSOCIATE-RQ within milliseconds, so connections
that send nothing, however many and from wherever, never keep it out. Past
``HARD_LIMIT`` × ``max_pending`` pending connections, a new one is reset at once.

A connection counts against ``max_associations`` only once its A-ASSOCIATE-RQ is whole
(:meth:`Admission.associate`); over the limit it is refused with A-ASSOCIATE-RJ 2/3/2.
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from typing import Generic, TypeVar

from .config import Limits

__all__ = ["GRACE", "HARD_LIMIT", "Admission"]

#: Seconds a pending connection has, once the proxy is over a limit, before it may be closed.
GRACE = 2.0
#: Pending connections beyond this many times ``max_pending`` are reset on arrival.
HARD_LIMIT = 4

T = TypeVar("T")


class Admission(Generic[T]):
    """Pending connections and associations of one proxy run (``T``: a session)."""

    def __init__(self, limits: Limits, *, grace: float = GRACE) -> None:
        self.limits = limits
        self.grace = grace
        self._pending: OrderedDict[T, tuple[str, float]] = OrderedDict()  # oldest first
        self._per_ip: Counter[str] = Counter()
        self._associated: set[T] = set()

    @property
    def pending(self) -> int:
        """Connections waiting for their A-ASSOCIATE-RQ."""
        return len(self._pending)

    @property
    def associations(self) -> int:
        """Connections holding an association slot."""
        return len(self._associated)

    @property
    def over(self) -> bool:
        """Whether more connections are pending than the limits allow."""
        if len(self._pending) > self.limits.max_pending:
            return True
        return any(n > self.limits.max_pending_per_ip for n in self._per_ip.values())

    def arrive(self, who: T, ip: str, now: float) -> bool:
        """``who`` connected from ``ip`` at ``now`` (seconds); False if it must be turned
        away at once (far too many pending)."""
        if len(self._pending) >= HARD_LIMIT * self.limits.max_pending:
            return False
        self._pending[who] = (ip, now)
        self._per_ip[ip] += 1
        return True

    def excess(self, now: float) -> tuple[list[T], float | None]:
        """The pending connections to close now to get within the limits (those pending for
        at least the grace period, the longest waiting first), and when to look again (None
        once within the limits)."""
        limits = self.limits
        total = len(self._pending)
        per_ip = Counter(self._per_ip)
        out: list[T] = []
        again: float | None = None
        for who, (ip, since) in self._pending.items():
            if total <= limits.max_pending and per_ip[ip] <= limits.max_pending_per_ip:
                continue
            if now - since < self.grace:
                if again is None:
                    again = since + self.grace
                continue
            out.append(who)
            total -= 1
            per_ip[ip] -= 1
        for who in out:
            self._drop(who)
        return out, again if self.over else None

    def associate(self, who: T) -> bool:
        """``who`` sent a whole A-ASSOCIATE-RQ: True if it gets an association slot."""
        self._drop(who)
        if len(self._associated) >= self.limits.max_associations:
            return False
        self._associated.add(who)
        return True

    def leave(self, who: T) -> None:
        """``who`` is gone: its place or slot is free."""
        self._drop(who)
        self._associated.discard(who)

    def _drop(self, who: T) -> None:
        entry = self._pending.pop(who, None)
        if entry is not None:
            ip = entry[0]
            self._per_ip[ip] -= 1
            if not self._per_ip[ip]:
                del self._per_ip[ip]
