"""dicomtap's application layer: capture sources, model, store, findings, reports, CLI."""
