"""A steady heap for sources that run for weeks (the proxy, live capture).

Their Python objects stay bounded (the store's retention, the linker's bounds), but the C
heap under them does not give memory back by itself: receive buffers of up to 256 KiB are
made and freed thousands of times a second, in one thread, and other threads write the
output; glibc then keeps growing per-thread arenas and raises its mmap threshold until every
buffer comes from a heap that is never trimmed. Fixing the threshold sends large buffers to
mmap (given back when freed), fewer arenas limit the spread, and a periodic trim returns the
free pages the rest leaves. Elsewhere than glibc this does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
from functools import cache

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8
#: Allocations from this size on are mmapped, whatever glibc learnt from earlier frees.
MMAP_THRESHOLD = 128 * 1024
ARENAS = 2
#: Seconds between two trims: a trim walks the heap and costs a few milliseconds.
TRIM_EVERY = 10.0


@cache
def _glibc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
        libc.malloc_trim.argtypes = [ctypes.c_size_t]
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return None
    return libc


def steady(mmap_threshold: int = MMAP_THRESHOLD, trim_threshold: int | None = None) -> bool:
    """Set the allocator up for a long run (call before threads start); True when it could
    (glibc). ``trim_threshold``: free bytes at the top of the heap kept for reuse rather
    than given back at once (glibc's default, 128 KiB, once the mmap threshold is fixed):
    a process that makes and frees buffers under ``mmap_threshold`` at a high rate keeps
    them in the heap instead of faulting fresh pages in for each (the periodic :func:`trim`
    still gives them back)."""
    libc = _glibc()
    if libc is None:
        return False
    libc.mallopt(_M_MMAP_THRESHOLD, mmap_threshold)
    if trim_threshold is not None:
        libc.mallopt(_M_TRIM_THRESHOLD, trim_threshold)
    libc.mallopt(_M_ARENA_MAX, ARENAS)
    return True


def trim() -> None:
    """Give the heap's free pages back to the system."""
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)
