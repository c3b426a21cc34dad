// Talk: real-time conversation with a role over Socket.IO. The reply's text appears as it
// streams (ai_text_chunk) and its audio plays as the chunks arrive (tts_audio_chunk, 16-bit
// PCM scheduled gaplessly in Web Audio). Hold-to-talk records the microphone and sends it
// as a voice message; Stop sends `interrupt`. Call starts a hands-free call: the
// microphone streams (call.js), the server finds the turns and shows partial transcripts,
// and speaking over the reply interrupts it. History comes from the REST API.

import { api, listAll, upload } from "./api.js";
import {
  PcmStreamPlayer, Recorder, base64ToBytes, blobToBase64, formatOf,
} from "./audio.js";
import { CallMicrophone } from "./call.js";
import { ChatConnection } from "./chat.js";
import { getLang, onLangChange, t } from "./i18n.js";
import * as store from "./store.js";
import {
  $, busy, clear, confirmAction, formatSeconds, formatTime, h, icon, playClip, setStatus,
  showError, stopClip, toast,
} from "./ui.js";

export const id = "talk";

const REPLY_SILENCE_MS = 90000;
const JOIN_TIMEOUT_MS = 15000;
const MAX_VOICE_SECONDS = 60;
const SESSION_KEY = "tingshuo.talk.session";

const player = new PcmStreamPlayer();

/** What the page has seen; tests read it through window.__console.talk. */
export const stats = {
  connection: "off",
  sessionId: null,
  roleId: null,
  joins: 0,
  textSent: 0,
  voiceSent: 0,
  textChunks: 0,
  replyText: "",
  textShownWhileStreaming: 0,
  replies: 0,
  chunkStarts: 0,
  chunkEnds: 0,
  audioFormat: null,
  sampleRate: null,
  lastChunkEnd: null,
  lastResponse: null,
  lastComplete: null,
  asr: [],
  errors: [],
  interrupts: 0,
  call: { state: "off", started: 0, ended: 0, piecesSent: 0, vad: [], partials: [], results: [],
    interrupted: 0 },
  audio: player.stats,
  get chunksReceived() { return player.stats.chunksReceived; },
  get chunksScheduled() { return player.stats.chunksScheduled; },
};

const state = {
  roleId: null,
  sessionId: null,
  reply: null,
  awaitingAsr: null,
  joinWaiters: [],
  call: null,
};

let connection = null;
let rolesCache = [];
let recorder = null;
let holdWanted = false;
let playingTimer = 0;

// ---- small pieces ------------------------------------------------------------------------

function roleById(roleId) {
  return rolesCache.find((role) => role.id === Number(roleId)) || null;
}

/** A stable positive 31-bit number for a string (the voice API's messageId is an integer). */
function numericKey(text) {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i += 1) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return (hash >>> 1) || 1;
}

function scrollToEnd() {
  const log = $("#talk-log");
  log.scrollTop = log.scrollHeight;
}

function updateControls() {
  const ready = Boolean(connection && state.roleId);
  const inFlight = Boolean(state.reply);
  $("#talk-send").disabled = !ready || inFlight;
  $("#talk-hold").disabled = !ready || !Recorder.supported() || Boolean(state.call);
  $("#talk-call").disabled = !ready || !CallMicrophone.supported();
  $("#talk-attach").disabled = !ready || inFlight;
  $("#talk-stop").hidden = !inFlight && !player.playing;
  $("#talk-clear").disabled = !state.sessionId;
  $("#talk-delete").disabled = !state.sessionId;
}

function setConnectionBadge(connState, detail = "") {
  stats.connection = connState;
  const badge = $("#talk-conn");
  badge.dataset.state = connState;
  badge.textContent = t(`conn.${connState}`);
  badge.title = detail || "";
  updateControls();
}

function setTitle() {
  const role = roleById(state.roleId);
  $("#talk-title").textContent = role ? t("talk.withRole", { name: role.name }) : t("talk.pickRole");
}

// ---- message bubbles ---------------------------------------------------------------------

