"""``fixed``: the network's own signal programs, untouched (the baseline cities run today)."""

from __future__ import annotations

from sim.controllers.base import ControlContext, Controller, register


@register("fixed")
class FixedTime(Controller):
    def start(self, context: ControlContext) -> None:
        # SUMO runs the programs the net (or the scenario's additional files) defines.
        return None
