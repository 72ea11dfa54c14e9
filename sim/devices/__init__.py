"""Field devices II: enforcement, radar points and signs, access gates, pedestrian counters,
air-quality stations and incidents - each a device model in a registry (see registry.py)."""

from sim.devices.config import DevicesConfig, devices_config
from sim.devices.layer import FieldDevices
from sim.devices.registry import DeviceContext, DeviceModel, device_kinds, register_device

__all__ = [
    "DeviceContext",
    "DeviceModel",
    "DevicesConfig",
    "FieldDevices",
    "device_kinds",
    "devices_config",
    "register_device",
]
