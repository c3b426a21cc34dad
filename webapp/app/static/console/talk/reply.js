// A reply in flight, from the message that asked for it to `response_complete`: its text
// as it streams (ai_text_chunk), its audio as the chunks arrive (PCM scheduled gaplessly,
// or MP3 played whole at the end), the stored messages' ids (chat_response,
// response_complete), an interruption, or an error.

import { base64ToBytes } from "../audio.js";
import { t } from "../i18n.js";
import { $, playClip, setStatus, showError, stopClip } from "../ui.js";
import { addBubble, showText, update } from "./bubbles.js";
import { updateControls } from "./controls.js";
import { knowDuration, stopPlayback, watchPlayback } from "./indicator.js";
import { player, sameSession, state } from "./state.js";

const REPLY_SILENCE_MS = 90000;
const INTERRUPT_GRACE_MS = 5000;

/** A reply is awaited; `said` is the bubble of the message it answers. */
export function startReply(said = null) {
  const reply = {
    said, bubble: null, text: "", streamedAudio: false, format: null, mp3: [],
    started: performance.now(), timer: 0, interrupted: false,
  };
  state.reply = reply;
  armReplyTimer();
  updateControls();
  return reply;
}

/** Every event of the reply shows it is alive; a long silence ends the wait. */
function armReplyTimer() {
  const reply = state.reply;
  if (!reply) return;
  clearTimeout(reply.timer);
  reply.timer = setTimeout(() => {
    if (state.reply === reply) finishReply({ error: t("talk.noAnswer") });
  }, REPLY_SILENCE_MS);
}

function replyBubble() {
  const reply = state.reply;
  if (!reply.bubble) {
    reply.bubble = addBubble({ role: "assistant", type: "text", text: "", pending: true });
  }
  return reply.bubble;
}

export function finishReply({ error = null, interrupted = false, timings = null } = {}) {
  const reply = state.reply;
  if (!reply) return;
  clearTimeout(reply.timer);
  state.reply = null;
  player.end();
  if (reply.bubble) {
    const first = timings && (timings.first_audio_ms ?? timings.first_audio ?? null);
    update(reply.bubble, {
      pending: false, interrupted: interrupted || reply.interrupted, error: Boolean(error),
      note: error || (first !== null && first !== undefined
        ? t("talk.firstAudio", { ms: Math.round(first) }) : ""),
    });
  } else if (error) {
    addBubble({ role: "assistant", type: "text", text: "", error: true, note: error });
  }
  if (state.awaitingAsr) {
    update(state.awaitingAsr, { pending: false });
    state.awaitingAsr = null;
  }
  if (error) setStatus($("#talk-status"), error, "error");
  updateControls();
}

export function onAsr(data) {
  if (!sameSession(data)) return;
  armReplyTimer();
  if (state.awaitingAsr) {
    update(state.awaitingAsr, { text: data.text || "", pending: false });
    state.awaitingAsr = null;
  }
}

export function onTextChunk(data) {
  const reply = state.reply;
  if (!sameSession(data) || !reply || reply.interrupted) return;
  armReplyTimer();
  reply.text += data.text || "";
  showText(replyBubble(), reply.text);
}

export function onAudioStart(data) {
  const reply = state.reply;
  if (!sameSession(data) || !reply || reply.interrupted) return;
  armReplyTimer();
  reply.format = (data.format || "pcm").toLowerCase();
  reply.mp3 = [];
  reply.streamedAudio = true;
  stopClip();
  if (reply.format === "pcm") player.begin(data.sample_rate || 22050);
  watchPlayback();
}

export function onAudioChunk(data) {
  const reply = state.reply;
  if (!sameSession(data) || (reply && reply.interrupted)) return;
  armReplyTimer();
  const bytes = base64ToBytes(data.audio_data || "");
  if (reply && reply.format && reply.format !== "pcm") {
    reply.mp3[data.seq ?? reply.mp3.length] = bytes;
    player.stats.chunksReceived += 1;
    return;
  }
  player.push(bytes, data.seq);
  updateControls();
}

export function onAudioEnd(data) {
  if (!sameSession(data)) return;
  if (state.call && data.reason === "interrupted") {
    // Cut by the caller's voice: drop what is still queued, at once.
    if (state.reply) state.reply.interrupted = true;
    player.stop();
  }
  const reply = state.reply;
  if (!reply) return;
  armReplyTimer();
  if (!reply.interrupted) knowDuration(data.duration);
  if (reply.format && reply.format !== "pcm" && !reply.interrupted) {
    // Encoded chunks are played whole once complete.
    playClip(URL.createObjectURL(new Blob(reply.mp3.filter(Boolean), { type: "audio/mpeg" })));
  }
  player.end();
  const el = replyBubble();
  update(el, {
    audio_url: data.audio_url || el.message.audio_url, duration: data.duration || el.message.duration,
    type: "voice", interrupted: data.reason === "interrupted" || el.message.interrupted,
  });
}

/** The stored reply: its id, its audio, and its text as stored (what was heard, when cut). */
export function onChatResponse(data) {
  const reply = state.reply;
  if (!sameSession(data) || !reply) return;
  armReplyTimer();
  const el = replyBubble();
  const patch = { message_id: data.message_id || el.message.message_id };
  if (data.type === "voice") {
    patch.type = "voice";
    if (data.message && !el.message.audio_url) patch.audio_url = data.message;
    if (!reply.streamedAudio && data.message && !reply.interrupted) playClip(data.message);
  }
  const stored = typeof data.text === "string" ? data.text : data.type === "text" && data.message;
  if (stored) patch.text = stored;
  update(el, patch);
}

/** The turn is over; both of its messages are stored, and their ids come with it. */
export function onComplete(data) {
  const reply = state.reply;
  if (!sameSession(data) || !reply) return;
  if (reply.said && data.user_message_id) update(reply.said, { message_id: data.user_message_id });
  if (data.message_id) {
    update(replyBubble(), { message_id: data.message_id, timestamp: new Date().toISOString() });
  }
  finishReply({ interrupted: Boolean(data.interrupted), timings: data.timings });
}

export function onError(data) {
  const message = data.error || data.message || t("error.unknown");
  if (data.code === 408 && !state.reply) {
    // The server closes idle connections; the next message reconnects.
    setStatus($("#talk-status"), message, "info");
    return;
  }
  // A refused join is answered by the join's own acknowledgement (join.js).
  if (state.joining) return;
  if (state.reply) finishReply({ error: message });
  else showError(new Error(message));
}

/** Stop the reply: tell the server, stop playing, and stop waiting for it soon. */
export function interrupt() {
  const reply = state.reply;
  if (reply) {
    reply.interrupted = true;
    if (state.connection && state.connection.connected && state.sessionId) {
      state.connection.emit("interrupt", { session_id: state.sessionId });
    }
    clearTimeout(reply.timer);
    reply.timer = setTimeout(() => {
      if (state.reply === reply) finishReply({ interrupted: true });
    }, INTERRUPT_GRACE_MS);
  }
  stopPlayback();
}

/** Leaving the conversation while a reply runs: stop it and stop waiting for it. */
export function abandonReply() {
  if (state.reply) {
    interrupt();
    finishReply({ interrupted: true });
  }
  stopPlayback();
}
