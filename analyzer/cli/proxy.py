"""``dicomtap proxy``: a logging proxy between DICOM peers."""

from __future__ import annotations

import asyncio
import os
import sys

import click

from analyzer.filter import Filter
from analyzer.pipeline import Progress
from analyzer.sources.proxy.config import ProxyConfig, TlsConfig
from analyzer.sources.proxy.options import CliOptions, build_config
from analyzer.sources.proxy.pcapng import PcapngWriter
from analyzer.sources.proxy.server import run_proxy, serve
from analyzer.store import Store

from .common import (
    filter_option,
    keep_option,
    raw_capture_note,
    redact_option,
    terminal_ui,
    user_errors,
)
from .version import generator

_SECONDS = click.FloatRange(min=0.001)


@click.command()
@click.option(
    "--listen",
    "listen",
    multiple=True,
    metavar="HOST:PORT",
    help="Accept associations here (repeatable; [IPv6]:PORT for IPv6).",
)
@click.option(
    "--upstream",
    metavar="HOST:PORT",
    help="Relay to this peer (when no --route matches the called AE title).",
)
@click.option(
    "--route",
    "routes",
    multiple=True,
    metavar="CALLED_AE=HOST:PORT",
    help="Relay associations calling this AE title to that peer (repeatable).",
)
@click.option(
    "--config",
    "config_file",
    metavar="FILE",
    help="TOML file with listeners, routes and options (the command line wins).",
)
@click.option("--jsonl", metavar="FILE", help="JSON Lines records, as analyze --format json.")
@click.option("--pcap", metavar="FILE.pcapng", help="Write what was relayed as pcapng.")
@click.option("--log", "log_file", metavar="FILE", help="Also write the live log to FILE.")
@click.option("--pcap-max-size", metavar="SIZE", help="Rotate the pcapng at SIZE (e.g. 1GiB).")
@click.option("--log-max-size", metavar="SIZE", help="Rotate the JSON Lines and log files.")
@click.option("--keep-files", type=click.IntRange(min=1), help="Rotated files kept (10).")
@click.option("--connect-timeout", type=_SECONDS, help="Upstream connect, seconds (30).")
@click.option(
    "--first-pdu-timeout",
    type=_SECONDS,
    help="Seconds from accept to a whole A-ASSOCIATE-RQ, TLS handshake included (10).",
)
@click.option("--idle-timeout", type=_SECONDS, help="Seconds without traffic (3600).")
@click.option(
    "--write-timeout",
    type=_SECONDS,
    help="Seconds a peer may refuse to read before both sides are closed (120).",
)
@click.option("--grace", type=_SECONDS, help="Seconds given to open associations at shutdown (30).")
@click.option(
    "--linger",
    type=_SECONDS,
    help="Once one side closed, seconds without traffic before the other is closed (10).",
)
@click.option(
    "--max-associations",
    type=click.IntRange(min=1),
    help="Concurrent associations (200), counted from a whole A-ASSOCIATE-RQ; "
    "more get A-ASSOCIATE-RJ 2/3/2.",
)
@click.option(
    "--max-pending",
    type=click.IntRange(min=1),
    help="Connections still waiting for their A-ASSOCIATE-RQ (100); over it, those still "
    "waiting 2 s later are reset, the longest waiting first.",
)
@click.option(
    "--max-pending-per-ip",
    type=click.IntRange(min=1),
    help="The same, per client address (10).",
)
@click.option(
    "--max-parse-pdu",
    metavar="SIZE",
    help="Larger PDUs are relayed whole, their bodies neither captured nor parsed (64MiB).",
)
@click.option(
    "--allow-ip", multiple=True, metavar="CIDR", help="Allowed client address (repeatable)."
)
@click.option(
    "--allow-calling-ae",
    multiple=True,
    metavar="AE",
    help="Allowed calling AE title (repeatable); others get RJ 1/1/3.",
)
@click.option(
    "--on-ip-refused",
    type=click.Choice(["reject", "close"]),
    help="A refused address gets RJ 1/1/1 (reject, default) or a plain close.",
)
@click.option(
    "--on-upstream-failure",
    type=click.Choice(["reject", "close"]),
    help="Upstream unreachable: RJ 2/3/1 (reject, default) or a plain close.",
)
@click.option(
    "--rewrite-calling-ae",
    multiple=True,
    metavar="OLD=NEW",
    help="Rewrite the calling AE title towards the upstream (* = any).",
)
@click.option(
    "--rewrite-called-ae",
    multiple=True,
    metavar="OLD=NEW",
    help="Rewrite the called AE title towards the upstream (* = any).",
)
@click.option(
    "--clamp-max-pdu",
    type=click.IntRange(min=4096),
    metavar="BYTES",
    help="Clamp the Maximum Length of the A-ASSOCIATE-RQ and -AC.",
)
@click.option("--tls-cert", metavar="PEM", help="Terminate TLS from clients with this certificate.")
@click.option("--tls-key", metavar="PEM", help="Its private key.")
@click.option("--tls-ca", metavar="PEM", help="Require client certificates signed by this CA.")
@click.option("--upstream-tls", is_flag=True, help="Originate TLS towards the upstream.")
@click.option("--upstream-tls-ca", metavar="PEM", help="CA that signed the upstream's certificate.")
@click.option("--upstream-tls-cert", metavar="PEM", help="Client certificate for the upstream.")
@click.option("--upstream-tls-key", metavar="PEM", help="Its private key.")
@click.option(
    "--upstream-tls-no-verify", is_flag=True, help="Do not verify the upstream (tests only)."
)
@click.option(
    "--tls-min-version",
    type=click.Choice(["1.2", "1.3"]),
    default="1.2",
    show_default=True,
    help="Minimum TLS version, both sides.",
)
@click.option("--keylog", metavar="FILE", help="TLS key log for Wireshark (else $SSLKEYLOGFILE).")
@keep_option("Bytes kept from the start of each data set (65536).", default=None)
@click.option("-q", "--quiet", is_flag=True, help="No live log on stdout.")
@filter_option(
    "--log-filter",
    "log_filter",
    help="Live log lines only for associations that match EXPR (the filter language of "
    "'analyze --filter'), from the moment they match; --jsonl and --pcap keep everything.",
)
@click.option(
    "--tui",
    is_flag=True,
    help="Watch the relayed associations in the terminal UI instead of the live log (with "
    "--pcap, the UI saves their frames as pcapng, read back from that file; without, only "
    "as .jsonl or .csv).",
)
@redact_option()
def proxy(**opts: object) -> None:
    """Relay DICOM associations byte for byte, and log what they do.

    Listens on --listen, reads each client's A-ASSOCIATE-RQ, picks the upstream by called
    AE title (--route) or --upstream, and relays both ways unchanged. A connection that does
    not open with an A-ASSOCIATE-RQ (TLS on a plain listener, HTTP, garbage) is closed
    without reaching any upstream. Every association is
    observed like a capture: the live log has one line per association event and DIMSE
    exchange; --jsonl writes the records of `dicomtap analyze --format json`; --pcap
    writes a pcapng (client leg and upstream leg) that Wireshark and `dicomtap analyze`
    read. Rewrites are off unless asked for, and logged. SIGINT or SIGTERM: stop
    accepting, give open associations --grace seconds, then abort them.

    \b
    Examples:
      dicomtap proxy --listen 0.0.0.0:11112 --upstream pacs:104
      dicomtap proxy --listen :104 --route ARCHIVE=10.0.0.9:104 \\
          --route VNA=10.0.0.10:11112 --jsonl assoc.jsonl --pcap relay.pcapng
      dicomtap proxy --listen :2762 --tls-cert proxy.pem --tls-key proxy.key \\
          --upstream pacs:104
      dicomtap proxy --config proxy.toml

    \b
    Exit status: 0 after a clean shutdown, 2 for a usage or configuration error.
    """
    o = opts.get

    def text(name: str) -> str | None:
        value = o(name)
        return str(value) if value is not None else None

    def many(name: str) -> tuple[str, ...]:
        value = o(name)
        return tuple(str(v) for v in value) if isinstance(value, tuple) else ()

    def whole(name: str) -> int | None:
        value = o(name)
        return value if isinstance(value, int) else None

    log_filter = o("log_filter")  # parsed by its option: a Filter or None
    raw_capture_note(text("pcap"))
    min_version = text("tls_min_version") or "1.2"
    keylog = text("keylog")
    tls = None
    if o("tls_cert") or o("tls_key"):
        tls = TlsConfig(
            text("tls_cert"), text("tls_key"), text("tls_ca"), min_version, keylog=keylog
        )
    upstream_tls = None
    if o("upstream_tls") or o("upstream_tls_ca") or o("upstream_tls_cert"):
        upstream_tls = TlsConfig(
            text("upstream_tls_cert"),
            text("upstream_tls_key"),
            text("upstream_tls_ca"),
            min_version,
            verify=not o("upstream_tls_no_verify"),
            keylog=keylog,
        )
    timeouts = {
        "connect": o("connect_timeout"),
        "first_pdu": o("first_pdu_timeout"),
        "idle": o("idle_timeout"),
        "write": o("write_timeout"),
        "grace": o("grace"),
        "linger": o("linger"),
    }
    cli = CliOptions(
        listen=many("listen"),
        upstream=text("upstream"),
        routes=many("routes"),
        config=text("config_file"),
        timeouts={k: float(v) for k, v in timeouts.items() if isinstance(v, int | float)},
        max_associations=whole("max_associations"),
        max_pending=whole("max_pending"),
        max_pending_per_ip=whole("max_pending_per_ip"),
        max_parse_pdu=text("max_parse_pdu"),
        allow_ip=many("allow_ip"),
        allow_calling_ae=many("allow_calling_ae"),
        on_ip_refused=text("on_ip_refused"),
        rewrite_calling=many("rewrite_calling_ae"),
        rewrite_called=many("rewrite_called_ae"),
        clamp_max_pdu=whole("clamp_max_pdu"),
        jsonl=text("jsonl"),
        pcap=text("pcap"),
        log=text("log_file"),
        pcap_max_size=text("pcap_max_size"),
        log_max_size=text("log_max_size"),
        keep_files=whole("keep_files"),
        quiet=bool(o("quiet")),
        on_upstream_failure=text("on_upstream_failure"),
        tls=tls,
        upstream_tls=upstream_tls,
        keep=whole("keep"),
        log_filter=log_filter if isinstance(log_filter, Filter) else None,
    )
    with user_errors():
        config = build_config(cli)
        if o("tui"):
            _with_tui(config)
            return
        # 1: the recording process stopped early (said in the log; relaying went on).
        status = serve(config, generator=generator())
    sys.exit(status)


