"""Hardware-in-the-loop latency: a phase change at an external NTCIP controller -> shown in SUMO.

Two ``ccsim serve single`` processes on this machine: the *field* (``--ntcip``, its signal
C's agent plays the external controller, its own adaptive control deciding the phases) and the
*centre* (``--ntcip-controller C=...``, which mirrors it into its SUMO, and ``--ntcip`` too, so
that what its SUMO shows at C can be read the same way). An observer in this process reads
phaseStatusGroupGreens and Yellows of both every ``--every`` s (10 ms); each change of the
field's colours is matched with the first change of the centre's to the same colours after it.
The latency runs from the field's agent first answering the new colours to the centre's agent
first answering them: it covers the centre's 100 ms poll, the state set in SUMO (between steps),
the live state's flush to the control centre and its agent - everything but the external
controller's own decision, which no centre can speed up. A call placed on a controller changes
its phases only when its own timing allows (minimum greens, clearances), so that part is the
controller's and not the loop's.

    python benchmarks/ntcip.py --hil-loop [--duration 600] [--field-speed 1.03]

The field runs at x1.03 so its phase changes (at its 1 s steps) sweep the centre's 100 ms poll
cycle; at exactly x1 the two clocks lock and every change lands at the same point of it.

The figures are printed and written into benchmarks/RESULTS.md between the ``ntcip-hil`` markers.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
from results_md import replace_section

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from adapters.ntcip.manager import Manager, ManagerError  # noqa: E402

TOKEN = "ntcip-hil-benchmark-token-0123456789"
WRITE = "ntcip-hil-benchmark-write"
STATUS = (1, 3, 6, 1, 4, 1, 1206, 4, 2, 1, 1, 4, 1)
COLOURS = [(*STATUS, 4, 1), (*STATUS, 3, 1)]  # Greens, Yellows of group 1


class Served:
    """One ``ccsim serve single`` child, its output drained in a thread."""

    def __init__(self, tmp: Path, name: str, *args: str, env: dict[str, str]) -> None:
        (tmp / name).mkdir()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "controlcenter.cli", "serve", "single", "--port", "0",
             "--db", f"sqlite:///{tmp / name / 'c.db'}", "--out", str(tmp / name / "run"), *args],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=REPO,
            env={**os.environ, **env, "CCSIM_ADMIN_TOKEN": TOKEN},
        )  # fmt: skip
        self.lines: list[str] = []
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip())

    def wait_line(self, prefix: str, timeout_s: float = 60.0) -> str:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            found = next((x for x in self.lines if x.startswith(prefix)), None)
            if found is not None:
                return found
            time.sleep(0.05)
        raise RuntimeError(f"no line '{prefix}...' from ccsim serve: {self.lines[-20:]}")

    def agent_port(self) -> int:
        return int(self.wait_line("ntcip: C -> udp ").split("udp 127.0.0.1:")[1].split()[0])

    def signal_c(self) -> dict[str, Any]:
        url = self.wait_line("control room: ").split(": ", 1)[1].strip()
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}) as c:
            entry: dict[str, Any] = c.get("/api/state").json()["state"].get("signals", {}).get("C", {})
        return entry

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()


async def observe(
    field: int, centre: int, duration_s: float, every_s: float
) -> tuple[list[tuple[float, tuple[int, int]]], list[tuple[float, tuple[int, int]]], int]:
    """The colour changes seen at each agent: (wall time of the first answer showing them,
    (greens, yellows)); and the number of failed reads."""
    manager = await Manager.open()
    seen: dict[int, list[tuple[float, tuple[int, int]]]] = {field: [], centre: []}
    failures = 0

    async def read(port: int) -> None:
        nonlocal failures
        try:
            values = await manager.get(("127.0.0.1", port), COLOURS, timeout_s=0.5)
        except ManagerError:
            failures += 1
            return
        now = time.monotonic()
        colours = tuple(v if isinstance(v, int) else -1 for v in (values.get(o) for o in COLOURS))
        changes = seen[port]
        if not changes or changes[-1][1] != colours:
            changes.append((now, (colours[0], colours[1])))

    try:
        end = time.monotonic() + duration_s
        while time.monotonic() < end:
            await asyncio.gather(read(field), read(centre), asyncio.sleep(every_s))
    finally:
        manager.close()
    return seen[field], seen[centre], failures


def match(
    field: list[tuple[float, tuple[int, int]]], centre: list[tuple[float, tuple[int, int]]]
) -> tuple[list[float], int]:
    """Latencies (ms) of the field's changes the centre showed, and how many it never showed
    before the field changed again (+ 1 s)."""
    latencies, missed = [], 0
    for k, (t, colours) in enumerate(field[1:], start=1):
        until = field[k + 1][0] + 1.0 if k + 1 < len(field) else float("inf")
        shown = next((tc for tc, c in centre if t <= tc <= until and c == colours), None)
        if shown is None:
            missed += 1
        else:
            latencies.append((shown - t) * 1000)
    return sorted(latencies), missed


def run(duration_s: float, every_s: float, write: bool, field_speed: float = 1.03) -> int:
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        field = Served(tmp, "field", "--ntcip", "127.0.0.1:0", "--speed", f"{field_speed:g}",
                       env={"CCSIM_SNMP_WRITE_COMMUNITY": WRITE})  # fmt: skip
        centre: Served | None = None
        try:
            field_port = field.agent_port()
            centre = Served(
                tmp, "centre", "--ntcip", "127.0.0.1:0", "--ntcip-controller",
                f"C=127.0.0.1:{field_port}", env={"CCSIM_SNMP_CONTROLLER_WRITE_COMMUNITY": WRITE},
            )  # fmt: skip
            centre_port = centre.agent_port()
            deadline = time.monotonic() + 120
            while centre.signal_c().get("mode") != "external":
                if time.monotonic() > deadline:
                    raise RuntimeError("signal C of the centre never came under the controller")
                time.sleep(0.2)
            time.sleep(5.0)  # both runs settle
            field_seen, centre_seen, failures = asyncio.run(
                observe(field_port, centre_port, duration_s, every_s)
            )
            mode = centre.signal_c().get("mode")
        finally:
            field.stop()
            if centre is not None:
                centre.stop()
    latencies, missed = match(field_seen, centre_seen)

    def pct(q: float) -> float:
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))] if latencies else float("nan")

    p99 = pct(0.99)
    cells = [len(field_seen) - 1, len(latencies), missed, f"{pct(0.5):.0f}", f"{p99:.0f}",
             f"{latencies[-1] if latencies else float('nan'):.0f}", failures]  # fmt: skip
    table_row = "| " + " | ".join(map(str, cells)) + " |"
    command = (
        f"python benchmarks/ntcip.py --hil-loop --duration {duration_s:g} --field-speed {field_speed:g}"
    )
    machine = (
        f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"load average {os.getloadavg()[0]:.1f} at the end"
    )
    body = f"""## NTCIP hardware in the loop (single; centre x1, field x{field_speed:g})

