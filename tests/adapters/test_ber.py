"""The fast BER reader and writer, checked against pysnmp / pyasn1 on valid and fuzzed input."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from pyasn1.codec.ber import encoder
from pyasn1.type import univ
from pysnmp.proto import rfc1902

from adapters.ntcip import ber
from adapters.ntcip.protocol import _full_decode
from tests.adapters.snmp_helpers import request

oids = st.builds(
    lambda a, b, rest: (a, b, *rest),
    st.integers(0, 2),
    st.integers(0, 39),
    st.lists(st.integers(0, 2**32 - 1), max_size=12),
)
kinds = st.sampled_from(["get", "next", "bulk"])


@given(oid=oids)
def test_oids_encode_as_pyasn1_does_and_read_back(oid: tuple[int, ...]) -> None:
    encoded = ber.encode_oid(oid)
    assert encoded == encoder.encode(univ.ObjectIdentifier(oid))
    assert (
        ber.decode_oid(encoded[2:] if encoded[1] < 0x80 else encoded[2 + (encoded[1] & 0x7F) :]) == oid
    )


@given(value=st.integers(-(2**31), 2**31 - 1), unsigned=st.integers(0, 2**32 - 1))
def test_integers_encode_as_pyasn1_does(value: int, unsigned: int) -> None:
    assert ber.encode_integer(value) == encoder.encode(univ.Integer(value))
    assert ber.encode_unsigned(unsigned, ber.COUNTER32) == encoder.encode(rfc1902.Counter32(unsigned))
    assert ber.encode_unsigned(unsigned, ber.TIMETICKS) == encoder.encode(rfc1902.TimeTicks(unsigned))


@given(
    kind=kinds,
    names=st.lists(oids, min_size=1, max_size=5),
    request_id=st.integers(-(2**31), 2**31 - 1),
    community=st.binary(max_size=40),
    version=st.sampled_from([1, 2]),
)
def test_requests_read_as_pysnmp_reads_them(
    kind: str, names: list[tuple[int, ...]], request_id: int, community: bytes, version: int
) -> None:
    if kind == "bulk":
        version = 2
    data = request(kind, names, community=community, version=version, request_id=request_id)
    assert ber.parse_request(data) == _full_decode(data)


VALID = [
    request("get", [(1, 3, 6, 1, 2, 1, 1, 1, 0)]),
    request("bulk", [(1, 3, 6, 1, 4, 1, 1206)], non_repeaters=1, repetitions=20),
    request("next", [(1, 3), (1, 3, 6, 1, 4, 1, 1206, 4, 2, 1, 1, 4, 1, 4, 1)], version=1),
]


@settings(max_examples=500, deadline=None)
@given(
    base=st.sampled_from(VALID),
    flips=st.lists(st.tuples(st.integers(0, 120), st.integers(0, 255)), min_size=1, max_size=4),
)
def test_fuzzed_requests_either_read_as_pysnmp_reads_them_or_fall_back(
    base: bytes, flips: list[tuple[int, int]]
) -> None:
    data = bytearray(base)
    for position, byte in flips:
        data[position % len(data)] = byte
    try:
        fast = ber.parse_request(bytes(data))
    except ber.BerError:
        return  # the responder hands these to pysnmp's decoder
    try:
        full = _full_decode(bytes(data))
    except Exception:
        return  # pysnmp is stricter about some value bytes; a GET ignores its values
    assert fast.community == full.community and fast.request_id == full.request_id
    assert [oid for oid, _ in fast.varbinds] == [oid for oid, _ in full.varbinds]
