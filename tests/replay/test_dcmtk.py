"""The replay against DCMTK: storescp configured as when the samples were captured (the same
answers, the same records), configured otherwise (the differences, exit status 1), and the
replayed acceptor played to storescu, echoscu and findscu."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.peers import Net, Process, analyze, dcmtk, running

from .harness import HOST, SAMPLES, acceptor, alone, make_objects, normalized, replay

pytestmark = pytest.mark.peers

PORT = 11112

#: The storescp profile of the reject_context sample (samples/make_samples.sh).
CT_ONLY = """\
[[TransferSyntaxes]]
[LittleEndianOnly]
TransferSyntax1 = LittleEndianExplicit
TransferSyntax2 = LittleEndianImplicit

[[PresentationContexts]]
[CTOnly]
PresentationContext1 = VerificationSOPClass\\LittleEndianOnly
PresentationContext2 = CTImageStorage\\LittleEndianOnly

[[Profiles]]
[CTOnly]
PresentationContexts = CTOnly
"""

#: A storescp that stores MR but not CT.
MR_ONLY = CT_ONLY.replace("CTImageStorage", "MRImageStorage").replace("CTOnly", "MROnly")


@contextlib.contextmanager
def storescp(net: Net, tmp: Path, *extra: str, port: int = PORT) -> Iterator[Process]:
    received = tmp / f"received-{port}"
    received.mkdir(exist_ok=True)
    argv = [dcmtk("storescp"), "-aet", "STORESCP", "-od", str(received), *extra, str(port)]
    with running(net, argv, tmp / f"storescp-{port}.log", port) as proc:
        yield proc


def profile(tmp: Path, text: str, name: str) -> list[str]:
    path = tmp / f"{name}.cfg"
    path.write_text(text)
    return ["-xf", str(path), name]


def test_store_replayed_to_storescp_gives_the_captured_records(net: Net, tmp_path: Path) -> None:
    port = net.port(PORT)
    pcaps = []
    with storescp(net, tmp_path, port=port):
        for n in (1, 2):
            pcap = tmp_path / f"store-{n}.pcapng"
            run = replay(
                net,
                str(SAMPLES / "store.pcap"),
                "-a",
                str(n),
                "--to",
                f"{HOST}:{port}",
                "--pcap",
                str(pcap),
            )
            assert run.returncode == 0, run.stdout + run.stderr
            assert run.result == "Result: no difference: the acceptor answers as captured."
            assert run.mark("association") == "=" and run.mark("exchange 1 (SCU C-STORE)") == "="
            pcaps.append(pcap)
    received = sorted((tmp_path / f"received-{port}").iterdir())
    assert len(received) == 5  # ct1, ct2, ct3, big1, mr1: stored by storescp from the capture
    for f in received:
        assert subprocess.run([dcmtk("dcmdump"), "-q", str(f)], timeout=30).returncode == 0
    for n, pcap in enumerate(pcaps, 1):
        original = alone(SAMPLES / "store.pcap", n, tmp_path / f"alone-{n}.pcap")
        assert normalized(analyze([pcap]), 1) == normalized(analyze([original]), 1)


@pytest.mark.parametrize(
    ("capture", "association", "options"),
    [
        ("echo.pcap", 1, ()),
        ("store_pdu4096.pcapng", 1, ("-pdu", "4096")),
        ("reject_context.pcap", 1, ("profile",)),
        ("abort.pcap", 1, ("--abort-after",)),
        ("abort.pcap", 2, ("--abort-after",)),
        ("fail_unaccepted_context.pcap", 1, ()),
    ],
)
def test_storescp_configured_alike_answers_as_captured(
    net: Net, tmp_path: Path, capture: str, association: int, options: tuple[str, ...]
) -> None:
    port = net.port(PORT)
    extra = profile(tmp_path, CT_ONLY, "CTOnly") if options == ("profile",) else list(options)
    with storescp(net, tmp_path, *extra, port=port):
        run = replay(net, str(SAMPLES / capture), "-a", str(association), "--to", f"{HOST}:{port}")
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.result.startswith("Result: no difference"), run.stdout


def test_too_long_pdu_is_replayed_as_captured_and_storescp_aborts(net: Net, tmp_path: Path) -> None:
    """The defect the capture shows (a PDU longer than the acceptor's maximum) is replayed,
    not repaired, and storescp aborts again. (Whether it sends a second A-ABORT after that,
    which the capture holds, depends on timing inside storescp.)"""
    port = net.port(PORT)
    with storescp(net, tmp_path, "-pdu", "4096", port=port):
        run = replay(
            net, str(SAMPLES / "fail_pdu_too_long.pcap"), "-a", "1", "--to", f"{HOST}:{port}"
        )
    assert run.returncode in (0, 1), run.stdout
    assert run.mark("association") == "=", run.stdout
    assert "aborted by the acceptor" in run.row("association")[1]
    assert run.row("findings")[1].count("pdu-exceeds-max-length") == 2


def test_storescp_that_refuses_ct_is_a_difference(net: Net, tmp_path: Path) -> None:
    port = net.port(PORT)
    with storescp(net, tmp_path, *profile(tmp_path, MR_ONLY, "MROnly"), port=port):
        run = replay(net, str(SAMPLES / "store.pcap"), "-a", "1", "--to", f"{HOST}:{port}")
    assert run.returncode == 1, run.stdout + run.stderr
    out = run.stdout
    assert run.mark("context 1 CT Image Storage") == "≠"
    assert "abstract-syntax-not-supported" in run.row("context 1 CT Image Storage")[1]
    for n in range(1, 5):
        assert run.mark(f"exchange {n} (SCU C-STORE)") == "≠"
    assert "4 requests left out" in out
    assert (
        "C-STORE-RQ (message ID 1) not sent: the target did not accept presentation context 1"
        in out
    )
    assert run.mark("findings") == "≠" and "no-context-accepted" in run.row("findings")[1]
    assert run.result.startswith("Result: ") and "the acceptor does not answer as captured" in (
        run.result
    )
    assert not list((tmp_path / f"received-{port}").iterdir())


def test_pdus_split_for_a_smaller_maximum_unless_framing_is_kept(net: Net, tmp_path: Path) -> None:
    port = net.port(PORT)
    target = f"{HOST}:{port}"
    with storescp(net, tmp_path, "-pdu", "4096", port=port):
        split = replay(net, str(SAMPLES / "store.pcap"), "-a", "1", "--to", target)
        kept = replay(
            net, str(SAMPLES / "store.pcap"), "-a", "1", "--to", target, "--framing", "captured"
        )
    assert split.returncode == 0, split.stdout
    assert "PDUs split to fit the peer's maximum length" in split.stdout
    assert split.mark("acceptor max PDU length") == "~"  # shown, not counted
    # As captured, the 16384-byte PDUs are too long for this storescp: it aborts.
    assert kept.returncode == 1, kept.stdout
    assert kept.mark("association") == "≠" and "aborted" in kept.row("association")[1]


def test_acceptor_played_to_storescu(net: Net, tmp_path: Path) -> None:
    objects = make_objects(tmp_path)
    port = net.port(11113)
    with acceptor(net, tmp_path, "store.pcap", 1, port) as acc:
        scu = net.run(
            [
                dcmtk("storescu"),
                "-R",
                "+C",
                "-xe",
                "-aet",
                "STORESCU",
                "-aec",
                "STORESCP",
                HOST,
                str(port),
                *(str(objects / f) for f in ("ct1.dcm", "ct2.dcm", "ct3.dcm", "big1.dcm")),
            ],
            timeout=60,
        )
        run = acc.wait()
    assert scu.returncode == 0, scu.stdout + scu.stderr
    assert run.returncode == 0, run.stdout
    assert "Result: no difference: the requestor behaves as captured." in run.stdout


def test_acceptor_played_to_echoscu(net: Net, tmp_path: Path) -> None:
    port = net.port(11113)
    with acceptor(net, tmp_path, "echo.pcap", 1, port) as acc:
        scu = net.run(
            [dcmtk("echoscu"), "-v", "-aet", "ECHOSCU", "-aec", "STORESCP", HOST, str(port)],
            timeout=60,
        )
        run = acc.wait()
    assert scu.returncode == 0 and "Received Echo Response (Success)" in scu.stdout + scu.stderr
    assert run.returncode == 0, run.stdout
    # Another calling AE title is a difference of the requestor under test.
    with acceptor(net, tmp_path, "echo.pcap", 1, port) as acc:
        scu = net.run(
            [dcmtk("echoscu"), "-aet", "OTHERSCU", "-aec", "STORESCP", HOST, str(port)],
            timeout=60,
        )
        run = acc.wait()
    assert scu.returncode == 0
    assert run.returncode == 1 and run.mark("calling AE title") == "≠", run.stdout


def test_rejection_played_to_echoscu(net: Net, tmp_path: Path) -> None:
    port = net.port(11113)
    with acceptor(net, tmp_path, "reject_called_ae.pcap", 1, port) as acc:
        scu = net.run(
            [dcmtk("echoscu"), "-aet", "ECHOSCU", "-aec", "WRONGAE", HOST, str(port)], timeout=60
        )
        run = acc.wait()
    assert scu.returncode != 0 and "Called AE Title Not Recognized" in scu.stdout + scu.stderr
    assert run.returncode == 0, run.stdout


FIND_STUDY = [
    "-k",
    "QueryRetrieveLevel=STUDY",
    "-k",
    "PatientName=*",
    "-k",
    "PatientID",
    "-k",
    "StudyInstanceUID",
    "-k",
    "StudyDate",
    "-k",
    "StudyDescription",
    "-k",
    "ModalitiesInStudy",
    "-k",
    "NumberOfStudyRelatedInstances",
]


def test_acceptor_played_to_findscu(net: Net, tmp_path: Path) -> None:
    port = net.port(11113)
    with acceptor(net, tmp_path, "find_orthanc.pcap", 1, port) as acc:
        scu = net.run(
            [
                dcmtk("findscu"),
                "-v",
                "-S",
                "-aet",
                "FINDSCU",
                "-aec",
                "ORTHANC",
                *FIND_STUDY,
                HOST,
                str(port),
            ],
            timeout=60,
        )
        run = acc.wait()
    text = scu.stdout + scu.stderr
    assert scu.returncode == 0, text
    # The three studies Orthanc answered in the capture, with the captured identifiers.
    assert text.count("Find Response:") == 3
    assert "Received Final Find Response (Success)" in text
    for patient in ("DOE^JOHN", "ROE^JANE", "POE^EDGAR"):
        assert patient in text
    assert run.returncode == 0, run.stdout
    assert run.mark("exchange 1 (SCU C-FIND)") == "="
