"""What a probe is asked to do, as frozen dataclasses (the CLI builds them, see
:mod:`analyzer.cli.probe`)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from enum import IntEnum, StrEnum
from pathlib import Path

from analyzer.sources.proxy.config import TlsConfig

from .catalog import SCAN_IMAGE_SYNTAXES, ContextSpec, RoleSpec, ScanKind

__all__ = [
    "FindLevel",
    "FindSpec",
    "Health",
    "Identity",
    "IdentityType",
    "ProbeOptions",
    "SecretError",
    "read_secret",
]


class Health(IntEnum):
    """A monitoring-plugin state; the value is the exit status (Nagios/Icinga convention)."""

    OK = 0
    WARNING = 1
    CRITICAL = 2
    UNKNOWN = 3


class IdentityType(IntEnum):
    """User Identity Type (PS3.7 D.3.3.7.1)."""

    USERNAME = 1
    USERNAME_PASSCODE = 2
    KERBEROS = 3
    SAML = 4
    JWT = 5


@dataclass(frozen=True, slots=True)
class Identity:
    """A user identity to send. The secret never appears in a repr, a log or an output."""

    kind: IdentityType
    primary: bytes = field(repr=False)
    secondary: bytes = field(default=b"", repr=False)
    response_requested: bool = False


class SecretError(ValueError):
    """A passcode or token that cannot be read."""


#: Secrets are small; a larger "secret" is a wrong file.
_SECRET_LIMIT = 64 * 1024


def read_secret(*, env: str | None, path: str | None) -> bytes:
    """A passcode or token from an environment variable or a file (one trailing newline
    dropped). Never from the command line, where every user of the machine can read it."""
    if env is not None:
        value = os.environ.get(env)
        if value is None:
            raise SecretError(f"environment variable {env} is not set")
        return value.encode("utf-8")
    if path is not None:
        try:
            with open(path, "rb") as f:
                data = f.read(_SECRET_LIMIT + 1)
        except OSError as exc:
            raise SecretError(f"cannot read {path}: {exc.strerror}") from None
        if len(data) > _SECRET_LIMIT:
            raise SecretError(f"{path} is larger than {_SECRET_LIMIT} bytes: not a secret")
        return data.removesuffix(b"\n").removesuffix(b"\r")
    raise SecretError("no secret given")


class FindLevel(StrEnum):
    """``--find`` levels: a Query/Retrieve level, or a modality worklist query."""

    PATIENT = "patient"
    STUDY = "study"
    SERIES = "series"
    IMAGE = "image"
    WORKLIST = "worklist"


@dataclass(frozen=True, slots=True)
class FindSpec:
    """A minimal C-FIND: the level, matching keys (keyword, value), and how many matches to
    take before cancelling (a health check must not page through a whole archive)."""

    level: FindLevel
    keys: tuple[tuple[str, str], ...] = ()
    limit: int = 100


@dataclass(frozen=True, slots=True)
class ProbeOptions:
    """One probe: where, as whom, what to propose, which services, what to compare."""

    host: str
    port: int
    calling_ae: str
    called_ae: str
    contexts: tuple[ContextSpec, ...] = ()
    roles: tuple[RoleSpec, ...] = ()
    identity: Identity | None = None
    async_window: tuple[int, int] | None = None
    max_pdu: int = 16384
    tls: TlsConfig | None = None
    timeout: float = 10.0
    echo: bool = True
    find: FindSpec | None = None
    store_file: Path | None = None
    store_test: bool = False
    commit: bool = False
    scan: ScanKind | None = None
    scan_syntaxes: tuple[str, ...] = SCAN_IMAGE_SYNTAXES
    warn: float | None = None
    """Seconds: a connect, association or service slower than this is a WARNING."""
    crit: float | None = None
    """Seconds: slower than this is CRITICAL."""

    @property
    def target(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def pdu_limit(self) -> int:
        """The largest PDU the probe reads: what it announced (0: unlimited), at least 1 MiB
        (an A-ASSOCIATE-AC for 128 contexts is far smaller)."""
        return max(1 << 20, self.max_pdu + 6) if self.max_pdu else 64 << 20
