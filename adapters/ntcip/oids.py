"""The NTCIP objects ccsim's agents serve: one table, the only place an OID is written down.

NTCIP 1202 v03 (actuated signal controllers) is not published as a MIB file, so its OIDs come
from the standard's object tree as open-source NTCIP implementations use it; every row below
was checked against two of them:

* IRIS (Minnesota DOT, GPL-2.0-or-later), ``src/us/mn/state/dot/tms/server/comm/ntcip/mib1202/
  MIB1202.java``: the phase and detector nodes (``tests/adapters/data/iris_mib1202.txt`` holds
  that list, and a test compares this table with it);
* MMITSS (University of Arizona, Apache-2.0), ``src/mrp/traffic-controller-interface/
  StandardMib.py``: the phase control group;
* for the unit and coordination scalars (not in either), an NTCIP 1202 v02 object listing
  (``1202v0218.mib``: unitControlStatus ...3.5, unitFlashStatus ...3.6, coordPatternStatus
  ...4.10, systemPatternControl ...4.14).

NTCIP 1209 v02 (transportation sensor systems) is published by ITE; its objects come from the
compiled MIB in :mod:`adapters.ntcip.mib1209` (with the MIB's licence notice).

Values follow NTCIP conventions: a *group* packs 8 phases (or detectors) into one INTEGER bitmap,
phase 1 of group 1 in bit 0; group ``g`` covers numbers ``8(g-1)+1 .. 8g``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import Enum
from functools import cache
from importlib import resources

OID = tuple[int, ...]

ASC: OID = (1, 3, 6, 1, 4, 1, 1206, 4, 2, 1)
"""nema(1206).transportation(4).devices(2).asc(1): NTCIP 1202."""
TSS: OID = (1, 3, 6, 1, 4, 1, 1206, 4, 2, 4)
"""nema(1206).transportation(4).devices(2).tss(4): NTCIP 1209."""
SYSTEM: OID = (1, 3, 6, 1, 2, 1, 1)
"""MIB-II system group (RFC 1213)."""
SNMP_GROUP: OID = (1, 3, 6, 1, 2, 1, 11)
"""MIB-II snmp group: the agent's protocol counters (RFC 3418)."""


class Syntax(Enum):
    INTEGER = "INTEGER"
    OCTETS = "OCTET STRING"
    COUNTER = "Counter32"
    TICKS = "TimeTicks"
    OID = "OBJECT IDENTIFIER"


class Access(Enum):
    READ_ONLY = "read-only"
    READ_WRITE = "read-write"


class Shape(Enum):
    SCALAR = "scalar"
    COLUMN = "column"


@dataclass(frozen=True)
class ObjectType:
    """One object: its name, OID (without instance), syntax, access and value range."""

    name: str
    oid: OID
    syntax: Syntax
    access: Access
    shape: Shape
    low: int = 0
    high: int = 255

    def instance(self, *index: int) -> OID:
        """The OID of a scalar (``.0``) or of one table row (``.index``)."""
        return (*self.oid, 0) if self.shape is Shape.SCALAR else (*self.oid, *index)


def _rel(text: str) -> OID:
    return tuple(int(part) for part in text.split("."))


_RO, _RW = Access.READ_ONLY, Access.READ_WRITE
_SC, _COL = Shape.SCALAR, Shape.COLUMN

