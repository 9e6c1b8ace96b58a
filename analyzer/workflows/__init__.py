"""Workflows across associations: links between requests and the work they caused.

A radiology workflow rarely lives in one association: a C-MOVE makes its SCP open a second
association to the destination; a C-GET's objects come back as C-STOREs on its own
association; a storage commitment N-ACTION is answered by an N-EVENT-REPORT on the same
association or on a reverse one, sometimes much later. :class:`Linker` ties them together
as associations end and records each tie in the store as a :class:`~analyzer.model.Link`
that says how it was made (read off the wire, or inferred and why). The dissectors stay
per connection; the reports, the rules and the terminal UI read the links.
"""

from __future__ import annotations

from .commitment import (
    STORAGE_COMMITMENT_PUSH,
    CommitmentData,
    FailedReference,
    commitment_data,
    is_report,
    is_request,
    transaction_uid,
)
from .commitment_linker import CommitmentFlow, Delivery, Report
from .linker import GetFlow, Linker, Update
from .moves import MoveFlow
from .queries import (
    commitment_links,
    get_sub_operations,
    initiated_by,
    linked_request,
    links_from,
    links_to,
    sub_associations,
)

__all__ = [
    "STORAGE_COMMITMENT_PUSH",
    "CommitmentData",
    "CommitmentFlow",
    "Delivery",
    "FailedReference",
    "GetFlow",
    "Linker",
    "MoveFlow",
    "Report",
    "Update",
    "commitment_data",
    "commitment_links",
    "get_sub_operations",
    "initiated_by",
    "is_report",
    "is_request",
    "linked_request",
    "links_from",
    "links_to",
    "sub_associations",
    "transaction_uid",
]
