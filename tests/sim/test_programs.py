"""Programs from a scenario's additional files: the one SUMO runs comes first."""

from __future__ import annotations

from pathlib import Path

import pytest

from sim.errors import ScenarioError
from sim.guard import green_phases
from sim.network import read_network
from sim.programs import add_programs
from sim.scenario import load_scenario


def test_a_program_from_an_additional_file_becomes_the_signal_s_own(tmp_path: Path) -> None:
    network = read_network(load_scenario("single").net_file)
    tls = network.traffic_lights["C"]
    base = tls.programs[0]
    green = [state for _, state in green_phases(base)]
    # A city's plan: its first green split into two timed steps of the same state.
    plan = tmp_path / "plan.add.xml"
    phases = "".join(
        f'<phase duration="{d}" state="{s}"/>'
        for d, s in [(20, green[0]), (10, green[0]), (4, base.phases[1].state), (25, green[1])]
    )
    plan.write_text(f'<additional><tlLogic id="C" programID="city" type="static">{phases}'
                    "</tlLogic></additional>")  # fmt: skip
    add_programs(network, [plan])
    assert [p.id for p in tls.programs] == ["city", base.id]
    assert green_phases(tls.programs[0]) == [(0, green[0]), (3, green[1])]  # the split is one


def test_a_program_of_the_wrong_length_is_named(tmp_path: Path) -> None:
    network = read_network(load_scenario("single").net_file)
    plan = tmp_path / "bad.add.xml"
    plan.write_text('<additional><tlLogic id="C" programID="x"><phase duration="5" state="GGr"/>'
                    "</tlLogic></additional>")  # fmt: skip
    with pytest.raises(ScenarioError, match=r"bad.add.xml.*'C'.*'x'.*expected phases of \d+"):
        add_programs(network, [plan])
    plan.write_text('<additional><tlLogic id="C" offset="soon"/></additional>')
    with pytest.raises(ScenarioError, match=r"bad.add.xml.*offset='soon'"):
        add_programs(network, [plan])
