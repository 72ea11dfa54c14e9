"""What happens to uplinks between a bay sensor and the broker: the radio link profiles of the
simulated devices (:mod:`adapters.lorawan.devices`), by name."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class LinkProfile:
    """What happens to uplinks between a bay sensor and the broker. Shares 0..1 of uplinks."""

    name: str
    loss: float = 0.0
    """Heard by no gateway; the device's frame counter still advances."""
    duplicate: float = 0.0
    """Delivered twice (two gateways, or a retried delivery)."""
    late: float = 0.0
    """Delivered ``late_s`` later (a backhaul outage; store and forward)."""
    late_s: float = 60.0
    dead_battery_per_h: float = 0.0
    """Per device and hour of simulation."""


LINK_PROFILES = {
    p.name: p
    for p in (
        LinkProfile("ideal"),
        LinkProfile(
            "urban", loss=0.02, duplicate=0.02, late=0.005, late_s=60.0, dead_battery_per_h=2e-4
        ),
        LinkProfile("poor", loss=0.10, duplicate=0.05, late=0.03, late_s=120.0, dead_battery_per_h=2e-3),
    )
}


def link_profile(name: str) -> LinkProfile:
    try:
        return LINK_PROFILES[name]
    except KeyError:
        raise KeyError(
            f"unknown link profile '{name}'; expected one of {', '.join(LINK_PROFILES)}"
        ) from None
