// An audible cue for new critical alarms: three short tones (Web Audio, nothing to download).
// On unless the operator turns it off (remembered in this browser). Browsers let a page make a
// sound only after the user has interacted with it; the first click or key press unlocks it.

const TONES = [0, 0.25, 0.5];  // start of each tone, s
const TONE_S = 0.15;
const KEY = "ccsim.sound";

export class Chime {
  constructor(button) {
    this.button = button;
    this.enabled = localStorage.getItem(KEY) !== "off";
    this.context = null;
    this.played = 0;
    button.addEventListener("click", () => {
      this.enabled = !this.enabled;
      localStorage.setItem(KEY, this.enabled ? "on" : "off");
      this.show();
    });
    for (const kind of ["pointerdown", "keydown"]) {
      document.addEventListener(kind, () => this.unlock(), { passive: true });
    }
    this.show();
  }

  show() {
    this.button.setAttribute("aria-pressed", String(this.enabled));
    this.button.textContent = this.enabled ? "\u266A sound on" : "\u266A sound off";
  }

  unlock() {
    if (!this.context && window.AudioContext) this.context = new AudioContext();
    if (this.context && this.context.state === "suspended") this.context.resume().catch(() => {});
  }

  play() {
    this.played += 1;
    if (!this.enabled) return;
    this.unlock();
    const audio = this.context;
    if (!audio || audio.state !== "running") return;
    const now = audio.currentTime;
    for (const start of TONES) {
      const tone = audio.createOscillator();
      const gain = audio.createGain();
      tone.frequency.value = 880;
      gain.gain.setValueAtTime(0.0001, now + start);
      gain.gain.exponentialRampToValueAtTime(0.3, now + start + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, now + start + TONE_S);
      tone.connect(gain).connect(audio.destination);
      tone.start(now + start);
      tone.stop(now + start + TONE_S + 0.02);
    }
  }
}
