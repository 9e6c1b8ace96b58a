"""``dicomtap probe``: a DICOM-aware health check and capability scan of an SCP."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path
from typing import Any

import click

from analyzer.errors import DicomtapError
from analyzer.sources.probe import (
    FindLevel,
    FindSpec,
    Health,
    Identity,
    IdentityType,
    OutputFormat,
    ProbeOptions,
    Session,
    run,
)
from analyzer.sources.probe.baseline import load as load_baseline
from analyzer.sources.probe.catalog import (
    SCAN_IMAGE_SYNTAXES,
    ContextSpec,
    Preset,
    ScanKind,
    UidError,
    parse_context,
    parse_role,
    preset_contexts,
    transfer_syntax_uid,
)
from analyzer.sources.probe.options import SecretError, read_secret
from analyzer.sources.probe.scan import MAX_CONTEXTS
from analyzer.sources.probe.services import check_key, check_query
from analyzer.sources.proxy.config import ConfigError, TlsConfig, parse_address
from analyzer.sources.proxy.pcapng import PcapngWriter
from analyzer.sources.proxy.tls import client_context
from analyzer.textsafe import printable

from .version import generator

_UNKNOWN = int(Health.UNKNOWN)


class _Usage(click.UsageError):
    """A usage error of the probe: exit status 3 (UNKNOWN), as monitoring plugins do."""

    exit_code = _UNKNOWN


class _PluginCommand(click.Command):
    """Usage errors exit with 3 (UNKNOWN), not click's 2."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except click.UsageError as exc:
            raise _Usage(exc.format_message(), exc.ctx) from None


def _usage(message: str) -> click.UsageError:
    return _Usage(message)


def _ae_title(ctx: click.Context, param: click.Parameter, value: str) -> str:
    # PS3.5: up to 16 characters of the default repertoire, no backslash or control
    # characters, not only spaces.
    if not value.strip() or len(value) > 16 or not value.isascii() or not value.isprintable():
        raise click.BadParameter(f"{printable(value)!r} is not an AE title (1-16 characters)")
    if "\\" in value:
        raise click.BadParameter("an AE title may not contain a backslash")
    return value


_IDENTITY_TYPES = {
    "username": IdentityType.USERNAME,
    "password": IdentityType.USERNAME_PASSCODE,
    "kerberos": IdentityType.KERBEROS,
    "saml": IdentityType.SAML,
    "jwt": IdentityType.JWT,
}

_SECONDS = click.FloatRange(min=0.001)


