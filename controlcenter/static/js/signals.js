// How a signal's state reads at a glance: the aspect its links show, and whether its mode is
// abnormal (manual or flashing). Used by the map and the intersection panel.

export function aspect(stateString) {
  const s = stateString || "";
  if (/[Gg]/.test(s)) return "green";
  if (/[yYu]/.test(s)) return "amber";
  if (/[oO]/.test(s)) return "flash";
  if (/[rRs]/.test(s)) return "red";
  return "dark";
}

// What each of SUMO's signal states means, for tooltips: the whole alphabet ccsim handles.
export const STATE_MEANING = {
  G: "green (priority)", g: "green (yielding)", s: "red, right turn after a stop",
  y: "yellow", Y: "yellow", u: "red-amber (green next)", r: "red",
  o: "flashing (yield)", O: "no signal",
};

const LETTER = { green: "G", amber: "Y", red: "R", flash: "F", dark: "-" };

// {className, letter, label} for a signal entry of the feed's ``signals`` section.
export function signalLook(entry) {
  if (!entry) return { className: "sig sig-dark", letter: "?", label: "no data yet" };
  const mode = entry.mode || "automatic";
  const shown = aspect(entry.state);
  if (mode === "failsafe") return { className: "sig sig-abnormal sig-failsafe", letter: "!", label: "FAIL-SAFE flashing" };
  if (mode === "flash" || shown === "flash") return { className: "sig sig-abnormal sig-flash", letter: "F", label: "flashing (manual)" };
  if (mode === "hold" || mode === "plan") {
    return { className: "sig sig-abnormal sig-manual", letter: "M", label: `manual: ${mode}, showing ${shown}` };
  }
  const colour = shown === "flash" ? "amber" : shown;
  return { className: `sig sig-${colour}`, letter: LETTER[shown], label: `${mode}, showing ${shown}` };
}

export function isAbnormalMode(mode) {
  return mode && mode !== "automatic";
}
