"""Every field and operator of the filter language, on the bundled sample captures.

Expected associations come from what the captures hold (``dicomtap analyze`` shows it):
``store.pcap`` is STORESCU → STORESCP twice (four CT C-STOREs, then one MR), and so on.
"""

from __future__ import annotations

import pytest

from .conftest import ALL_SAMPLES, matching, sample

CASES = [
    # AE titles: calling is the requestor's only (it used to match called AE titles too)
    ("store.pcap", "calling=STORESCU", [1, 2]),
    ("store.pcap", "calling=storescu", [1, 2]),
    ("store.pcap", "calling=STORESCP", []),
    ("store.pcap", "called=STORESCP", [1, 2]),
    ("store.pcap", "called=STORESCU", []),
    ("store.pcap", "calling=STORE*", [1, 2]),
    ("store.pcap", "calling=STORE?CU", [1, 2]),
    ("store.pcap", 'calling~"^store"', [1, 2]),
    ("store.pcap", 'calling~"(?-i:^store)"', []),
    ("store.pcap", "calling!=STORESCU", []),
    ("store.pcap", "calling!~SCP", [1, 2]),
    ("move_orthanc.pcap", "calling=ORTHANC", [2]),
    ("move_orthanc.pcap", "called=ORTHANC", [1]),
    ("move_orthanc.pcap", "ae=ORTHANC", [1, 2]),
    ("move_orthanc.pcap", "ae!=ORTHANC", []),
    ("move_orthanc.pcap", "ae!=MOVESCU", [2]),
    ("fail_never_associated.pcap", "calling=*", []),  # no A-ASSOCIATE-RQ: no AE title
    ("fail_never_associated.pcap", "calling!=X", [1, 2]),
    # addresses and ports
    ("fail_capture_gap.pcap", "ip=10.77.0.2", [1]),
    ("fail_capture_gap.pcap", "ip=10.77.0.0/16", [1]),
    ("fail_capture_gap.pcap", "ip=10.77.*", [1]),
    ("fail_capture_gap.pcap", "ip=127.0.0.0/8", []),
    ("fail_capture_gap.pcap", "ip!=10.77.0.1", []),
    ("fail_capture_gap.pcap", "ip!=127.0.0.1", [1]),
    ("fail_capture_gap.pcap", "ip=::/0", []),
    ("move_orthanc.pcap", "port=11113", [2]),
    ("move_orthanc.pcap", "port=4242", [1]),
    ("move_orthanc.pcap", "port<1024", []),
    ("move_orthanc.pcap", "port=11000..12000", [2]),
    ("move_orthanc.pcap", "port>=34404", [1]),
    ("move_orthanc.pcap", "id=2", [2]),
    ("move_orthanc.pcap", "id!=2", [1]),
    # SOP classes: keyword, name, UID, glob, regex; proposed or used
    ("store.pcap", "sop=MRImageStorage", [2]),
    ("store.pcap", 'sop="CT Image Storage"', [1]),
    ("store.pcap", "sop=1.2.840.10008.5.1.4.1.1.4", [2]),
    ("store.pcap", "sop=*Image*", [1, 2]),
    ("store.pcap", "sop~^MR", [2]),
    ("store.pcap", "sop!=CTImageStorage", [2]),
    ("find_orthanc.pcap", "sop=*PatientRoot*", [2]),
    ("reject_context.pcap", "sop=MRImageStorage", [1]),  # proposed (and rejected)
    ("reject_context.pcap", "sop=MRImageStorage and cmd=C-STORE", []),  # the C-STORE was CT
    ("reject_context.pcap", "sop=CTImageStorage and cmd=C-STORE", [1]),
    # transfer syntaxes: proposed or accepted; an exchange's: its context's accepted one
    ("store.pcap", "ts=ExplicitVRLittleEndian", [1]),
    ("store.pcap", 'ts="Explicit VR Big Endian"', [1]),
    ("store.pcap", "ts=ImplicitVRLittleEndian", [1, 2]),  # #1 proposed it too
    ("store.pcap", "ts=ImplicitVRLittleEndian and cmd=C-STORE", [2]),
    ("store.pcap", "ts=ExplicitVRBigEndian and cmd=C-STORE", []),
    ("store.pcap", "ts=JPEG*", []),
    ("store.pcap", "ts=1.2.840.10008.1.2.1", [1]),
    # DIMSE commands: an exchange's
    ("get_orthanc.pcap", "cmd=C-GET", [1]),
    ("get_orthanc.pcap", "cmd=c-store", [1]),
    ("get_orthanc.pcap", "cmd=C-*", [1]),
    ("get_orthanc.pcap", "cmd=N-*", []),
    ("get_orthanc.pcap", "cmd!=C-STORE", [1]),  # an exchange that is not a C-STORE
    ("get_orthanc.pcap", "not cmd=C-STORE", []),  # no exchange is a C-STORE
    ("abort.pcap", "cmd=C-ECHO", [1]),
    # DIMSE status: code, range, glob, class; pending = no final response
    ("fail_dimse_status.pcap", "status=A700", [1]),
    ("fail_dimse_status.pcap", "status=0xa700", [1]),
    ("fail_dimse_status.pcap", "status=A7*", [1]),
    ("fail_dimse_status.pcap", "status=A700..A7FF", [1]),
    ("fail_dimse_status.pcap", "status>=C000", []),
    ("fail_dimse_status.pcap", "status>A700", [1]),
    ("fail_dimse_status.pcap", "status=failure", [1]),
    ("fail_dimse_status.pcap", "status=warning", [1]),
    ("fail_dimse_status.pcap", "status=pending", []),
    ("fail_dimse_status.pcap", "not status=failure", []),
    ("fail_dimse_status.pcap", "status!=failure", [1]),
    ("fail_dimse_status.pcap", "status~^B0", [1]),
    ("abort.pcap", "status=pending", [2]),
    ("abort.pcap", "status=success", [1]),
    ("abort.pcap", "status=0", [1]),
    ("fail_move_unknown_dest_dcmqrscp.pcap", "status=A801", [1]),
    ("fail_move_unknown_dest_orthanc.pcap", "status=A801", []),  # Orthanc says C000
    # outcome, findings
    ("abort.pcap", "outcome=aborted", [1, 2]),
    ("fail_idle_timeout.pcap", "outcome=transport-dropped", [2]),
    ("fail_idle_timeout.pcap", "outcome=*drop*", [2]),
    ("fail_idle_timeout.pcap", "outcome!=aborted", [2]),
    ("abort.pcap", "code=unanswered-request", [2]),
    ("abort.pcap", "code=association-*", [1, 2]),
    ("abort.pcap", "code!=unanswered-request", [1]),
    ("fail_reject_busy.pcap", "code=association-rejected", [2]),
    ("fail_reject_busy.pcap", "severity=error", [2]),
    ("fail_reject_busy.pcap", "severity>=info", [2]),
    ("fail_dimse_status.pcap", "severity<error", [1]),  # its warning finding
    ("fail_move_dest_down_orthanc.pcap", "code=move-destination-unreachable", [1]),
    # implementation
    ("pynetdicom.pcap", "impl=PYNETDICOM*", [1]),
    ("store.pcap", "impl=OFFIS_DCMTK_367", [1, 2]),
    ("store.pcap", "impl=1.2.276.0.7230010.3.0.3.6.7", [1, 2]),
    ("store.pcap", "impl~dcmtk", [1, 2]),
    ("fail_partial_association.pcap", "impl=*", []),
    # latency: an exchange's, and with other exchange fields, the same exchange's
    ("get_orthanc.pcap", "latency>100ms", [1]),
    ("get_orthanc.pcap", "cmd=C-STORE and latency>100ms", []),
    ("get_orthanc.pcap", "cmd=C-GET and latency>100ms", [1]),
    ("get_orthanc.pcap", "cmd=C-STORE and latency<1ms", [1]),
    ("get_orthanc.pcap", "(cmd=C-STORE or cmd=C-FIND) and latency>100ms", []),
    ("get_orthanc.pcap", "cmd=C-STORE and (latency>100ms or status=failure)", []),
    ("get_orthanc.pcap", "cmd=C-STORE and not latency<100ms", []),  # not: of the association
    ("get_orthanc.pcap", "cmd=C-GET and not latency>1s", [1]),
    ("fail_async_window.pcap", "latency=1ms..2ms", [1]),
    ("fail_async_window.pcap", "latency>=69.784ms", [1]),
    ("fail_async_window.pcap", "latency>69.784ms", []),
    ("fail_async_window.pcap", "latency>0.06s", [1]),
    ("fail_async_window.pcap", "latency>60000us", [1]),
    ("fail_async_window.pcap", "latency<1min", [1]),
    ("abort.pcap", "latency>0ns", [1]),  # the unanswered C-STORE has no latency
    # duration and bytes: the association's alone, the exchange's next to exchange fields
    ("fail_idle_timeout.pcap", "duration>3s", [1, 2]),
    ("fail_idle_timeout.pcap", "duration>3.05s", [2]),
    ("get_orthanc.pcap", "cmd=C-GET and duration>300ms", [1]),
    ("get_orthanc.pcap", "cmd=C-STORE and duration>300ms", []),
    ("get_orthanc.pcap", "duration>300ms", [1]),
    ("store.pcap", "bytes>100k", [1]),
    ("store.pcap", "bytes<10000", [2]),
    ("store.pcap", "bytes>300k", [1]),  # the association: 325547 bytes
    ("store.pcap", "cmd=C-STORE and bytes>300k", []),  # the largest data set: 295906 bytes
    ("store.pcap", "cmd=C-STORE and bytes>=280KiB", [1]),
    ("store.pcap", "bytes=9957", [2]),
    # time: UTC, a day, a second, a span, a time of day, an offset
    ("store.pcap", "time=2026-11-24", [1, 2]),
    ("store.pcap", "time=2026-11-25", []),
    ("store.pcap", "time=19:41:22", [1, 2]),
    ("store.pcap", "time<19:41:22.5", [1]),
    ("store.pcap", "time>=19:41:22.5", [2]),
    ("store.pcap", "time=2026-11-24T19:41:22.5Z..2026-11-24T19:42Z", [2]),
    ("store.pcap", "time=2026-11-24T20:41:22+01:00", [1, 2]),
    ("store.pcap", "time=19:00..19:30", []),
    ("store.pcap", "time=23:00..20:00", [1, 2]),  # across midnight
    ("store.pcap", "time>2026-11-24T19:41", []),  # after that minute
    ("store.pcap", "time>2026-11-24T19:40", [1, 2]),
    ("store.pcap", "time<=2026-11-24T19:41", [1, 2]),
    ("store.pcap", "time<2026-11-24T19:41", []),
    ("store.pcap", "cmd=C-STORE and time>=19:41:22.5", [1, 2]),  # an exchange's start
    # yes/no fields
    ("fail_partial_association.pcap", "partial", [1]),
    ("fail_partial_association.pcap", "partial=no", []),
    ("fail_partial_association.pcap", "not partial", []),
    ("store.pcap", "partial", []),
    ("fail_capture_gap.pcap", "gap", [1]),
    ("fail_capture_gap.pcap", "gap>1000", [1]),
    ("fail_capture_gap.pcap", "gap>1448", []),
    ("store.pcap", "gap", []),
    ("store.pcap", "not gap", [1, 2]),
    # plain words: any text of the association
    ("store.pcap", "STORESCU", [1, 2]),
    ("store.pcap", '"mr image"', [2]),
    ("store.pcap", "#2", [2]),
    ("store.pcap", "127.0.0.1:50726", [2]),
    ("store.pcap", "released 127.0.0.1:50718", [1]),
    ("fail_dimse_status.pcap", "a700", [1]),
    ("fail_dimse_status.pcap", "0xB000", [1]),
    ("abort.pcap", "unanswered", [2]),
    ("abort.pcap", "nothing-like-this", []),
    # combinations
    ("abort.pcap", "outcome=aborted and not code=unanswered-request", [1]),
    ("abort.pcap", "cmd=C-ECHO or cmd=C-STORE", [1, 2]),
    ("abort.pcap", "!(cmd=C-ECHO || code=unanswered-request)", []),
    ("move_orthanc.pcap", "calling=MOVESCU or (calling=ORTHANC and cmd=C-STORE)", [1, 2]),
    ("move_orthanc.pcap", "calling=MOVESCU cmd=C-MOVE latency>200ms", [1]),
]


