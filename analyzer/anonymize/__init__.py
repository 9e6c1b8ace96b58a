"""``dicomtap anonymize``: a copy of a capture with the PHI gone and the protocol intact.

Every PHI value (the PS3.15 Basic Profile's attributes, in command sets and data sets) is
replaced where it lies in the capture, by a value of the same length and VR, so that every
PDV, PDU and TCP segment keeps its size and the protocol behaviour shows unchanged.

- :mod:`.uids`: consistent same-length replacement UIDs;
- :mod:`.values`: same-length replacement values by VR;
- :mod:`.locate`: the values' places in each TCP stream, from the framer's PDVs;
- :mod:`.packets`: the capture rewritten packet by packet (dpkt), checksums fixed, as pcapng.
"""
