"""The SNMP request path without a socket: answers, error statuses, counters, and a fuzz."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from pysnmp.proto.api import v2c

from adapters.ntcip.device import SignalDevice
from adapters.ntcip.model import DetectorReading, Sample
from adapters.ntcip.oids import OBJECTS_1202, all_objects
from adapters.ntcip.protocol import Communities, PendingSet, Responder, Verdict
from tests.adapters.snmp_helpers import four_way_layout, request, response

GREENS_1 = OBJECTS_1202["phaseStatusGroupGreens"].instance(1)
HOLD_1 = OBJECTS_1202["phaseControlGroupHold"].instance(1)
PATTERN = OBJECTS_1202["systemPatternControl"].instance()


def responder(write: bool = True) -> Responder:
    device = SignalDevice(four_way_layout())
    device.update_signal(1.0, {"state": "GGrrGr", "program": "0", "phase": 0, "mode": "automatic"})
    communities = Communities(write=frozenset({b"secret"}) if write else frozenset())
    return Responder(device.view, all_objects(), communities, device.counters)


def answer(r: Responder, data: bytes, version: int = 2):  # type: ignore[no-untyped-def]
    out = r.receive(data)
    assert isinstance(out, bytes)
    return response(out, version=version)


def test_get_and_getnext_answer_the_phase_status() -> None:
    r = responder()
    assert answer(r, request("get", [GREENS_1]))[2] == [(GREENS_1, 0b0101)]
    status, _, binds = answer(r, request("next", [GREENS_1[:-1]]))
    assert (status, binds) == (0, [(GREENS_1, 0b0101)])
    assert r.counters.snmpInPkts == 2 and r.counters.snmpOutPkts == 2


def test_unknown_objects_and_the_end_of_the_mib() -> None:
    r = responder()
    unknown, missing_row = (1, 3, 6, 1, 4, 1, 9, 9, 0), (*OBJECTS_1202["phaseStatusGroupGreens"].oid, 9)
    _, _, binds = answer(r, request("get", [unknown, missing_row]))
    assert binds[0][1].tagSet == v2c.NoSuchObject.tagSet
    assert binds[1][1].tagSet == v2c.NoSuchInstance.tagSet
    _, _, binds = answer(r, request("next", [(2, 1)]))
    assert binds[0][1].tagSet == v2c.EndOfMibView.tagSet
    # SNMPv1 has one error for both: noSuchName, pointing at the variable
    assert answer(r, request("get", [GREENS_1, unknown], version=1), version=1)[:2] == (2, 2)
    assert answer(r, request("next", [(2, 1)], version=1), version=1)[:2] == (2, 1)


def test_getbulk_walks_rows() -> None:
    r = responder()
    _, _, binds = answer(r, request("bulk", [OBJECTS_1202["phaseNumber"].oid], repetitions=4))
    assert [int(v) for _, v in binds] == [1, 2, 3, 4]


def test_set_errors_carry_the_right_status_and_index() -> None:
    r = responder()
    read_only = OBJECTS_1202["maxPhases"].instance()
    cases = [
        (b"public", [(HOLD_1, v2c.Integer32(1))], (6, 1)),  # noAccess: the read community
        (
            b"secret",
            [(PATTERN, v2c.Integer32(1)), (read_only, v2c.Integer32(1))],
            (17, 2),
        ),  # notWritable
        (b"secret", [((1, 3, 6, 1, 4, 1, 1206, 9, 0), v2c.Integer32(1))], (11, 1)),  # noCreation
        (b"secret", [(HOLD_1, v2c.OctetString(b"x"))], (7, 1)),  # wrongType
        (b"secret", [(HOLD_1, v2c.Integer32(256))], (10, 1)),  # wrongValue
    ]
    for community, binds, expected in cases:
        assert answer(r, request("set", binds, community=community))[:2] == expected
    assert r.counters.snmpInBadCommunityUses == 1
    # the same mistakes in SNMPv1 map to noSuchName / badValue
    v1_hold = request("set", [(HOLD_1, v2c.Integer32(256))], community=b"secret", version=1)
    assert answer(r, v1_hold, version=1)[:2] == (3, 1)


def test_a_valid_set_waits_for_its_verdict() -> None:
    r = responder()
    pending = r.receive(request("set", [(HOLD_1, v2c.Integer32(2))], community=b"secret"))
    assert isinstance(pending, PendingSet)
    assert [(w.object.name, w.index, w.value) for w in pending.writes] == [
        ("phaseControlGroupHold", (1,), 2)
    ]
    accepted = response(r.complete(pending, [Verdict(True, "holding phase 2")]))
    assert accepted[:2] == (0, 0) and int(accepted[2][0][1]) == 2
    refused = response(r.complete(pending, [Verdict(False, "conflicting greens")]))
    assert refused[:2] == (12, 1)  # inconsistentValue
    assert (r.counters.sets_accepted, r.counters.sets_refused) == (1, 1)


def test_wrong_community_versions_and_garbage_are_dropped_and_counted() -> None:
    r = responder(write=False)
    assert r.receive(request("get", [GREENS_1], community=b"guess")) is None
    assert r.receive(b"\x30\x03\x02\x01\x03") is None  # SNMPv3 header, not spoken here
    assert r.receive(b"\x00\x01garbage") is None
    assert r.receive(b"\x30" + b"\x00" * 9000) is None
    c = r.counters
    assert (c.snmpInBadCommunityNames, c.snmpInBadVersions, c.snmpInASNParseErrs, c.oversized) == (
        1,
        1,
        1,
        1,
    )


def test_too_many_variables_is_too_big() -> None:
    r = responder()
    status, index, binds = answer(r, request("get", [GREENS_1] * 200))
    assert (status, index, binds) == (1, 0, [])


VALID = [request("get", [GREENS_1]), request("next", [(1, 3)]), request("bulk", [(1, 3)]),
         request("set", [(HOLD_1, v2c.Integer32(1))], community=b"secret"),
         request("get", [GREENS_1], version=1)]  # fmt: skip


@settings(max_examples=400, deadline=None)
@given(
    base=st.sampled_from(VALID),
    flips=st.lists(st.tuples(st.integers(0, 200), st.integers(0, 255)), max_size=6),
    cut=st.integers(0, 200),
    junk=st.binary(max_size=64),
)
def test_fuzz_the_request_path_never_raises_and_answers_decode(
    base: bytes, flips: list[tuple[int, int]], cut: int, junk: bytes
) -> None:
    data = bytearray(base)
    for position, byte in flips:
        if data:
            data[position % len(data)] = byte
    r = responder()
    for datagram in (bytes(data), bytes(data[:cut]) + junk, junk):
        out = r.receive(datagram)
        if isinstance(out, PendingSet):
            out = r.complete(out, [Verdict(True)] * len(out.writes))
        if out is not None:
            version = 1 if datagram[4:5] == b"\x00" or b"\x02\x01\x00" in datagram[:8] else 2
            try:
                response(out, version=version)
            except Exception:
                response(out, version=3 - version)


def test_a_request_in_a_rarer_ber_form_is_answered_through_the_full_decoder() -> None:
    plain = request("get", [GREENS_1])
    assert plain[1] < 0x80  # short definite length: rewrite it as indefinite (legal BER)
    indefinite = b"\x30\x80" + plain[2:] + b"\x00\x00"
    assert answer(responder(), indefinite)[2] == [(GREENS_1, 0b0101)]


def test_a_new_run_serves_nothing_of_the_ended_run_as_current() -> None:
    device = SignalDevice(four_way_layout())
    device.update_signal(1.0, {"state": "GGrrGr", "program": "0", "phase": 0, "mode": "automatic"})
    device.update_detector(10.0, "n", DetectorReading(present=1, occupancy=0.5, count=3))
    device.set_fault("e", "stuck_on")
    device.controls.hold = {1: 0b1}
    device.update_signal(130.0, {"phase": 1})  # two 60-s periods completed
    assert device.last_sample("n") is not None and device.snapshot().faults == {"e": "stuck_on"}
    sequence = device._sampler.sequence

    device.new_run()
    snapshot = device.snapshot()
    assert (snapshot.state, snapshot.phase, snapshot.detectors, snapshot.faults) == ("", None, {}, {})
    assert device.last_sample("n") is None and device.controls.hold == {}
    r = Responder(device.view, all_objects(), Communities(), device.counters)
    assert answer(r, request("get", [GREENS_1]))[2] == [(GREENS_1, 0)]
    # The new run's clock starts again: its first period completes at its t = 60 s, numbered on.
    device.update_detector(5.0, "n", DetectorReading(count=2))
    device.update_signal(61.0, {"state": "GGrrGr", "program": "0", "phase": 0})
    assert device._sampler.sequence == sequence + 1
    assert device.last_sample("n") == Sample(2, 0.0, None)