function bubble(message) {
  const el = h("div", { class: `bubble ${message.role}` });
  el.message = message;
  fillBubble(el);
  return el;
}

function fillBubble(el) {
  const message = el.message;
  clear(el);
  el.className = `bubble ${message.role}${message.pending ? " pending" : ""}${message.error ? " failed" : ""}`;
  if (message.message_id) el.dataset.messageId = message.message_id;
  const text = message.text || message.transcription || "";
  const content = h("div", { class: "bubble-text" });
  if (message.type === "voice" && message.role === "user") {
    content.append(h("span", { class: "voice-tag" }, icon("mic"), formatSeconds(message.duration) || ""));
  }
  content.append(h("span", { class: "text", text: text || (message.pending ? "…" : "") }));
  if (!text && message.role === "user" && message.type === "voice" && message.pending) {
    content.append(h("span", { class: "muted small", text: ` ${t("talk.recognising")}` }));
  }
  const meta = [];
  if (message.timestamp) meta.push(formatTime(message.timestamp, getLang()));
  if (message.role === "assistant" && message.duration) meta.push(formatSeconds(message.duration));
  if (message.interrupted) meta.push(t("talk.interrupted"));
  if (message.note) meta.push(message.note);
  const actions = h("div", { class: "bubble-actions" });
  const canSpeak = message.audio_url || message.localUrl || (message.role === "assistant" && text);
  if (canSpeak) {
    actions.append(h("button", {
      type: "button", class: "icon replay", title: t("talk.replay"), "aria-label": t("talk.replay"),
      onclick: (event) => replay(message, event.currentTarget),
    }, "▶"));
  }
  if (message.message_id) {
    actions.append(h("button", {
      type: "button", class: "icon delete", title: t("common.delete"), "aria-label": t("common.delete"),
      onclick: (event) => deleteMessage(el, event.currentTarget),
    }, icon("trash")));
  }
  el.append(content, h("div", { class: "bubble-foot" },
    h("span", { class: "meta", text: meta.join(" · ") }), actions));
}

function addBubble(message) {
  const log = $("#talk-log");
  const empty = $(".talk-empty", log);
  if (empty) empty.remove();
  const el = bubble(message);
  log.append(el);
  scrollToEnd();
  return el;
}

function update(el, patch) {
  Object.assign(el.message, patch);
  fillBubble(el);
  scrollToEnd();
}

async function replay(message, button) {
  const url = message.audio_url || message.localUrl || message.spokenUrl;
  if (url) {
    playClip(url, button);
    return;
  }
  const text = message.text || message.transcription;
  const role = roleById(state.roleId);
  try {
    // A text reply has no audio of its own: speak it with the role's voice (cached).
    const data = await busy(button, () => api("/api/voice/generate", {
      method: "POST",
      json: {
        messageId: numericKey(`${message.message_id || ""}:${text}`),
        text,
        voiceProfile: role ? { voiceName: role.voice_type } : undefined,
      },
    }));
    message.spokenUrl = data.audioUrl;
    playClip(data.audioUrl, button);
  } catch (err) {
    showError(err);
  }
}

async function deleteMessage(el, button) {
  if (!confirmAction(t("talk.confirmDeleteMessage"))) return;
  try {
    await busy(button, () => api(`/api/messages/${el.message.message_id}`, { method: "DELETE" }));
    el.remove();
    toast(t("talk.messageDeleted"), "success");
  } catch (err) {
    showError(err);
  }
}

function showEmptyLog() {
  const log = $("#talk-log");
  clear(log);
  const role = roleById(state.roleId);
  log.append(h("div", { class: "talk-empty" },
    h("p", { text: role ? t("talk.emptyWithRole", { name: role.name }) : t("talk.emptyNoRole") }),
    role ? h("p", { class: "muted small", text: role.description }) : null));
}

// ---- history and sessions ----------------------------------------------------------------

