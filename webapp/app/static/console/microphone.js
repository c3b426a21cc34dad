// A record button with its level meter, for recording one sample: the button counts the
// seconds while it records, the meter shows the input level, a refused microphone is said
// in the form's status line.

import { Recorder } from "./audio.js";
import { t } from "./i18n.js";
import { formatSeconds, showError } from "./ui.js";

export class RecordButton {
  /** Selectors of the button, its meter and the status line; at most `maxSeconds` long. */
  constructor({ button, meter, status, maxSeconds }) {
    this.selectors = { button, meter, status };
    this.maxSeconds = maxSeconds;
    this.recorder = null;
  }

  get recording() { return Boolean(this.recorder && this.recorder.recording); }

  /** Start recording; false (and the reason shown) when the microphone is refused. */
  async start() {
    const button = document.querySelector(this.selectors.button);
    const meter = document.querySelector(this.selectors.meter);
    this.recorder = new Recorder({
      maxSeconds: this.maxSeconds,
      onTick: (seconds, level) => {
        button.textContent = t("rec.stop", { seconds: formatSeconds(seconds) });
        meter.firstElementChild.style.width = `${Math.round(level * 100)}%`;
      },
    });
    try {
      await this.recorder.start();
    } catch (err) {
      this.recorder = null;
      showError(new Error(t("rec.denied", { reason: err.message })),
        document.querySelector(this.selectors.status));
      return false;
    }
    button.classList.add("on");
    meter.hidden = false;
    return true;
  }

  /** Stop and hand back what was recorded ({blob, format, seconds}, or null). */
  async stop() {
    const result = await this.recorder.stop();
    this.recorder = null;
    const button = document.querySelector(this.selectors.button);
    document.querySelector(this.selectors.meter).hidden = true;
    button.classList.remove("on");
    button.textContent = t("rec.start");
    return result;
  }
}
