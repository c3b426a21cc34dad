// The "playing" strip under the conversation: who speaks, the time left of the reply's
// audio counting down, and its level. A reply's audio arrives about as fast as it plays
// (a call paces it), so what is scheduled is not what is left: until the server says how
// long the reply is (`tts_audio_chunk_end` `duration`), the time left is estimated from
// the reply's text, which arrives ahead of its audio.

import { audioTime } from "../audio.js";
import { t } from "../i18n.js";
import { $, formatSeconds, stopClip } from "../ui.js";
import { updateControls } from "./controls.js";
import { player, roleById, state } from "./state.js";

// Seconds of speech per character: a Chinese character is about a syllable, four of
// them a second; English runs at about thirteen letters a second (the local
// voices' pace: an estimate a little long counts down steadily into the exact figure).
const SECONDS_PER_HAN = 0.25;
const SECONDS_PER_OTHER = 0.075;
const HAN = /[\u3400-\u9fff\uf900-\ufaff]/;

// Text that has not grown for this long is taken as complete (a model writes faster
// than it is spoken, and without pauses).
const TEXT_SETTLED_MS = 400;

let timer = 0;
let known = null; // the reply's whole duration in seconds, once the server has said it
let watched = null; // the reply whose audio is playing
let textLength = 0;
let textGrewAt = 0;
let shown = Infinity; // the last time left shown: an estimate never counts back up

/** How long `text` takes to say, roughly. */
export function speakingSeconds(text) {
  let seconds = 0;
  for (const ch of String(text || "")) seconds += HAN.test(ch) ? SECONDS_PER_HAN : SECONDS_PER_OTHER;
  return seconds;
}

/** Seconds of this stream already played (gaps between chunks do not count). */
function playedSeconds() {
  const now = audioTime();
  if (now === null) return 0;
  let played = 0;
  for (const chunk of player.stats.timeline) {
    if (chunk.start >= now) break;
    played += Math.min(chunk.end, now) - chunk.start;
  }
  return played;
}

/** Seconds left, or null while the reply's text is still coming (no honest estimate yet). */
function secondsLeft() {
  const played = playedSeconds();
  if (known !== null) return Math.max(0, known - played);
  const text = (watched && watched.text) || "";
  const now = performance.now();
  if (text.length !== textLength) {
    textLength = text.length;
    textGrewAt = now;
  }
  if (now - textGrewAt < TEXT_SETTLED_MS) return null;
  shown = Math.min(shown, Math.max(player.remaining, speakingSeconds(text) - played));
  return shown;
}

/** The server told the reply's length: the countdown is exact from here on. */
export function knowDuration(seconds) {
  if (seconds > 0) known = seconds;
}

/** Follow the streamed audio until it has played out. */
export function watchPlayback() {
  clearInterval(timer);
  known = null;
  watched = state.reply;
  textLength = 0;
  textGrewAt = performance.now();
  shown = Infinity;
  const box = $("#talk-playing");
  timer = setInterval(() => {
    const playing = player.playing;
    box.hidden = !playing;
    if (playing) {
      const role = roleById(state.roleId);
      $("#talk-playing-label").textContent = role
        ? t("talk.playingNamed", { name: role.name }) : t("talk.playing");
      const left = secondsLeft();
      $("#talk-playing-info").textContent = left === null ? ""
        : t("talk.remaining", { seconds: formatSeconds(left) });
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
