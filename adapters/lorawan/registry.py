"""Which LoRaWAN device sits in which parking bay: the device registry, a CSV file.

One row per device, with a header: ``device_id,dev_eui,model,zone,bay`` - the network server's
device id, its DevEUI (16 hex digits), the sensor model (``brand/model``, see
:func:`adapters.lorawan.codecs.models`), the SUMO parking area and the bay's index in it (0...).
``ccsim serve --mqtt`` writes the simulated fleet's registry; for real sensors, write your own.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from adapters.lorawan.codecs import codec_for

COLUMNS = ("device_id", "dev_eui", "model", "zone", "bay")


class RegistryError(ValueError):
    """A registry file is malformed; the message names the file, line, field and value."""


@dataclass(frozen=True, slots=True)
class Device:
    device_id: str
    dev_eui: str
    model: str
    zone: str
    bay: int


class Registry:
    """Devices by device id and by DevEUI (ChirpStack names devices by DevEUI)."""

    def __init__(self, devices: Iterable[Device] = ()) -> None:
        self.by_id: dict[str, Device] = {}
        self.by_eui: dict[str, Device] = {}
        for device in devices:
            self.add(device)

    def add(self, device: Device) -> None:
        self.by_id[device.device_id] = device
        self.by_eui[device.dev_eui.upper()] = device

    def find(self, device_id: str, dev_eui: str) -> Device | None:
        """The device an uplink came from: by DevEUI when given, else by device id."""
        if dev_eui:
            return self.by_eui.get(dev_eui.upper())
        return self.by_id.get(device_id)

    def __len__(self) -> int:
        return len(self.by_id)

    def to_csv(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(COLUMNS)
        for d in self.by_id.values():
            writer.writerow((d.device_id, d.dev_eui, d.model, d.zone, d.bay))
        return out.getvalue()

    def write(self, path: Path) -> None:
        path.write_text(self.to_csv())


def read_registry(path: Path) -> Registry:
    """Read a registry file; :class:`RegistryError` names what is wrong and where."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise RegistryError(f"{path}: cannot read the device registry ({exc.strerror})") from None
    return parse_registry(text, str(path))


def parse_registry(text: str, name: str = "registry") -> Registry:
    rows = csv.DictReader(io.StringIO(text))
    if rows.fieldnames is None or tuple(rows.fieldnames) != COLUMNS:
        raise RegistryError(f"{name}: header {rows.fieldnames}; expected {','.join(COLUMNS)}")
    registry = Registry()
    for line, row in enumerate(rows, start=2):
        where = f"{name}: line {line}"
        eui = row["dev_eui"] or ""
        try:
            if len(eui) != 16:
                raise ValueError
            int(eui, 16)
        except ValueError:
            raise RegistryError(f"{where}: field 'dev_eui' is '{eui}'; expected 16 hex digits") from None
        try:
            codec_for(row["model"])
        except KeyError as exc:
            raise RegistryError(f"{where}: field 'model': {exc.args[0]}") from None
        bay = row["bay"] or ""
        if not bay.isdigit():
            raise RegistryError(f"{where}: field 'bay' is '{bay}'; expected a bay index 0, 1...")
        if not row["device_id"] or not row["zone"]:
            raise RegistryError(f"{where}: fields 'device_id' and 'zone' must not be empty")
        if row["device_id"] in registry.by_id:
            raise RegistryError(f"{where}: device '{row['device_id']}' is listed twice")
        registry.add(Device(row["device_id"], eui.upper(), row["model"], row["zone"], int(bay)))
    return registry
