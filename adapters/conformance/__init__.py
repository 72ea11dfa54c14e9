"""The conformance harness: a device under test scored against the standard it claims to speak
and against the simulation's ground truth (``ccsim conformance PLAN.toml``).

``plan`` reads and checks a test plan, ``station`` is the pure model of an emulated NTCIP 1209
detector station with a vendor error model, ``emulator`` puts one on a UDP port as a separate
process, ``protocol_cases`` are the SNMP / NTCIP 1209 cases, ``accuracy`` the statistics against
ground truth (pure), ``profile`` the measured errors as a sensor profile, ``report`` writes
results.json, the Markdown summary and the HTML report.
The run itself (simulation, emulator process, polling) is wired by ``controlcenter.conformance``.
"""
