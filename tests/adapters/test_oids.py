"""The one OID table, checked against sources nobody here wrote."""

from __future__ import annotations

import re
from pathlib import Path

from adapters.ntcip.oids import ASC, OBJECTS_1202, mib_1209, objects_1209

DATA = Path(__file__).parent / "data"
MIB_1209 = Path(__file__).resolve().parents[2] / "adapters" / "ntcip" / "mib1209" / "ntcip1209-Tss.mib"


def _iris_oids() -> dict[str, tuple[int, ...]]:
    """Resolve IRIS's ``name (parent, n)`` list below asc."""
    oids: dict[str, tuple[int, ...]] = {"devices": ASC[:-1]}
    for line in (DATA / "iris_mib1202.txt").read_text().splitlines():
        match = re.fullmatch(r"(\w+) \((\w+), (\d+)\)", line.strip())
        if match:
            name, parent, n = match.groups()
            oids[name] = (*oids[parent], int(n))
    return oids


def test_the_1202_table_agrees_with_iris_and_mmitss() -> None:
    iris = _iris_oids()
    mmitss = {
        name: tuple(int(p) for p in oid.split("."))
        for name, oid in (
            line.split() for line in (DATA / "mmitss_standardmib.txt").read_text().splitlines()
            if line and not line.startswith("#")
        )
    }  # fmt: skip
    checked = set()
    for name, obj in OBJECTS_1202.items():
        if name in iris:
            assert obj.oid == iris[name], name
            checked.add(name)
        if name in mmitss:
            assert obj.instance(1) == mmitss[name], name  # MMITSS lists row 1's instance
            checked.add(name)
    # The unit and coordination scalars are in neither source (see the oids module docstring).
    assert set(OBJECTS_1202) - checked == {
        "unitControlStatus", "unitFlashStatus", "coordPatternStatus", "systemPatternControl",
    }  # fmt: skip


def test_the_compiled_1209_mib_agrees_with_the_oids_written_in_the_mib_text() -> None:
    text = MIB_1209.read_text(encoding="latin-1")
    written = dict(re.findall(r"\n(\w+)\s+OBJECT-TYPE.*?<Object Identifier>\s*([\d.]+)", text, re.S))
    served = objects_1209()
    assert served
    for name, obj in served.items():
        assert ".".join(map(str, obj.oid)) == written[name], name
    assert mib_1209()["sampleDataEntry"]["oid"] == "1.3.6.1.4.1.1206.4.2.4.3.4.1"
