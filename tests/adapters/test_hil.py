"""Hardware in the loop: a second ``ccsim serve single --ntcip`` process plays the external NTCIP
1202 controller of signal C; the first binds it with ``--ntcip-controller C=HOST:PORT``, places
the simulated detectors' calls on it, mirrors its phases into SUMO, and flashes the intersection
when it dies."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from adapters.ntcip.manager import PhaseStates
from controlcenter.ntcip_hil import ControllerBinding, link_state
from sim.signals import ExternalShown
from tests.adapters.snmp_helpers import four_way_layout
from tests.e2e.serving import REPO, Server, audit, served, wait_for

pytestmark = pytest.mark.skipif(shutil.which("snmpget") is None, reason="needs net-snmp (Debian snmp)")

WRITE = "hil-write-community"


def signal_c(server: Server) -> dict[str, Any]:
    with server.client() as c:
        state: dict[str, Any] = c.get("/api/state").json()
    entry: dict[str, Any] = state["state"]["signals"]["C"]
    return {**entry, "t": state["t"]}


def test_an_external_controller_drives_a_signal_and_its_loss_flashes_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CCSIM_SNMP_WRITE_COMMUNITY", WRITE)  # the external controller's
    monkeypatch.setenv("CCSIM_SNMP_CONTROLLER_WRITE_COMMUNITY", WRITE)  # what the centre uses
    (tmp_path / "field").mkdir()
    (tmp_path / "centre").mkdir()
    with served(tmp_path / "field", "--ntcip", "127.0.0.1:0") as field:
        line = wait_for(
            lambda: next((x for x in field.lines if x.startswith("ntcip: C -> udp ")), None),
            30,
            "the external controller's agent",
        )
        port = int(line.split("udp 127.0.0.1:")[1].split()[0])
        field.wait_running()
        with served(tmp_path / "centre", "--ntcip-controller", f"C=127.0.0.1:{port}") as centre:
            bound = f"ntcip controller: C <- udp 127.0.0.1:{port} (hardware in the loop)"
            wait_for(lambda: bound in centre.lines, 30, "serve to print the binding")
            centre.wait_running()

            # The centre's simulated detectors place calls on the external controller (audited
            # there as any SET), and the signal is driven by it ("external" mode).
            calls = wait_for(
                lambda: [
                    e
                    for e in audit(field, action="signal.override")
                    if e["arguments"].get("object", "").startswith("phaseControlGroupVehCall")
                ],
                30,
                "vehicle calls placed on the external controller",
            )
            assert calls[0]["user"] == "snmp@127.0.0.1" and calls[0]["result"] == "accepted"
            wait_for(lambda: signal_c(centre)["mode"] == "external", 30, "signal C in external mode")
            with centre.client() as c:  # the controller keeps wall-clock time: so does the run
                refused = c.post("/api/simulation/speed", json={"speed": 5})
            assert refused.status_code == 409 and "in the loop" in refused.json()["detail"]

            # What SUMO shows at C in the centre is what the external controller shows.
            external, mirrored = set(), set()
            deadline = time.monotonic() + 40
            while time.monotonic() < deadline:
                external.add(signal_c(field)["state"])
                mirrored.add(signal_c(centre)["state"])
                time.sleep(0.05)
            assert len(mirrored) >= 3, f"the mirror did not follow the phases: {mirrored}"
            assert mirrored <= external, (
                f"shown but never shown by the controller: {mirrored - external}"
            )
            with centre.client() as c:
                binding = c.get("/api/adapters").json()["ntcip"]["controllers"][0]
            assert binding["answered"] >= 0.9 * binding["polls"] > 100  # 100 ms polls
            assert binding["calls_placed"] >= 1 and binding["call_failures"] == 0

            # The external controller dies: the conflict monitor flashes C within about a second.
            before = signal_c(centre)
            killed = time.monotonic()
            field.process.kill()
            field.process.wait(10)
            flashing = wait_for(
                lambda: (
                    (s := signal_c(centre))["mode"] == "failsafe" and set(s["state"]) <= {"o", "O"} and s
                ),
                10,
                "signal C flashing after its controller died",
                every_s=0.02,
            )
            wall_s = time.monotonic() - killed
            sim_s = flashing["since"] - before["t"]
            with centre.client() as c:
                alarms = c.get("/api/alarms").json()["items"]
            alarm = next(a for a in alarms if "conflict monitor tripped" in a["description"])
            assert alarm["severity"] == "critical"
            # 1 s of silence trips it, no sooner (how much later is benchmarks/ntcip.py's figure)
            silence = re.search(r"no answer from the controller for ([0-9.]+) s", alarm["description"])
            assert silence is not None and float(silence.group(1)) >= 1.0, alarm["description"]
            assert wall_s < 10, wall_s
            print(f"flash {wall_s:.2f} s wall, {sim_s:.1f} s simulated after the kill")


def test_ntcip_phase_colours_become_the_links_sumo_shows() -> None:
    layout = four_way_layout()  # phases: 1 north-south, 2 east-west, 3 and 4 the crossings
    assert [g.links for g in layout.groups] == [(0, 1), (2, 3), (4,), (5,)]
    f = frozenset
    assert link_state(layout, PhaseStates(f({1, 3}), f(), f({2, 4}))) == "GGrrGr"
    assert link_state(layout, PhaseStates(f(), f({2}), f({1, 3, 4}))) == "rryyrr"
    assert link_state(layout, PhaseStates(f({2, 4}), f(), f({1, 3}))) == "rrGGrG"
    assert link_state(layout, PhaseStates(f({1}), f(), f({2, 3, 4}))) == "GGrrrr"
    assert link_state(layout, PhaseStates(f({1}), f(), f({2}))) == "GGrrOO"  # 3, 4 dark
    # phases never green together in the programs: still mirrored (the monitor judges them)
    assert link_state(layout, PhaseStates(f({1, 2}), f(), f({3, 4}))) == "GGGGrr"


def test_a_bad_controller_binding_is_a_clear_error() -> None:
    for text, expected in (
        ("C", "--ntcip-controller 'C': expected TLS=HOST:PORT"),
        ("C=localhost", "--ntcip-controller 'C=localhost': expected TLS=HOST:PORT"),
        ("NOPE=127.0.0.1:161", "--ntcip-controller NOPE=...: no signal 'NOPE'; signals: ['C']"),
    ):
        done = subprocess.run(
            [sys.executable, "-m", "controlcenter.cli", "serve", "single", "--port", "0",
             "--ntcip-controller", text],
            capture_output=True, text=True, cwd=REPO, timeout=120,
        )  # fmt: skip
        assert done.returncode == 2, done.stderr
        assert expected in done.stderr


def test_a_controller_is_bound_at_its_first_answer_not_before() -> None:
    """A controller still starting is not a lost one: no report (so no binding and no flash)
    until it first answers; from then on silence counts from its last answer."""
    sent: list[ExternalShown] = []
    now = [0.0]
    device: Any = SimpleNamespace(layout=four_way_layout())
    binding = ControllerBinding(
        device, ("127.0.0.1", 9), b"public", None, lambda r: sent.append(r) or True,
        clock=lambda: now[0],
    )  # fmt: skip
    f = frozenset
    for t in (0.35, 1.6, 12.0):  # unanswered polls, however long
        binding._on_poll(t, None, "timeout")
    assert sent == [] and binding.polls == 3 and binding.answered == 0
    binding._on_poll(12.1, PhaseStates(f({1, 3}), f(), f({2, 4})), None)
    binding._on_poll(12.45, None, "timeout")
    binding._on_poll(13.2, None, "timeout")
    assert [(r.state, r.silent_s) for r in sent] == [("GGrrGr", 0.0), ("GGrrGr", 0.35), ("GGrrGr", 1.1)]


def test_devices_that_drive_a_signal_need_a_ccsim_controller_and_one_binding_each(
    tmp_path: Path,
) -> None:
    scenario = tmp_path / "single-bound"
    shutil.copytree(REPO / "scenarios" / "single", scenario)
    with (scenario / "scenario.toml").open("a") as toml:
        toml.write('\n[[ntcip.stations]]\nsignal = "C"\naddress = "127.0.0.1:9"\n')
    for args, expected in (
        (["single", "--controller", "fixed", "--ntcip-controller", "C=127.0.0.1:9"],
         "--controller fixed: SUMO runs the signals' own programs"),
        ([str(scenario), "--ntcip-station", "C=127.0.0.1:9"],
         "signal 'C' has two external stations"),
        (["single", "--speed", "5", "--ntcip-controller", "C=127.0.0.1:9"],
         "--speed 5: an external controller in the loop times its phases on the wall clock"),
    ):  # fmt: skip
        done = subprocess.run(
            [sys.executable, "-m", "controlcenter.cli", "serve", *args, "--port", "0"],
            capture_output=True, text=True, cwd=REPO, timeout=120,
        )  # fmt: skip
        assert done.returncode == 2, done.stderr
        assert expected in done.stderr
