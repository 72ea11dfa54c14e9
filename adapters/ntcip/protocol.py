"""The SNMP command responder, sans I/O: request bytes in, response bytes out.

:class:`Responder` decodes an SNMPv1 / SNMPv2c message (:mod:`adapters.ntcip.ber`, with
pysnmp's decoder for the BER forms it leaves aside), checks the
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

from adapters.ntcip import ber
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

    @property
    def label(self) -> str:
        """The name RFC 3416 gives it (``noAccess``)."""
        first, *rest = self.name.lower().split("_")
        return first + "".join(part.title() for part in rest)


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
    """An agent's instances at one moment, in OID order, with their encodings cached."""

    def __init__(self, entries: MibEntries) -> None:
        self.entries = entries
        self.oids = sorted(entries)
        self._varbinds: dict[OID, bytes] = {}

    def get(self, oid: OID) -> tuple[Syntax, Value] | None:
        return self.entries.get(oid)

    def set(self, oid: OID, syntax: Syntax, value: Value) -> None:
        """Change the value of an existing instance (counters, uptime)."""
        self.entries[oid] = (syntax, value)
        self._varbinds.pop(oid, None)

    def next(self, oid: OID) -> OID | None:
        """The first instance after ``oid`` (lexicographic order), or None at the end."""
        i = bisect.bisect_right(self.oids, oid)
        return self.oids[i] if i < len(self.oids) else None

    def varbind(self, oid: OID) -> bytes:
        """The encoded variable binding of an existing instance."""
        encoded = self._varbinds.get(oid)
        if encoded is None:
            encoded = ber.varbind(oid, encode_value(*self.entries[oid]))
            self._varbinds[oid] = encoded
        return encoded


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
    request: ber.Request


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
        request = self._parse(data)
        if request is None:
            return None
        if request.version not in (0, 1):
            c.snmpInBadVersions += 1
            return None
        return self.handle(request)

    def handle(self, request: ber.Request) -> bytes | PendingSet | None:
        """Answer a request already read (SNMPv3 hands its decrypted requests in here, with the
        community of the user's role)."""
        c = self.counters
        community = request.community
        if community not in self.communities.read and community not in self.communities.write:
            c.snmpInBadCommunityNames += 1
            return None
        if len(request.varbinds) > MAX_VARBINDS:
            c.snmpInTooBigs += 1
            return self._error(request, ErrorStatus.TOO_BIG, 0, echo=False)
        if request.pdu == ber.SET:
            c.snmpInTotalSetVars += len(request.varbinds)
            return self._set(request)
        c.snmpInTotalReqVars += len(request.varbinds)
        if request.pdu == ber.GET:
            return self._get(request, self.view())
        if request.pdu == ber.GET_NEXT:
            return self._get_next(request, self.view())
        if request.pdu == ber.GET_BULK and request.version == 1:
            return self._get_bulk(request, self.view())
        c.snmpInASNParseErrs += 1  # GET-BULK in SNMPv1 does not exist
        return None

    def complete(self, pending: PendingSet, verdicts: Sequence[Verdict]) -> bytes:
        """The response to a SET once the caller has decided each of its writes."""
        request = pending.request
        for i, verdict in enumerate(verdicts, start=1):
            if not verdict.accepted:
                self.counters.sets_refused += 1
                return self._error(request, ErrorStatus.INCONSISTENT_VALUE, i)
        self.counters.sets_accepted += 1
        return self._respond(request, [ber.varbind(oid, value) for oid, value in request.varbinds])

    def _parse(self, data: bytes) -> ber.Request | None:
        try:
            return ber.parse_request(data)
        except ber.BerError:
            pass  # not the plain form: the full decoder decides
        try:
            return _full_decode(data)
        except _NotSnmp:
            self.counters.snmpInBadVersions += 1
            return None
        except Exception:  # malformed BER in any of the ways a decoder can fail
            self.counters.snmpInASNParseErrs += 1
            return None

    # --- reads ----------------------------------------------------------------------------------

    def _get(self, request: ber.Request, view: MibView) -> bytes:
        answer = []
        for i, (oid, _) in enumerate(request.varbinds, start=1):
            if oid in view.entries:
                answer.append(view.varbind(oid))
            elif request.version == 0:
                return self._error(request, ErrorStatus.NO_SUCH_NAME, i)
            elif self._object_of(oid) is not None:
                answer.append(ber.varbind(oid, NO_SUCH_INSTANCE))
            else:
                answer.append(ber.varbind(oid, NO_SUCH_OBJECT))
        return self._respond(request, answer)

    def _get_next(self, request: ber.Request, view: MibView) -> bytes:
        answer = []
        for i, (oid, _) in enumerate(request.varbinds, start=1):
            following = view.next(oid)
            if following is not None:
                answer.append(view.varbind(following))
            elif request.version == 0:
                return self._error(request, ErrorStatus.NO_SUCH_NAME, i)
            else:
                answer.append(ber.varbind(oid, END_OF_MIB_VIEW))
        return self._respond(request, answer)

    def _get_bulk(self, request: ber.Request, view: MibView) -> bytes:
        non_repeaters = max(0, request.error_status)
        repetitions = max(0, request.error_index)
        answer: list[bytes] = []
        size = 64  # the message around the variables
        for oid, _ in request.varbinds[:non_repeaters]:
            following = view.next(oid)
            answer.append(
                ber.varbind(oid, END_OF_MIB_VIEW) if following is None else view.varbind(following)
            )
        size += sum(len(b) for b in answer)
        cursors: list[OID | None] = [oid for oid, _ in request.varbinds[non_repeaters:]]
        for _ in range(repetitions):
            if all(c is None for c in cursors):
                break
            row = []
            for k, cursor in enumerate(cursors):
                if cursor is None:
                    continue
                following = view.next(cursor)
                if following is None:
                    row.append(ber.varbind(cursor, END_OF_MIB_VIEW))
                else:
                    row.append(view.varbind(following))
                cursors[k] = following
            size += sum(len(b) for b in row)
            if size > MAX_RESPONSE and answer:
                break
            answer.extend(row)
        return self._respond(request, answer)

    # --- writes ---------------------------------------------------------------------------------

    def _set(self, request: ber.Request) -> bytes | PendingSet:
        if request.community not in self.communities.write:
            self.counters.snmpInBadCommunityUses += 1
            return self._error(request, ErrorStatus.NO_ACCESS, 1)
        view = self.view()
        writes = []
        for i, (oid, value) in enumerate(request.varbinds, start=1):
            obj = self._object_of(oid)
            if obj is None or oid not in view.entries:
                return self._error(request, ErrorStatus.NO_CREATION, i)
            if obj.access is not Access.READ_WRITE:
                return self._error(request, ErrorStatus.NOT_WRITABLE, i)
            number = ber.integer_value(value)
            if obj.syntax is not Syntax.INTEGER or number is None:
                return self._error(request, ErrorStatus.WRONG_TYPE, i)
            if not obj.low <= number <= obj.high:
                return self._error(request, ErrorStatus.WRONG_VALUE, i)
            writes.append(Write(obj, oid, number))
        return PendingSet(tuple(writes), request)

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

    def _respond(self, request: ber.Request, varbinds: list[bytes]) -> bytes:
        data = ber.encode_response(
            request.version, request.community, request.request_id, 0, 0, varbinds
        )
        if len(data) > MAX_RESPONSE:
            return self._error(request, ErrorStatus.TOO_BIG, 0, echo=False)
        self.counters.snmpOutPkts += 1
        return data

    def _error(
        self, request: ber.Request, status: ErrorStatus, index: int, *, echo: bool = True
    ) -> bytes:
        """An error response; the request's variables are sent back as they came (none for
        tooBig)."""
        if request.version == 0:
            status = _V1_EQUIVALENT.get(status, status)
        c = self.counters
        c.errors[status.label] = c.errors.get(status.label, 0) + 1
        if status is ErrorStatus.TOO_BIG:
            c.snmpOutTooBigs += 1
        elif status is ErrorStatus.NO_SUCH_NAME:
            c.snmpOutNoSuchNames += 1
        elif status is ErrorStatus.BAD_VALUE:
            c.snmpOutBadValues += 1
        elif status is ErrorStatus.GEN_ERR:
            c.snmpOutGenErrs += 1
        varbinds = [ber.varbind(oid, value) for oid, value in request.varbinds] if echo else []
        c.snmpOutPkts += 1
        return ber.encode_response(
            request.version, request.community, request.request_id, int(status), index, varbinds
        )


