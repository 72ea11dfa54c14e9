"""The errors a conformance run measured, as a ccsim sensor profile (``sim/sensor_profiles.py``'s
TOML), so a scenario can run with the device's accuracy (``[detectors] profile = "x.toml"``).

What one run can fit: the **detection probability** is the pooled ratio of counted to true
vehicles over every lane and period (capped at 1), with its 95 % interval in a comment;
counts above the truth become **false detections** per detector-hour; the **occupancy noise**
is the standard deviation of the per-period occupancy errors (a fraction, 0..1); the **latency**
is the presence calls' mean delay where the station's presence outputs were read (else 0).
Speed bias and noise and missed and false presence calls are fitted too (``fitted_profile`` in
results.json, with their intervals; see ``detection``) and written as comments: a sensor profile
has no field for them. Faults are not fitted (a run this long rarely sees a fault).
"""

from __future__ import annotations

import math
from typing import Any

from adapters.conformance.accuracy import LaneInterval, volume_error
from adapters.conformance.detection import fit_text, fitted_detection


def fitted_profile(results: dict[str, Any]) -> dict[str, Any] | None:
    """The fitted figures (None without an accuracy run): profile fields plus their intervals."""
    acc = results.get("accuracy")
    if not acc:
        return None
    rows = [LaneInterval(**r) for lane in acc["intervals"].values() for r in lane]
    pooled = volume_error(rows)
    if pooled.error_pct is None:
        return None
    ratio = 1 + pooled.error_pct / 100
    sc = results["scenario"]
    hours = len(acc["intervals"]) * (sc["end_s"] - sc["begin_s"]) / 3600  # detector-hours
    errors = [
        (r.device_occupancy_pct - r.true_occupancy_pct) / 100
        for r in rows
        if r.device_occupancy_pct is not None and r.true_occupancy_pct is not None
    ]
    mean = sum(errors) / len(errors) if errors else 0.0
    sd = math.sqrt(sum((e - mean) ** 2 for e in errors) / (len(errors) - 1)) if len(errors) > 1 else 0.0

    def bounded(pct: float | None) -> float | None:
        return None if pct is None else min(1.0, 1 + pct / 100)

    return {
        "detection_probability": round(min(1.0, ratio), 4),
        "detection_probability_ci": [bounded(pooled.low_pct), bounded(pooled.high_pct)],
        "false_detections_per_h": round(max(0.0, pooled.device - pooled.true) / hours, 2)
        if hours > 0
        else 0.0,
        "occupancy_noise_sd": round(sd, 4),
        "vehicles": pooled.true,
        **fitted_detection(acc),
    }


def profile_toml(results: dict[str, Any]) -> str | None:
    """The fitted profile as a TOML file ``read_profile`` takes (None without an accuracy run)."""
    if results["device"]["kind"] == "lorawan":
        return bay_profile_toml(results)
    fit = fitted_profile(results)
    if fit is None:
        return None
    low, high = fit["detection_probability_ci"]
    ci = "n/a" if low is None else f"{low:.4f} .. {high:.4f}"
    ident = (results["device"].get("identity") or {}).get("sysDescr", "unidentified device")
    plan = results["plan"]["name"]
    name = f"measured-{plan}"
    latency = fit.get("latency_s")
    measured = fit_text(fit)
    return "\n".join([
        f"# Fitted by ccsim conformance from plan '{plan}' ({results['created_utc']}):",
        f"# {ident}, {fit['vehicles']} true vehicles over {len(results['scenario']['zones'])} lanes.",
        f"# detection_probability 95 % CI: {ci}. "
        + ("Latency and faults are not fitted by one run." if latency is None
           else "Faults are not fitted by one run."),
        *([f"# Also measured: {measured}."] if measured else []),
        f'name = "{name}"',
        f'description = "Measured: {ident.replace(chr(34), "")}"',
        f"detection_probability = {fit['detection_probability']}",
        f"false_detections_per_h = {fit['false_detections_per_h']}",
        f"occupancy_noise_sd = {fit['occupancy_noise_sd']}",
        f"latency_s = {max(0.0, round(latency, 2)) if latency is not None else 0}",
        "",
    ])  # fmt: skip


def bay_profile_toml(results: dict[str, Any]) -> str | None:
    """Parking sensors' fitted figures (``results['fitted_profile']``) as a bay sensor profile a
    scenario takes (``[parking] bay_sensor_profile = "profile.toml"``)."""
    fit = results.get("fitted_profile")
    if not fit:
        return None

    def ci(key: str, spec: str) -> str:
        low, high = fit[f"{key}_ci"]
        return "n/a" if low is None else f"{low:{spec}} .. {high:{spec}}"

    plan = results["plan"]["name"]
    model = results["device"]["model"]
    return "\n".join([
        f"# Fitted by ccsim conformance from plan '{plan}' ({results['created_utc']}):",
        f"# {model} parking sensors, {fit['changes']} bay state changes judged.",
        f"# 95 % CIs: detection_probability {ci('detection_probability', '.4f')}, "
        f"false_detections_per_h {ci('false_detections_per_h', '.4f')}, latency_s "
        f"{ci('latency_s', '.2f')}. Faults are not fitted by one run.",
        f'name = "measured-{plan}"',
        f'description = "Measured: {model} parking sensors"',
        f"detection_probability = {fit['detection_probability']}",
        f"false_detections_per_h = {fit['false_detections_per_h']}",
        f"latency_s = {fit['latency_s']}",
        "",
    ])  # fmt: skip
