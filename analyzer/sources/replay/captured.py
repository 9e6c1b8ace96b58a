"""The captured association: the capture analysed as ``dicomtap diagnose`` analyses it, and
the checks that say whether (and how) association N can be replayed."""

from __future__ import annotations

from dataclasses import dataclass

from analyzer.errors import DicomtapError, InputError
from analyzer.findings import Diagnosis
from analyzer.model import Association, Exchange, Finding, Gap, Outcome
from analyzer.pipeline import analyze_files
from analyzer.reports.common import size_text
from analyzer.sources.pcap import STDIN
from analyzer.store import Store

__all__ = ["Captured", "ReplayError", "load"]


def diagnosis() -> Diagnosis:
    """The rules both sides of a comparison are judged by: those about one association.

    The workflow rules look across associations (a C-MOVE's sub-association, a storage
    commitment report on a reverse association): the replay plays one association, whose
    live peer may open others the replay does not see, so those rules are left out on both
    sides rather than compared unevenly."""
    return Diagnosis(workflow_rules=())


class ReplayError(DicomtapError):
    """A replay that cannot be made as asked (exit status 2)."""


@dataclass(frozen=True, slots=True)
class Captured:
    """Association ``association.id`` of the capture, with what was recorded about it."""

    path: str
    store: Store
    association: Association
    exchanges: tuple[Exchange, ...]
    findings: tuple[Finding, ...]
    gaps: tuple[Gap, ...]

    def lost_by(self, requestor: bool) -> tuple[Gap, ...]:
        """The capture's gaps in what the requestor (or the acceptor) sent."""
        return tuple(g for g in self.gaps if g.from_requestor == requestor)


def load(path: str, association: int, *, keep: int) -> Captured:
    """Analyse ``path`` and take association ``association``; raises :class:`ReplayError` or
    :class:`~analyzer.errors.InputError` for what cannot be replayed."""
    if path == STDIN:
        raise InputError("replay reads the capture twice: give a file, not standard input")
    store = Store()
    analyze_files([path], store, rules=diagnosis(), keep=keep)
    found = store.association(association)
    if found is None:
        count = len(store)
        if count == 0:
            raise ReplayError(f"{path} holds no DICOM association: nothing to replay")
        raise ReplayError(
            f"{path} holds no association {association} (its associations are numbered 1 to "
            f"{count}; `dicomtap analyze {path}` lists them)"
        )
    if found.outcome == Outcome.NEVER_ASSOCIATED:
        raise ReplayError(
            f"association {association} of {path} is a TCP connection that carried no DICOM: "
            "nothing to replay"
        )
    if found.rq_ts is None or found.rq_missing:
        why = (
            "the capture began after its A-ASSOCIATE-RQ"
            if found.partial
            else "its A-ASSOCIATE-RQ was not captured whole"
        )
        raise ReplayError(
            f"association {association} of {path} cannot be replayed: {why}, and the "
            "replay starts from it"
        )
    return Captured(
        path=path,
        store=store,
        association=found,
        exchanges=tuple(store.exchanges(found.id)),
        findings=tuple(store.findings(found.id)),
        gaps=tuple(store.gaps(found.id)),
    )


def check_complete(captured: Captured, *, requestor: bool, allow_incomplete: bool) -> list[str]:
    """Raise :class:`ReplayError` when the capture lost bytes of the side to be played
    (unless ``allow_incomplete``); returns the notes to print."""
    a = captured.association
    notes: list[str] = []
    if not requestor and a.ac_ts is None and a.reject is None:
        raise ReplayError(
            f"association {a.id} of {captured.path} cannot be replayed as the acceptor: its "
            "A-ASSOCIATE-AC (or -RJ) was not captured"
        )
    side = "requestor" if requestor else "acceptor"
    lost = captured.lost_by(requestor)
    if lost:
        total = sum(g.size for g in lost)
        frames = ", ".join(str(g.frame) for g in lost[:5] if g.frame is not None)
        where = f" (near frame {frames})" if frames else ""
        text = (
            f"the capture lost {size_text(total)} of what the {side} sent in association "
            f"{a.id}{where}"
        )
        if not allow_incomplete:
            raise ReplayError(
                f"{text}: its data sets cannot be sent whole. --allow-incomplete sends zeros "
                "for the missing bytes (and leaves out what cannot be framed)"
            )
        notes.append(f"{text}: zeros are sent in their place")
    other = captured.lost_by(not requestor)
    if other:
        notes.append(
            f"the capture lost {size_text(sum(g.size for g in other))} of what the "
            f"{'acceptor' if requestor else 'requestor'} sent: its answers may be compared "
            "incompletely"
        )
    return notes