`{command}`, {dt.date.today().isoformat()}, {machine}.
Two `ccsim serve single` processes on this machine: the field at x{field_speed:g} (`--ntcip`: signal C's
agent is the external controller, its adaptive control deciding) and the centre
(`--ntcip-controller C=...`, polling it every 100 ms, placing its detectors' calls, and
`--ntcip` to read back what its SUMO shows). An observer read both agents' Greens and Yellows
every {every_s * 1000:g} ms for {duration_s:g} s: latency from the field first answering new
colours to the centre's agent first answering the same (the centre's poll, the state set in
SUMO between steps, the flush to the control centre and its agent; not the controller's own
decision time, which its timing sets). The field runs slightly faster than real time so that its
phase changes (at its 1 s steps) fall at every point of the centre's 100 ms poll cycle; at exactly
x1 both clocks lock and every change lands at the same point of it. The centre's monitor ended in
mode `{mode}`.

| phase changes | shown | missed | p50 (ms) | p99 (ms) | max (ms) | failed reads |
|---|---|---|---|---|---|---|
{table_row}

- hardware in the loop: p99 {p99:.0f} ms from a phase change at the controller to it shown in
  SUMO and read back (target <= 250 ms: {"met" if p99 <= 250 else "NOT met"})
"""
    print(body)
    if write:
        replace_section("ntcip-hil", body)
    return 0
