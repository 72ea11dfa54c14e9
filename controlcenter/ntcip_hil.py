"""``ccsim serve --ntcip-controller TLS=HOST:PORT``: an external NTCIP 1202 signal controller in
the loop (hardware in the loop) drives signal TLS.

Every ``period_s`` (100 ms) its phase status groups (Greens, Yellows, Reds) are read and turned
into a SUMO state per link - NTCIP phase *n* is the signal's *n*-th signal group, numbered as
ccsim's own agents number them (``GET /api/adapters``) - and sent into the simulation, where the
signal's guard acts as the cabinet's conflict monitor: a conflict, a dark phase or
:data:`~sim.signals.SILENCE_S` without an answer puts the intersection into flash (latched, a
critical alarm) until an operator sets it back to automatic. The binding takes hold at the
controller's first answer: until then the signal stays under ccsim's own control, so a controller
that is still starting is not taken for a lost one.

The other way, the simulated detectors place the calls: a vehicle phase with a vehicle present
in the stop-line zone of one of its lanes gets phaseControlGroupVehCall, pedestrian phases a
standing phaseControlGroupPedCall (ccsim does not model push buttons: its own controllers keep
pedestrians on recall too). Calls are SET when they change, and again every ``refresh_s``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from adapters.ntcip.device import SignalDevice
from adapters.ntcip.manager import (
    ConflictMonitor,
    ControllerLink,
    Manager,
    ManagerError,
    PhaseStates,
)
from adapters.ntcip.model import SignalLayout
from controlcenter.ntcip import parse_address
from sim.errors import CcsimError
from sim.signals import ExternalShown

log = logging.getLogger("ccsim.ntcip")

WAITING_SAY_S = 10.0
"""A controller that has not answered this long after the binding started is reported (once)."""

CONTROLLER_COMMUNITY_ENV = "CCSIM_SNMP_CONTROLLER_COMMUNITY"
"""The community ccsim reads external controllers with (default ``public``)."""
CONTROLLER_WRITE_ENV = "CCSIM_SNMP_CONTROLLER_WRITE_COMMUNITY"
"""The community ccsim places calls with; without it no calls are placed (said at start)."""


def parse_controller(text: str) -> tuple[str, tuple[str, int]]:
    """``TLS=HOST:PORT`` -> (signal id, address)."""
    tls, sep, address = text.partition("=")
    if not sep or not tls:
        raise CcsimError(f"--ntcip-controller '{text}': expected TLS=HOST:PORT, e.g. C=192.0.2.9:161")
    try:
        return tls, parse_address(address)
    except CcsimError:
        raise CcsimError(
            f"--ntcip-controller '{text}': expected TLS=HOST:PORT, e.g. C=192.0.2.9:161"
        ) from None


def link_state(layout: SignalLayout, states: PhaseStates) -> str:
    """The SUMO state (one character per link) of NTCIP phase colours.

    A green link takes the character (``G`` with priority, ``g`` yielding) of the program phase
    that shows the fewest other greens beside all of the shown ones; where no program phase
    shows them together, ``G`` unless some program shows the link ``g``. Yellow is ``y``, red
    ``r``; a phase in no colour stays dark (``O``), which the conflict monitor reads as a red
    failure.
    """
    count = len(layout.link_lanes) or max((k for g in layout.groups for k in g.links), default=-1) + 1
    chars = ["O"] * count
    green_links: set[int] = set()
    for group in layout.groups:
        colour = (
            "G"
            if group.number in states.greens
            else "y"
            if group.number in states.yellows
            else "r"
            if group.number in states.reds
            else "O"
        )
        for k in group.links:
            if k < count:
                chars[k] = colour
                if colour == "G":
                    green_links.add(k)
    phases = [state for _, program in layout.programs for state in program if len(state) == count]
    # the program phases in which every shown green is green
    covering = [s for s in phases if all(s[k] in "Gg" for k in green_links)]
    if covering:
        best = min(covering, key=lambda s: sum(c in "Gg" for c in s))
        for k in green_links:
            chars[k] = best[k]
    else:
        for k in green_links:
            chars[k] = "g" if any(s[k] == "g" for s in phases) else "G"
    return "".join(chars)


class ControllerBinding:
    """Polls one external controller, reports what it shows, places the detectors' calls."""

    def __init__(
        self,
        device: SignalDevice,
        target: tuple[str, int],
        community: bytes,
        write_community: bytes | None,
        send: Callable[[ExternalShown], bool],
        *,
        period_s: float = 0.1,
        refresh_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.device = device
        self.target = target
        self.community = community
        self.write_community = write_community
        self.send = send
        self.period_s = period_s
        self.refresh_s = refresh_s
        self.clock = clock
        self.polls = 0
        self.answered = 0
        self.calls_placed = 0
        self.call_failures = 0
        self.last_state = ""
        self.vehicle_calls: frozenset[int] = frozenset()
        self._last_answer: float | None = None
        self._started = clock()
        self._said_waiting = False

    @property
    def tls(self) -> str:
        return self.device.layout.tls

    @property
    def controller(self) -> str:
        return f"{self.target[0]}:{self.target[1]}"

    async def run(self) -> None:
        manager = await Manager.open(self.community)
        layout = self.device.layout
        link = ControllerLink(
            manager, self.target, ConflictMonitor(frozenset()), groups=layout.phase_groups,
            period_s=self.period_s, timeout_s=2.5 * self.period_s,
            write_community=self.write_community, on_poll=self._on_poll,
        )  # fmt: skip
        calls = asyncio.create_task(self._place_calls(link), name=f"ccsim-hil-calls-{self.tls}")
        try:
            next_at = self.clock()
            while True:
                await asyncio.sleep(max(0.0, next_at - self.clock()))
                await link.poll_once(self.clock)
                next_at = max(next_at + self.period_s, self.clock())
        finally:
            calls.cancel()
            manager.close()

    def _on_poll(self, t: float, states: PhaseStates | None, reason: str | None) -> None:
        self.polls += 1
        if states is not None:
            self.answered += 1
            self._last_answer = t
            self.last_state = link_state(self.device.layout, states)
        elif self._last_answer is None:
            # Not bound until it first answers: a controller still starting (or a centre still
            # loading) is not a lost one, and the signal stays under ccsim's control meanwhile.
            if not self._said_waiting and t - self._started >= WAITING_SAY_S:
                self._said_waiting = True
                log.warning("ntcip controller %s (%s): no answer yet (%s); the signal stays "
                            "under ccsim's control until it answers", self.controller, self.tls,
                            reason)  # fmt: skip
            return
        silent_s = t - self._last_answer
        self.send(ExternalShown(self.tls, self.controller, self.last_state, round(silent_s, 3)))

    def wanted_calls(self) -> tuple[frozenset[int], frozenset[int]]:
        """(vehicle phases, pedestrian phases) to call now, from the simulated detectors."""
        layout = self.device.layout
        snapshot = self.device.snapshot()
        occupied = {lane for lane, r in snapshot.detectors.items() if r.present > 0}
        occupied |= set(snapshot.faults)  # a faulty detector places a standing call
        vehicle = frozenset(
            g.number
            for g in layout.groups
            if not g.pedestrian and layout.lanes_of([g.number]) & occupied
        )
        return vehicle, frozenset(g.number for g in layout.groups if g.pedestrian)

    async def _place_calls(self, link: ControllerLink) -> None:
        if self.write_community is None:
            return
        placed: tuple[frozenset[int], frozenset[int]] | None = None
        placed_at = -float("inf")
        while True:
            wanted = self.wanted_calls()
            if wanted != placed or self.clock() - placed_at >= self.refresh_s:
                try:
                    await link.place_calls(wanted[0], wanted[1])
                except ManagerError as exc:
                    self.call_failures += 1
                    log.warning("ntcip controller %s (%s): calls not placed: %s",
                                self.controller, self.tls, exc)  # fmt: skip
                    placed = None
                else:
                    self.calls_placed += 1
                    placed, placed_at = wanted, self.clock()
                    self.vehicle_calls = wanted[0]
            await asyncio.sleep(self.period_s)
