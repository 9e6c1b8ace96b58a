"""The capture files named on a command line: files, folders and glob patterns."""

from __future__ import annotations

import glob
import os
from collections.abc import Sequence
from dataclasses import dataclass

from analyzer.errors import InputError

_GLOB_CHARS = frozenset("*?[")


@dataclass(frozen=True, slots=True)
class Inputs:
    """The files to read, and which of them were found in a folder (a folder may hold
    other files than captures: notes, scripts; those are passed over, not errors)."""

    paths: tuple[str, ...]
    in_folders: frozenset[str]


def expand(arguments: Sequence[str]) -> Inputs:
    """Every file ``arguments`` name, each once, in the order named.

    A folder stands for the files directly in it (not in its subfolders; hidden files
    left out), by name; a pattern with ``*``, ``?`` or ``[...]`` (``**`` for any depth) for
    the files it matches, by name, when no file has that very name. Anything else is taken
    as a file name, to be read (and reported if it cannot be). Raises
    :class:`~analyzer.errors.InputError` for a pattern or folder that yields no file.
    """
    paths: list[str] = []
    in_folders: set[str] = set()
    seen: set[str] = set()
    for argument in arguments:
        folder = os.path.isdir(argument)
        if folder:
            found = sorted(
                e.path for e in os.scandir(argument) if not e.name.startswith(".") and e.is_file()
            )
            if not found:
                raise InputError(f"{argument}: the folder holds no file")
        elif not os.path.lexists(argument) and _GLOB_CHARS.intersection(argument):
            found = sorted(p for p in glob.glob(argument, recursive=True) if os.path.isfile(p))
            if not found:
                raise InputError(f"no file matches {argument}")
        else:
            found = [argument]
        for path in found:
            key = os.path.realpath(path)
            if key not in seen:
                seen.add(key)
                paths.append(path)
                if folder:
                    in_folders.add(path)
    return Inputs(tuple(paths), frozenset(in_folders))