async function loadHistory() {
  const log = $("#talk-log");
  if (!state.sessionId) {
    showEmptyLog();
    return;
  }
  const sessionId = state.sessionId;
  clear(log);
  log.append(h("p", { class: "loading", text: t("common.loading") }));
  try {
    const messages = await listAll(`/api/sessions/${sessionId}/messages`, { limit: 2000 });
    if (sessionId !== state.sessionId) return;
    clear(log);
    if (!messages.length) showEmptyLog();
    messages.forEach((message) => log.append(bubble(message)));
    scrollToEnd();
  } catch (err) {
    clear(log);
    showError(err);
  }
}

/** After a reply, take the stored messages' ids and audio from the server. */
async function syncHistory() {
  const sessionId = state.sessionId;
  if (!sessionId) return;
  try {
    const messages = await listAll(`/api/sessions/${sessionId}/messages`, { limit: 2000 });
    if (sessionId !== state.sessionId || state.reply) return;
    const shown = [...$("#talk-log").querySelectorAll(".bubble")];
    const unmatched = shown.filter((el) => !el.message.message_id);
    const known = new Set(shown.map((el) => el.message.message_id).filter(Boolean));
    const fresh = messages.filter((message) => !known.has(message.message_id));
    for (const el of unmatched) {
      const index = fresh.findIndex((message) => message.role === el.message.role);
      if (index < 0) continue;
      const [stored] = fresh.splice(index, 1);
      const localUrl = el.message.localUrl;
      el.message = { ...stored, localUrl, interrupted: el.message.interrupted, note: el.message.note };
      fillBubble(el);
    }
  } catch (err) {
    console.warn(err);
  }
}

async function loadSessions() {
  const list = $("#talk-sessions");
  try {
    const data = await api("/api/sessions", { query: { page: 1, page_size: 50 } });
    clear(list);
    const conversations = data.list.filter((session) => session.role_id);
    for (const session of conversations) {
      const role = roleById(session.role_id);
      const item = h("li", {
        class: `item session${session.session_id === state.sessionId ? " active" : ""}`,
        dataset: { sessionId: session.session_id },
      },
      h("button", { type: "button", class: "session-open", onclick: () => openSession(session) },
        h("strong", { text: role ? role.name : `#${session.role_id}` }),
        h("small", { class: "muted", text: formatTime(session.start_time, getLang()) })),
      h("button", {
        type: "button", class: "icon delete", title: t("talk.deleteSession"),
        "aria-label": t("talk.deleteSession"),
        onclick: (event) => deleteSession(session.session_id, event.currentTarget),
      }, icon("trash")));
      list.append(item);
    }
    $("#talk-sessions-empty").hidden = conversations.length > 0;
  } catch (err) {
    showError(err);
  }
}

function markActiveSession() {
  document.querySelectorAll("#talk-sessions .session").forEach((item) => {
    item.classList.toggle("active", item.dataset.sessionId === state.sessionId);
  });
}

function setSession(sessionId) {
  state.sessionId = sessionId;
  stats.sessionId = sessionId;
  if (sessionId) sessionStorage.setItem(SESSION_KEY, sessionId);
  else sessionStorage.removeItem(SESSION_KEY);
  markActiveSession();
  updateControls();
}

async function openSession(session) {
  abandonReply();
  state.roleId = session.role_id;
  stats.roleId = session.role_id;
  $("#talk-role").value = String(session.role_id);
  setTitle();
  setSession(session.session_id);
  await loadHistory();
  if (connection && connection.connected) {
    join({ role_id: session.role_id, session_id: session.session_id }).catch(showError);
  }
}

async function deleteSession(sessionId, button) {
  if (!confirmAction(t("talk.confirmDeleteSession"))) return;
  try {
    await busy(button, () => api(`/api/sessions/${sessionId}`, { method: "DELETE" }));
    toast(t("talk.sessionDeleted"), "success");
    if (sessionId === state.sessionId) {
      abandonReply();
      setSession(null);
      showEmptyLog();
    }
    await loadSessions();
  } catch (err) {
    showError(err);
  }
}

async function clearMessages() {
  if (!state.sessionId || !confirmAction(t("talk.confirmClear"))) return;
  try {
    await busy($("#talk-clear"), () => api(`/api/sessions/${state.sessionId}/messages`, { method: "DELETE" }));
    stopPlayback();
    showEmptyLog();
    toast(t("talk.cleared"), "success");
  } catch (err) {
    showError(err);
  }
}

