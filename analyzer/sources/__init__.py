"""The I/O edges: capture files, live capture, the proxy."""
