"""NTCIP over SNMP: every signal of a live run as an NTCIP 1202 actuated signal controller agent
that also serves its approach detectors as an NTCIP 1209 sensor system.

``oids`` holds the one table of objects, ``model`` maps a signal's state to their values
(pure), ``protocol`` answers SNMP requests (sans I/O), ``device`` keeps one signal's state for its
agent, ``agent`` puts them on UDP sockets.
"""
