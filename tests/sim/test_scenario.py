from __future__ import annotations

from pathlib import Path

import pytest

from sim.errors import ScenarioError
from sim.scenario import bundled_names, load_scenario


def write_toml(folder: Path, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "scenario.toml").write_text(text)
    return folder


def test_bundled_scenarios_load_with_existing_files() -> None:
    assert {"single", "corridor", "district"} <= set(bundled_names())
    for name in ("single", "corridor", "district"):
        sc = load_scenario(name)
        assert sc.name == name
        assert sc.net_file.is_file() and sc.route_files
        assert sc.sumocfg is not None and sc.sumocfg.name == "scenario.sumocfg"
        assert sc.end_s - sc.begin_s == 3600.0
        assert sc.kpi_interval_s == 300.0


def test_sumocfg_file_and_folder(grid_cfg: Path) -> None:
    by_file = load_scenario(grid_cfg)
    by_folder = load_scenario(grid_cfg.parent)
    assert by_file.net_file == by_folder.net_file == grid_cfg.parent / "grid.net.xml"
    assert by_file.end_s == 600.0


def test_net_and_routes_folder(grid_cfg: Path, tmp_path: Path) -> None:
    folder = tmp_path / "plain"
    folder.mkdir()
    for name in ("grid.net.xml", "grid.rou.xml"):
        (folder / name).write_bytes((grid_cfg.parent / name).read_bytes())
    sc = load_scenario(folder)
    assert sc.sumocfg is None
    assert [p.name for p in sc.route_files] == ["grid.rou.xml"]


def test_unknown_scenario_lists_bundled_names() -> None:
    with pytest.raises(ScenarioError, match=r"no such scenario.*district"):
        load_scenario("atlantis")


def test_unknown_field_names_file_and_field(tmp_path: Path, grid_cfg: Path) -> None:
    folder = write_toml(tmp_path / "s", f'sumocfg = "{grid_cfg}"\n[run]\nend = 10\n')
    with pytest.raises(ScenarioError) as err:
        load_scenario(folder)
    text = str(err.value)
    assert "scenario.toml" in text and "'run.end'" in text and "begin_s" in text


def test_wrong_type_names_value_and_expectation(tmp_path: Path, grid_cfg: Path) -> None:
    folder = write_toml(tmp_path / "s", f'sumocfg = "{grid_cfg}"\n[run]\nend_s = "late"\n')
    with pytest.raises(ScenarioError, match=r"'run.end_s'.*'late'.*expected a number"):
        load_scenario(folder)


def test_end_before_begin_is_refused(tmp_path: Path, grid_cfg: Path) -> None:
    text = f'sumocfg = "{grid_cfg}"\n[run]\nbegin_s = 100\nend_s = 50\n'
    with pytest.raises(ScenarioError, match=r"'run.end_s'.*50.*expected > 100"):
        load_scenario(write_toml(tmp_path / "s", text))


def test_missing_referenced_file(tmp_path: Path) -> None:
    folder = write_toml(tmp_path / "s", 'net = "nowhere.net.xml"\n')
    with pytest.raises(ScenarioError, match=r"'net'.*nowhere.net.xml.*existing file"):
        load_scenario(folder)


def test_malformed_toml(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="invalid TOML"):
        load_scenario(write_toml(tmp_path / "s", "name = \n"))


def test_malformed_sumocfg(tmp_path: Path) -> None:
    cfg = tmp_path / "x.sumocfg"
    cfg.write_text("<configuration><input>")
    with pytest.raises(ScenarioError, match=r"x.sumocfg: malformed XML"):
        load_scenario(cfg)


def test_sumocfg_pointing_at_missing_route_file(tmp_path: Path, grid_cfg: Path) -> None:
    cfg = tmp_path / "x.sumocfg"
    net = grid_cfg.parent / "grid.net.xml"
    cfg.write_text(
        f"<configuration><input><net-file value='{net}'/>"
        "<route-files value='gone.rou.xml'/></input></configuration>"
    )
    with pytest.raises(ScenarioError, match=r"'route-files'.*gone.rou.xml"):
        load_scenario(cfg)


def test_variants_combine_with_a_semicolon_and_apply_in_order() -> None:
    both = load_scenario("district", "net-plans;detectors.profile=good-loop")
    assert both.signal_plans is None and both.sensor_profile == "good-loop"
    last = load_scenario("district", "detectors.profile=good-loop;cheap-magnetometer")
    assert last.sensor_profile == "cheap-magnetometer"
    with pytest.raises(ScenarioError, match=r"unknown variant 'nope'.*joined by ';'"):
        load_scenario("district", "net-plans;nope")


