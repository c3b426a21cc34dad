// The hands-free call: the microphone streams (`call_audio`), the server finds the turns,
// shows partial transcripts (`asr_partial`) and answers each turn as a reply; speaking
// over the reply interrupts it.

import { CallMicrophone } from "../call.js";
import { t } from "../i18n.js";
import { $, showError } from "../ui.js";
import { addBubble, update } from "./bubbles.js";
import { updateControls } from "./controls.js";
import { setSession } from "./history.js";
import { ensureSession } from "./join.js";
import { interrupt, onAsr, startReply } from "./reply.js";
import { player, roleById, sameSession, state } from "./state.js";

const STATE_KEYS = {
  connecting: "talk.callConnecting", listening: "talk.callListening",
  speaking: "talk.callSpeaking", replying: "talk.callReplying", ended: "talk.callEnded",
};

function setCallState(callState) {
  state.callState = callState;
  const line = $("#talk-call-state");
  line.dataset.state = callState;
  line.hidden = callState === "off";
  const role = roleById(state.roleId);
  line.textContent = STATE_KEYS[callState]
    ? t(STATE_KEYS[callState], { name: role ? role.name : t("talk.theRole") }) : "";
  const button = $("#talk-call");
  button.classList.toggle("on", Boolean(state.call));
  $(".call-label", button).textContent = state.call ? t("talk.hangUp") : t("talk.call");
  updateControls();
  // A call that ended leaves the keyboard on the button that starts the next one.
  if (!state.call && (callState === "ended" || callState === "off")
      && (!document.activeElement || document.activeElement === document.body)) {
    button.focus();
  }
}

/**
 * The language the call is spoken in, when known: the one the conversation's last spoken
 * message was recognised as. Otherwise none is sent and the server hears which language
 * the caller speaks (neither the console's language nor the role's voice says it).
 */
function callLanguage() {
  return state.language || null;
}

export async function startCall() {
  if (state.call) return;
  const call = { ready: false, mic: null };
  state.call = call;
  setCallState("connecting");
  try {
    await ensureSession();
    if (state.reply || player.playing) interrupt();
    call.mic = new CallMicrophone({
      onPiece: (piece) => {
        if (!call.ready || !state.connection || !state.connection.connected) return;
        state.connection.emit("call_audio", piece);
      },
      onLevel: (level) => {
        $("#talk-call .hold-meter span").style.width = `${Math.round(level * 100)}%`;
      },
    });
    await call.mic.start();
    const language = callLanguage();
    if (state.call !== call) {
      call.mic.stop();
      return;
    }
    state.connection.emit("call_start", {
      role_id: state.roleId, session_id: state.sessionId, sample_rate: call.mic.sampleRate,
      audio_format: "pcm", language,
    });
  } catch (err) {
    endCall({ notify: false });
    showError(new Error(t("rec.denied", { reason: err.message })), $("#talk-status"));
  }
}

export function endCall({ notify = true } = {}) {
  const call = state.call;
  if (!call) return;
  state.call = null;
  if (call.mic) call.mic.stop();
  $("#talk-call .hold-meter span").style.width = "0";
  if (notify && state.connection && state.connection.connected) state.connection.emit("call_end", {});
  setCallState(notify ? "ended" : "off");
}

export function onCallStarted(data) {
  if (!state.call) return;
  state.call.ready = true;
  if (data.session_id) setSession(data.session_id);
  setCallState("listening");
}

export function onCallEnded() {
  if (state.call) endCall({ notify: false });
  setCallState("ended");
}

export function onVad(data) {
  if (!state.call || !sameSession(data)) return;
  if (data.state === "speech_start") {
    // A turn that came to nothing (a cough, an "uh-huh") leaves no bubble behind.
    if (state.awaitingAsr && state.awaitingAsr.message.pending) state.awaitingAsr.remove();
    state.awaitingAsr = null;
    setCallState("speaking");
  } else {
    setCallState(state.reply ? "replying" : "listening");
  }
}

/** The caller's turn, shown while it is spoken and recognised. */
function callBubble() {
  if (!state.awaitingAsr) {
    state.awaitingAsr = addBubble({
      role: "user", type: "voice", text: "", pending: true, timestamp: new Date().toISOString(),
    });
  }
  return state.awaitingAsr;
}

/**
 * The server heard the caller during a reply: hold the reply's sound at once and say how
 * much was heard; `resumed` (a cough, an "uh-huh") plays on from there, and a real
 * interruption ends the reply `interrupted`, which drops what is held.
 */
export function onBargeIn(data) {
  if (!state.call || !sameSession(data)) return;
  if (data.state === "paused") {
    player.pause();
    state.connection.emit("playback", {
      message_id: data.message_id, played_ms: Math.round(player.played * 1000),
    });
  } else if (data.state === "resumed") {
    player.resume();
  }
}

export function onPartial(data) {
  if (!state.call || !sameSession(data)) return;
  update(callBubble(), { text: data.text || "", pending: true });
}

/** `asr_result`: in a call it ends the caller's turn and a reply follows. */
export function onCallAsr(data) {
  if (!state.call || !sameSession(data)) {
    onAsr(data);
    return;
  }
  const said = callBubble();
  onAsr(data);
  if (!state.reply) startReply(said);
  setCallState("replying");
}

/** A reply in the call is over: the call listens again. */
export function onCallReplyComplete(data) {
  if (state.call && sameSession(data)) setCallState("listening");
}
