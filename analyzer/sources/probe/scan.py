"""The capability scan: every (SOP class, transfer syntax) pair in its own presentation
context, in associations of at most 128 contexts, and the matrix of what was accepted."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from analyzer.model import Association

from .catalog import ContextSpec

__all__ = ["MAX_CONTEXTS", "Pair", "ScanMatrix", "batches", "matrix"]

#: Presentation context IDs are odd numbers 1-255 (PS3.8 §9.3.2.2): 128 per association.
MAX_CONTEXTS = 128

Pair = tuple[str, str]
"""(abstract syntax, transfer syntax)."""


def batches(
    contexts: Sequence[ContextSpec], size: int = MAX_CONTEXTS
) -> Iterator[list[ContextSpec]]:
    """``contexts`` in association-sized batches, in order."""
    if not 1 <= size <= MAX_CONTEXTS:
        raise ValueError(f"a batch holds 1 to {MAX_CONTEXTS} contexts, not {size}")
    for start in range(0, len(contexts), size):
        yield list(contexts[start : start + size])


@dataclass(frozen=True, slots=True)
class ScanMatrix:
    """What a scan proposed and what each pair got.

    ``results`` maps each proposed pair to the A-ASSOCIATE-AC result (0: accepted), or to
    None when its association was not answered (rejected, aborted, unreachable).
    """

    results: dict[Pair, int | None] = field(default_factory=dict)
    associations: int = 0
    failed_associations: int = 0
    elapsed_ns: int = 0

    @property
    def proposed(self) -> set[Pair]:
        return set(self.results)

    @property
    def accepted(self) -> set[Pair]:
        return {p for p, r in self.results.items() if r == 0}

    def accepted_by_class(self) -> dict[str, list[str]]:
        """SOP class → accepted transfer syntaxes, in the order they were proposed."""
        out: dict[str, list[str]] = {}
        for (sop, ts), result in self.results.items():
            if result == 0:
                out.setdefault(sop, []).append(ts)
        return out

    @property
    def answered(self) -> int:
        return sum(1 for r in self.results.values() if r is not None)


def matrix(
    proposed: Sequence[Sequence[ContextSpec]],
    associations: Iterable[Association | None],
    elapsed_ns: int,
) -> ScanMatrix:
    """Join each batch with the observed association that carried it (None: the
    connection never carried an association)."""
    results: dict[Pair, int | None] = {}
    failed = 0
    count = 0
    for batch, a in zip(proposed, associations, strict=True):
        count += 1
        for spec in batch:
            results.setdefault((spec.abstract_syntax, spec.transfer_syntaxes[0]), None)
        if a is None or a.ac_ts is None:
            failed += 1
            continue
        for c in a.contexts:  # as observed on the wire: the RQ joined with the AC
            if not c.proposed or c.abstract_syntax is None or not c.proposed_transfer_syntaxes:
                continue
            pair = (c.abstract_syntax, c.proposed_transfer_syntaxes[0])
            result = c.result
            if result == 0 and c.accepted_transfer_syntax != pair[1]:
                result = None  # "accepted" with a syntax it was not offered: no answer
            if pair in results and results[pair] is None:
                results[pair] = result
    return ScanMatrix(results, count, failed, elapsed_ns)
