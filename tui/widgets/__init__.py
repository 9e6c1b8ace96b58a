"""Widgets of the terminal UI: the virtual lists (associations, timeline, hex dump)."""
