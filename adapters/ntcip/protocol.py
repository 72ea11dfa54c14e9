"""The SNMP command responder, sans I/O: request bytes in, response bytes out.

:class:`Responder` decodes an SNMPv1 / SNMPv2c message (pysnmp's BER codec), checks the
community, answers GET, GET-NEXT and GET-BULK from a :class:`MibView` and validates SET
requests, which it hands back as a :class:`PendingSet` for the caller to decide (the control
center sends them through the operators' command path); :meth:`Responder.complete` turns the
decision into the response. Nothing here touches a socket or a clock, so the whole request path
is tested - and fuzzed - without a network.

Errors, as RFC 3416 (v2c) and RFC 1157 (v1, with RFC 3584's mapping) have them:

=========================================  ==================  =============
case                                       v2c                 v1
=========================================  ==================  =============
GET of an unknown object / instance        noSuchObject /      noSuchName
                                           noSuchInstance
GET-NEXT past the end                      endOfMibView        noSuchName
SET with the read community                noAccess            noSuchName
SET of an object that does not exist       noCreation          noSuchName
SET of a read-only object                  notWritable         noSuchName
SET with the wrong ASN.1 type              wrongType           badValue
SET out of the object's range              wrongValue          badValue
SET refused (safety guard, no such phase)  inconsistentValue   badValue
too many variables, or an answer too big   tooBig              tooBig
=========================================  ==================  =============

Messages that cannot be answered are dropped and counted, as agents do: malformed BER
(``snmpInASNParseErrs``), an unknown community (``snmpInBadCommunityNames``), another SNMP
version (``snmpInBadVersions``), a datagram above ``MAX_DATAGRAM`` bytes.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

from pyasn1.codec.ber import decoder, encoder
from pysnmp.proto.api import v1, v2c

from adapters.ntcip.model import MibEntries, Value
from adapters.ntcip.oids import OID, Access, ObjectType, Shape, Syntax

MAX_DATAGRAM = 8192
"""Larger requests are dropped unread (an NTCIP manager's requests are a few hundred bytes)."""
MAX_RESPONSE = 8192
"""Answers above this many bytes become tooBig (GET-BULK stops short of it instead)."""
MAX_VARBINDS = 128
"""Requests naming more variables get tooBig."""


class ErrorStatus(IntEnum):
    NO_ERROR = 0
    TOO_BIG = 1
    NO_SUCH_NAME = 2
    BAD_VALUE = 3
    READ_ONLY = 4
    GEN_ERR = 5
    NO_ACCESS = 6
    WRONG_TYPE = 7
    WRONG_VALUE = 10
    NO_CREATION = 11
    INCONSISTENT_VALUE = 12
    NOT_WRITABLE = 17


_V1_EQUIVALENT = {
    ErrorStatus.NO_ACCESS: ErrorStatus.NO_SUCH_NAME,
    ErrorStatus.NO_CREATION: ErrorStatus.NO_SUCH_NAME,
    ErrorStatus.NOT_WRITABLE: ErrorStatus.NO_SUCH_NAME,
    ErrorStatus.WRONG_TYPE: ErrorStatus.BAD_VALUE,
    ErrorStatus.WRONG_VALUE: ErrorStatus.BAD_VALUE,
    ErrorStatus.INCONSISTENT_VALUE: ErrorStatus.BAD_VALUE,
}


@dataclass
class Counters:
    """The agent's protocol counters (served as MIB-II's snmp group)."""

    snmpInPkts: int = 0  # the MIB-II names, so they map one to one
    snmpOutPkts: int = 0
    snmpInBadVersions: int = 0
    snmpInBadCommunityNames: int = 0
    snmpInBadCommunityUses: int = 0
    snmpInASNParseErrs: int = 0
    snmpInTooBigs: int = 0
    snmpInNoSuchNames: int = 0
    snmpInBadValues: int = 0
    snmpInReadOnlys: int = 0
    snmpInGenErrs: int = 0
    snmpInTotalReqVars: int = 0
    snmpInTotalSetVars: int = 0
    snmpOutTooBigs: int = 0
    snmpOutNoSuchNames: int = 0
    snmpOutBadValues: int = 0
    snmpOutGenErrs: int = 0
    oversized: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    """Error responses sent, by error status name."""
    sets_accepted: int = 0
    sets_refused: int = 0

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class MibView:
    """An agent's instances at one moment, in OID order."""

    def __init__(self, entries: MibEntries) -> None:
        self.entries = entries
        self.oids = sorted(entries)

    def get(self, oid: OID) -> tuple[Syntax, Value] | None:
        return self.entries.get(oid)

    def next(self, oid: OID) -> OID | None:
        """The first instance after ``oid`` (lexicographic order), or None at the end."""
        i = bisect.bisect_right(self.oids, oid)
        return self.oids[i] if i < len(self.oids) else None


@dataclass(frozen=True)
class Communities:
    """``read`` communities may read; ``write`` communities may also set (none: read-only agent)."""

    read: frozenset[bytes] = frozenset({b"public"})
    write: frozenset[bytes] = frozenset()


@dataclass(frozen=True)
class Write:
    """One validated variable of a SET: which object, which instance, the new value."""

    object: ObjectType
    oid: OID
    value: int

    @property
    def index(self) -> tuple[int, ...]:
        return self.oid[len(self.object.oid) :]


@dataclass(frozen=True)
class Verdict:
    """What became of one SET: accepted (or queued), or refused and why."""

    accepted: bool
    detail: str = ""


@dataclass
class PendingSet:
    """A SET whose every variable is valid, waiting for the caller's decision."""

    writes: tuple[Write, ...]
    community: bytes
    _message: Any
    _module: Any


class Responder:
    """See the module docstring. ``view`` gives the instances as they are now (called once per
    request); ``objects`` are the object types the agent knows, for SET checks and for telling
    noSuchObject from noSuchInstance."""

    def __init__(
        self,
        view: Callable[[], MibView],
        objects: Mapping[str, ObjectType],
        communities: Communities | None = None,
        counters: Counters | None = None,
    ) -> None:
        self.view = view
        self.communities = communities or Communities()
        self.counters = counters or Counters()
        self._objects = {obj.oid: obj for obj in objects.values()}
        self._depths = sorted({len(o) for o in self._objects}, reverse=True)

    # --- the request path ------------------------------------------------------------------------

    def receive(self, data: bytes) -> bytes | PendingSet | None:
        """Answer one datagram: response bytes, a SET to decide, or None (dropped)."""
        c = self.counters
        c.snmpInPkts += 1
        if len(data) > MAX_DATAGRAM:
            c.oversized += 1
            return None
        decoded = self._decode(data)
        if decoded is None:
            return None
        module, message = decoded
        community = bytes(module.apiMessage.get_community(message))
        if community not in self.communities.read and community not in self.communities.write:
            c.snmpInBadCommunityNames += 1
            return None
        pdu = module.apiMessage.get_pdu(message)
        try:
            varbinds = [(tuple(oid), value) for oid, value in module.apiPDU.get_varbinds(pdu)]
        except Exception:  # a PDU the decoder let through but whose varbinds are unusable
            c.snmpInASNParseErrs += 1
            return None
        if len(varbinds) > MAX_VARBINDS:
            c.snmpInTooBigs += 1
            return self._error(module, message, [], ErrorStatus.TOO_BIG, 0)
        tag = pdu.tagSet
        if tag == module.SetRequestPDU.tagSet:
            c.snmpInTotalSetVars += len(varbinds)
            return self._set(module, message, community, varbinds)
        c.snmpInTotalReqVars += len(varbinds)
        view = self.view()
        if tag == module.GetRequestPDU.tagSet:
            return self._get(module, message, view, varbinds)
        if tag == module.GetNextRequestPDU.tagSet:
            return self._get_next(module, message, view, varbinds)
        if module is v2c and tag == v2c.GetBulkRequestPDU.tagSet:
            return self._get_bulk(message, view, varbinds)
        c.snmpInASNParseErrs += 1  # a response, a trap...: nothing an agent answers
        return None

    def complete(self, pending: PendingSet, verdicts: Sequence[Verdict]) -> bytes:
        """The response to a SET once the caller has decided each of its writes."""
        module, message = pending._module, pending._message
        request = [(w.oid, _encode(module, w.object.syntax, w.value)) for w in pending.writes]
        for i, verdict in enumerate(verdicts, start=1):
            if not verdict.accepted:
                self.counters.sets_refused += 1
                return self._error(module, message, request, ErrorStatus.INCONSISTENT_VALUE, i)
        self.counters.sets_accepted += 1
        return self._respond(module, message, request)

    def _decode(self, data: bytes) -> tuple[Any, Any] | None:
        c = self.counters
        try:
            version = int(_message_version(data))
        except Exception:
            c.snmpInASNParseErrs += 1
            return None
        module = {0: v1, 1: v2c}.get(version)
        if module is None:
            c.snmpInBadVersions += 1
            return None
        try:
            message, rest = decoder.decode(data, asn1Spec=module.Message())
        except Exception:
            c.snmpInASNParseErrs += 1
            return None
        if rest:
            c.snmpInASNParseErrs += 1
            return None
        return module, message

    # --- reads ----------------------------------------------------------------------------------

    def _get(self, module: Any, message: Any, view: MibView, varbinds: list[tuple[OID, Any]]) -> bytes:
        answer = []
        for i, (oid, _) in enumerate(varbinds, start=1):
            found = view.get(oid)
            if found is not None:
                answer.append((oid, _encode(module, *found)))
            elif module is v1:
                return self._error(module, message, varbinds, ErrorStatus.NO_SUCH_NAME, i)
            elif self._object_of(oid) is not None:
                answer.append((oid, v2c.NoSuchInstance("")))
            else:
                answer.append((oid, v2c.NoSuchObject("")))
        return self._respond(module, message, answer)

    def _get_next(
        self, module: Any, message: Any, view: MibView, varbinds: list[tuple[OID, Any]]
    ) -> bytes:
        answer = []
        for i, (oid, _) in enumerate(varbinds, start=1):
            following = view.next(oid)
            if following is not None:
                answer.append((following, _encode(module, *view.entries[following])))
            elif module is v1:
                return self._error(module, message, varbinds, ErrorStatus.NO_SUCH_NAME, i)
            else:
                answer.append((oid, v2c.EndOfMibView("")))
        return self._respond(module, message, answer)

    def _get_bulk(self, message: Any, view: MibView, varbinds: list[tuple[OID, Any]]) -> bytes:
        pdu = v2c.apiMessage.get_pdu(message)
        non_repeaters = max(0, int(v2c.apiBulkPDU.get_non_repeaters(pdu)))
        repetitions = max(0, int(v2c.apiBulkPDU.get_max_repetitions(pdu)))
        answer: list[tuple[OID, Any]] = []
        size = 64  # the message around the variables
        for oid, _ in varbinds[:non_repeaters]:
            following = view.next(oid)
            value = v2c.EndOfMibView("") if following is None else _encode(v2c, *view.entries[following])
            answer.append((following or oid, value))
        cursors: list[OID | None] = [oid for oid, _ in varbinds[non_repeaters:]]
        for _ in range(repetitions):
            if not cursors or all(c is None for c in cursors):
                break
            row = []
            for k, cursor in enumerate(cursors):
                if cursor is None:
                    continue
                following = view.next(cursor)
                if following is None:
                    row.append((cursor, v2c.EndOfMibView("")))
                    cursors[k] = None
                else:
                    row.append((following, _encode(v2c, *view.entries[following])))
                    cursors[k] = following
            size += sum(len(o) * 2 + 16 for o, _ in row)
            if size > MAX_RESPONSE and answer:
                break
            answer.extend(row)
        return self._respond(v2c, message, answer)

    # --- writes ---------------------------------------------------------------------------------

    def _set(
        self, module: Any, message: Any, community: bytes, varbinds: list[tuple[OID, Any]]
    ) -> bytes | PendingSet:
        if community not in self.communities.write:
            self.counters.snmpInBadCommunityUses += 1
            return self._error(module, message, varbinds, ErrorStatus.NO_ACCESS, 1)
        view = self.view()
        writes = []
        for i, (oid, value) in enumerate(varbinds, start=1):
            obj = self._object_of(oid)
            if obj is None or view.get(oid) is None:
                return self._error(module, message, varbinds, ErrorStatus.NO_CREATION, i)
            if obj.access is not Access.READ_WRITE:
                return self._error(module, message, varbinds, ErrorStatus.NOT_WRITABLE, i)
            if obj.syntax is not Syntax.INTEGER or value.tagSet != v1.Integer.tagSet:
                return self._error(module, message, varbinds, ErrorStatus.WRONG_TYPE, i)
            number = int(value)
            if not obj.low <= number <= obj.high:
                return self._error(module, message, varbinds, ErrorStatus.WRONG_VALUE, i)
            writes.append(Write(obj, oid, number))
        return PendingSet(tuple(writes), community, message, module)

    def _object_of(self, oid: OID) -> ObjectType | None:
        """The object an instance OID belongs to (scalar ``.0`` or a row index)."""
        for depth in self._depths:
            if depth < len(oid):
                obj = self._objects.get(oid[:depth])
                if obj is not None:
                    if obj.shape is Shape.SCALAR and oid[depth:] != (0,):
                        return None
                    return obj
        return None

    # --- responses --------------------------------------------------------------------------------

    def _respond(self, module: Any, message: Any, varbinds: list[tuple[OID, Any]]) -> bytes:
        response = module.apiMessage.get_response(message)
        pdu = module.apiMessage.get_pdu(response)
        module.apiPDU.set_varbinds(pdu, varbinds)
        data: bytes = encoder.encode(response)
        if len(data) > MAX_RESPONSE:
            return self._error(module, message, [], ErrorStatus.TOO_BIG, 0)
        self.counters.snmpOutPkts += 1
        return data

    def _error(
        self,
        module: Any,
        message: Any,
        varbinds: list[tuple[OID, Any]],
        status: ErrorStatus,
        index: int,
    ) -> bytes:
        if module is v1:
            status = _V1_EQUIVALENT.get(status, status)
        c = self.counters
        c.errors[status.name] = c.errors.get(status.name, 0) + 1
        if status is ErrorStatus.TOO_BIG:
            c.snmpOutTooBigs += 1
        elif status is ErrorStatus.NO_SUCH_NAME:
            c.snmpOutNoSuchNames += 1
        elif status is ErrorStatus.BAD_VALUE:
            c.snmpOutBadValues += 1
        elif status is ErrorStatus.GEN_ERR:
            c.snmpOutGenErrs += 1
        response = module.apiMessage.get_response(message)
        pdu = module.apiMessage.get_pdu(response)
        module.apiPDU.set_varbinds(pdu, [] if status is ErrorStatus.TOO_BIG else varbinds)
        module.apiPDU.set_error_status(pdu, int(status))
        module.apiPDU.set_error_index(pdu, index)
        c.snmpOutPkts += 1
        data: bytes = encoder.encode(response)
        return data


def _message_version(data: bytes) -> Any:
    from pysnmp.proto.api.verdec import decode_message_version

    return decode_message_version(data)


def _encode(module: Any, syntax: Syntax, value: Value) -> Any:
    if syntax is Syntax.INTEGER:
        return module.Integer(value) if module is v1 else v2c.Integer32(value)
    if syntax is Syntax.OCTETS:
        return module.OctetString(value)
    if syntax is Syntax.COUNTER:
        return v1.Counter(value) if module is v1 else v2c.Counter32(value)
    if syntax is Syntax.TICKS:
        return module.TimeTicks(value)
    return module.ObjectIdentifier(value)
