"""Running ``dicomtap probe`` against real peers inside a test's network namespace.

The probe runs as a real subprocess in the namespace (as a monitoring system runs it); the
peers are DCMTK, Orthanc, and the pynetdicom and raw TCP scripts in ``scripts/``.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.peers import Net, Process, dcmtk, dicomtap_argv, running

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = Path(__file__).resolve().parent / "scripts"
SCP_PORT = 11112

#: pydicom's dictionary keywords of what the scans below accept.
IMPLICIT = "1.2.840.10008.1.2"
EXPLICIT = "1.2.840.10008.1.2.1"
J2K_LOSSLESS = "1.2.840.10008.1.2.4.90"
CT = "1.2.840.10008.5.1.4.1.1.2"
MR = "1.2.840.10008.5.1.4.1.1.4"
SC = "1.2.840.10008.5.1.4.1.1.7"
VERIFICATION = "1.2.840.10008.1.1"


@dataclass
class ProbeRun:
    """One finished ``dicomtap probe``."""

    returncode: int
    stdout: str
    stderr: str
    seconds: float

    @property
    def first_line(self) -> str:
        return self.stdout.splitlines()[0] if self.stdout else ""

    def json(self) -> dict[str, Any]:
        doc: dict[str, Any] = json.loads(self.stdout)
        return doc


def probe(
    net: Net, *args: str, timeout: float = 120, env: dict[str, str] | None = None
) -> ProbeRun:
    """``dicomtap probe ARGS`` in the namespace, to completion (bounded)."""
    import os
    import time

    t0 = time.monotonic()
    out = subprocess.run(
        net.wrap(dicomtap_argv("probe", *args)),
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env={**os.environ, **env} if env else None,
    )
    run = ProbeRun(out.returncode, out.stdout, out.stderr, time.monotonic() - t0)
    assert "Traceback" not in run.stdout + run.stderr, run.stdout + run.stderr
    return run


def metric_families(text: str) -> dict[str, Any]:
    """An OpenMetrics exposition parsed by prometheus_client's parser, by family name."""
    from prometheus_client.openmetrics.parser import text_string_to_metric_families

    parsed = text_string_to_metric_families(text)  # type: ignore[no-untyped-call]
    return {f.name: f for f in parsed}


def script(name: str, *args: str) -> list[str]:
    return [sys.executable, str(SCRIPTS / name), *args]


@contextlib.contextmanager
def pynetdicom_scp(
    net: Net, tmp: Path, mode: str, port: int = SCP_PORT, *extra: str
) -> Iterator[Process]:
    """One of the behaviours of ``scripts/pynetdicom_scp.py``."""
    with running(
        net, script("pynetdicom_scp.py", str(port), mode, *extra), tmp / f"scp-{mode}.log", port
    ) as proc:
        yield proc


@contextlib.contextmanager
def raw_peer(net: Net, tmp: Path, mode: str, port: int = SCP_PORT) -> Iterator[Process]:
    """One of the misbehaviours of ``scripts/rawpeer.py``."""
    with running(net, script("rawpeer.py", str(port), mode), tmp / f"raw-{mode}.log", port) as proc:
        yield proc


@contextlib.contextmanager
def storescp(
    net: Net, tmp: Path, *extra: str, port: int = SCP_PORT, aet: str = "STORESCP"
) -> Iterator[Process]:
    """DCMTK's storescp (every storage SOP class it knows, unless ``extra`` limits it)."""
    received = tmp / "received"
    received.mkdir(exist_ok=True)
    argv = [dcmtk("storescp"), "-aet", aet, "-od", str(received), *extra, str(port)]
    with running(net, argv, tmp / f"storescp-{port}.log", port) as proc:
        yield proc


#: A storescp configuration accepting a few SOP classes with a few transfer syntaxes, and
#: the matrix a scan must find (SOP class UID → accepted transfer syntax UIDs).
LIMITED_CONFIG = """\
[[TransferSyntaxes]]

[CTSyntaxes]
TransferSyntax1 = LittleEndianImplicit
TransferSyntax2 = LittleEndianExplicit
TransferSyntax3 = JPEG2000LosslessOnly

[ImplicitOnly]
TransferSyntax1 = LittleEndianImplicit

[ExplicitOnly]
TransferSyntax1 = LittleEndianExplicit

[[PresentationContexts]]

[Limited]
PresentationContext1 = VerificationSOPClass\\ImplicitOnly
PresentationContext2 = CTImageStorage\\CTSyntaxes
PresentationContext3 = MRImageStorage\\ImplicitOnly
PresentationContext4 = SecondaryCaptureImageStorage\\ExplicitOnly

[[Profiles]]

[Limited]
PresentationContexts = Limited
"""

LIMITED_STORAGE = {CT: [IMPLICIT, EXPLICIT, J2K_LOSSLESS], MR: [IMPLICIT], SC: [EXPLICIT]}


def limited_config(tmp: Path) -> list[str]:
    """storescp arguments that load :data:`LIMITED_CONFIG`."""
    path = tmp / "limited.cfg"
    path.write_text(LIMITED_CONFIG)
    return ["-xf", str(path), "Limited"]