# name, OID below asc (1.3.6.1.4.1.1206.4.2.1), shape, access, low, high
_TABLE_1202: tuple[tuple[str, str, Shape, Access, int, int], ...] = (
    # phase(1)
    ("maxPhases", "1.1", _SC, _RO, 1, 255),
    ("phaseNumber", "1.2.1.1", _COL, _RO, 1, 255),
    ("phaseWalk", "1.2.1.2", _COL, _RO, 0, 255),
    ("phasePedestrianClear", "1.2.1.3", _COL, _RO, 0, 255),
    ("phaseMinimumGreen", "1.2.1.4", _COL, _RO, 0, 255),
    ("phaseYellowChange", "1.2.1.8", _COL, _RO, 0, 255),
    ("phaseRedClear", "1.2.1.9", _COL, _RO, 0, 255),
    ("phaseOptions", "1.2.1.21", _COL, _RO, 0, 65535),
    ("phaseRing", "1.2.1.22", _COL, _RO, 0, 255),
    ("maxPhaseGroups", "1.3", _SC, _RO, 1, 255),
    ("phaseStatusGroupNumber", "1.4.1.1", _COL, _RO, 1, 255),
    ("phaseStatusGroupReds", "1.4.1.2", _COL, _RO, 0, 255),
    ("phaseStatusGroupYellows", "1.4.1.3", _COL, _RO, 0, 255),
    ("phaseStatusGroupGreens", "1.4.1.4", _COL, _RO, 0, 255),
    ("phaseStatusGroupDontWalks", "1.4.1.5", _COL, _RO, 0, 255),
    ("phaseStatusGroupPedClears", "1.4.1.6", _COL, _RO, 0, 255),
    ("phaseStatusGroupWalks", "1.4.1.7", _COL, _RO, 0, 255),
    ("phaseStatusGroupVehCalls", "1.4.1.8", _COL, _RO, 0, 255),
    ("phaseStatusGroupPedCalls", "1.4.1.9", _COL, _RO, 0, 255),
    ("phaseStatusGroupPhaseOns", "1.4.1.10", _COL, _RO, 0, 255),
    ("phaseStatusGroupPhaseNexts", "1.4.1.11", _COL, _RO, 0, 255),
    ("phaseControlGroupNumber", "1.5.1.1", _COL, _RO, 1, 255),
    ("phaseControlGroupPhaseOmit", "1.5.1.2", _COL, _RW, 0, 255),
    ("phaseControlGroupPedOmit", "1.5.1.3", _COL, _RW, 0, 255),
    ("phaseControlGroupHold", "1.5.1.4", _COL, _RW, 0, 255),
    ("phaseControlGroupForceOff", "1.5.1.5", _COL, _RW, 0, 255),
    ("phaseControlGroupVehCall", "1.5.1.6", _COL, _RW, 0, 255),
    ("phaseControlGroupPedCall", "1.5.1.7", _COL, _RW, 0, 255),
    # detector(2)
    ("maxVehicleDetectors", "2.1", _SC, _RO, 1, 255),
    ("vehicleDetectorNumber", "2.2.1.1", _COL, _RO, 1, 255),
    ("vehicleDetectorCallPhase", "2.2.1.4", _COL, _RO, 0, 255),
    ("vehicleDetectorAlarms", "2.2.1.13", _COL, _RO, 0, 255),
    ("maxVehicleDetectorStatusGroups", "2.3", _SC, _RO, 1, 255),
    ("vehicleDetectorStatusGroupNumber", "2.4.1.1", _COL, _RO, 1, 255),
    ("vehicleDetectorStatusGroupActive", "2.4.1.2", _COL, _RO, 0, 255),
    ("vehicleDetectorStatusGroupAlarms", "2.4.1.3", _COL, _RO, 0, 255),
    ("volumeOccupancySequence", "2.5.1", _SC, _RO, 0, 255),
    ("volumeOccupancyPeriod", "2.5.2", _SC, _RO, 0, 255),
    ("activeVolumeOccupancyDetectors", "2.5.3", _SC, _RO, 0, 255),
    ("detectorVolume", "2.5.4.1.1", _COL, _RO, 0, 255),
    ("detectorOccupancy", "2.5.4.1.2", _COL, _RO, 0, 255),
    # unit(3)
    ("unitControlStatus", "3.5", _SC, _RO, 1, 8),
    ("unitFlashStatus", "3.6", _SC, _RO, 1, 8),
    # coord(4)
    ("coordPatternStatus", "4.10", _SC, _RO, 0, 255),
    ("systemPatternControl", "4.14", _SC, _RW, 0, 255),
)

OBJECTS_1202: dict[str, ObjectType] = {
    name: ObjectType(name, (*ASC, *_rel(rel)), Syntax.INTEGER, access, shape, low, high)
    for name, rel, shape, access, low, high in _TABLE_1202
}

