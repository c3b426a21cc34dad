// Joining a conversation's room: `join` is answered by its acknowledgement (the `joined`
// payload, or the error when the server refused it).

import { t } from "../i18n.js";
import { $, setStatus } from "../ui.js";
import { setTitle } from "./controls.js";
import { loadSessions, setSession } from "./history.js";
import { state } from "./state.js";

const JOIN_TIMEOUT_MS = 15000;

function joined(answer) {
  const isNew = answer.session_id !== state.sessionId;
  state.joinedSession = answer.session_id;
  state.roleId = answer.role_id || state.roleId;
  setSession(answer.session_id);
  if (answer.role && answer.role.name) setTitle(answer.role.name);
  if (isNew) loadSessions();
}

/** Join `{role_id, session_id?}`; resolves to the `joined` payload. */
export async function join(payload) {
  state.joining += 1;
  let answer;
  try {
    answer = await state.connection.request("join", { ...payload, audio_format: "pcm" },
      JOIN_TIMEOUT_MS);
  } catch {
    throw new Error(t("talk.joinTimeout"));
  } finally {
    state.joining -= 1;
  }
  if (!answer || !answer.session_id) {
    throw new Error((answer && answer.error) || t("error.unknown"));
  }
  joined(answer);
  return answer;
}

/** The session to talk in: the current one, or a new one for the chosen role. */
export async function ensureSession() {
  if (!state.roleId) throw new Error(t("talk.pickRole"));
  await state.connection.whenConnected();
  if (state.sessionId && state.joinedSession === state.sessionId) return state.sessionId;
  const payload = { role_id: state.roleId };
  if (state.sessionId) payload.session_id = state.sessionId;
  setStatus($("#talk-status"), t("talk.joining"));
  await join(payload);
  setStatus($("#talk-status"), "");
  return state.sessionId;
}
