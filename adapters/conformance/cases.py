"""The catalogue of conformance cases, and what a case's outcome looks like.

Every case id names what it checks and traces it to the requirement it comes from: the NTCIP
1209 v02 MIB (``adapters/ntcip/mib1209/ntcip1209-Tss.mib``; the clause numbers are the MIB's
own section comments, e.g. ``1.4.4.4 Sample Volume Data``), NTCIP 1202 v03 by object name
and OID below the asc node (``adapters/ntcip/oids.py``), RFC 3416 for SNMP error statuses,
RFC 3418 for the system group, and the accuracy presets' agency practice. A case passes, fails
with its evidence, or is not applicable (and says why).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any


class Outcome(Enum):
    PASS = "pass"
    FAIL = "fail"
    NOT_APPLICABLE = "not-applicable"


@dataclass(frozen=True)
class CaseSpec:
    id: str
    group: str
    title: str
    refs: tuple[str, ...]
    kind: str = "ntcip1209"
    """The kind of device the case is for (a plan's ``device.kind``)."""


@dataclass
class CaseResult:
    """One case's outcome; ``evidence`` says what was seen (on failure: what was wrong)."""

    id: str
    outcome: Outcome
    evidence: list[str] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        spec = CASES[self.id]
        return {
            "id": self.id, "group": spec.group, "title": spec.title, "refs": list(spec.refs),
            "outcome": self.outcome.value, "evidence": self.evidence, "metrics": self.metrics,
        }  # fmt: skip


def judged(case_id: str, failures: list[str], passed: str, **metrics: Any) -> CaseResult:
    """Pass with ``passed`` as evidence when there are no ``failures``, else fail with them."""
    if failures:
        shown = failures[:20] + ([f"... and {len(failures) - 20} more"] if len(failures) > 20 else [])
        return CaseResult(case_id, Outcome.FAIL, shown, metrics)
    return CaseResult(case_id, Outcome.PASS, [passed], metrics)


def not_applicable(case_id: str, why: str) -> CaseResult:
    return CaseResult(case_id, Outcome.NOT_APPLICABLE, [why])


MIB = "NTCIP 1209 v02 MIB"
_SPECS: tuple[CaseSpec, ...] = (
    CaseSpec("TSS-ID-1", "protocol", "Device identity readable (sysDescr, sysObjectID, sysName)",
             ("RFC 3418 system group",)),
    CaseSpec("TSS-OBJ-1", "protocol", "Mandatory sensor-zone and sample objects present for every zone",
             (f"{MIB} 1.2.4 maxSensorZones", f"{MIB} 1.2.5 sensorZoneTable",
              f"{MIB} 1.4.3 zone class table", f"{MIB} 1.4.4 sampleDataTable")),
    CaseSpec("TSS-OBJ-2", "protocol", "Objects have the MIB's types (INTEGER, Counter, OCTET STRING)",
             (f"{MIB} SYNTAX clauses of 1.2.4-1.2.5, 1.4.3-1.4.4",)),
    CaseSpec("TSS-OBJ-3", "protocol", "Values within the MIB's ranges and enumerations",
             (f"{MIB} SYNTAX ranges, e.g. 1.4.4.5 samplePercentOccupancy (0..1000 | 65535)",)),
    CaseSpec("TSS-TBL-1", "protocol", "Zone table rows are 1..maxSensorZones, each numbered as indexed",
             (f"{MIB} 1.2.4 maxSensorZones", f"{MIB} 1.2.5.1 sensorZoneNumber")),
    CaseSpec("TSS-TBL-2", "protocol",
             "Sample rows consistent: same sequence and end time across zones, entry 3 the period "
             "before entry 2",
             (f"{MIB} 1.4.4.8 sampleSequenceNumber (same period, same sequence)",
              f"{MIB} 1.4.1 / 1.4.2 (entry 2: last completed period, entry 3: the one before)")),
    CaseSpec("TSS-TBL-3", "protocol",
             "Each completed period advances the sequence by 1 and the end time by the sample period",
             (f"{MIB} 1.2.5.4 sensorZoneSamplePeriod", f"{MIB} 1.4.4.3 sampleEndTime",
              f"{MIB} 1.4.4.8 sampleSequenceNumber")),
    CaseSpec("TSS-COM-1", "protocol",
             "A period whose poll was lost (communication loss) is still in the buffer (entry 3)",
             (f"{MIB} 1.4.2 data buffer: the second most recent period (sampleEntryNum 3)",
              f"{MIB} 1.4.3.1 numSampleDataEntries")),
    CaseSpec("TSS-STS-1", "protocol",
             "A period whose zone status is not oK reports missing data (65535)",
             (f"{MIB} 1.4.1.2 volumeData / 1.4.4.4 sampleVolumeData: missing unless status oK",
              f"{MIB} 1.2.5.14 sensorZoneStatus, 1.4.4.7 sampleZoneStatus")),
    CaseSpec("TSS-SET-1", "protocol", "SET of a read-only object refused with notWritable",
             ("RFC 3416 4.2.5", f"{MIB} 1.4.4.4 sampleVolumeData ACCESS read-only")),
    CaseSpec("TSS-SET-2", "protocol", "SET with the read-only community refused with noAccess",
             ("RFC 3416 4.2.5", "RFC 3584 community-based access")),
    CaseSpec("TSS-SET-3", "protocol", "SET with the wrong ASN.1 type refused with wrongType",
             ("RFC 3416 4.2.5", f"{MIB} 1.2.5.4 sensorZoneSamplePeriod INTEGER")),
    CaseSpec("TSS-SET-4", "protocol", "SET out of range refused with wrongValue",
             ("RFC 3416 4.2.5", f"{MIB} 1.2.5.4 sensorZoneSamplePeriod (0..65535)")),
    CaseSpec("TSS-SET-5", "protocol", "SET of a zone that does not exist refused with noCreation",
             ("RFC 3416 4.2.5", f"{MIB} 1.2.4 maxSensorZones")),
    CaseSpec("TSS-SET-6", "protocol", "A valid SET accepted, echoed and read back",
             ("RFC 3416 4.2.5", f"{MIB} 1.2.5.4 sensorZoneSamplePeriod ACCESS read-write")),
    CaseSpec("TSS-TIM-1", "protocol", "GET answered within the plan's 95th-percentile response time",
             ("plan thresholds.response_p95_ms",)),
    CaseSpec("TSS-PWR-1", "protocol",
             "After a power cycle the station answers again, its sysUpTime restarted and the "
             "sample period a manager set kept",
             ("RFC 3418 sysUpTime (time since the last re-initialization)",
              f"{MIB} 1.2.5.4 sensorZoneSamplePeriod (a configuration parameter)",
              "ccsim procedure: set configuration survives a power cycle")),
    CaseSpec("ACC-VOL-1", "accuracy", "Per-lane volume error over the run within the threshold",
             ("CDOT practice: +-10 % per lane over 50 vehicles or 10 min",
              "Virginia DOT acceptance framework: 5 %")),
    CaseSpec("ACC-VOL-2", "accuracy",
             "Per-lane volume error within the threshold in blocks of N vehicles or T minutes",
             ("CDOT practice: +-10 % per lane over 50 vehicles or 10 min",
              "plan thresholds.block_pass_share")),
    CaseSpec("ACC-OCC-1", "accuracy", "Per-lane mean absolute occupancy error within the threshold",
             ("plan thresholds.occupancy_error_points",)),
    CaseSpec("ACC-SPD-1", "accuracy", "Per-lane mean speed error within the threshold",
             (f"{MIB} 1.4.4.6 sampleSpeedData (mean of the period's speeds, 0.1 km/h)",
              "plan thresholds.speed_error_kmh")),
    CaseSpec("ACC-PRS-1", "accuracy", "Missed presence calls (occupancies without a call) within "
             "the threshold", (f"{MIB} 1.3.4.2 outputGroupOutputState (presence outputs)",
                               "plan thresholds.presence_miss_pct")),
    CaseSpec("ACC-PRS-2", "accuracy", "False presence calls per empty zone-hour within the threshold",
             (f"{MIB} 1.3.4.2 outputGroupOutputState (presence outputs)",
              "plan thresholds.false_presence_per_h")),
    CaseSpec("ACC-LAT-1", "accuracy", "95th percentile delay of presence calls after the vehicle "
             "within the threshold", (f"{MIB} 1.3.4.2 outputGroupOutputState",
                                      "plan thresholds.latency_p95_s")),
)  # fmt: skip
TTS = "The Things Stack v3 docs"
CS = "ChirpStack v4 docs"
LW = "LoRaWAN L2 1.0.4 (TS001-1.0.4)"
DEVREPO = "vendor codec, TheThingsNetwork/lorawan-devices (vendor/<brand>/<model>.js)"
_LORAWAN = (
    CaseSpec("LORA-TOP-1", "protocol",
             "Every message is on the declared network server's uplink topic",
             (f"{TTS}: MQTT Server, topic v3/{{application id}}@{{tenant id}}/devices/{{device id}}/up",
              f"{CS}: MQTT integration, topic "
              "application/{application_id}/device/{dev_eui}/event/up"),
             "lorawan"),
    CaseSpec("LORA-JSON-1", "protocol",
             "Every message is the server's uplink event JSON, its device the topic's",
             (f"{TTS}: Data Formats, uplink_message (end_device_ids, f_port, f_cnt, frm_payload, "
              "received_at)", f"{CS}: integration.proto UplinkEvent (deviceInfo, fPort, fCnt, data, "
              "time), protobuf JSON mapping"), "lorawan"),
    CaseSpec("LORA-ID-1", "protocol",
             "Every uplink from a registered device, of the plan's model where the server names it",
             (f"{TTS}: end_device_ids.dev_eui, uplink_message.version_ids",
              "ccsim device registry (device_id, dev_eui, model, zone, bay)"), "lorawan"),
    CaseSpec("LORA-FCNT-1", "protocol", "Frame counters rise per device (gaps allowed and counted)",
             (f"{LW} 4.3.1.5 Frame counter (FCnt): FCntUp incremented with each uplink",),
             "lorawan"),
    CaseSpec("LORA-FCNT-2", "protocol", "No frame counter delivered twice (the server deduplicates)",
             (f"{LW} 4.3.1.5 Frame counter (FCnt)",
              f"{TTS}: Network Server deduplication of uplinks heard by several gateways",
              f"{CS}: uplink deduplication (deduplication_delay)"), "lorawan"),
    CaseSpec("LORA-COD-1", "protocol",
             "Every payload a frame the vendor's codec documents (f_port, length)",
             (DEVREPO, "the model's codec YAML: uplinkDecoder examples"), "lorawan"),
    CaseSpec("LORA-COD-2", "protocol",
             "The server's decoded payload equals the vendor codec's output for the bytes",
             (DEVREPO, f"{TTS}: uplink_message.decoded_payload (payload formatters)",
              f"{CS}: UplinkEvent.object (codec)"), "lorawan"),
    CaseSpec("LORA-HB-1", "protocol",
             "Heartbeats at the declared period (+-10 %), no device silent for longer",
             ("vendor datasheet heartbeat (Nwave NPS405 hourly, Bosch TPS110 and Dingtek DO201 "
              "daily by default)", "plan device.heartbeat_s"), "lorawan"),
    CaseSpec("ACC-PRK-1", "accuracy",
             "Parking state right for at least the threshold's share of bay-time",
             ("parking state accuracy >= 98 % (ccsim preset)",), "lorawan"),
    CaseSpec("ACC-PRK-2", "accuracy",
             "Bay state changes detected (within the window) at the threshold's rate",
             ("plan thresholds.change_detection_pct",), "lorawan"),
    CaseSpec("ACC-PRK-3", "accuracy", "False occupancies per free bay-hour within the threshold",
             ("plan thresholds.false_per_bay_h",), "lorawan"),
    CaseSpec("ACC-PRK-4", "accuracy", "95th percentile latency of state changes within the threshold",
             ("plan thresholds.change_latency_p95_s",), "lorawan"),
)  # fmt: skip
ASC = "NTCIP 1202 v03"
_CONTROLLER = (
    CaseSpec("ASC-ID-1", "protocol", "Device identity readable (sysDescr, sysObjectID, sysName)",
             ("RFC 3418 system group",), "ntcip1202"),
    CaseSpec("ASC-OBJ-1", "protocol",
             "Required phase, phase status, phase control, unit and coordination objects present",
             (f"{ASC} phase node (asc 1): maxPhases 1.1, phaseTable 1.2, maxPhaseGroups 1.3, "
              "phaseStatusGroupTable 1.4, phaseControlGroupTable 1.5",
              f"{ASC} unitControlStatus (asc 3.5), unitFlashStatus (3.6), coordPatternStatus "
              "(4.10), systemPatternControl (4.14)", "NTCIP 8007 (test procedure structure)"),
             "ntcip1202"),
    CaseSpec("ASC-OBJ-2", "protocol", "Objects have the standard's type (INTEGER)",
             (f"{ASC} SYNTAX of the phase, unit and coordination objects (INTEGER)",), "ntcip1202"),
    CaseSpec("ASC-OBJ-3", "protocol", "Values within the standard's ranges",
             (f"{ASC} SYNTAX ranges, e.g. maxPhases (1..255), unitControlStatus (1..8)",),
             "ntcip1202"),
    CaseSpec("ASC-TBL-1", "protocol", "Phase table rows are 1..maxPhases, each numbered as indexed",
             (f"{ASC} maxPhases (asc 1.1)", f"{ASC} phaseNumber (asc 1.2.1.1)"), "ntcip1202"),
    CaseSpec("ASC-TBL-2", "protocol",
             "Phase status and phase control groups: maxPhaseGroups = (maxPhases + 7) / 8 rows, "
             "each numbered as indexed",
             (f"{ASC} maxPhaseGroups (asc 1.3): TRUNCATE [(maxPhases + 7) / 8]",
              f"{ASC} phaseStatusGroupNumber (asc 1.4.1.1), phaseControlGroupNumber (1.5.1.1)"),
             "ntcip1202"),
    CaseSpec("ASC-TBL-3", "protocol",
             "Every poll: each enabled phase in exactly one of Reds / Yellows / Greens, no bit "
             "beyond maxPhases",
             (f"{ASC} phaseStatusGroupReds / Yellows / Greens (asc 1.4.1.2-4)",
              f"{ASC} phaseOptions bit 0 (enabled phase, asc 1.2.1.21)"), "ntcip1202"),
    CaseSpec("ASC-SET-1", "protocol",
             "Valid SETs of the phase control groups and systemPatternControl accepted, echoed "
             "and read back",
             ("RFC 3416 4.2.5", f"{ASC} phaseControlGroupHold / PhaseOmit / VehCall (asc 1.5.1.2-7) "
              "and systemPatternControl (4.14) ACCESS read-write"), "ntcip1202"),
    CaseSpec("ASC-SET-2", "protocol",
             "SET of a read-only object refused: notWritable (v2c), noSuchName (v1)",
             ("RFC 3416 4.2.5", "RFC 3584 (v2c to v1 error status mapping)",
              f"{ASC} phaseStatusGroupGreens ACCESS read-only"), "ntcip1202"),
    CaseSpec("ASC-SET-3", "protocol",
             "SET out of range refused: wrongValue (v2c), badValue (v1)",
             ("RFC 3416 4.2.5", "RFC 3584 (v1 mapping)", f"{ASC} phaseControlGroupHold (0..255)"),
             "ntcip1202"),
    CaseSpec("ASC-SET-4", "protocol", "SET with the wrong ASN.1 type refused: wrongType (v2c), "
             "badValue (v1)",
             ("RFC 3416 4.2.5", "RFC 3584 (v1 mapping)", f"{ASC} phaseControlGroupVehCall INTEGER"),
             "ntcip1202"),
    CaseSpec("ASC-SET-5", "protocol",
             "SET of a phase group that does not exist refused: noCreation (v2c), noSuchName (v1)",
             ("RFC 3416 4.2.5", "RFC 3584 (v1 mapping)", f"{ASC} maxPhaseGroups (asc 1.3)"),
             "ntcip1202"),
    CaseSpec("ASC-SET-6", "protocol",
             "SET with the read-only community refused: noAccess (v2c), noSuchName (v1)",
             ("RFC 3416 4.2.5", "RFC 3584 community-based access"), "ntcip1202"),
    CaseSpec("ASC-TIM-1", "protocol",
             "GET of the phase status answered within the plan's 95th-percentile response time",
             ("plan thresholds.response_p95_ms",), "ntcip1202"),
    CaseSpec("ACC-PHS-1", "accuracy",
             "Phase colours reported agree with what the intersection shows, for at least the "
             "threshold's share of polls",
             (f"{ASC} phaseStatusGroupReds / Yellows / Greens", "plan thresholds.status_agreement_pct",
              "ground truth: the simulated intersection's signal state each step"), "ntcip1202"),
    CaseSpec("ACC-PHS-2", "accuracy",
             "Colour changes reported within the threshold's 95th-percentile latency",
             ("plan thresholds.status_latency_p95_s",), "ntcip1202"),
    CaseSpec("ACC-CMD-1", "accuracy",
             "A hold set by phaseControlGroupHold keeps its phase green until released",
             (f"{ASC} phaseControlGroupHold (asc 1.5.1.4)", "plan thresholds.command_settle_s"),
             "ntcip1202"),
    CaseSpec("ACC-CMD-2", "accuracy",
             "A phase omitted by phaseControlGroupPhaseOmit is not served while omitted",
             (f"{ASC} phaseControlGroupPhaseOmit (asc 1.5.1.2)", "plan thresholds.command_settle_s"),
             "ntcip1202"),
    CaseSpec("ACC-CMD-3", "accuracy",
             "A vehicle call set by phaseControlGroupVehCall is shown in phaseStatusGroupVehCalls "
             "and its phase served",
             (f"{ASC} phaseControlGroupVehCall (asc 1.5.1.6)",
              f"{ASC} phaseStatusGroupVehCalls (asc 1.4.1.8)"), "ntcip1202"),
)  # fmt: skip
_SPECS = _SPECS + _LORAWAN + _CONTROLLER
CASES: dict[str, CaseSpec] = {spec.id: spec for spec in _SPECS}
KINDS = ("ntcip1209", "lorawan", "ntcip1202")


def selected(include: list[str], exclude: list[str], kind: str = "ntcip1209") -> list[str]:
    """The case ids a plan for a device of ``kind`` runs, in catalogue order."""

    def named(items: list[str], spec: CaseSpec) -> bool:
        return spec.id in items or spec.group in items

    return [s.id for s in _SPECS if s.kind == kind and named(include, s) and not named(exclude, s)]
