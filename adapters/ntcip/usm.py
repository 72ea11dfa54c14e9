"""SNMPv3 with the User-based Security Model (USM, RFC 3414) for the agents, authPriv only.

pysnmp's engine does the security: engine-ID discovery, the time window, HMAC-SHA
authentication and AES-128 privacy. Each decrypted request is then answered by the agent's own
:class:`~adapters.ntcip.protocol.Responder`, exactly as a v2c request would be, with the
community of the user's role: a ``viewer`` user reads, an ``operator`` user may also set (its
SETs take the operators' path like any other). The engine shares the agent's UDP socket: the
agent hands it the datagrams whose version field says 3.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from adapters.ntcip import ber
from adapters.ntcip.protocol import PendingSet, Responder

log = logging.getLogger("ccsim.ntcip")


@dataclass(frozen=True)
class V3User:
    """An SNMPv3 user: name, role (``viewer`` or ``operator``), and its two passphrases
    (at least 8 characters each: SHA authentication, AES-128 privacy)."""

    name: str
    role: str
    auth_key: str
    priv_key: str

    def __post_init__(self) -> None:
        if self.role not in ("viewer", "operator"):
            raise ValueError(f"SNMPv3 user {self.name}: role '{self.role}'; expected viewer or operator")
        if len(self.auth_key) < 8 or len(self.priv_key) < 8:
            raise ValueError(f"SNMPv3 user {self.name}: passphrases need at least 8 characters")


Decide = Callable[[PendingSet, Callable[[bytes | None], None], str], None]
"""Called for a SET: (the pending set, a function taking the response bytes, who asked)."""


class V3Gateway:
    """The SNMPv3 side of one agent (build it inside the running event loop)."""

    def __init__(
        self,
        responder: Responder,
        users: list[V3User],
        read_community: bytes,
        write_community: bytes | None,
        decide: Decide,
    ) -> None:
        from pysnmp.carrier.asyncio.dgram import udp
        from pysnmp.entity import config, engine
        from pysnmp.entity.rfc3413 import context

        self.responder = responder
        self.engine = engine.SnmpEngine()
        self.transport = udp.UdpAsyncioTransport()
        config.add_transport(self.engine, udp.DOMAIN_NAME, self.transport)
        self.communities: dict[bytes, bytes] = {}
        for user in users:
            config.add_v3_user(
                self.engine, user.name,
                config.USM_AUTH_HMAC96_SHA, user.auth_key,
                config.USM_PRIV_CFB128_AES, user.priv_key,
            )  # fmt: skip
            writes = user.role == "operator" and write_community is not None
            self.communities[user.name.encode()] = write_community if writes else read_community  # type: ignore[assignment]
        self._responder = _Bridge(self.engine, context.SnmpContext(self.engine), self, decide)

    def attach(self, transport: asyncio.DatagramTransport) -> None:
        """Send the engine's answers through the agent's own socket."""
        self.transport.transport = transport

    def receive(self, data: bytes, addr: Any) -> None:
        """A datagram whose version field says 3."""
        self.transport.datagram_received(data, addr)

    def close(self) -> None:
        self.engine.close_dispatcher()


def _bridge_base() -> type:
    from pysnmp.entity.rfc3413 import cmdrsp

    return cmdrsp.CommandResponderBase  # type: ignore[no-any-return]


class _Bridge(_bridge_base()):  # type: ignore[misc]
    """A pysnmp command responder that hands every request to the ccsim responder."""

    def __init__(self, snmp_engine: Any, snmp_context: Any, gateway: V3Gateway, decide: Decide) -> None:
        from pysnmp.proto import rfc1905

        self.SUPPORTED_PDU_TYPES = (
            rfc1905.GetRequestPDU.tagSet, rfc1905.GetNextRequestPDU.tagSet,
            rfc1905.GetBulkRequestPDU.tagSet, rfc1905.SetRequestPDU.tagSet,
        )  # fmt: skip
        super().__init__(snmp_engine, snmp_context)
        self.gateway = gateway
        self.decide = decide

    def process_pdu(
        self, snmp_engine: Any, message_processing_model: Any, security_model: Any,
        security_name: Any, security_level: Any, context_engine_id: Any, context_name: Any,
        pdu_version: Any, pdu: Any, max_size: Any, state_reference: Any,
    ) -> None:  # fmt: skip
        from pyasn1.codec.ber import encoder
        from pysnmp.proto.api import v2c

        response_pdu = v2c.apiPDU.get_response(pdu)
        self._CommandResponderBase__pendingReqs[state_reference] = (
            message_processing_model, security_model, security_name, security_level,
            context_engine_id, context_name, pdu_version, response_pdu, None, max_size, {},
        )  # fmt: skip
        base = pdu.tagSet[-1]
        request = ber.Request(
            version=1,
            community=self.gateway.communities.get(bytes(security_name), b""),
            pdu=base.tagClass | base.tagFormat | base.tagId,
            request_id=int(pdu.getComponentByPosition(0)),
            error_status=int(pdu.getComponentByPosition(1)),
            error_index=int(pdu.getComponentByPosition(2)),
            varbinds=tuple(
                (tuple(int(a) for a in oid), bytes(encoder.encode(value)))
                for oid, value in v2c.apiPDU.get_varbinds(pdu)
            ),
        )

        def answer(data: bytes | None) -> None:
            try:
                if data is not None:
                    self._answer(snmp_engine, state_reference, data)
            finally:
                self.release_state_information(state_reference)

        result = self.gateway.responder.handle(request)
        if isinstance(result, PendingSet):
            self.decide(result, answer, f"snmpv3:{bytes(security_name).decode(errors='replace')}")
        else:
            answer(result)

    def _answer(self, snmp_engine: Any, state_reference: Any, data: bytes) -> None:
        response = ber.parse_response(data)
        varbinds = [(oid, _value(value)) for oid, value in response.varbinds]
        self.send_varbinds(
            snmp_engine, state_reference, response.error_status, response.error_index, varbinds
        )


def _value(tlv: bytes) -> Any:
    """A value TLV as the pysnmp object the engine encodes."""
    from pyasn1.codec.ber import decoder
    from pysnmp.proto import rfc1902, rfc1905

    kinds = {
        ber.INTEGER: rfc1902.Integer32(), ber.OCTET_STRING: rfc1902.OctetString(),
        ber.OBJECT_IDENTIFIER: rfc1902.ObjectIdentifier(), ber.COUNTER32: rfc1902.Counter32(),
        ber.GAUGE32: rfc1902.Gauge32(), ber.TIMETICKS: rfc1902.TimeTicks(),
        ber.NULL: rfc1905.univ.Null(), ber.NO_SUCH_OBJECT: rfc1905.NoSuchObject(),
        ber.NO_SUCH_INSTANCE: rfc1905.NoSuchInstance(), ber.END_OF_MIB_VIEW: rfc1905.EndOfMibView(),
    }  # fmt: skip
    spec = kinds.get(tlv[0])
    if spec is None:
        return rfc1905.univ.Null("")
    return decoder.decode(tlv, asn1Spec=spec)[0]
