"""dicomtap's terminal UI (Textual). Reads the analyzer's model and store only.

Headless core (no Textual; importable and tested on its own): :mod:`tui.core` (the index
of associations kept up to date from store changes), :mod:`tui.rows` (list columns),
:mod:`tui.query` (the filter language), :mod:`tui.timeline` and :mod:`tui.diagram` (the
sequence diagram), :mod:`tui.details`, :mod:`tui.dataset` and :mod:`tui.charts`.

Textual: :mod:`tui.app` (``run(store, ingest=None)``, the entry point for every source:
capture files, a live capture, the proxy), :mod:`tui.screens`, :mod:`tui.widgets` and the
one stylesheet ``dicomtap.tcss``.
"""
