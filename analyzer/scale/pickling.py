"""Pickling of the dissectors' events between processes, at a fraction of the usual cost.

The events are frozen, slotted dataclasses (as is most of what they hold: exchanges,
messages, command sets, PDUs). :mod:`dataclasses` pickles such an object through a
``__getstate__`` and a ``__setstate__`` written in Python that list its fields on every
call, which makes pickling and unpickling tens of microseconds per event, most of the cost
of sending a job's events to the process that merges them (:mod:`analyzer.scale.jobs`).
:func:`dumps` pickles those of the modules named to :func:`register` as their class and a
tuple of their field values, read in one call, and they are rebuilt from it by setting their
slots; any other object is pickled as :mod:`pickle` does. Both :func:`dumps` and
:func:`loads` pause the cyclic garbage collector, which (un)pickling would otherwise set off
again and again.
"""

from __future__ import annotations

import dataclasses
import gc
import io
import pickle
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from operator import attrgetter
from typing import Any

_Getter = Callable[[Any], tuple[Any, ...]]

_names: dict[type, tuple[str, ...]] = {}
_new = object.__new__
_set = object.__setattr__


def _fields(cls: type) -> tuple[str, ...]:
    """The field names of a slotted dataclass, in order; () for any other class."""
    names = _names.get(cls)
    if names is None:
        names = ()
        if dataclasses.is_dataclass(cls) and "__slots__" in cls.__dict__:
            names = tuple(f.name for f in dataclasses.fields(cls))
            if set(names) != set(cls.__dict__["__slots__"]):  # a field not in a slot of its own
                names = ()
        _names[cls] = names
    return names


def _getter(cls: type) -> _Getter | None:
    """How to read the field values of a slotted dataclass, None for any other class."""
    names = _fields(cls)
    if not names:
        return None
    if len(names) == 1:
        get = attrgetter(names[0])
        return lambda obj: (get(obj),)
    return attrgetter(*names)


def _rebuild(cls: type, values: tuple[Any, ...]) -> Any:
    """The object of class ``cls`` with these field values (see :func:`dumps`)."""
    names = _names.get(cls) or _fields(cls)
    if len(names) != len(values):
        raise pickle.UnpicklingError(f"{cls.__name__} has not the fields it was pickled with")
    obj: Any = _new(cls)
    for name, value in zip(names, values, strict=True):
        _set(obj, name, value)  # as the dataclass's own __init__ and __setstate__ do
    return obj


_reducers: dict[type, Callable[[Any], tuple[Any, ...]]] = {}


def _reducer(cls: type) -> Callable[[Any], tuple[Any, ...]] | None:
    get = _getter(cls)
    if get is None:
        return None

    def reduce(obj: Any) -> tuple[Any, ...]:
        return _rebuild, (cls, get(obj))

    return reduce


def register(*modules: str) -> None:
    """Pickle the slotted dataclasses of the modules loaded under these package names
    (e.g. ``dissectors``) as :func:`dumps` says; any other object as :mod:`pickle` does."""
    for name, module in list(sys.modules.items()):
        if module is None or not any(name == m or name.startswith(m + ".") for m in modules):
            continue
        for value in vars(module).values():
            if isinstance(value, type) and value not in _reducers:
                reduce = _reducer(value)
                if reduce is not None:
                    _reducers[value] = reduce


def dumps(obj: Any) -> bytes:
    """``obj`` pickled, the slotted dataclasses :func:`register` named as class and field
    values."""
    out = io.BytesIO()
    pickler = pickle.Pickler(out, pickle.HIGHEST_PROTOCOL)
    pickler.dispatch_table = _reducers
    with _collector_paused():
        pickler.dump(obj)
    return out.getvalue()


def loads(data: bytes) -> Any:
    """What :func:`dumps` pickled (``_rebuild`` learns the field names of each class from
    the class itself, so the two processes need only have the same classes)."""
    with _collector_paused():
        return pickle.loads(data)


@contextmanager
def _collector_paused() -> Iterator[None]:
    """The cyclic garbage collector off: (un)pickling makes many objects (tuples of field
    values, the objects rebuilt), which would set it off again and again over everything
    the process holds, to find no garbage."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
