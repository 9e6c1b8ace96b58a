"""``--redact phi``: the PS3.15 Basic Profile attributes never reach an output.

Each check runs the same output with and without the option: without it the patient names
and instance UIDs of the capture are there (so the check can fail), with it none is."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path

import pytest
from click.testing import CliRunner
from pydicom.dataset import Dataset

from analyzer import redact
from analyzer.cli import main
from analyzer.pipeline import analyze_files
from analyzer.store import Store
from tests.objects import write_study
from tests.peers import Net, Process, analyze, dcmtk, running
from tui import dataset, details

ROOT = Path(__file__).resolve().parents[2]
STORE = ROOT / "samples" / "store.pcap"  # CT of DOE^JOHN (Explicit VR), MR of ROE^JANE (Implicit)
FIND = ROOT / "samples" / "find_orthanc.pcap"
NAMES = ("DOE^JOHN", "ROE^JANE")


@pytest.fixture(autouse=True)
def _redaction_off() -> Iterator[None]:
    redact.redact_phi(False)
    yield
    redact.redact_phi(False)


def sop_instances(path: Path) -> list[str]:
    return [r["sop_instance"] for r in analyze([path]) if r["type"] == "exchange"]


def run(*args: str) -> str:
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code in (0, 1), result.output
    return result.output


@pytest.mark.parametrize("command", ["analyze", "diagnose"])
@pytest.mark.parametrize("fmt", ["json", "text", "csv"])
def test_reports(command: str, fmt: str) -> None:
    uids = [u for u in sop_instances(STORE) if u]
    assert len(uids) >= 4
    plain = run(command, "--format", fmt, str(STORE))
    redact.redact_phi(False)
    hidden = run(command, "--redact", "phi", "--format", fmt, str(STORE))
    if command == "analyze" and fmt == "json":
        assert all(u in plain for u in uids)
        shown = [json.loads(x)["sop_instance"] for x in hidden.splitlines() if '"exchange"' in x]
        # Pseudonyms: valid 2.25 UIDs, one per instance, the same one for the same instance.
        assert len(set(shown)) == len(set(uids)) and all(s.startswith("2.25.") for s in shown)
    assert not any(u in hidden for u in uids)


def tui_text(store: Store) -> str:
    """Everything the exchange screen shows, as text: summary, command sets, data set
    trees (every level), hex view."""
    lines: list[str] = []

    def tree(ds: Dataset) -> None:
        for elem in ds:
            lines.append(dataset.label(elem))
            if elem.VR == "SQ":
                for _, item in dataset.items(elem):
                    tree(item)

    for a in store.associations():
        for e in store.exchanges(a.id):
            lines += [v for _, v, _ in details.exchange_rows(e, a)]
            for msg in (e.request, e.final):
                if msg is None:
                    continue
                lines += [v for _, _, v in details.command_rows(msg, e)]
                ds, what = dataset.decode(msg)
                lines.append(what)
                if ds is not None:
                    tree(ds)
            lines += details.iter_lines(details.hex_sections(e))
    return "\n".join(lines)


@pytest.mark.parametrize("capture", [STORE, FIND])
def test_terminal_ui(capture: Path) -> None:
    store = Store()
    analyze_files([capture], store)
    plain = tui_text(store)
    uids = [u for u in sop_instances(capture) if u]
    redact.redact_phi()
    hidden = tui_text(store)
    known = ("DOE^JOHN", "ROE^JANE", "ACC0001", "NOBODY^REFERRING", "Nowhere General")
    secrets = [*uids, *(k for k in known if k in plain)]
    if capture == STORE:
        assert all(k in plain for k in known) and len(uids) >= 4
    for s in secrets:
        assert s not in hidden
    assert redact.REDACTED in hidden
    assert "CT Image Storage" in hidden or capture == FIND  # what is not PHI stays


def test_hex_view_masks_values_split_across_lines() -> None:
    store = Store()
    analyze_files([STORE], store)
    redact.redact_phi()
    ascii_columns = "".join(
        line[60:]
        for line in details.iter_lines(
            [
                s
                for a in store.associations()
                for e in store.exchanges(a.id)
                for s in details.hex_sections(e)
            ]
        )
    )
    assert "DOE^" not in ascii_columns and "JOHN" not in ascii_columns
    assert "****" in ascii_columns


def test_masked_encoding_keeps_everything_else() -> None:
    store = Store()
    analyze_files([STORE], store)
    redact.redact_phi()
    e = next(e for a in store.associations() for e in store.exchanges(a.id) if e.request)
    assert e.request is not None and e.request.dataset is not None
    kept = e.request.dataset.kept
    masked = redact.mask(kept, **redact.encoding(kept, e.request.dataset.transfer_syntax))
    assert len(masked) == len(kept)
    diff = [i for i, (x, y) in enumerate(zip(kept, masked, strict=True)) if x != y]
    assert diff and all(masked[i] == redact.MASK_BYTE for i in diff)
    assert b"CT" in masked and b"ORIGINAL" in masked  # Modality, ImageType: kept


@pytest.mark.peers
def test_proxy_log_and_jsonl(net: Net, tmp_path: Path) -> None:
    from tests.proxy.harness import PROXY_PORT, UPSTREAM_PORT, proxy

    files = write_study(tmp_path / "study", 2, patient_id="PHI-REDACT-ID")
    with (
        _scp(net, tmp_path),
        proxy(net, tmp_path, "--upstream", f"127.0.0.1:{UPSTREAM_PORT}", "--redact", "phi") as p,
    ):
        stored = net.run(
            [dcmtk("storescu"), "-aec", "ANY", "127.0.0.1", str(PROXY_PORT), *map(str, files)]
        )
        assert stored.returncode == 0, stored.stderr
        p.wait_log("C-STORE")
        p.stop()
        log, records = p.log(), p.jsonl.read_text()
    uids = [u for u in sop_instances(p.pcap) if u]
    assert len(set(uids)) == 2  # both legs of the relay
    for u in uids:
        assert u not in log and u not in records
    assert "2.25." in records
    assert "PHI included" in log  # the note on the raw capture


def _scp(net: Net, tmp: Path) -> AbstractContextManager[Process]:
    from tests.proxy.harness import UPSTREAM_PORT, storescp

    return running(net, storescp(tmp), tmp / "scp.log", UPSTREAM_PORT)


def test_storage_commitment_uids() -> None:
    cap = ROOT / "samples" / "fail_commitment_failed_refs.pcap"
    records = analyze([cap])
    uids = {str(r["transaction_uid"]) for r in records if r.get("transaction_uid")}
    uids |= {
        str(f["sop_instance"])
        for r in records
        for f in (r.get("failed_references") or [])
        if f.get("sop_instance")
    }
    assert len(uids) >= 2
    for fmt in ("json", "text"):
        plain = run("analyze", "--format", fmt, str(cap))
        assert any(u in plain for u in uids)
        hidden = run("analyze", "--redact", "phi", "--format", fmt, str(cap))
        redact.redact_phi(False)
        assert not any(u in hidden for u in uids)


SAMPLES = sorted((ROOT / "samples").glob("*.pcap*"))
#: The root of every instance UID of the samples' objects (pydicom's, samples/make_objects.py).
INSTANCE_ROOT = "1.2.826.0.1.3680043.8.498."


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda p: p.name)
def test_no_instance_uid_in_any_report(sample: Path) -> None:
    # Implementation class UIDs name software, not patients: they stay (one of the raw test
    # peers has one under the same root).
    software = {
        str(side["class_uid"])
        for r in analyze([sample])
        if r["type"] == "association"
        for side in (r["implementation"] or {}).values()
        if side and side.get("class_uid")
    }
    outputs = [
        run(command, "--redact", "phi", "--format", fmt, str(sample))
        for command in ("analyze", "diagnose")
        for fmt in ("json", "text", "csv")
    ]
    for out in outputs:
        for uid in software:
            out = out.replace(uid, "")
        assert INSTANCE_ROOT not in out