def _with_tui(config: ProxyConfig) -> None:
    """The proxy in the UI's ingest worker, the UI in front: same store, no special case."""
    run_ui = terminal_ui()
    store = Store(keep_pdus=True, compact_pdus=True)
    stopped_by: list[BaseException] = []
    pcap: list[PcapngWriter] = []  # the --pcap writer, once open

    def capture() -> list[str]:
        """The pcapng files, flushed up to what the UI shows (the UI saves frames from
        them)."""
        return [str(p) for p in pcap[0].sync()] if pcap else []

    def ingest(store: Store, progress: Progress) -> None:
        async def main() -> None:
            stop = asyncio.Event()

            async def watch() -> None:
                # The UI says "stop" by raising from its progress callback when it closes.
                while not stop.is_set():
                    try:
                        progress(0, -1)  # total -1: a live source, no end to measure
                    except BaseException as exc:  # handed back to the UI below
                        stopped_by.append(exc)
                        stop.set()
                        return
                    await asyncio.sleep(0.25)

            watcher = asyncio.create_task(watch())
            try:
                await run_proxy(
                    config,
                    store,
                    stop=stop,
                    out=None,
                    generator=generator(),
                    pcap_opened=pcap.append,
                )
            finally:
                stop.set()
                await watcher

        asyncio.run(main())
        if stopped_by:
            raise stopped_by[0]

    listening = ", ".join(str(lst.address) for lst in config.listeners)
    kept = config.output.pcap
    run_ui(
        store,
        ingest,
        source=f"proxy on {listening}",
        stop_grace=config.timeouts.grace,
        capture=capture if kept else None,
        capture_name=os.path.basename(kept or ""),
        no_capture="start the proxy with --pcap FILE.pcapng to keep them",
    )