def test_ntcip_bindings_are_read(tmp_path: Path, grid_cfg: Path) -> None:
    text = f"""sumocfg = "{grid_cfg}"
[[ntcip.stations]]
signal = "A"
address = "192.0.2.7:161"
drive = true
[[ntcip.stations]]
signal = "B"
address = "station-b.example:16100"
[[ntcip.controllers]]
signal = "A"
address = "192.0.2.9:161"
"""
    scenario = load_scenario(write_toml(tmp_path / "s", text))
    assert [(b.signal, b.host, b.port, b.drive, b.field) for b in scenario.ntcip_stations] == [
        ("A", "192.0.2.7", 161, True, "ntcip.stations[0]"),
        ("B", "station-b.example", 16100, False, "ntcip.stations[1]"),
    ]
    assert [(b.signal, b.port) for b in scenario.ntcip_controllers] == [("A", 161)]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ('[[ntcip.stations]]\nsignal = "A"\naddress = "192.0.2.7"\n',
         r"'ntcip.stations\[0\].address'.*'192.0.2.7'.*expected HOST:PORT"),
        ('[[ntcip.stations]]\naddress = "192.0.2.7:161"\n',
         r"'ntcip.stations\[0\].signal'.*expected a string"),
        ('[[ntcip.stations]]\nsignal = "A"\naddress = "h:1"\ndrive = "yes"\n',
         r"'ntcip.stations\[0\].drive'.*'yes'.*expected true or false"),
        ('[[ntcip.controllers]]\nsignal = "A"\naddress = "h:1"\ndrive = true\n',
         r"'ntcip.controllers\[0\].drive'.*expected one of address, signal"),
        ('[[ntcip.controllers]]\nsignal = "A"\naddress = "h:1"\n'
         '[[ntcip.controllers]]\nsignal = "A"\naddress = "h:2"\n',
         r"'ntcip.controllers\[1\].signal'.*bound twice"),
        ('[ntcip]\nstations = "A=h:1"\n', r"'ntcip.stations'.*expected \[\[ntcip.stations\]\]"),
        ('[ntcip]\nagents = 1\n', r"'ntcip.agents'.*expected one of controllers, stations"),
        ('[[ntcip.stations]]\nsignal = "A"\naddress = "::1"\n',
         r"'ntcip.stations\[0\].address'.*an IPv4 address or host name"),
        ('[[ntcip.stations]]\nsignal = "A"\naddress = "[::1]:161"\n',
         r"'ntcip.stations\[0\].address'.*an IPv4 address or host name"),
    ],
)  # fmt: skip
def test_bad_ntcip_bindings_name_the_field(
    tmp_path: Path, grid_cfg: Path, body: str, expected: str
) -> None:
    folder = write_toml(tmp_path / "s", f'sumocfg = "{grid_cfg}"\n{body}')
    with pytest.raises(ScenarioError, match=expected):
        load_scenario(folder)


@pytest.mark.parametrize(
    ("body", "field", "value", "expected"),
    [
        ("[devices.radar]\nsigns = true\nsign_distance = 80\n", "devices.radar.sign_distance", None,
         "one of count, interval_s, sign_compliance, sign_distance_m"),
        ("[[devices.incidents.inject]]\nat_s = 60\nedge = 'W_C'\nlane = '0'\n",
         "devices.incidents.inject[0].lane", "0", "an integer"),
        ("parking = 3\n", "parking", 3, "[parking]"),
        ("[detectors]\nprofile = 7\n", "detectors.profile", 7, "a string"),
        # a profile that does not exist failed only when the run started, naming no file or field
        ("[detectors]\nprofile = 'cheap-magnetometr'\n", "detectors.profile", "cheap-magnetometr",
         "one of cheap-magnetometer, degraded-radar, good-loop, ideal, or a .toml file"),
        ("[detectors]\nprofile = 'mine.toml'\n", "detectors.profile", "mine.toml",
         "an existing file"),
        ("[parking]\nbay_sensor_profile = 'cheap-magnetometr'\n", "parking.bay_sensor_profile",
         "cheap-magnetometr", "one of ideal, cheap-magnetometer, degraded-radar, good-loop or a .toml"),
        ("[detectors]\nstopline_length_m = 0\n", "detectors.stopline_length_m", 0, "> 0"),
        ("[run]\nstep_length_s = 1\n[kpi]\ninterval_s = 0.5\n", "kpi.interval_s", 0.5, ">= 1"),
        ("[signals]\nclearance = 'eu'\n", "signals.clearance", "eu", "'net' (the net's own"),
        ("routes = ['a.rou.xml', 3]\n", "routes[1]", 3, "a string"),
    ],
)  # fmt: skip
def test_bad_fields_name_the_full_path_the_value_and_the_expected_type(
    tmp_path: Path, grid_cfg: Path, body: str, field: str, value: object, expected: str
) -> None:
    folder = write_toml(tmp_path / "s", f'sumocfg = "{grid_cfg}"\n{body}')
    with pytest.raises(ScenarioError) as err:
        load_scenario(folder)
    assert err.value.path == folder.resolve() / "scenario.toml"
    assert (err.value.field, err.value.value) == (field, value)
    assert err.value.expected is not None and err.value.expected.startswith(expected)
    assert "\n" not in str(err.value)
