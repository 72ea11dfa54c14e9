"""The ``q`` language of the NGSI-LD API: what it accepts, what it means, what it refuses."""

from __future__ import annotations

from typing import Any

import pytest

from controlcenter.ngsild.query import QueryError, parse_q

SPOT: dict[str, Any] = {
    "id": "urn:ngsi-ld:ParkingSpot:district:lot_north:3",
    "type": "ParkingSpot",
    "status": "occupied",
    "category": ["offStreet"],
    "name": "lot C4_D4, bay 4",
}
LOT: dict[str, Any] = {
    "id": "urn:ngsi-ld:OffStreetParking:district:lot_north",
    "type": "OffStreetParking",
    "occupancy": 0.625,
    "availableSpotNumber": 6,
    "totalSpotNumber": 16,
    "occupancyModified": "2026-01-01T10:10:00.000Z",
    "data": {"rule": "queue", "run": 3},
}


@pytest.mark.parametrize(
    ("q", "spot", "lot"),
    [
        ('status=="occupied"', True, False),
        ('status!="occupied"', False, False),  # a missing attribute never matches, not even !=
        ("occupancy>0.5", False, True),
        ("occupancy>=0.625;availableSpotNumber<7", False, True),
        ("occupancy>0.7", False, False),
        ('occupancy>0.7|status=="occupied"', True, False),
        ('status=="free","occupied"', True, False),  # any of a list
        ("availableSpotNumber==5..10", False, True),  # a range
        ("availableSpotNumber==7..10", False, False),
        ("availableSpotNumber!=7..10", False, True),
        ('category=="offStreet"', True, False),  # a list value: any element
        ('category!="onStreet"', True, False),
        ("status", True, False),  # the attribute exists
        ('name~="bay [0-9]+$"', True, False),
        ('name!~="^lot"', False, False),
        ("occupancyModified>2026-01-01T10:09:59Z", False, True),  # date-times as instants
        ("occupancyModified<2026-01-01T11:00:00+01:00", False, False),  # 10:00Z, not after 10:10Z
        ('data[rule]=="queue";data[run]==3', False, True),  # members of a structured value
        ("(occupancy>0.9|availableSpotNumber==6);totalSpotNumber==16", False, True),
        ("occupancy>0.9|availableSpotNumber==6;totalSpotNumber==15", False, False),  # ; before |
        ('occupancy=="0.625"', False, False),  # a text never equals a number
        ("status==true", False, False),
    ],
)
def test_q_selects(q: str, spot: bool, lot: bool) -> None:
    expr = parse_q(q)
    assert (expr.holds(SPOT), expr.holds(LOT)) == (spot, lot)


def test_quoted_text_keeps_escaped_quotes() -> None:
    assert parse_q(r'name=="say \"hi\""').holds({"name": 'say "hi"'})


@pytest.mark.parametrize(
    ("q", "message"),
    [
        ("", "empty query"),
        ("status==", "ends too early"),
        ("status==free", "'free' at character 9: expected a value"),
        ("(status==1", "ends too early"),
        ("status==1 name==2", "'name' at character 11: expected ';' (and), '|' (or)"),
        ("occupancy>1,2", "a list of values goes with == or !=, not >"),
        ("occupancy>1..2", "a range (a..b) goes with == or !=, not >"),
        ('name~="("', "bad regular expression"),
        ("name~=3", "takes a regular expression in double quotes"),
        ("status.observedAt>2026-01-01T00:00:00Z", "sub-attribute paths"),
        ("==3", "expected an attribute name"),
        ("status==1 $", "unexpected '$'"),
    ],
)
def test_bad_q_is_named(q: str, message: str) -> None:
    with pytest.raises(QueryError) as error:
        parse_q(q)
    assert message in str(error.value)


def test_a_regular_expression_cannot_hang_the_server() -> None:
    """RE2 matches in linear time: a pattern that makes Python's backtracking engine run for
    hours on a 40-character id answers at once; a backslash in ~= is the pattern's own."""
    evil = parse_q('name~="(.|.)*!"')
    assert not evil.holds({"name": "x" * 10_000})
    dotted = parse_q(r'name~="^a\.b$"')
    assert dotted.holds({"name": "a.b"}) and not dotted.holds({"name": "axb"})
    with pytest.raises(QueryError, match="at most 256 characters"):
        parse_q('name~="' + "a" * 300 + '"')
    with pytest.raises(QueryError, match=r"q: ~=: bad regular expression '\(a'"):
        parse_q('name~="(a"')