@pytest.mark.parametrize(("name", "expression", "expected"), CASES)
def test_field(name: str, expression: str, expected: list[int]) -> None:
    assert matching(name, expression) == expected


@pytest.mark.parametrize("name", ALL_SAMPLES)
def test_exchange_conditions_hold_for_one_exchange(name: str) -> None:
    """``cmd=X and latency>T``: an association with one exchange that is both, on every
    sample (a Wireshark-like "any field" reading would also take a fast X and a slow Y)."""
    store = sample(name)
    for service in ("C-STORE", "C-ECHO", "C-FIND", "C-GET", "C-MOVE"):
        for ms in (0.25, 1, 50):
            expected = sorted(
                a.id
                for a in store.associations()
                if any(
                    e.service == service and e.latency_ns is not None and e.latency_ns > ms * 1e6
                    for e in store.exchanges(a.id)
                )
            )
            assert matching(name, f"cmd={service} and latency>{ms}ms") == expected


@pytest.mark.parametrize("name", ALL_SAMPLES)
def test_not_is_the_complement(name: str) -> None:
    everything = sorted(a.id for a in sample(name).associations())
    for expression in ("status=failure", "calling=STORE*", "latency>1ms", "partial", "released"):
        selected = matching(name, expression)
        assert matching(name, f"not {expression}") == sorted(set(everything) - set(selected))
        assert matching(name, f"{expression} or not {expression}") == everything
        assert matching(name, f"{expression} and not ({expression})") == []
