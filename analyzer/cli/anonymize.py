"""``dicomtap anonymize``: a copy of a capture without its PHI, showing the same protocol."""

from __future__ import annotations

import sys

import click

from analyzer.anonymize.run import anonymize_files
from analyzer.textsafe import printable

from .common import dicom_port_option, fail, progress_bar, progress_option, user_errors


@click.command()
@click.argument("files", nargs=-1, required=True, metavar="CAPTURE...")
@click.option(
    "-o",
    "--output",
    required=True,
    metavar="OUT.pcapng",
    type=click.Path(dir_okay=False),
    help="The de-identified capture (pcapng, readable only by its owner).",
)
@click.option(
    "--keep-pixels",
    is_flag=True,
    help="Keep pixel data as it was (by default it is zeroed: images can show a face or "
    "burnt-in text).",
)
@click.option(
    "--pseudonymize-hosts",
    is_flag=True,
    help="Also replace IP and MAC addresses and AE titles by consistent pseudonyms.",
)
@dicom_port_option("Treat this TCP port as a DICOM port (repeatable), as for 'dicomtap analyze'.")
@progress_option()
def anonymize(
    files: tuple[str, ...],
    output: str,
    keep_pixels: bool,
    pseudonymize_hosts: bool,
    ports: tuple[int, ...],
    progress: bool,
) -> None:
    """Write a de-identified copy of a capture, to send to a vendor.

    Every value of the PS3.15 Basic Application Level Confidentiality Profile (patient names,
    IDs, birth dates, institution, accession number, free text, instance UIDs, private
    attributes...) in command and data sets is replaced where it lies, by a value of the
    same length and VR, across PDV, PDU and TCP segment boundaries: every PDU, PDV and
    segment keeps its size, and Wireshark and dicomtap show the same associations, PDUs,
    exchanges, statuses, timings and errors. The same UID gets the same replacement
    everywhere (still a valid UID). User identity fields (credentials) are replaced too.
    What cannot be rewritten in place is zeroed and counted: pixel data (unless
    --keep-pixels), deflated data sets, bytes that cannot be parsed, the payload of
    connections that carry no DICOM. Checksums are recomputed; the file's comment says what
    was changed.

    Then it checks itself: the copy is analysed and compared with the original, and
    searched for every value that was replaced.

    \b
    Examples:
      dicomtap anonymize modality.pcapng -o for-vendor.pcapng
      dicomtap anonymize --pseudonymize-hosts --keep-pixels site.pcap -o shared.pcapng

    \b
    Exit status: 0 written and verified, 1 written but the check found a difference or a
    value left (the file must not be shared as it is), 2 usage error or unreadable input.
    """
    with user_errors(), progress_bar(progress) as bar:
        try:
            result = anonymize_files(
                files,
                output,
                keep_pixels=keep_pixels,
                pseudonymize_hosts=pseudonymize_hosts,
                ports=ports,
                progress=bar,
            )
        except OSError as exc:
            fail(f"cannot write {output}: {exc.strerror or exc}")
    t, p = result.tally, result.packets
    for note in result.truncated:
        click.echo(f"dicomtap: warning: {printable(note)}; read up to the cut", err=True)
    click.echo(
        printable(
            f"dicomtap: {output}: {p.packets} packets ({p.rewritten} changed); "
            f"{sum(t.values.values())} values replaced, {result.uids} UIDs; zeroed: "
            f"{t.pixel_bytes} bytes of pixel data, {t.private_or_large_bytes} of large or "
            f"private values, {t.deflated_bytes} of deflated data sets, "
            f"{t.unparsed_bytes} unparseable, {p.other_payload_zeroed} of connections "
            "without DICOM or IP fragments"
        ),
        err=True,
    )
    for line in result.differences:
        click.echo(f"dicomtap: check: {printable(line)}", err=True)
    for value in result.leftovers[:20]:
        shown = printable(value.decode("latin-1"))
        click.echo(f"dicomtap: check: an original value is still in the output: {shown}", err=True)
    if not result.verified:
        click.echo("dicomtap: check FAILED: do not share this file as it is", err=True)
        sys.exit(1)
    click.echo("dicomtap: check passed: same records, no replaced value left", err=True)
