"""pynetdicom as the probe's DICOM client, over the probe's own :class:`~.wire.Wire`.

pynetdicom opens its own socket; :class:`ProbeAE` gives each association a
:class:`TapSocket` instead, which uses the wire's connected socket and sends and receives
through it, so every byte is tapped and bounded (see :mod:`.wire`). This overrides
pynetdicom internals (``ApplicationEntity._create_socket``, ``AssociationSocket.connect``,
``send``, ``recv``, ``_create_socket``, ``_shutdown_socket``) of the 3.x series, which
pyproject.toml pins; the tests run every path against real peers.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from pynetdicom import AE, evt
from pynetdicom.transport import AddressInformation, AssociationSocket

from analyzer.textsafe import printable

from .wire import Wire

__all__ = ["ProbeAE", "TapSocket", "quiet_pynetdicom", "thread_errors"]


_thread_errors: list[str] = []


def _thread_failed(args: threading.ExceptHookArgs) -> None:
    _thread_errors.append(f"{args.exc_type.__name__}: {args.exc_value}")


def quiet_pynetdicom() -> None:
    """pynetdicom logs errors with their tracebacks, and an exception in one of its threads
    would print one: the probe reports them itself, as one line each (:func:`thread_errors`)."""
    log = logging.getLogger("pynetdicom")
    log.setLevel(logging.CRITICAL + 1)
    log.propagate = False
    if not log.handlers:
        log.addHandler(logging.NullHandler())
    threading.excepthook = _thread_failed


def thread_errors() -> list[str]:
    """What failed in pynetdicom's threads since the last call (wire text escaped)."""
    errors = [printable(e) for e in _thread_errors]
    _thread_errors.clear()
    return errors


class TapSocket(AssociationSocket):
    """An :class:`AssociationSocket` whose bytes go through a connected :class:`Wire`."""

    def __init__(self, assoc: Any, address: Any, wire: Wire) -> None:
        self._wire = wire
        super().__init__(assoc, address=address)

    def _create_socket(self, address: Any) -> Any:
        self._is_connected = False
        return self._wire.socket

    def connect(self, primitive: Any) -> None:
        # The wire is connected already (and timed); tell the state machine so (Evt2).
        try:
            self._is_connected = True
            self.assoc.requestor.address_info = AddressInformation.from_tuple(
                self._wire.socket.getsockname()
            )
            evt.trigger(self.assoc, evt.EVT_CONN_OPEN, {"address": primitive.address_info.as_tuple})
            primitive.result = "Evt2"
        except OSError:
            self._is_connected = False
            primitive.result = "Evt17"
        finally:
            self.provider_queue.put(primitive)
            self._ready.set()

    def send(self, bytestream: bytes) -> None:
        try:
            self._wire.send(bytestream)
        except OSError:
            self.event_queue.put("Evt17")  # transport connection closed
            return
        evt.trigger(self.assoc, evt.EVT_DATA_SENT, {"data": bytestream})

    def recv(self, nr_bytes: int) -> bytearray:
        return self._wire.recv(nr_bytes)

    @property
    def ready(self) -> bool:
        # Bytes the wire read ahead are not visible to select().
        return self._wire.buffered or bool(super().ready)

    def _shutdown_socket(self) -> None:
        self._wire.close()


class ProbeAE(AE):
    """An application entity whose (one) association runs over ``wire``."""

    def __init__(self, ae_title: str, wire: Wire) -> None:
        super().__init__(ae_title=ae_title)
        self._wire = wire

    def _create_socket(self, assoc: Any, address: Any, tls_args: Any) -> TapSocket:
        return TapSocket(assoc, address, self._wire)
