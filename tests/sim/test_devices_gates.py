"""Access gates: synthetic Peruvian plates, read errors, keyed hashes, watch list, retention."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sim.devices import DeviceContext
from sim.devices.config import GatesConfig
from sim.devices.gates import AccessGates, PlateRead, ReadStore
from sim.devices.plates import PLATE_PATTERN, misread, plate_hash, random_plate
from sim.messages import GateCount, GateWatchlistHit, MessageBus, MessageLog
from sim.network import read_network
from sim.scenario import load_scenario
from tests.sim.devices_helpers import SECRET, run, single_with


def test_plates_have_the_peruvian_format_and_are_reproducible() -> None:
    plates = [random_plate(np.random.default_rng([1, 2])) for _ in range(3)]
    rng = np.random.default_rng(7)
    many = [random_plate(rng) for _ in range(2000)]
    assert all(PLATE_PATTERN.fullmatch(p) for p in many)
    assert len(set(many)) > 1990
    assert plates[0] == plates[1] == plates[2]


def test_pattern_finds_plates_in_text_but_not_hashes_or_ids() -> None:
    assert PLATE_PATTERN.findall('{"gate": "x", "plate": "A1B-234"} ABC-123,') == ["A1B-234", "ABC-123"]
    assert not PLATE_PATTERN.search("ccsim.gate.W_C_1 W_E.12 2026-11-27 9f3a1c77e0b2d4c5a6f1")
    assert not PLATE_PATTERN.search("abc-123 ABCD-123 ABC-1234")


def test_misread_changes_one_character_and_keeps_the_format() -> None:
    rng = np.random.default_rng(3)
    for _ in range(500):
        plate = random_plate(rng)
        wrong = misread(plate, rng)
        assert sum(a != b for a, b in zip(plate, wrong, strict=True)) == 1
        assert PLATE_PATTERN.fullmatch(wrong)


def test_hash_is_keyed_stable_and_hides_the_plate() -> None:
    h = plate_hash(SECRET, "ABC-123")
    assert h == plate_hash(SECRET, "ABC-123") and len(h) == 20
    assert h != plate_hash(SECRET + "x", "ABC-123")
    assert h != plate_hash(SECRET, "ABC-124")
    assert "ABC" not in h and not PLATE_PATTERN.search(h)


def test_store_purges_reads_older_than_the_retention_window() -> None:
    store = ReadStore(retention_s=600.0)
    for t in (0.0, 100.0, 500.0, 900.0):
        store.add(PlateRead(t, "g", f"h{t:g}"))
    assert store.purge(650.0) == [PlateRead(0.0, "g", "h0")]
    assert [r.t for r in store.reads()] == [100.0, 500.0, 900.0]
    assert [r.t for r in store.purge(1600.0)] == [100.0, 500.0, 900.0]
    assert store.purge(1600.0) == [] and store.reads() == []


def _gates(config: GatesConfig) -> tuple[AccessGates, MessageLog]:
    scenario = load_scenario("single")
    bus, log = MessageBus(), MessageLog()
    bus.subscribe(log)
    context = DeviceContext(read_network(scenario.net_file), bus, 1, 1.0, 0.0, Path("scenario.toml"))
    return AccessGates(context, config), log


def test_watchlisted_plates_raise_hits_and_misreads_slip_through() -> None:
    gates, log = _gates(GatesConfig(secret=SECRET, sites=("W_C",), watchlist_share=1.0,
                                    read_error_rate=0.0, unreadable_rate=0.0))  # fmt: skip
    gate = gates.gates[0]
    reads = [gates.read(float(t), gate, f"veh{t}") for t in range(20)]
    assert all(r.plate_hash is not None for r in reads)
    hits = log.of_kind("gate.watchlist_hit")
    assert len(hits) == 20
    assert (
        isinstance(hits[0].payload, GateWatchlistHit)
        and hits[0].payload.plate_hash == reads[0].plate_hash
    )
    misreading, log2 = _gates(GatesConfig(secret=SECRET, sites=("W_C",), watchlist_share=1.0,
                                          read_error_rate=1.0, unreadable_rate=0.0))  # fmt: skip
    for t in range(20):
        misreading.read(float(t), misreading.gates[0], f"veh{t}")
    assert log2.of_kind("gate.watchlist_hit") == []
    unreadable, _ = _gates(GatesConfig(secret=SECRET, sites=("W_C",), unreadable_rate=1.0))
    assert unreadable.read(0.0, unreadable.gates[0], "veh").plate_hash is None


def test_gates_in_sumo_count_reads_and_purge(tmp_path: Path) -> None:
    folder = single_with(tmp_path / "sc", f"""
[devices.gates]
secret = "{SECRET}"
sites = ["W_C", "E_C"]
watchlist_share = 0.2
retention_s = 120
interval_s = 120
""")  # fmt: skip
    result = run(folder, tmp_path / "run", end_s=600.0)
    counts = [m.payload for m in result.log.of_kind("gate.count")]
    assert counts and all(isinstance(c, GateCount) for c in counts)
    reads = sum(c.reads + c.unreadable for c in counts if isinstance(c, GateCount))
    purged = sum(c.purged for c in counts if isinstance(c, GateCount))
    assert reads > 50
    # every read older than the 120 s window is gone by the end
    late = sum(c.reads + c.unreadable for c in counts if isinstance(c, GateCount) and c.begin_s >= 480)
    assert reads - late <= purged <= reads
    assert result.log.of_kind("gate.watchlist_hit")
