"""The few BER forms of an SNMPv1/v2c request and response, as pure functions.

SNMP messages are small and regular; reading and writing them directly is about ten times
faster than a general ASN.1 codec, which matters when one process answers the agents of a
whole district. :func:`parse_request` reads only definite-length, minimally tagged messages and
returns None for anything else (the responder then falls back to pysnmp's full decoder), and the
tests check it against pysnmp on valid and fuzzed messages. :func:`encode_response` writes the
response; its output is decoded by pysnmp and net-snmp in the tests.
"""

from __future__ import annotations

from dataclasses import dataclass

from adapters.ntcip.oids import OID

# Universal and SNMP application tags.
INTEGER, OCTET_STRING, NULL, OBJECT_IDENTIFIER, SEQUENCE = 0x02, 0x04, 0x05, 0x06, 0x30
COUNTER32, GAUGE32, TIMETICKS = 0x41, 0x42, 0x43
NO_SUCH_OBJECT, NO_SUCH_INSTANCE, END_OF_MIB_VIEW = 0x80, 0x81, 0x82
GET, GET_NEXT, RESPONSE, SET, TRAP_V1, GET_BULK = 0xA0, 0xA1, 0xA2, 0xA3, 0xA4, 0xA5
REQUESTS = frozenset({GET, GET_NEXT, SET, GET_BULK})
IP_ADDRESS, OPAQUE, COUNTER64 = 0x40, 0x44, 0x46
VALUE_TAGS = frozenset({INTEGER, OCTET_STRING, NULL, OBJECT_IDENTIFIER, IP_ADDRESS, COUNTER32,
                        GAUGE32, TIMETICKS, OPAQUE, COUNTER64, NO_SUCH_OBJECT, NO_SUCH_INSTANCE,
                        END_OF_MIB_VIEW})  # fmt: skip
"""The values a variable binding may carry (SNMPv2-SMI's ObjectSyntax, and v2c's exceptions)."""

NULL_VALUE = b"\x05\x00"


class BerError(ValueError):
    """Not a message this reader takes (malformed, or a form it leaves to the full decoder)."""


@dataclass(frozen=True)
class Request:
    """An SNMP request. ``varbinds`` keep each value's whole TLV (echoed back in errors);
    for GET-BULK, ``error_status`` / ``error_index`` are non-repeaters / max-repetitions."""

    version: int
    community: bytes
    pdu: int
    request_id: int
    error_status: int
    error_index: int
    varbinds: tuple[tuple[OID, bytes], ...]


# --- reading -------------------------------------------------------------------------------------


def _header(data: bytes, at: int) -> tuple[int, int, int]:
    """(tag, start of the contents, end of the contents) of the TLV at ``at``."""
    if at + 2 > len(data):
        raise BerError("truncated")
    tag = data[at]
    if tag & 0x1F == 0x1F:
        raise BerError("long-form tag")
    first = data[at + 1]
    at += 2
    if first < 0x80:
        length = first
    else:
        count = first & 0x7F
        if count == 0 or count > 4 or at + count > len(data):
            raise BerError("indefinite or oversized length")
        length = int.from_bytes(data[at : at + count], "big")
        at += count
    end = at + length
    if end > len(data):
        raise BerError("truncated")
    return tag, at, end


def _integer(data: bytes, at: int) -> tuple[int, int]:
    tag, start, end = _header(data, at)
    if tag != INTEGER or start == end or end - start > 8:
        raise BerError("expected an INTEGER")
    return int.from_bytes(data[start:end], "big", signed=True), end


