"""dicomtap's terminal UI (Textual). Reads the analyzer's model and store only."""