@click.command(cls=_PluginCommand)
@click.argument("address", metavar="HOST:PORT")
@click.option(
    "--calling",
    default="DICOMTAP",
    show_default=True,
    callback=_ae_title,
    help="The probe's AE title (calling AE title).",
)
@click.option(
    "--called", required=True, callback=_ae_title, help="The SCP's AE title (called AE title)."
)
@click.option(
    "--context",
    "contexts",
    multiple=True,
    metavar="SOP[=TS,...]",
    help="Propose this SOP class with these transfer syntaxes (repeatable; UIDs, keywords "
    "or names; default syntaxes: Explicit and Implicit VR Little Endian).",
)
@click.option(
    "--contexts",
    "presets",
    multiple=True,
    type=click.Choice([p.value for p in Preset]),
    help="Propose a preset's contexts (repeatable).",
)
@click.option(
    "--role",
    "roles",
    multiple=True,
    metavar="SOP=scu,scp",
    help="Propose an SCP/SCU role selection for a proposed SOP class (repeatable).",
)
@click.option("--user", metavar="NAME", help="User identity: the user name.")
@click.option(
    "--identity-type",
    type=click.Choice(list(_IDENTITY_TYPES)),
    help="User identity type (default: username, or password when a passcode is given).",
)
@click.option(
    "--passcode-env",
    metavar="VAR",
    help="Read the passcode (or Kerberos/SAML/JWT token) from this environment variable.",
)
@click.option(
    "--passcode-file",
    metavar="FILE",
    type=click.Path(dir_okay=False),
    help="Read the passcode (or token) from this file.",
)
@click.option("--identity-response", is_flag=True, help="Ask the SCP to confirm the user identity.")
@click.option("--async-window", metavar="INVOKED,PERFORMED", help="Asynchronous operations window.")
@click.option(
    "--max-pdu",
    type=click.IntRange(0, 0xFFFFFFFF),
    default=16384,
    show_default=True,
    help="Maximum PDU length the probe receives (0: unlimited).",
)
@click.option("--tls", is_flag=True, help="DICOM over TLS.")
@click.option("--tls-ca", metavar="FILE", help="CA certificates to verify the SCP with.")
@click.option("--tls-cert", metavar="FILE", help="Client certificate (when the SCP asks).")
@click.option("--tls-key", metavar="FILE", help="Key of the client certificate.")
@click.option("--tls-no-verify", is_flag=True, help="Do not verify the SCP's certificate.")
@click.option(
    "--timeout",
    type=_SECONDS,
    default=10.0,
    show_default=True,
    help="Longest wait for any answer, in seconds (connect, TLS, association, each response).",
)
@click.option("--no-echo", is_flag=True, help="Do not send the C-ECHO.")
@click.option(
    "--find",
    "find_level",
    type=click.Choice([f.value for f in FindLevel]),
    help="A minimal C-FIND at this level (worklist: modality worklist).",
)
@click.option(
    "--find-key",
    "find_keys",
    multiple=True,
    metavar="KEYWORD=VALUE",
    help="A matching key of the C-FIND (repeatable), e.g. PatientID=1234 or StudyDate=20260101-.",
)
@click.option(
    "--find-limit",
    type=click.IntRange(1, 100000),
    default=100,
    show_default=True,
    help="Cancel the C-FIND after this many matches.",
)
@click.option(
    "--store",
    "store_file",
    type=click.Path(dir_okay=False, exists=True),
    help="Send this DICOM file with C-STORE.",
)
@click.option(
    "--store-test",
    is_flag=True,
    help="Send a generated test object (patient DICOMTAP^PROBE) with C-STORE.",
)
@click.option("--commit", is_flag=True, help="Ask for storage commitment of the stored object.")
@click.option(
    "--scan",
    type=click.Choice([k.value for k in ScanKind]),
    help="Capability scan: which SOP classes and transfer syntaxes the SCP accepts.",
)
@click.option(
    "--scan-syntax",
    "scan_syntaxes",
    multiple=True,
    metavar="TS",
    help="Transfer syntax proposed for storage in the scan (repeatable; replaces the default "
    "spread of 8).",
)
@click.option(
    "--save-baseline",
    type=click.Path(dir_okay=False, writable=True),
    help="Save the scan's matrix to this file.",
)
@click.option(
    "--baseline",
    "baseline_file",
    type=click.Path(dir_okay=False),
    help="Compare the scan with this saved one.",
)
@click.option("--warn", type=_SECONDS, help="WARNING when a step takes longer (seconds).")
@click.option("--crit", type=_SECONDS, help="CRITICAL when a step takes longer (seconds).")
@click.option(
    "--format",
    "fmt",
    type=click.Choice([f.value for f in OutputFormat]),
    default="text",
    show_default=True,
    help="text: the plugin line and details; json: one JSON object; openmetrics: an "
    "OpenMetrics exposition.",
)
@click.option(
    "--watch",
    "watch_every",
    type=click.FloatRange(min=1),
    metavar="SECONDS",
    help="Probe again every SECONDS, printing only what changed.",
)
@click.option("--count", type=click.IntRange(min=1), help="With --watch: stop after N probes.")
@click.option("--pcap", metavar="FILE.pcapng", help="Write what the probe exchanged as pcapng.")
def probe(**kw: Any) -> None:
    """Check a DICOM SCP the way a modality uses it, and say what is wrong in plain words.

    Connects to HOST:PORT, proposes the presentation contexts asked for, runs a C-ECHO (and
    the C-FIND, C-STORE, storage commitment asked for), and reports the acceptance matrix,
    what the SCP said about itself, and the latency of each step. When it fails, the reason
    is given in the words of 'dicomtap diagnose': the probe's own traffic goes through the
    same analysis as a capture, and --pcap writes it.

    \b
    Examples:
      dicomtap probe pacs:104 --called PACS
      dicomtap probe pacs:104 --called PACS --contexts storage --warn 1 --crit 5
      dicomtap probe pacs:104 --called PACS --context CTImageStorage=JPEG2000Lossless
      dicomtap probe pacs:104 --called PACS --find study --find-key StudyDate=20260101
      dicomtap probe pacs:104 --called PACS --store-test --commit
      dicomtap probe pacs:104 --called PACS --scan storage --save-baseline pacs.json
      dicomtap probe pacs:104 --called PACS --scan storage --baseline pacs.json
      dicomtap probe pacs:2762 --called PACS --tls --tls-ca ca.pem --format openmetrics
      dicomtap probe pacs:104 --called PACS --watch 60

    \b
    Exit status (monitoring-plugin convention):
      0  OK
      1  WARNING: a requested context rejected, a warning status, a step over --warn
      2  CRITICAL: no connection, association rejected or aborted, a service failed,
         a step over --crit, a context of the baseline no longer accepted
      3  UNKNOWN: usage error, or the probe could not run
    """
    # pydicom warns about odd values (the peer's too); the probe reports what matters itself.
    warnings.filterwarnings("ignore", module=r"pydicom(\.|$)")
    try:
        session, fmt, save = _session(kw)
        with session_outputs(session):
            health = run(
                session,
                fmt,
                sys.stdout,
                watch_every=kw["watch_every"],
                count=kw["count"],
                save_baseline=save,
            )
    except click.UsageError:
        raise
    except DicomtapError as exc:
        click.echo(f"DICOM UNKNOWN - {exc}")
        sys.exit(_UNKNOWN)
    except BrokenPipeError:
        sys.exit(_UNKNOWN)
    except Exception as exc:  # a defect: still one line, never a traceback, for a monitor
        click.echo(f"DICOM UNKNOWN - internal error: {type(exc).__name__}: {printable(str(exc))}")
        sys.exit(_UNKNOWN)
    sys.exit(int(health))