// ---- joining -----------------------------------------------------------------------------

function join(payload) {
  return new Promise((resolve, reject) => {
    const waiter = { resolve, reject };
    waiter.timer = setTimeout(() => {
      state.joinWaiters = state.joinWaiters.filter((other) => other !== waiter);
      reject(new Error(t("talk.joinTimeout")));
    }, JOIN_TIMEOUT_MS);
    state.joinWaiters.push(waiter);
    connection.emit("join", { ...payload, audio_format: "pcm" });
  });
}

function settleJoins(error, data) {
  const waiters = state.joinWaiters;
  state.joinWaiters = [];
  for (const waiter of waiters) {
    clearTimeout(waiter.timer);
    if (error) waiter.reject(error);
    else waiter.resolve(data);
  }
}

/** The session to talk in: the current one, or a new one for the chosen role. */
async function ensureSession() {
  if (!state.roleId) throw new Error(t("talk.pickRole"));
  await connection.whenConnected();
  if (state.sessionId && stats.joinedSession === state.sessionId) return state.sessionId;
  const payload = { role_id: state.roleId };
  if (state.sessionId) payload.session_id = state.sessionId;
  setStatus($("#talk-status"), t("talk.joining"));
  await join(payload);
  setStatus($("#talk-status"), "");
  return state.sessionId;
}

function onJoined(data) {
  stats.joins += 1;
  stats.joinedSession = data.session_id;
  stats.audioFormat = data.audio_format || null;
  const isNew = data.session_id !== state.sessionId;
  state.roleId = data.role_id || state.roleId;
  setSession(data.session_id);
  if (data.role && data.role.name) $("#talk-title").textContent = t("talk.withRole", { name: data.role.name });
  if (isNew) loadSessions();
  settleJoins(null, data);
}

// ---- a reply in flight -------------------------------------------------------------------

function startReply() {
  const reply = {
    bubble: null, text: "", streamedAudio: false, format: null, mp3: [],
    started: performance.now(), timer: 0, interrupted: false,
  };
  state.reply = reply;
  armReplyTimer();
  updateControls();
  return reply;
}

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
  if (!reply) return null;
  if (!reply.bubble) {
    reply.bubble = addBubble({ role: "assistant", type: "text", text: "", pending: true });
  }
  return reply.bubble;
}