def decode_oid(content: bytes) -> OID:
    if not content:
        raise BerError("empty OBJECT IDENTIFIER")
    arcs: list[int] = []
    value = 0
    for i, byte in enumerate(content):
        if value == 0 and byte == 0x80:
            raise BerError("non-minimal OBJECT IDENTIFIER arc")
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            if not arcs:
                first = min(value // 40, 2)
                arcs += [first, value - 40 * first]
            else:
                arcs.append(value)
            value = 0
        elif i == len(content) - 1:
            raise BerError("unterminated OBJECT IDENTIFIER arc")
    return tuple(arcs)


def parse_request(data: bytes, accept: frozenset[int] = REQUESTS) -> Request:
    """Read a GET / GET-NEXT / GET-BULK / SET message (or the PDUs in ``accept``); raises
    :class:`BerError` otherwise."""
    tag, start, end = _header(data, 0)
    if tag != SEQUENCE or end != len(data):
        raise BerError("not one SEQUENCE")
    version, at = _integer(data, start)
    tag, c_start, c_end = _header(data, at)
    if tag != OCTET_STRING:
        raise BerError("expected the community")
    community = data[c_start:c_end]
    pdu, p_start, p_end = _header(data, c_end)
    if pdu not in accept or p_end != end:
        raise BerError("not a request PDU")
    request_id, at = _integer(data, p_start)
    status, at = _integer(data, at)
    index, at = _integer(data, at)
    tag, v_start, v_end = _header(data, at)
    if tag != SEQUENCE or v_end != p_end:
        raise BerError("expected the variable bindings")
    varbinds = []
    at = v_start
    while at < v_end:
        tag, b_start, b_end = _header(data, at)
        if tag != SEQUENCE:
            raise BerError("expected a variable binding")
        tag, o_start, o_end = _header(data, b_start)
        if tag != OBJECT_IDENTIFIER:
            raise BerError("expected an OBJECT IDENTIFIER")
        value_tag, value_start, value_end = _header(data, o_end)
        if value_end != b_end:
            raise BerError("trailing bytes in a variable binding")
        _check_value(value_tag, data[value_start:value_end])
        varbinds.append((decode_oid(data[o_start:o_end]), data[o_end:b_end]))
        at = b_end
    return Request(version, community, pdu, request_id, status, index, tuple(varbinds))


def parse_response(data: bytes) -> Request:
    """Read a Response-PDU message (the same fields as a request)."""
    return parse_request(data, frozenset({RESPONSE}))


def decode_value(tlv: bytes) -> int | bytes | tuple[int, ...] | None:
    """A variable's value: INTEGER / Counter32 / Gauge32 / TimeTicks as int, OCTET STRING as
    bytes, OBJECT IDENTIFIER as a tuple; None for NULL and the v2c exceptions (noSuchObject,
    noSuchInstance, endOfMibView)."""
    tag, start, end = _header(tlv, 0)
    content = tlv[start:end]
    if tag == INTEGER:
        return int.from_bytes(content, "big", signed=True) if content else 0
    if tag in (COUNTER32, GAUGE32, TIMETICKS):
        return int.from_bytes(content, "big")
    if tag == OCTET_STRING:
        return bytes(content)
    if tag == OBJECT_IDENTIFIER:
        return decode_oid(content)
    return None


def _check_value(tag: int, content: bytes) -> None:
    """Only well-formed values pass: an agent echoes them back in its answer."""
    if tag not in VALUE_TAGS:
        raise BerError(f"not an SNMP value (tag {tag:#04x})")
    if tag in (NULL, NO_SUCH_OBJECT, NO_SUCH_INSTANCE, END_OF_MIB_VIEW) and content:
        raise BerError("a NULL with contents")
    if tag in (INTEGER, COUNTER32, GAUGE32, TIMETICKS, COUNTER64) and not 1 <= len(content) <= 9:
        raise BerError("an integer of no or too many bytes")
    if tag == OBJECT_IDENTIFIER:
        decode_oid(content)
    if tag == IP_ADDRESS and len(content) != 4:
        raise BerError("an IpAddress of other than 4 bytes")


def message_version(data: bytes) -> int | None:
    """The version field of a message (0: v1, 1: v2c, 3: v3), None if it has none."""
    try:
        tag, start, _ = _header(data, 0)
        return _integer(data, start)[0] if tag == SEQUENCE else None
    except BerError:
        return None


def integer_value(tlv: bytes) -> int | None:
    """The value of an INTEGER TLV, None if ``tlv`` is something else."""
    try:
        value, end = _integer(tlv, 0)
    except BerError:
        return None
    return value if end == len(tlv) else None


# --- writing -------------------------------------------------------------------------------------


def _length(n: int) -> bytes:
    if n < 0x80:
        return bytes((n,))
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes((0x80 | len(body),)) + body


def tlv(tag: int, content: bytes) -> bytes:
    return bytes((tag,)) + _length(len(content)) + content


def encode_integer(value: int, tag: int = INTEGER) -> bytes:
    size = max(1, (value.bit_length() + 8) // 8)  # room for the sign bit
    return tlv(tag, value.to_bytes(size, "big", signed=True))


def encode_unsigned(value: int, tag: int) -> bytes:
    """Counter32, Gauge32, TimeTicks: non-negative, with a leading zero byte when needed."""
    size = max(1, (value.bit_length() + 8) // 8)
    return tlv(tag, value.to_bytes(size, "big"))


def encode_oid(oid: OID) -> bytes:
    if len(oid) < 2 or oid[0] > 2 or (oid[0] < 2 and oid[1] >= 40):
        raise BerError(f"cannot encode OID {oid}")
    body = bytearray()
    for arc in (40 * oid[0] + oid[1], *oid[2:]):
        chunk = [arc & 0x7F]
        arc >>= 7
        while arc:
            chunk.append(0x80 | (arc & 0x7F))
            arc >>= 7
        body += bytes(reversed(chunk))
    return tlv(OBJECT_IDENTIFIER, bytes(body))


def varbind(oid: OID, value: bytes) -> bytes:
    """One variable binding; ``value`` is already encoded as a TLV."""
    return tlv(SEQUENCE, encode_oid(oid) + value)


def encode_response(
    version: int,
    community: bytes,
    request_id: int,
    error_status: int,
    error_index: int,
    varbinds: list[bytes],
) -> bytes:
    """A Response-PDU message around already encoded variable bindings (:func:`varbind`)."""
    pdu = tlv(
        RESPONSE,
        encode_integer(request_id)
        + encode_integer(error_status)
        + encode_integer(error_index)
        + tlv(SEQUENCE, b"".join(varbinds)),
    )
    return tlv(SEQUENCE, encode_integer(version) + tlv(OCTET_STRING, community) + pdu)
