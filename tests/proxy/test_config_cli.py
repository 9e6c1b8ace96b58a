"""The command line and the TOML file: user mistakes are one line and exit 2, never a
traceback; the file and the options join as documented."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from click.testing import CliRunner

from analyzer.cli import main
from analyzer.sources.proxy.config import ConfigError, FailurePolicy
from analyzer.sources.proxy.options import CliOptions, build_config


def _proxy(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["proxy", *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--listen", "nohostport", "--upstream", "127.0.0.1:104"],
            "bad listen address 'nohostport'",
        ),
        (["--listen", "127.0.0.1:99999", "--upstream", "h:1"], "port 99999 is not in 1..65535"),
        (["--listen", "127.0.0.1:11112"], "nowhere to relay to"),
        (["--listen", "127.0.0.1:11112", "--route", "ARCHIVE", "--upstream", "h:1"], "bad route"),
        (["--upstream", "h:1"], "nothing to listen on"),
        (
            ["--listen", ":1", "--upstream", "h:1", "--config", "/nonexistent.toml"],
            "cannot read config /nonexistent.toml",
        ),
        (
            ["--listen", "127.0.0.1:2", "--upstream", "127.0.0.1:2"],
            "the proxy's own listen address",
        ),
        (
            [
                "--listen",
                ":1",
                "--upstream",
                "h:1",
                "--tls-cert",
                "/none.pem",
                "--tls-key",
                "/none.key",
            ],
            "cannot read listener TLS file /none.pem",
        ),
        (["--listen", ":1", "--upstream", "h:1", "--pcap-max-size", "lots"], "bad pcap max size"),
        (
            ["--listen", ":1", "--upstream", "h:1", "--allow-ip", "10.0.0.0/33"],
            "bad allowed address",
        ),
        (["--listen", ":1", "--upstream", "h:1", "--rewrite-calling-ae", "X"], "expected OLD=NEW"),
    ],
)
def test_user_mistakes_exit_2_with_one_line(args: list[str], message: str) -> None:
    code, output = _proxy(*args)
    assert code == 2
    assert message in output
    assert "Traceback" not in output
    assert len(output.strip().splitlines()) == 1


def test_port_in_use(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code, output = _proxy(
            "--listen",
            f"127.0.0.1:{port}",
            "--upstream",
            "127.0.0.1:9",
            "--jsonl",
            str(tmp_path / "x.jsonl"),
        )
    assert code == 2
    assert f"cannot listen on 127.0.0.1:{port}: address in use" in output
    assert "Traceback" not in output


def test_bad_toml(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[limits\nmax = 1\n")
    code, output = _proxy("--config", str(bad))
    assert code == 2 and "bad config" in output and "Traceback" not in output


def test_help_has_examples() -> None:
    code, output = _proxy("--help")
    assert code == 0
    assert "Examples:" in output and "--route ARCHIVE=10.0.0.9:104" in output


def test_toml_and_command_line_join(tmp_path: Path) -> None:
    toml = tmp_path / "proxy.toml"
    toml.write_text(
        """
[[listen]]
address = "[::1]:11112"

[upstream]
address = "pacs.example:104"

[[route]]
called_ae = "ARCHIVE"
upstream = "10.0.0.9:104"

[timeouts]
idle = 600
write = 30

[limits]
max_associations = 20
max_parse_pdu = "16MiB"

[access]
allow_ip = ["10.0.0.0/8"]
allow_calling_ae = ["MODALITY"]
on_ip_refused = "close"

[rewrite]
calling_ae = { MODALITY = "GATEWAY" }
max_pdu = 32768

[output]
jsonl = "from-file.jsonl"
pcap_max_size = "1GiB"
keep_files = 3
"""
    )
    config = build_config(
        CliOptions(
            listen=["0.0.0.0:104"],
            routes=["VNA=10.0.0.10:11112"],
            config=str(toml),
            timeouts={"write": 5.0},
            allow_ip=["192.168.1.7"],
            jsonl="cli.jsonl",
        )
    )
    assert [str(lst.address) for lst in config.listeners] == ["0.0.0.0:104", "[::1]:11112"]
    assert str(config.upstream) == "pacs.example:104"
    assert [(r.called_ae, str(r.upstream)) for r in config.routes] == [
        ("VNA", "10.0.0.10:11112"),
        ("ARCHIVE", "10.0.0.9:104"),
    ]
    assert (config.timeouts.idle, config.timeouts.write, config.timeouts.connect) == (600, 5, 30)
    assert config.limits.max_associations == 20 and config.limits.max_parse_pdu == 16 << 20
    assert [str(n) for n in config.access.allow_ip] == ["192.168.1.7/32", "10.0.0.0/8"]
    assert config.access.on_ip_refused == FailurePolicy.CLOSE
    assert dict(config.rewrite.calling_ae) == {"MODALITY": "GATEWAY"}
    assert config.rewrite.max_pdu == 32768
    assert config.output.jsonl == "cli.jsonl" and config.output.pcap_max_size == 1 << 30
    assert config.output.keep_files == 3


def test_unknown_section_is_an_error(tmp_path: Path) -> None:
    toml = tmp_path / "p.toml"
    toml.write_text('[upstrem]\naddress = "h:1"\n')
    with pytest.raises(ConfigError, match="unknown section"):
        build_config(CliOptions(listen=[":1"], upstream="h:1", config=str(toml)))