class session_outputs:
    """Closes the session's pcapng when the command ends."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def __enter__(self) -> Session:
        return self.session

    def __exit__(self, *exc: object) -> None:
        if self.session.pcap is not None:
            self.session.pcap.close()


def _session(kw: dict[str, Any]) -> tuple[Session, OutputFormat, Path | None]:
    try:
        address = parse_address(kw["address"], "HOST:PORT")
    except ConfigError as exc:
        raise _usage(str(exc)) from None
    try:
        contexts: list[ContextSpec] = [parse_context(c) for c in kw["contexts"]]
        for preset in kw["presets"]:
            contexts += preset_contexts(Preset(preset))
        roles = tuple(parse_role(r) for r in kw["roles"])
        scan_syntaxes = (
            tuple(transfer_syntax_uid(t) for t in kw["scan_syntaxes"]) or SCAN_IMAGE_SYNTAXES
        )
    except UidError as exc:
        raise _usage(str(exc)) from None
    fmt = OutputFormat(kw["fmt"])
    scan = ScanKind(kw["scan"]) if kw["scan"] else None
    _check_combinations(kw, scan, fmt, {c.abstract_syntax for c in contexts}, roles)
    options = ProbeOptions(
        host=address.host,
        port=address.port,
        calling_ae=kw["calling"],
        called_ae=kw["called"],
        contexts=tuple(contexts),
        roles=roles,
        identity=_identity(kw),
        async_window=_async_window(kw["async_window"]),
        max_pdu=kw["max_pdu"],
        tls=_tls(kw),
        timeout=kw["timeout"],
        echo=not kw["no_echo"],
        find=_find(kw),
        store_file=Path(kw["store_file"]) if kw["store_file"] else None,
        store_test=kw["store_test"],
        commit=kw["commit"],
        scan=scan,
        scan_syntaxes=scan_syntaxes,
        warn=kw["warn"],
        crit=kw["crit"],
    )
    if len(contexts) > MAX_CONTEXTS:
        raise _usage(
            f"{len(contexts)} contexts asked for: an association holds at most {MAX_CONTEXTS}"
        )
    tls = None
    if options.tls is not None:
        try:
            tls = client_context(options.tls)
        except ConfigError as exc:
            raise _usage(str(exc)) from None
    baseline = load_baseline(Path(kw["baseline_file"])) if kw["baseline_file"] else None
    pcap = None
    if kw["pcap"]:
        try:
            pcap = PcapngWriter(kw["pcap"], application=f"{generator()} probe")
        except OSError as exc:
            raise _usage(f"cannot write {kw['pcap']}: {exc.strerror}") from None
    save = Path(kw["save_baseline"]) if kw["save_baseline"] else None
    return Session(options, tls=tls, pcap=pcap, baseline=baseline), fmt, save


def _check_combinations(
    kw: dict[str, Any], scan: ScanKind | None, fmt: OutputFormat, proposed: set[str], roles: Any
) -> None:
    if kw["store_file"] and kw["store_test"]:
        raise _usage("--store and --store-test: choose one")
    if kw["commit"] and not (kw["store_file"] or kw["store_test"]):
        raise _usage("--commit needs an object to commit: --store FILE or --store-test")
    if (kw["save_baseline"] or kw["baseline_file"]) and scan is None:
        raise _usage("--save-baseline and --baseline compare scans: add --scan storage|all")
    if kw["scan_syntaxes"] and scan is None:
        raise _usage("--scan-syntax needs --scan")
    if kw["count"] is not None and kw["watch_every"] is None:
        raise _usage("--count needs --watch")
    if kw["watch_every"] is not None and fmt == OutputFormat.OPENMETRICS:
        raise _usage("--watch prints changes; OpenMetrics is one exposition per probe")
    if (kw["find_keys"] or kw["find_limit"] != 100) and not kw["find_level"]:
        raise _usage("--find-key and --find-limit need --find LEVEL")
    if kw["passcode_env"] and kw["passcode_file"]:
        raise _usage("--passcode-env and --passcode-file: choose one")
    if (kw["tls_ca"] or kw["tls_cert"] or kw["tls_key"] or kw["tls_no_verify"]) and not kw["tls"]:
        raise _usage("--tls-ca, --tls-cert, --tls-key and --tls-no-verify need --tls")
    if bool(kw["tls_cert"]) != bool(kw["tls_key"]):
        raise _usage("--tls-cert and --tls-key go together")
    for role in roles:
        if role.sop_class not in proposed:
            raise _usage(
                f"--role for {role.sop_class}: propose that SOP class too (--context or --contexts)"
            )


def _identity(kw: dict[str, Any]) -> Identity | None:
    user, env, path, kind_name = (
        kw["user"],
        kw["passcode_env"],
        kw["passcode_file"],
        kw["identity_type"],
    )
    if not (user or env or path or kind_name):
        if kw["identity_response"]:
            raise _usage("--identity-response needs a user identity (--user ...)")
        return None
    secret = b""
    if env or path:
        try:
            secret = read_secret(env=env, path=path)
        except SecretError as exc:
            raise _usage(str(exc)) from None
    if kind_name is None:
        kind = IdentityType.USERNAME_PASSCODE if secret else IdentityType.USERNAME
    else:
        kind = _IDENTITY_TYPES[kind_name]
    if kind in (IdentityType.USERNAME, IdentityType.USERNAME_PASSCODE):
        if not user:
            raise _usage(f"user identity {kind.name.lower()}: --user NAME is needed")
        if kind == IdentityType.USERNAME_PASSCODE and not secret:
            raise _usage("user identity password: --passcode-env VAR or --passcode-file FILE")
        if kind == IdentityType.USERNAME and secret:
            raise _usage("identity type username sends no passcode: drop --passcode-*")
        return Identity(kind, user.encode("utf-8"), secret, kw["identity_response"])
    if not secret:
        raise _usage(f"user identity {kind_name}: the token comes from --passcode-env/-file")
    if user:
        raise _usage(f"user identity {kind_name} carries a token, not a user name")
    return Identity(kind, secret, b"", kw["identity_response"])


def _async_window(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    try:
        invoked, performed = (int(x) for x in text.split(","))
    except ValueError:
        raise _usage(f"bad --async-window {text!r}: expected INVOKED,PERFORMED") from None
    if not (0 <= invoked <= 0xFFFF and 0 <= performed <= 0xFFFF):
        raise _usage("--async-window values are 0-65535 (0: unlimited)")
    return invoked, performed


def _tls(kw: dict[str, Any]) -> TlsConfig | None:
    if not kw["tls"]:
        return None
    return TlsConfig(
        cert=kw["tls_cert"], key=kw["tls_key"], ca=kw["tls_ca"], verify=not kw["tls_no_verify"]
    )


def _find(kw: dict[str, Any]) -> FindSpec | None:
    if not kw["find_level"]:
        return None
    keys = []
    for item in kw["find_keys"]:
        keyword, sep, value = item.partition("=")
        if not sep:
            raise _usage(f"bad --find-key {item!r}: expected KEYWORD=VALUE")
        try:
            check_key(keyword.strip())
        except ValueError as exc:
            raise _usage(str(exc)) from None
        keys.append((keyword.strip(), value))
    spec = FindSpec(FindLevel(kw["find_level"]), tuple(keys), kw["find_limit"])
    try:
        check_query(spec)
    except ValueError as exc:
        raise _usage(f"bad --find-key: {printable(str(exc))}") from None
    return spec
