"""What a filter tests about one association, derived once and kept up to date.

:class:`Facts` holds an association's record, its exchanges and its findings. Values the
fields test (AE titles, addresses, SOP classes, the text plain words search) are derived
on first use and cached, so a list of 20,000 associations filters again in milliseconds.
A live view keeps one :class:`Facts` per association and feeds it as records arrive;
exchanges only ever grow, which lets a filter resume where it stopped (see ``generation``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import lru_cache
from typing import Generic, Self, TypeVar, overload

from analyzer.model import Association, Exchange, Finding

from .values import uid_texts

__all__ = ["Facts"]

T = TypeVar("T")


class cached_property(Generic[T]):
    """functools.cached_property without its lock (Python 3.11 takes a lock per read
    until the value is cached, which tripled the first filter of 20,000 associations)."""

    def __init__(self, compute: Callable[[Facts], T]) -> None:
        self.compute = compute
        self.name = compute.__name__

    @overload
    def __get__(self, facts: None, owner: type[Facts] | None = None) -> Self: ...
    @overload
    def __get__(self, facts: Facts, owner: type[Facts] | None = None) -> T: ...
    def __get__(self, facts: Facts | None, owner: type[Facts] | None = None) -> T | Self:
        if facts is None:
            return self
        value = facts.__dict__[self.name] = self.compute(facts)
        return value


# cached values that depend on the association record, the exchanges, the findings
_FROM_RECORD = (
    "calling",
    "called",
    "aes",
    "ips",
    "ports",
    "impl",
    "outcome",
    "bytes",
    "sops",
    "transfer_syntaxes",
    "context_ts",
    "text",
)
_FROM_FINDINGS = ("codes", "severities", "text")


class Facts:
    """One association as a filter sees it (exchanges and findings in the order seen)."""

    def __init__(
        self,
        association: Association,
        exchanges: Iterable[Exchange] = (),
        findings: Iterable[Finding] = (),
    ) -> None:
        self.association = association
        self.exchanges: list[Exchange] = []
        self.findings: list[Finding] = list(findings)
        self.generation = 0
        """Changes when what exchange tests see changes other than by new exchanges
        (the presentation contexts): a filter's memory of exchanges already tested is
        then stale."""
        self._exchange_sops: set[str] = set()
        self._exchange_words: set[str] = set()
        for e in exchanges:
            self.add_exchange(e)

    # --- keeping up -------------------------------------------------------------------

    def set_association(self, association: Association) -> None:
        """A newer version of the association's record."""
        old = self.association
        if association is old:
            return
        self.association = association
        if association.contexts != old.contexts:
            self.generation += 1
        self._forget(_FROM_RECORD)

    def add_exchange(self, exchange: Exchange) -> None:
        self.exchanges.append(exchange)
        grew = False
        if exchange.sop_class and exchange.sop_class not in self._exchange_sops:
            self._exchange_sops.add(exchange.sop_class)
            self._forget(("sops",))
            grew = True
        for word in _exchange_words(exchange):
            if word not in self._exchange_words:
                self._exchange_words.add(word)
                grew = True
        if grew:
            self._forget(("text",))

    def add_finding(self, finding: Finding) -> None:
        self.findings.append(finding)
        self._forget(_FROM_FINDINGS)

    def _forget(self, names: Iterable[str]) -> None:
        for name in names:
            self.__dict__.pop(name, None)

    # --- what fields test ---------------------------------------------------------------

    @cached_property
    def calling(self) -> str | None:
        return self.association.calling_ae_title

    @cached_property
    def called(self) -> str | None:
        return self.association.called_ae_title

    @cached_property
    def aes(self) -> tuple[str, ...]:
        return tuple(t for t in (self.calling, self.called) if t is not None)

    @cached_property
    def ips(self) -> tuple[str, str]:
        a = self.association
        return a.client.ip, a.server.ip

    @cached_property
    def ports(self) -> tuple[int, int]:
        a = self.association
        return a.client.port, a.server.port

    @cached_property
    def impl(self) -> tuple[str, ...]:
        """Both sides' implementation class UIDs and version names."""
        out: list[str] = []
        for info in (self.association.requestor_info, self.association.acceptor_info):
            if info is not None:
                out += [
                    t
                    for t in (info.implementation_class_uid, info.implementation_version_name)
                    if t
                ]
        return tuple(out)

    @cached_property
    def outcome(self) -> str:
        outcome = self.association.outcome
        return str(outcome) if outcome is not None else "in-progress"

    @cached_property
    def bytes(self) -> int:
        a = self.association
        return a.requestor_pdus.bytes + a.acceptor_pdus.bytes

    @cached_property
    def sops(self) -> frozenset[str]:
        """SOP classes proposed (abstract syntaxes) or used by an exchange."""
        proposed = {c.abstract_syntax for c in self.association.contexts if c.abstract_syntax}
        return frozenset(proposed | self._exchange_sops)

    @cached_property
    def transfer_syntaxes(self) -> frozenset[str]:
        """Transfer syntaxes proposed or accepted."""
        out: set[str] = set()
        for c in self.association.contexts:
            out.update(c.proposed_transfer_syntaxes)
            if c.accepted_transfer_syntax:
                out.add(c.accepted_transfer_syntax)
        return frozenset(out)

    @cached_property
    def context_ts(self) -> dict[int, str]:
        """Presentation context id → its accepted transfer syntax."""
        return {
            c.id: c.accepted_transfer_syntax
            for c in self.association.contexts
            if c.accepted_transfer_syntax
        }

    @cached_property
    def codes(self) -> tuple[str, ...]:
        return tuple(f.code for f in self.findings)

    @cached_property
    def severities(self) -> tuple[int, ...]:
        return tuple(int(f.severity) for f in self.findings)

    @cached_property
    def text(self) -> str:
        """Every text plain words search, lower-case, one item a line."""
        a = self.association
        items = [f"#{a.id}", str(a.client), str(a.server), self.outcome, *self.aes, *self.impl]
        items += map(_uid_text, self.sops | self.transfer_syntaxes)
        items += self._exchange_words
        items += self.codes
        return "\n".join(items).lower()

    def exchange_ts(self, exchange: Exchange) -> str | None:
        """The transfer syntax accepted for the exchange's presentation context."""
        message = exchange.request or exchange.final
        return None if message is None else self.context_ts.get(message.context_id)


@lru_cache(maxsize=8192)
def _uid_text(uid: str) -> str:
    """A UID, its keyword and name, one a line."""
    return "\n".join(uid_texts(uid))


def _exchange_words(e: Exchange) -> tuple[str, ...]:
    """What an exchange adds to the text plain words search."""
    if e.status is None:
        return (e.service, e.status_category)
    return (e.service, e.status_category, f"{e.status:04x}", f"0x{e.status:04x}")
