// Hold to talk: the microphone records while the button is held (pointer, Space or
// Enter) and the recording is sent as a voice message when it is let go.

import { Recorder } from "../audio.js";
import { t } from "../i18n.js";
import { $, formatSeconds, showError, toast } from "../ui.js";
import { interrupt } from "./reply.js";
import { sendVoice } from "./send.js";
import { player, state } from "./state.js";

const MAX_VOICE_SECONDS = 60;
const MIN_VOICE_SECONDS = 0.6;

let recorder = null;
let holdWanted = false;

async function holdStart(event) {
  if (event) event.preventDefault();
  const button = $("#talk-hold");
  if (button.disabled || recorder) return;
  holdWanted = true;
  if (state.reply || player.playing) interrupt();
  recorder = new Recorder({
    maxSeconds: MAX_VOICE_SECONDS,
    onTick: (seconds, level) => {
      $(".hold-label", button).textContent = t("talk.recording", { seconds: formatSeconds(seconds) });
      $(".hold-meter span", button).style.width = `${Math.round(level * 100)}%`;
      if (seconds >= MAX_VOICE_SECONDS - 0.1) holdEnd();
    },
  });
  button.classList.add("on");
  try {
    await recorder.start();
    if (!holdWanted) holdEnd();
  } catch (err) {
    recorder = null;
    button.classList.remove("on");
    showError(new Error(t("rec.denied", { reason: err.message })), $("#talk-status"));
  }
}

async function holdEnd() {
  holdWanted = false;
  const button = $("#talk-hold");
  if (!recorder || !recorder.recording) return;
  const current = recorder;
  recorder = null;
  button.classList.remove("on");
  $(".hold-label", button).textContent = t("talk.hold");
  $(".hold-meter span", button).style.width = "0";
  const result = await current.stop();
  if (!result || result.seconds < MIN_VOICE_SECONDS) {
    toast(t("talk.holdLonger"), "info");
    return;
  }
  await sendVoice(result);
}

/** Wire the hold-to-talk button. */
export function initHoldToTalk() {
  const hold = $("#talk-hold");
  hold.addEventListener("pointerdown", (event) => {
    hold.setPointerCapture(event.pointerId);
    holdStart(event);
  });
  hold.addEventListener("pointerup", () => holdEnd());
  hold.addEventListener("pointercancel", () => holdEnd());
  hold.addEventListener("contextmenu", (event) => event.preventDefault());
  hold.addEventListener("keydown", (event) => {
    if ((event.key === " " || event.key === "Enter") && !event.repeat) holdStart(event);
  });
  hold.addEventListener("keyup", (event) => {
    if (event.key === " " || event.key === "Enter") holdEnd();
  });
}