# The few standard objects every SNMP agent has, so generic managers recognise the device.
OBJECTS_MIB2: dict[str, ObjectType] = {
    "sysDescr": ObjectType("sysDescr", (*SYSTEM, 1), Syntax.OCTETS, _RO, _SC, 0, 255),
    "sysObjectID": ObjectType("sysObjectID", (*SYSTEM, 2), Syntax.OID, _RO, _SC),
    "sysUpTime": ObjectType("sysUpTime", (*SYSTEM, 3), Syntax.TICKS, _RO, _SC, 0, 2**32 - 1),
    "sysName": ObjectType("sysName", (*SYSTEM, 5), Syntax.OCTETS, _RO, _SC, 0, 255),
    **{
        name: ObjectType(name, (*SNMP_GROUP, n), Syntax.COUNTER, _RO, _SC, 0, 2**32 - 1)
        for name, n in (
            ("snmpInPkts", 1),
            ("snmpOutPkts", 2),
            ("snmpInBadVersions", 3),
            ("snmpInBadCommunityNames", 4),
            ("snmpInBadCommunityUses", 5),
            ("snmpInASNParseErrs", 6),
            ("snmpInTooBigs", 8),
            ("snmpInNoSuchNames", 9),
            ("snmpInBadValues", 10),
            ("snmpInReadOnlys", 11),
            ("snmpInGenErrs", 12),
            ("snmpInTotalReqVars", 13),
            ("snmpInTotalSetVars", 14),
            ("snmpOutTooBigs", 20),
            ("snmpOutNoSuchNames", 21),
            ("snmpOutBadValues", 22),
            ("snmpOutGenErrs", 24),
        )
    },
}

# The NTCIP 1209 objects served, by their names in the compiled MIB.
_SERVED_1209 = (
    "maxSensorZones", "sensorZoneNumber", "sensorZoneLabel", "sensorZoneStatus",
    "sensorZoneSamplePeriod", "numSampleDataEntries", "numSensorZoneClass", "sampleEndTime",
    "sampleVolumeData", "samplePercentOccupancy", "sampleSpeedData", "sampleZoneStatus",
    "sampleSequenceNumber",
    # presence outputs (1.3): output n's zone, and the outputs' states in groups of eight
    "maxOutputNumber", "outputSensorZoneNumber", "maxOutputGroups", "outputGroupNumber",
    "outputGroupOutputState",
)  # fmt: skip

_SYNTAX_1209 = {
    "INTEGER": Syntax.INTEGER,
    "Counter": Syntax.COUNTER,
    "OCTET STRING": Syntax.OCTETS,
    "BITMAP8": Syntax.OCTETS,  # NTCIP 8004: an OCTET STRING (SIZE (1))
}


@cache
def mib_1209() -> dict[str, dict[str, object]]:
    """The compiled NTCIP 1209 v02 MIB (pysmi's JSON), name -> definition."""
    text = resources.files("adapters.ntcip.mib1209").joinpath("NTCIP1209v02-MIB1.json").read_text()
    loaded: dict[str, dict[str, object]] = json.loads(text)
    return loaded


@cache
def objects_1209() -> dict[str, ObjectType]:
    """The NTCIP 1209 objects the agents serve, from the compiled MIB."""
    mib = mib_1209()
    served = {}
    for name in _SERVED_1209:
        node = mib[name]
        syntax = node["syntax"]
        assert isinstance(syntax, dict)
        kind = _SYNTAX_1209[str(syntax["type"])]
        low, high = _range(syntax)
        served[name] = ObjectType(
            name,
            _rel(str(node["oid"])),
            kind,
            Access.READ_ONLY,  # served read-only: the zones' set-up is the scenario's
            Shape.COLUMN if node["nodetype"] == "column" else Shape.SCALAR,
            low,
            high,
        )
    return served


def _range(syntax: dict[str, object]) -> tuple[int, int]:
    constraints = syntax.get("constraints")
    if isinstance(constraints, dict):
        ranges = constraints.get("range") or constraints.get("size")
        if isinstance(ranges, list) and ranges:
            return min(int(r["min"]) for r in ranges), max(int(r["max"]) for r in ranges)
        values = constraints.get("enumeration")
        if isinstance(values, dict) and values:
            return min(int(v) for v in values.values()), max(int(v) for v in values.values())
    return 0, 2**32 - 1


def all_objects() -> dict[str, ObjectType]:
    """Every object an agent may serve, by name."""
    return {**OBJECTS_MIB2, **OBJECTS_1202, **objects_1209()}
