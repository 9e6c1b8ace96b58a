"""One probe from start to end: resolve, the check association with its services, the scan,
the baseline; every connection observed into a fresh store, then evaluated.

The store is filled the way a capture fills it: each connection's bytes go through the same
observer, model builder and findings rules (:class:`~analyzer.findings.Diagnosis`), so the
result's association record, exchanges and findings are what ``dicomtap analyze`` and
``diagnose`` would report for the probe's own pcapng.
"""

from __future__ import annotations

import itertools
import ssl
import time
from dataclasses import dataclass, replace
from pathlib import Path

from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.filereader import read_file_meta_info
from pynetdicom import _config as pynetdicom_config

from analyzer.builder import ModelBuilder
from analyzer.errors import DicomtapError
from analyzer.findings import Diagnosis
from analyzer.sources.proxy.pcapng import PcapngWriter
from analyzer.store import Store
from dissectors.observer import DEFAULT_KEEP

from . import services
from .association import Link, Target, open_association
from .baseline import Baseline, compare
from .catalog import EXPLICIT, IMPLICIT, ContextSpec, scan_contexts
from .client import quiet_pynetdicom, thread_errors
from .options import ProbeOptions
from .result import CheckRun, ProbeResult, evaluate
from .scan import MAX_CONTEXTS, ScanMatrix, batches, matrix
from .testobject import test_object
from .wire import TroubleError, resolve

__all__ = ["ObjectToStore", "ProbeError", "Session", "check_contexts", "object_to_store", "probe"]


class ProbeError(DicomtapError):
    """A probe that cannot be run as asked (UNKNOWN, exit status 3)."""

    exit_code = 3


@dataclass(frozen=True, slots=True)
class ObjectToStore:
    """What ``--store``/``--store-test`` sends."""

    source: Path | Dataset
    sop_class: str
    sop_instance: str
    transfer_syntaxes: tuple[str, ...]


