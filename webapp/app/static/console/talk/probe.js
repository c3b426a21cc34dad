// What the Talk screen saw and sent, for people and tests poking at the page
// (window.__console.talk). The screen's code never writes here: the probe watches the
// socket's traffic (the connection's observer) and reads the screen's state and player.

import { $ } from "../ui.js";
import { player, state } from "./state.js";

export const stats = {
  get connection() { return state.connState; },
  get sessionId() { return state.sessionId; },
  get roleId() { return state.roleId; },
  joins: 0,
  audioFormat: null,
  textSent: 0,
  voiceSent: 0,
  interrupts: 0,
  textChunks: 0,
  replyText: "",
  // Text chunks that were on screen in the pending reply's bubble as they arrived.
  textShownWhileStreaming: 0,
  replies: 0,
  chunkStarts: 0,
  chunkEnds: 0,
  sampleRate: null,
  lastChunkEnd: null,
  lastResponse: null,
  lastComplete: null,
  asr: [],
  errors: [],
  call: {
    get state() { return state.callState; },
    language: null, started: 0, ended: 0, piecesSent: 0, vad: [], partials: [], results: [],
    interrupted: 0,
  },
  audio: player.stats,
  get chunksReceived() { return player.stats.chunksReceived; },
  get chunksScheduled() { return player.stats.chunksScheduled; },
};

let replyOver = true;

function sent(event, payload) {
  if (event === "chat_message") stats.textSent += 1;
  else if (event === "voice_message") stats.voiceSent += 1;
  else if (event === "interrupt") stats.interrupts += 1;
  else if (event === "call_audio") stats.call.piecesSent += 1;
  else if (event === "call_start") stats.call.language = payload.language || null;
}

function textOnScreen(text) {
  const shown = $("#talk-log .bubble.assistant.pending .text");
  return Boolean(state.reply && shown && text && shown.textContent.endsWith(text));
}

function received(event, data) {
  switch (event) {
    case "ai_text_chunk":
      if (replyOver) stats.replyText = "";
      replyOver = false;
      stats.textChunks += 1;
      stats.replyText += data.text || "";
      if (textOnScreen(data.text)) stats.textShownWhileStreaming += 1;
      break;
    case "tts_audio_chunk_start":
      stats.chunkStarts += 1;
      stats.sampleRate = data.sample_rate || null;
      break;
    case "tts_audio_chunk_end":
      stats.chunkEnds += 1;
      stats.lastChunkEnd = data;
      if (state.call && data.reason === "interrupted") stats.call.interrupted += 1;
      break;
    case "chat_response":
      stats.lastResponse = data;
      if (typeof data.text === "string" && data.text) stats.replyText = data.text;
      break;
    case "response_complete":
      stats.replies += 1;
      stats.lastComplete = data;
      replyOver = true;
      break;
    case "asr_result":
      stats.asr.push(data.text || "");
      if (state.call) stats.call.results.push(data.text || "");
      break;
    case "asr_partial":
      if (state.call) stats.call.partials.push(data.text || "");
      break;
    case "vad":
      if (state.call) stats.call.vad.push(data.state);
      break;
    case "call_started":
      stats.call.started += 1;
      break;
    case "call_ended":
      stats.call.ended += 1;
      break;
    case "error":
      // The server's notice that it closed an idle connection is no failure.
      if (data.code !== 408) stats.errors.push({ message: data.error || data.message, code: data.code || null });
      break;
    default:
  }
}

function answered(event, answer) {
  if (event === "join" && answer && answer.session_id) {
    stats.joins += 1;
    stats.audioFormat = answer.audio_format || null;
  }
}

/** The connection's observer: every event sent, received (after the screen handled it) and acknowledged. */
export const observer = { sent, received, answered };
