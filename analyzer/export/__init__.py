"""``dicomtap export``: the data sets that crossed the wire, as DICOM Part-10 files.

- :mod:`.meta`: the File Meta Information group of each file;
- :mod:`.names`: file names from validated UIDs, never outside the output folder;
- :mod:`.spool`: a data set streamed to disk as its fragments pass, with its missing ranges;
- :mod:`.exporter`: which messages are written, matched with the observer's messages, and
  the manifest.
"""