function finishReply({ error = null, interrupted = false, timings = null, quiet = false } = {}) {
  const reply = state.reply;
  if (!reply) return;
  clearTimeout(reply.timer);
  state.reply = null;
  player.end();
  if (reply.bubble) {
    const notes = [];
    if (timings && typeof timings === "object") {
      const first = timings.first_audio_ms ?? timings.first_audio ?? null;
      if (first !== null && first !== undefined) notes.push(t("talk.firstAudio", { ms: Math.round(first) }));
    }
    update(reply.bubble, {
      pending: false, interrupted: interrupted || reply.interrupted, error: Boolean(error),
      note: error || notes.join(" "),
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
  if (!error && !quiet) syncHistory();
}

function sameSession(data) {
  return !data.session_id || !state.sessionId || data.session_id === state.sessionId;
}

function onAsr(data) {
  if (!sameSession(data)) return;
  armReplyTimer();
  stats.asr.push(data.text || "");
  if (state.awaitingAsr) {
    update(state.awaitingAsr, { text: data.text || "", pending: false });
    state.awaitingAsr = null;
  }
}

function onTextChunk(data) {
  if (!sameSession(data) || !state.reply || state.reply.interrupted) return;
  armReplyTimer();
  const reply = state.reply;
  reply.text += data.text || "";
  stats.textChunks += 1;
  stats.replyText = reply.text;
  const el = replyBubble();
  el.message.text = reply.text;
  $(".text", el).textContent = reply.text;
  if (el.isConnected && state.reply === reply) stats.textShownWhileStreaming += 1;
  scrollToEnd();
}

function onAudioStart(data) {
  if (!sameSession(data) || !state.reply || state.reply.interrupted) return;
  armReplyTimer();
  stats.chunkStarts += 1;
  stats.sampleRate = data.sample_rate || null;
  const format = (data.format || "pcm").toLowerCase();
  state.reply.format = format;
  state.reply.mp3 = [];
  state.reply.streamedAudio = true;
  stopClip();
  if (format === "pcm") player.begin(data.sample_rate || 22050);
  watchPlayback();
}

function onAudioChunk(data) {
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

function onAudioEnd(data) {
  if (!sameSession(data)) return;
  if (state.call && data.reason === "interrupted") {
    // Cut by the caller's voice: drop what is still queued, at once.
    stats.call.interrupted += 1;
    if (state.reply) state.reply.interrupted = true;
    player.stop();
  }
  stats.chunkEnds += 1;
  stats.lastChunkEnd = data;
  const reply = state.reply;
  if (!reply) return;
  armReplyTimer();
  if (reply.format && reply.format !== "pcm" && !reply.interrupted) {
    // Encoded chunks are played whole once complete.
    const blob = new Blob(reply.mp3.filter(Boolean), { type: "audio/mpeg" });
    playClip(URL.createObjectURL(blob));
  }
  player.end();
  const el = replyBubble();
  update(el, {
    audio_url: data.audio_url || el.message.audio_url, duration: data.duration || el.message.duration,
    type: "voice", interrupted: data.reason === "interrupted" || el.message.interrupted,
  });
}

function onChatResponse(data) {
  if (!sameSession(data)) return;
  stats.lastResponse = data;
  const reply = state.reply;
  if (!reply) return;
  armReplyTimer();
  const el = replyBubble();
  const patch = { message_id: data.message_id || el.message.message_id };
  if (data.type === "voice") {
    patch.type = "voice";
    if (data.message && !el.message.audio_url) patch.audio_url = data.message;
    if (!reply.streamedAudio && data.message && !reply.interrupted) playClip(data.message);
    if (!reply.text && data.text) {
      patch.text = data.text;
      stats.replyText = data.text;
    }
  } else if (!reply.text && data.message) {
    patch.text = data.message;
    stats.replyText = data.message;
  }
  update(el, patch);
}

function onComplete(data) {
  if (!sameSession(data)) return;
  if (state.call) setCallState("listening");
  stats.replies += 1;
  stats.lastComplete = data;
  finishReply({ interrupted: Boolean(data.interrupted), timings: data.timings });
}

function onError(data) {
  const message = data.error || data.message || t("error.unknown");
  if (data.code === 408 && !state.reply) {
    // The server closes idle connections; the next message reconnects.
    setStatus($("#talk-status"), message, "info");
    return;
  }
  stats.errors.push({ message, code: data.code || null });
  if (state.joinWaiters.length) {
    settleJoins(new Error(message));
    return;
  }
  if (state.reply) finishReply({ error: message });
  else showError(new Error(message));
}

// ---- playback indicator ------------------------------------------------------------------

function watchPlayback() {
  clearInterval(playingTimer);
  const box = $("#talk-playing");
  playingTimer = setInterval(() => {
    const playing = player.playing;
    box.hidden = !playing;
    if (playing) {
      $("#talk-playing-info").textContent = t("talk.remaining", { seconds: formatSeconds(player.remaining) });
      box.style.setProperty("--level", player.level().toFixed(2));
    } else if (!state.reply || !player.active) {
      clearInterval(playingTimer);
    }
    updateControls();
  }, 150);
}

function stopPlayback() {
  player.stop();
  stopClip();
  $("#talk-playing").hidden = true;
  updateControls();
}

// ---- sending -----------------------------------------------------------------------------

async function sendText(event) {
  event.preventDefault();
  const input = $("#talk-input");
  const text = input.value.trim();
  if (!text || state.reply) return;
  setStatus($("#talk-status"), "");
  try {
    await ensureSession();
    stopPlayback();
    addBubble({ role: "user", type: "text", text, timestamp: new Date().toISOString() });
    input.value = "";
    autoGrow();
    startReply();
    connection.emit("chat_message", {
      role_id: state.roleId, message: text, type: "text",
      response_type: Number($("#talk-reply-type").value), session_id: state.sessionId,
    });
    stats.textSent += 1;
  } catch (err) {
    if (state.reply) finishReply({ error: err.message });
    else showError(err, $("#talk-status"));
  }
}

async function sendVoice({ blob, seconds, format }) {
  try {
    await ensureSession();
    const audio = await blobToBase64(blob);
    const el = addBubble({
      role: "user", type: "voice", text: "", duration: seconds, pending: true,
      localUrl: URL.createObjectURL(blob), timestamp: new Date().toISOString(),
    });
    state.awaitingAsr = el;
    startReply();
    connection.emit("voice_message", {
      role_id: state.roleId, session_id: state.sessionId, audio, format,
      response_type: Number($("#talk-reply-type").value),
    });
    stats.voiceSent += 1;
  } catch (err) {
    if (state.reply) finishReply({ error: err.message });
    else showError(err, $("#talk-status"));
  }
}

async function sendFile(file) {
  const status = $("#talk-status");
  try {
    await ensureSession();
    const data = await busy($("#talk-attach"), () => upload("/api/upload_voice", (() => {
      const form = new FormData();
      form.append("file", file, file.name);
      return form;
    })(), {
      onProgress: (fraction) => setStatus(status, t("talk.uploading", { percent: Math.round(fraction * 100) })),
    }));
    setStatus(status, "");
    const el = addBubble({
      role: "user", type: "voice", text: "", duration: data.duration, pending: true,
      localUrl: URL.createObjectURL(file), timestamp: new Date().toISOString(),
    });
    state.awaitingAsr = el;
    startReply();
    connection.emit("voice_message", {
      role_id: state.roleId, session_id: state.sessionId, voice_url: data.url,
      format: data.format || formatOf(file.type), response_type: Number($("#talk-reply-type").value),
    });
    stats.voiceSent += 1;
  } catch (err) {
    if (state.reply) finishReply({ error: err.message });
    else showError(err, status);
  }
}

/** Leaving the conversation while a reply runs: stop it and stop waiting for it. */
function abandonReply() {
  if (state.reply) {
    interrupt();
    finishReply({ interrupted: true, quiet: true });
  }
  stopPlayback();
}

function interrupt() {
  stats.interrupts += 1;
  if (state.reply) {
    state.reply.interrupted = true;
    if (connection && connection.connected && state.sessionId) {
      connection.emit("interrupt", { session_id: state.sessionId });
    }
    // The server answers with response_complete; if it does not, stop waiting soon.
    const reply = state.reply;
    clearTimeout(reply.timer);
    reply.timer = setTimeout(() => {
      if (state.reply === reply) finishReply({ interrupted: true });
    }, 5000);
  }
  stopPlayback();
}

// ---- hold to talk ------------------------------------------------------------------------

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
  if (!result || result.seconds < 0.6) {
    toast(t("talk.holdLonger"), "info");
    return;
  }
  await sendVoice(result);
}

// ---- hands-free call ---------------------------------------------------------------------

function setCallState(callState) {
  stats.call.state = callState;
  const line = $("#talk-call-state");
  line.dataset.state = callState;
  line.hidden = callState === "off";
  const keys = {
    connecting: "talk.callConnecting", listening: "talk.callListening",
    speaking: "talk.callSpeaking", replying: "talk.callReplying", ended: "talk.callEnded",
  };
  line.textContent = keys[callState] ? t(keys[callState]) : "";
  const button = $("#talk-call");
  button.classList.toggle("on", Boolean(state.call));
  $(".call-label", button).textContent = state.call ? t("talk.hangUp") : t("talk.call");
  updateControls();
}

async function startCall() {
  if (state.call) return;
  const call = { ready: false, mic: null };
  state.call = call;
  setCallState("connecting");
  try {
    await ensureSession();
    if (state.reply || player.playing) interrupt();
    call.mic = new CallMicrophone({
      onPiece: (piece) => {
        if (!call.ready || !connection || !connection.connected) return;
        connection.emit("call_audio", piece);
        stats.call.piecesSent += 1;
      },
      onLevel: (level) => {
        $("#talk-call .hold-meter span").style.width = `${Math.round(level * 100)}%`;
      },
    });
    await call.mic.start();
    if (state.call !== call) {
      call.mic.stop();
      return;
    }
    connection.emit("call_start", {
      role_id: state.roleId, session_id: state.sessionId, sample_rate: call.mic.sampleRate,
      audio_format: "pcm",
    });
  } catch (err) {
    endCall({ notify: false });
    showError(new Error(t("rec.denied", { reason: err.message })), $("#talk-status"));
  }
}

function endCall({ notify = true } = {}) {
  const call = state.call;
  if (!call) return;
  state.call = null;
  if (call.mic) call.mic.stop();
  $("#talk-call .hold-meter span").style.width = "0";
  if (notify && connection && connection.connected) connection.emit("call_end", {});
  setCallState(notify ? "ended" : "off");
}

function onCallStarted(data) {
  if (!state.call) return;
  stats.call.started += 1;
  state.call.ready = true;
  if (data.session_id) setSession(data.session_id);
  setCallState("listening");
}

function onCallEnded(data) {
  stats.call.ended += 1;
  if (state.call) endCall({ notify: false });
  setCallState("ended");
  if (data.session_id === state.sessionId) syncHistory();
}

function onVad(data) {
  if (!state.call || !sameSession(data)) return;
  stats.call.vad.push(data.state);
  if (data.state === "speech_start") {
    // A turn that came to nothing (a cough, an "uh-huh") leaves no bubble behind.
    if (state.awaitingAsr && state.awaitingAsr.message.pending) state.awaitingAsr.remove();
    state.awaitingAsr = null;
    setCallState("speaking");
  } else {
    setCallState(state.reply ? "replying" : "listening");
  }
}

function callBubble() {
  if (!state.awaitingAsr) {
    state.awaitingAsr = addBubble({
      role: "user", type: "voice", text: "", pending: true, timestamp: new Date().toISOString(),
    });
  }
  return state.awaitingAsr;
}

function onPartial(data) {
  if (!state.call || !sameSession(data)) return;
  stats.call.partials.push(data.text || "");
  update(callBubble(), { text: data.text || "", pending: true });
}

function onCallAsr(data) {
  if (state.call && sameSession(data)) {
    stats.call.results.push(data.text || "");
    callBubble();
    onAsr(data);
    if (!state.reply) startReply();
    setCallState("replying");
    return;
  }
  onAsr(data);
}

// ---- role choice -------------------------------------------------------------------------

async function fillRoles(selectRoleId = null) {
  const select = $("#talk-role");
  rolesCache = await store.roles();
  const keep = selectRoleId || state.roleId;
  clear(select);
  select.append(h("option", { value: "" }, t("talk.chooseRole")));
  const me = store.me();
  const mine = rolesCache.filter((role) => me && role.user_id === me.id);
  const others = rolesCache.filter((role) => !me || role.user_id !== me.id);
  if (mine.length) {
    select.append(h("optgroup", { label: t("roles.mine") },
      mine.map((role) => h("option", { value: role.id }, role.name))));
  }
  if (others.length) {
    select.append(h("optgroup", { label: t("talk.othersRoles") },
      others.map((role) => h("option", { value: role.id }, role.name))));
  }
  if (keep && roleById(keep)) select.value = String(keep);
  if (!rolesCache.length) setStatus($("#talk-status"), t("talk.noRoles"), "info");
}

function chooseRole(roleId) {
  endCall();
  abandonReply();
  state.roleId = roleId ? Number(roleId) : null;
  stats.roleId = state.roleId;
  setSession(null);
  stats.joinedSession = null;
  setTitle();
  showEmptyLog();
  updateControls();
}

function autoGrow() {
  const input = $("#talk-input");
  input.style.height = "auto";
  input.style.height = `${Math.min(input.scrollHeight, 160)}px`;
}

// ---- screen ------------------------------------------------------------------------------

function ensureConnection() {
  if (!connection) {
    connection = new ChatConnection({
      onState: (connState, detail) => {
        setConnectionBadge(connState, detail);
        if (connState === "on") {
          stats.joinedSession = null;
          // Back after a drop: rejoin the room of the open conversation.
          if (state.sessionId && state.roleId) {
            join({ role_id: state.roleId, session_id: state.sessionId }).catch(() => {});
          }
        } else if (connState !== "on" && state.reply) {
          finishReply({ error: t("talk.connectionLost") });
        }
        // The server hangs up a call whose connection dropped.
        if (connState !== "on" && state.call) endCall({ notify: false });
      },
      joined: onJoined,
      asr_result: onCallAsr,
      call_started: onCallStarted,
      call_ended: onCallEnded,
      vad: onVad,
      asr_partial: onPartial,
      ai_text_chunk: onTextChunk,
      tts_audio_chunk_start: onAudioStart,
      tts_audio_chunk: onAudioChunk,
      tts_audio_chunk_end: onAudioEnd,
      chat_response: onChatResponse,
      response_complete: onComplete,
      error: onError,
    });
  }
  connection.connect();
}

export function init() {
  if (window.matchMedia("(max-width: 820px)").matches) $("#talk-sessions-box").open = false;
  $("#talk-form").addEventListener("submit", sendText);
  $("#talk-input").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      $("#talk-form").requestSubmit();
    }
  });
  $("#talk-input").addEventListener("input", autoGrow);
  $("#talk-role").addEventListener("change", (event) => chooseRole(event.target.value));
  $("#talk-new").addEventListener("click", () => {
    if (!state.roleId) {
      setStatus($("#talk-status"), t("talk.pickRole"), "error");
      return;
    }
    chooseRole(state.roleId);
    $("#talk-input").focus();
  });
  $("#talk-stop").addEventListener("click", interrupt);
  $("#talk-call").addEventListener("click", () => (state.call ? endCall() : startCall()));
  $("#talk-clear").addEventListener("click", clearMessages);
  $("#talk-delete").addEventListener("click", (event) => {
    if (state.sessionId) deleteSession(state.sessionId, event.currentTarget);
  });
  $("#talk-attach").addEventListener("click", () => $("#talk-attach-file").click());
  $("#talk-attach-file").addEventListener("change", (event) => {
    const file = event.target.files[0];
    event.target.value = "";
    if (file) sendFile(file);
  });
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
  store.onInvalidate("roles", () => {
    if (!$("#screen-talk").hidden) fillRoles().catch(showError);
  });
  onLangChange(() => {
    setConnectionBadge(stats.connection);
    setTitle();
    if (!$("#screen-talk").hidden) {
      fillRoles().catch(showError);
      loadSessions();
      if (state.sessionId) loadHistory();
      else showEmptyLog();
    }
  });
  setConnectionBadge("off");
}

export async function show(params = {}) {
  ensureConnection();
  try {
    await fillRoles(params.roleId);
  } catch (err) {
    showError(err);
  }
  if (params.roleId && Number(params.roleId) !== state.roleId) {
    chooseRole(params.roleId);
    $("#talk-role").value = String(params.roleId);
  } else if (!state.roleId && !state.sessionId) {
    const saved = sessionStorage.getItem(SESSION_KEY);
    if (saved) {
      try {
        const session = await api(`/api/sessions/${saved}`);
        if (session.role_id) await openSession(session);
      } catch {
        sessionStorage.removeItem(SESSION_KEY);
      }
    }
    if (!state.sessionId) showEmptyLog();
  }
  setTitle();
  loadSessions();
  updateControls();
}

export function hide() {
  endCall();
  stopClip();
}

/** Signed out: drop the connection and everything about the last conversation. */
export function reset() {
  endCall({ notify: false });
  if (state.reply) {
    clearTimeout(state.reply.timer);
    state.reply = null;
  }
  if (connection) connection.close();
  connection = null;
  stopPlayback();
  state.roleId = null;
  setSession(null);
  clear($("#talk-log"));
}
