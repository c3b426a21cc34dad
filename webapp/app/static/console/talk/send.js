// What the user says: typed text (`chat_message`), a recording or an audio file
// (`voice_message`, inline base64 or the URL of an upload). Each adds the user's bubble
// and waits for the reply.

import { upload } from "../api.js";
import { blobToBase64, formatOf } from "../audio.js";
import { t } from "../i18n.js";
import { $, busy, setStatus, showError } from "../ui.js";
import { addBubble } from "./bubbles.js";
import { stopPlayback } from "./indicator.js";
import { ensureSession } from "./join.js";
import { finishReply, startReply } from "./reply.js";
import { state } from "./state.js";

function replyType() {
  return Number($("#talk-reply-type").value);
}

function failed(err, statusEl = $("#talk-status")) {
  if (state.reply) finishReply({ error: err.message });
  else showError(err, statusEl);
}

export function autoGrow() {
  const input = $("#talk-input");
  input.style.height = "auto";
  input.style.height = `${Math.min(input.scrollHeight, 160)}px`;
}

export async function sendText(event) {
  event.preventDefault();
  const input = $("#talk-input");
  const text = input.value.trim();
  if (!text || state.reply) return;
  setStatus($("#talk-status"), "");
  try {
    await ensureSession();
    stopPlayback();
    const said = addBubble({ role: "user", type: "text", text, timestamp: new Date().toISOString() });
    input.value = "";
    autoGrow();
    startReply(said);
    state.connection.emit("chat_message", {
      role_id: state.roleId, message: text, type: "text", response_type: replyType(),
      session_id: state.sessionId,
    });
  } catch (err) {
    failed(err);
  }
}

/** A voice message whose bubble shows "recognising" until `asr_result` comes. */
function voiceBubble(seconds, localUrl) {
  const said = addBubble({
    role: "user", type: "voice", text: "", duration: seconds, pending: true, localUrl,
    timestamp: new Date().toISOString(),
  });
  state.awaitingAsr = said;
  startReply(said);
}

export async function sendVoice({ blob, seconds, format }) {
  try {
    await ensureSession();
    const audio = await blobToBase64(blob);
    voiceBubble(seconds, URL.createObjectURL(blob));
    state.connection.emit("voice_message", {
      role_id: state.roleId, session_id: state.sessionId, audio, format,
      response_type: replyType(),
    });
  } catch (err) {
    failed(err);
  }
}

export async function sendFile(file) {
  const status = $("#talk-status");
  try {
    await ensureSession();
    const form = new FormData();
    form.append("file", file, file.name);
    const data = await busy($("#talk-attach"), () => upload("/api/upload_voice", form, {
      onProgress: (fraction) => setStatus(status, t("talk.uploading", { percent: Math.round(fraction * 100) })),
    }));
    setStatus(status, "");
    voiceBubble(data.duration, URL.createObjectURL(file));
    state.connection.emit("voice_message", {
      role_id: state.roleId, session_id: state.sessionId, voice_url: data.url,
      format: data.format || formatOf(file.type), response_type: replyType(),
    });
  } catch (err) {
    failed(err, status);
  }
}
