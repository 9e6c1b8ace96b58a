"""Screens of the terminal UI: association list, association, exchange, findings, help."""
