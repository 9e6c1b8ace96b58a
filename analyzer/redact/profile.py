"""The attributes of the PS3.15 Basic Application Level Confidentiality Profile.

The table is not written here: it is Table E.1-1 of PS3.15 as the ``dicom-anonymizer``
package (KitwareMedical) generates it from the standard for each edition (``dicomfields_2026c``
is the 2026c edition). Each attribute has an action code of the standard: D (replace with a
dummy value), Z (zero length or dummy), X (remove), U (replace the UID with a consistent
one), and combinations (X/Z, X/D, X/Z/D, Z/D, X/Z/U*). The profile also removes every private
attribute (odd group), which :func:`action` reports as X.

Why that package: among the de-identification libraries on PyPI it is the one whose table is
generated from the standard itself and kept per edition (``deid`` ships a hand-curated
recipe, ``dicognito`` and ``dcm-anonymizer`` hand-written rules, ``idiscore`` pins old Pillow),
and it needs nothing beyond pydicom and tqdm. Only its table is used.
"""

from __future__ import annotations

from enum import StrEnum
from functools import cache
from importlib import import_module

_EDITION = "dicomfields_2026c"

#: The table's lists and the action each one stands for.
_LISTS = {
    "D_TAGS": "D",
    "Z_TAGS": "Z",
    "X_TAGS": "X",
    "U_TAGS": "U",
    "Z_D_TAGS": "Z/D",
    "X_Z_TAGS": "X/Z",
    "X_D_TAGS": "X/D",
    "X_Z_D_TAGS": "X/Z/D",
    "X_Z_U_STAR_TAGS": "X/Z/U*",
}


class Action(StrEnum):
    """A PS3.15 Table E.1-1 action code."""

    D = "D"
    Z = "Z"
    X = "X"
    U = "U"
    Z_D = "Z/D"
    X_Z = "X/Z"
    X_D = "X/D"
    X_Z_D = "X/Z/D"
    X_Z_U = "X/Z/U*"


@cache
def _table() -> tuple[dict[int, Action], tuple[tuple[int, int, int, int, Action], ...]]:
    """``({tag: action}, ((group, element, group mask, element mask, action), ...))``."""
    fields = import_module(f"dicomanonymizer.dicom_anonymization_databases.{_EDITION}")
    exact: dict[int, Action] = {}
    masked: list[tuple[int, int, int, int, Action]] = []
    for name, code in _LISTS.items():
        for entry in getattr(fields, name):
            if len(entry) == 2:
                exact[entry[0] << 16 | entry[1]] = Action(code)
            else:
                group, element, gmask, emask = entry
                masked.append((group, element, gmask, emask, Action(code)))
    return exact, tuple(masked)


def action(tag: int) -> Action | None:
    """The profile's action for the attribute ``tag`` (``0xGGGGEEEE``), None if it keeps it.

    Private attributes (odd groups, private creators included) are removed by the profile:
    X. Group length elements (gggg,0000) carry no value of their own: None."""
    group, element = tag >> 16, tag & 0xFFFF
    if element == 0 and group != 0:
        return None
    if group & 1 and group > 0x0008 and group not in (0xFFFF, 0xFFFD):
        return Action.X
    exact, masked = _table()
    found = exact.get(tag)
    if found is not None:
        return found
    for g, e, gmask, emask, code in masked:
        if group & gmask == g and element & emask == e:
            return code
    return None


def is_phi(tag: int) -> bool:
    """Whether the profile replaces or removes ``tag``."""
    return action(tag) is not None


def tags() -> frozenset[int]:
    """Every attribute of the table named by its exact tag (the 50xx/60xx ranges aside)."""
    return frozenset(_table()[0])
