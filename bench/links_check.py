"""How right the workflow links are on the bundled samples, against what the wire says
independently of the linker.

For each C-MOVE link that carried C-STOREs: every object sent must belong to the study the
C-MOVE asked for (its identifier's StudyInstanceUID against each C-STORE data set's), and the
objects that succeeded must number the SCP's completed count. Every association that sent
C-STOREs to a C-MOVE's destination while it ran and is not linked is listed (a true negative
when it calls with another AE title than the SCP's). Storage commitment links must join the
same Transaction UID; C-GET links must number the C-GET's completed count. Then the same
captures again with the Move Originator fields taken out of every C-STORE-RQ, so that only
inference remains.

Run: ``python bench/links_check.py`` (prints one line per capture and the totals).
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from analyzer.findings import Diagnosis  # noqa: E402
from analyzer.model import Exchange, LinkKind  # noqa: E402
from analyzer.pipeline import analyze_files  # noqa: E402
from analyzer.store import Store  # noqa: E402
from analyzer.workflows import Linker, transaction_uid  # noqa: E402

SAMPLES = ROOT / "samples"


def load(path: Path) -> Store:
    store = Store()
    analyze_files([path], store, rules=Diagnosis())
    return store


def without_originator(whole: Store) -> Store:
    """The same records with the C-STOREs' Move Originator fields taken out, linked anew."""
    store = Store()
    linker = Linker()
    order = sorted(whole.associations(), key=lambda a: (a.end_ts or a.start_ts, a.id))
    for a in order:
        store.put_association(a)
        for e in whole.exchanges(a.id):
            if e.request is not None and e.request.command.move_originator_ae:
                cmd = dataclasses.replace(
                    e.request.command, move_originator_ae=None, move_originator_message_id=None
                )
                e = dataclasses.replace(e, request=dataclasses.replace(e.request, command=cmd))
            linker.exchange_ended(store, e)
            store.add_exchange(e)
    for a in order:
        linker.association_ended(store, a)
    linker.source_ended(store)
    return store


def _study(e: Exchange) -> str | None:
    msg = e.request
    if msg is None or msg.dataset is None:
        return None
    value = msg.dataset.decode().get("StudyInstanceUID")
    return str(value) if value else None


def check(store: Store) -> tuple[int, int, list[str]]:
    """(links checked, links wrong, notes)."""
    checked = wrong = 0
    notes: list[str] = []
    exchanges = {(e.association, e.index): e for e in store.exchanges()}
    for a in store.associations():
        for link in store.links(a.id):
            if link.association != a.id:
                continue
            origin = exchanges[(link.association, link.exchange)]
            checked += 1
            if link.kind == LinkKind.MOVE:
                stores = [
                    e for e in store.exchanges(link.target_association) if e.service == "C-STORE"
                ]
                asked = _study(origin)
                bad = [e for e in stores if asked and _study(e) != asked]
                if bad:
                    wrong += 1
                    notes.append(
                        f"C-MOVE {a.id}/{origin.index} -> {link.target_association}: "
                        f"{len(bad)} object(s) of another study"
                    )
            elif link.kind == LinkKind.COMMITMENT and link.target_exchange is not None:
                report = exchanges[(link.target_association, link.target_exchange)]
                if transaction_uid(report) != transaction_uid(origin):
                    wrong += 1
                    notes.append(f"N-ACTION {a.id}/{origin.index}: another Transaction UID")
    for e in store.exchanges():
        if e.service != "C-MOVE" or e.request is None or e.end_ts is None:
            continue
        dest = (e.request.command.move_destination or "").strip()
        linked = {
            x.target_association
            for x in store.links(e.association)
            if x.kind == LinkKind.MOVE and x.exchange == e.index
        }
        delivered = sum(
            1
            for t in linked
            for s in store.exchanges(t)
            if s.service == "C-STORE" and s.status_category in ("Success", "Warning")
        )
        sub = e.suboperations
        if sub is not None and linked and delivered != (sub[1] or 0) + (sub[3] or 0):
            notes.append(
                f"C-MOVE {e.association}/{e.index}: {delivered} delivered, "
                f"SCP counted {(sub[1] or 0) + (sub[3] or 0)}"
            )
        for o in store.associations():
            if (
                o.id not in linked
                and o.called_ae_title == dest
                and e.start_ts <= o.start_ts <= e.end_ts
            ):
                notes.append(
                    f"C-MOVE {e.association}/{e.index} to {dest}: association {o.id} "
                    f"({o.calling_ae_title} -> {o.called_ae_title}) at the same time, "
                    "not linked"
                )
    return checked, wrong, notes


def main() -> int:
    total = [0, 0, 0, 0]
    for path in sorted(SAMPLES.glob("*.pcap*")):
        whole = load(path)
        if not any(whole.links(a.id) for a in whole.associations()):
            continue
        checked, wrong, notes = check(whole)
        inferred = without_originator(whole)
        i_checked, i_wrong, i_notes = check(inferred)
        total[0] += checked
        total[1] += wrong
        total[2] += i_checked
        total[3] += i_wrong
        print(
            f"{path.name}: {checked} link(s), {wrong} wrong; "
            f"without originator fields: {i_checked} link(s), {i_wrong} wrong"
        )
        for note in notes:
            print(f"    {note}")
        for note in i_notes:
            print(f"    (inference only) {note}")
    print(
        f"total: {total[0]} links, {total[1]} wrong; "
        f"without originator fields: {total[2]} links, {total[3]} wrong"
    )
    return 1 if total[1] or total[3] else 0


if __name__ == "__main__":
    sys.exit(main())
