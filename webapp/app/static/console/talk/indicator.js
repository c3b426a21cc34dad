// The "playing" strip under the conversation: time left and level of the reply's audio.

import { t } from "../i18n.js";
import { $, formatSeconds, stopClip } from "../ui.js";
import { updateControls } from "./controls.js";
import { player, state } from "./state.js";

let timer = 0;

/** Follow the streamed audio until it has played out. */
export function watchPlayback() {
  clearInterval(timer);
  const box = $("#talk-playing");
  timer = setInterval(() => {
    const playing = player.playing;
    box.hidden = !playing;
    if (playing) {
      $("#talk-playing-info").textContent = t("talk.remaining", { seconds: formatSeconds(player.remaining) });
      box.style.setProperty("--level", player.level().toFixed(2));
    } else if (!state.reply || !player.active) {
      clearInterval(timer);
    }
    updateControls();
  }, 150);
}

/** Silence: the streamed reply and any clip. */
export function stopPlayback() {
  player.stop();
  stopClip();
  $("#talk-playing").hidden = true;
  updateControls();
}