NO_SUCH_OBJECT = bytes((ber.NO_SUCH_OBJECT, 0))
NO_SUCH_INSTANCE = bytes((ber.NO_SUCH_INSTANCE, 0))
END_OF_MIB_VIEW = bytes((ber.END_OF_MIB_VIEW, 0))


def encode_value(syntax: Syntax, value: Value) -> bytes:
    """One value as its BER TLV (the same tags in SNMPv1 and v2c)."""
    if syntax is Syntax.INTEGER and isinstance(value, int):
        return ber.encode_integer(value)
    if syntax is Syntax.OCTETS and isinstance(value, bytes):
        return ber.tlv(ber.OCTET_STRING, value)
    if syntax is Syntax.COUNTER and isinstance(value, int):
        return ber.encode_unsigned(value, ber.COUNTER32)
    if syntax is Syntax.TICKS and isinstance(value, int):
        return ber.encode_unsigned(value, ber.TIMETICKS)
    if syntax is Syntax.OID and isinstance(value, tuple):
        return ber.encode_oid(value)
    raise ValueError(f"cannot encode {value!r} as {syntax.value}")


class _NotSnmp(Exception):
    """A well-formed message of another SNMP version."""


def _full_decode(data: bytes) -> ber.Request:
    """pysnmp's decoder, for the BER forms :func:`ber.parse_request` leaves aside (indefinite
    lengths...). Raises on anything malformed, :class:`_NotSnmp` for SNMPv3 and later."""
    from pyasn1.codec.ber import decoder, encoder
    from pysnmp.proto.api import v1, v2c
    from pysnmp.proto.api.verdec import decode_message_version

    version = int(decode_message_version(data))
    module = {0: v1, 1: v2c}.get(version)
    if module is None:
        raise _NotSnmp(version)
    message, rest = decoder.decode(data, asn1Spec=module.Message())
    if rest:
        raise ber.BerError("trailing bytes")
    pdu = module.apiMessage.get_pdu(message)
    base = pdu.tagSet[-1]  # the context tag of the PDU (implicitly tagged)
    varbinds = tuple(
        (tuple(int(arc) for arc in oid), bytes(encoder.encode(value)))
        for oid, value in module.apiPDU.get_varbinds(pdu)
    )
    return ber.Request(
        version=version,
        community=bytes(module.apiMessage.get_community(message)),
        pdu=base.tagClass | base.tagFormat | base.tagId,
        request_id=int(pdu.getComponentByPosition(0)),
        error_status=int(pdu.getComponentByPosition(1)),
        error_index=int(pdu.getComponentByPosition(2)),
        varbinds=varbinds,
    )
