// Simulation time as the control room shows it: hh:mm:ss (``none`` when there is no time yet).

export function clock(t, none = "--:--:--") {
  if (t === null || t === undefined) return none;
  const s = Math.max(0, Math.floor(t));
  return [Math.floor(s / 3600), Math.floor(s / 60) % 60, s % 60].map((n) => String(n).padStart(2, "0")).join(":");
}
