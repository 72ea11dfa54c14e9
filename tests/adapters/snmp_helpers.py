"""Build SNMP requests and read responses with pysnmp's codec, for the pure protocol tests."""

from __future__ import annotations

from typing import Any

from pyasn1.codec.ber import decoder, encoder
from pysnmp.proto.api import v1, v2c

from adapters.ntcip.model import build_layout
from adapters.ntcip.oids import OID

PDUS = {"get": "GetRequestPDU", "next": "GetNextRequestPDU", "set": "SetRequestPDU",
        "bulk": "GetBulkRequestPDU"}  # fmt: skip


def request(
    kind: str,
    oids: list[OID] | list[tuple[OID, Any]],
    *,
    community: bytes = b"public",
    version: int = 2,
    request_id: int = 7,
    non_repeaters: int = 0,
    repetitions: int = 10,
) -> bytes:
    module = v1 if version == 1 else v2c
    pdu = getattr(module, PDUS[kind])()
    if kind == "bulk":
        v2c.apiBulkPDU.set_defaults(pdu)
        v2c.apiBulkPDU.set_non_repeaters(pdu, non_repeaters)
        v2c.apiBulkPDU.set_max_repetitions(pdu, repetitions)
    else:
        module.apiPDU.set_defaults(pdu)
    module.apiPDU.set_request_id(pdu, request_id)
    binds = [(o, module.null) if isinstance(o[0], int) else o for o in oids]
    module.apiPDU.set_varbinds(pdu, binds)
    message = module.Message()
    module.apiMessage.set_defaults(message)
    module.apiMessage.set_community(message, community)
    module.apiMessage.set_pdu(message, pdu)
    data: bytes = encoder.encode(message)
    return data


def response(data: bytes, *, version: int = 2) -> tuple[int, int, list[tuple[OID, Any]]]:
    """(error status, error index, [(oid, value)])."""
    module = v1 if version == 1 else v2c
    message, _ = decoder.decode(data, asn1Spec=module.Message())
    pdu = module.apiMessage.get_pdu(message)
    binds = [(tuple(o), v) for o, v in module.apiPDU.get_varbinds(pdu)]
    return int(module.apiPDU.get_error_status(pdu)), int(module.apiPDU.get_error_index(pdu)), binds


def four_way_layout():  # type: ignore[no-untyped-def]
    """A four-arm junction: two vehicle streams (north-south on lanes n, s; east-west on e, w)
    and two pedestrian crossings, with a two-phase program and its yellows."""
    programs = [("0", ["GGrrGr", "yyrrrr", "rrGGrG", "rryyrr"]), ("night", ["GGrrrr", "rrGGrr"])]
    return build_layout("J1", programs, ["n", "s", "e", "w", "", ""], {4, 5}, ["n", "s", "e", "w"])