def object_to_store(opts: ProbeOptions) -> ObjectToStore | None:
    """The file's identity (read from its meta information only), or a new test object."""
    if opts.store_test:
        ds = test_object()
        return ObjectToStore(ds, ds.SOPClassUID, ds.SOPInstanceUID, (EXPLICIT, IMPLICIT))
    if opts.store_file is None:
        return None
    path = opts.store_file
    try:
        meta = read_file_meta_info(path)
    except (OSError, InvalidDicomError, ValueError, EOFError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ProbeError(f"cannot read {path} as a DICOM file: {why}") from None
    missing = [
        k
        for k in ("MediaStorageSOPClassUID", "MediaStorageSOPInstanceUID", "TransferSyntaxUID")
        if k not in meta
    ]
    if missing:
        raise ProbeError(f"{path} has no {', '.join(missing)} in its file meta information")
    return ObjectToStore(
        path,
        str(meta.MediaStorageSOPClassUID),
        str(meta.MediaStorageSOPInstanceUID),
        (str(meta.TransferSyntaxUID),),
    )


def check_contexts(
    opts: ProbeOptions, obj: ObjectToStore | None
) -> tuple[tuple[ContextSpec, ...], frozenset[str]]:
    """The check association's contexts: those asked for (Verification when none), then
    those the services need that are not proposed yet; and the abstract syntaxes asked for."""
    wanted = list(opts.contexts)

    def need(spec: ContextSpec) -> None:
        for c in wanted:
            if c.abstract_syntax == spec.abstract_syntax and set(spec.transfer_syntaxes) & set(
                c.transfer_syntaxes
            ):
                return
        wanted.append(spec)

    if opts.echo or not wanted:
        need(ContextSpec(services.VERIFICATION))
    if opts.find is not None:
        need(ContextSpec(services.find_model(opts.find.level)))
    if obj is not None:
        need(ContextSpec(obj.sop_class, obj.transfer_syntaxes))
    if opts.commit:
        need(ContextSpec(services.STORAGE_COMMITMENT))
    return tuple(wanted), frozenset(c.abstract_syntax for c in opts.contexts)


@dataclass(frozen=True, slots=True)
class Session:
    """What lasts across the probes of one command (``--watch`` repeats them)."""

    options: ProbeOptions
    tls: ssl.SSLContext | None = None
    pcap: PcapngWriter | None = None
    baseline: Baseline | None = None
    keep: int = DEFAULT_KEEP


def _services(
    opts: ProbeOptions, link: Link, obj: ObjectToStore | None, reports: services.CommitReports
) -> list[services.ServiceRun]:
    runs: list[services.ServiceRun] = []
    ids = itertools.count(1)
    assoc = link.assoc
    if opts.echo:
        runs.append(services.echo(assoc, next(ids)))
    if opts.find is not None and link.established:
        runs.append(services.find(assoc, opts.find, next(ids)))
    if obj is not None and link.established:
        stored = services.store(assoc, obj.source, obj.sop_class, next(ids))
        runs.append(stored)
        if opts.commit and link.established:
            if stored.error is None and stored.status == 0:
                runs.append(
                    services.commit(
                        assoc, obj.sop_class, obj.sop_instance, next(ids), reports, opts.timeout
                    )
                )
            else:
                runs.append(
                    services.ServiceRun(
                        "commit",
                        services.STORAGE_COMMITMENT,
                        next(ids),
                        None,
                        0,
                        error="not attempted: the object was not stored",
                    )
                )
    return runs


def _scan(
    opts: ProbeOptions, target: Target, connections: itertools.count[int], store: Store
) -> tuple[ScanMatrix, list[int]]:
    assert opts.scan is not None
    proposed = list(batches(scan_contexts(opts.scan, opts.scan_syntaxes)))
    ids: list[int] = []
    t0 = time.perf_counter_ns()
    for batch in proposed:
        connection = next(connections)
        ids.append(connection)
        link = open_association(opts, target, connection, batch, roles=False)
        link.close()
        if link.wire.trouble is not None and link.wire.connect_ns is None:
            # Unreachable now: the rest would fail the same way.
            for _ in proposed[len(ids) :]:
                ids.append(-1)
            break
    elapsed = time.perf_counter_ns() - t0
    by_connection = {a.connection: a for a in store.associations()}
    return matrix(proposed, [by_connection.get(i) for i in ids], elapsed), ids


def probe(session: Session) -> ProbeResult:
    """Run one probe; raises :class:`ProbeError` for what cannot be run as asked."""
    opts = session.options
    quiet_pynetdicom()
    if opts.store_file is not None:
        pynetdicom_config.STORE_SEND_CHUNKED_DATASET = True  # stream the file, never load it
    obj = object_to_store(opts)
    contexts, requested = check_contexts(opts, obj)
    if len(contexts) > MAX_CONTEXTS:
        raise ProbeError(
            f"{len(contexts)} presentation contexts with those the services need: an "
            f"association holds at most {MAX_CONTEXTS}"
        )
    started = time.time_ns()
    t0 = time.perf_counter_ns()
    store = Store()
    store.source.name = "probe"
    store.source.files = [f"probe {opts.target}"]
    builder = ModelBuilder(store, dicom_ports={opts.port}, rules=Diagnosis())
    connections = itertools.count(1)
    scan: ScanMatrix | None = None
    try:
        ip, family = resolve(opts.host, opts.port, opts.timeout)
    except TroubleError as exc:
        check = CheckRun(1, contexts, requested, None, None, exc.trouble, b"", ())
        return evaluate(
            opts, store, check, started_ts=started, duration_ns=time.perf_counter_ns() - t0
        )
    target = Target(ip, family, session.tls, builder.handle, session.pcap, session.keep)
    reports = services.CommitReports()
    connection = next(connections)
    try:
        link = open_association(
            opts,
            target,
            connection,
            contexts,
            handlers=reports.bindings if opts.commit else (),
        )
    except ValueError as exc:  # pynetdicom refuses what it was given (an AE title ...)
        raise ProbeError(str(exc)) from None
    try:
        runs = _services(opts, link, obj, reports) if link.established else []
    finally:
        link.close()
    wire = link.wire
    check = CheckRun(
        connection,
        contexts,
        requested,
        wire.connect_ns,
        wire.tls_ns,
        wire.trouble,
        bytes(wire.received_head),
        tuple(runs),
        tuple(wire.warnings),
    )
    if opts.scan is not None and wire.connect_ns is not None:
        scan, _ = _scan(opts, target, connections, store)
    builder.finish()
    store.finish()
    notes = check.warnings + tuple(f"pynetdicom: {e}" for e in thread_errors())
    if notes != check.warnings:
        check = replace(check, warnings=notes)
    if session.pcap is not None:
        session.pcap.flush()
    drift = compare(session.baseline, scan) if session.baseline and scan else None
    return evaluate(
        opts,
        store,
        check,
        started_ts=started,
        duration_ns=time.perf_counter_ns() - t0,
        scan=scan,
        drift=drift,
    )
