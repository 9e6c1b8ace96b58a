"""Who gets a place: connections waiting for their A-ASSOCIATE-RQ, and associations.

A connection that has not sent its A-ASSOCIATE-RQ yet is *pending*: it holds no association
slot, only one of ``max_pending`` places (``max_pending_per_ip`` per client address), for at
most the first-PDU timeout. When a new connection finds no place, the one that has waited
longest (from its address, else from any) is closed to make room: a modality that sends its
A-ASSOCIATE-RQ at once is never kept out by connections that send nothing, however many.

A connection counts against ``max_associations`` only once its A-ASSOCIATE-RQ is whole
(:meth:`Admission.associate`); over the limit it is refused with A-ASSOCIATE-RJ 2/3/2.
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from typing import Generic, TypeVar

from .config import Limits

__all__ = ["Admission"]

T = TypeVar("T")


class Admission(Generic[T]):
    """Pending connections and associations of one proxy run (``T``: a session)."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self._pending: OrderedDict[T, str] = OrderedDict()  # oldest first
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

    def arrive(self, who: T, ip: str) -> list[T]:
        """``who`` connected from ``ip``; returns the pending connections to close to make
        room for it (the longest waiting first)."""
        evict: list[T] = []
        if self._per_ip[ip] >= self.limits.max_pending_per_ip:
            evict.append(next(k for k, v in self._pending.items() if v == ip))
        elif len(self._pending) >= self.limits.max_pending:
            evict.append(next(iter(self._pending)))
        for old in evict:
            self._drop(old)
        self._pending[who] = ip
        self._per_ip[ip] += 1
        return evict

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
        ip = self._pending.pop(who, None)
        if ip is not None:
            self._per_ip[ip] -= 1
            if not self._per_ip[ip]:
                del self._per_ip[ip]
