"""The conformance harness: a device under test scored against the standard it claims to speak
and against the simulation's ground truth (``ccsim conformance PLAN.toml``).

``plan`` reads and checks a test plan, ``station`` is the pure model of an emulated NTCIP 1209
detector station with a vendor error model, ``emulator`` puts one on a UDP port as a separate
process, ``protocol_cases`` are the SNMP / NTCIP 1209 cases, ``accuracy`` the statistics against
ground truth (pure), ``profile`` the measured errors as a sensor profile, ``report`` writes
results.json, the Markdown summary and the HTML report. For LoRaWAN parking sensors,
``bay_sensors`` is the pure model of emulated sensors and their network server,
``parking_emulator`` publishes them on MQTT as a separate process, ``lorawan_cases`` are the
LORA-* cases on recorded messages and ``parking_accuracy`` the statistics against ground truth.
For NTCIP 1202 signal controllers, ``controller_device`` is the pure model of an emulated
controller, ``controller_emulator`` serves it on UDP as a separate process, ``controller_cases``
are the ASC-* cases, ``controller_accuracy`` the status and command statistics against ground
truth (pure) and ``controller_report`` their part of the report.
The runs themselves (simulation, emulator process, polling or subscribing) are wired by
``controlcenter.conformance``, ``controlcenter.conformance_parking`` and
``controlcenter.conformance_controller``.
"""
