// Talk: real-time conversation with a role over Socket.IO. The reply's text appears as it
// streams and its audio plays as the chunks arrive; hold-to-talk sends a recording; Stop
// interrupts; Call starts a hands-free call. This module is the screen: it picks the role
// and the conversation and wires the socket's events to the pieces in talk/:
//
//   state.js      what the screen knows (conversation, reply, call, socket, player)
//   controls.js   buttons, connection badge, title
//   bubbles.js    the message bubbles
//   history.js    the conversations list and a conversation's stored messages
//   join.js       joining a conversation's room (acknowledged `join`)
//   reply.js      a reply in flight, from the question to `response_complete`
//   indicator.js  the "playing" strip
//   send.js       typed text, recordings and audio files
//   recorder.js   hold to talk
//   handsfree.js  the hands-free call
//   probe.js      what tests read (window.__console.talk)

import { api } from "./api.js";
import { ChatConnection } from "./connection.js";
import { onLangChange, t } from "./i18n.js";
import * as store from "./store.js";
import {
  $, busy, clear, confirmAction, h, setStatus, showError, stopClip, toast,
} from "./ui.js";
import { showEmptyLog } from "./talk/bubbles.js";
import { setConnectionBadge, setTitle, updateControls } from "./talk/controls.js";
import {
  endCall, onBargeIn, onCallAsr, onCallEnded, onCallReplyComplete, onCallStarted, onPartial,
  onVad, startCall,
} from "./talk/handsfree.js";
import {
  clearMessages, forgetSavedSession, loadHistory, loadSessions, onSessionActions, savedSession,
  setSession,
} from "./talk/history.js";
import { stopPlayback } from "./talk/indicator.js";
import { join } from "./talk/join.js";
import { observer, stats as probeStats } from "./talk/probe.js";
import { initHoldToTalk } from "./talk/recorder.js";
import {
  abandonReply, finishReply, interrupt, onAudioChunk, onAudioEnd, onAudioStart, onChatResponse,
  onComplete, onError, onTextChunk,
} from "./talk/reply.js";
import { autoGrow, sendFile, sendText } from "./talk/send.js";
import { roleById, state } from "./talk/state.js";

export const id = "talk";

/** What the page has seen; tests read it through window.__console.talk. */
export const stats = probeStats;

// ---- role and conversation ---------------------------------------------------------------

async function fillRoles(selectRoleId = null) {
  const select = $("#talk-role");
  state.roles = await store.roles();
  if (selectRoleId && !roleById(selectRoleId)) {
    // A role made since the list was read (in another tab, or through the API).
    state.roles = await store.roles(true);
  }
  const keep = selectRoleId || state.roleId;
  clear(select);
  select.append(h("option", { value: "" }, t("talk.chooseRole")));
  const me = store.me();
  const mine = state.roles.filter((role) => me && role.user_id === me.id);
  const others = state.roles.filter((role) => !me || role.user_id !== me.id);
  if (mine.length) {
    select.append(h("optgroup", { label: t("roles.mine") },
      mine.map((role) => h("option", { value: role.id }, role.name))));
  }
  if (others.length) {
    select.append(h("optgroup", { label: t("talk.othersRoles") },
      others.map((role) => h("option", { value: role.id }, role.name))));
  }
  if (keep && roleById(keep)) select.value = String(keep);
}

// The role last talked to, per user and browser, so Talk opens on it next time.
function lastRoleKey() {
  const me = store.me();
  return `tingshuo.talk.role.${me ? me.id : 0}`;
}

/** The role Talk opens on by itself: the last one talked to, else the only one. */
function usualRole() {
  const last = Number(localStorage.getItem(lastRoleKey()));
  if (last && roleById(last)) return last;
  return state.roles.length === 1 ? state.roles[0].id : null;
}

function chooseRole(roleId) {
  endCall();
  abandonReply();
  state.roleId = roleId ? Number(roleId) : null;
  if (state.roleId) localStorage.setItem(lastRoleKey(), String(state.roleId));
  // A prompt to pick a role is stale once one is picked.
  setStatus($("#talk-status"), "");
  setSession(null);
  state.joinedSession = null;
  setTitle();
  showEmptyLog();
  updateControls();
}

async function openSession(session) {
  abandonReply();
  state.roleId = session.role_id;
  localStorage.setItem(lastRoleKey(), String(session.role_id));
  setStatus($("#talk-status"), "");
  $("#talk-role").value = String(session.role_id);
  setTitle();
  setSession(session.session_id);
  await loadHistory();
  if (state.connection && state.connection.connected) {
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

/** A conversation is titled by its first message: list it again once it has one. */
function showNewTitle() {
  const item = $(`#talk-sessions .session[data-session-id="${state.sessionId}"]`);
  if (!item || item.dataset.untitled) loadSessions();
}

// ---- the socket --------------------------------------------------------------------------

function onConnectionState(connState, detail) {
  setConnectionBadge(connState, detail);
  if (connState === "on") {
    state.joinedSession = null;
    // Back after a drop: rejoin the room of the open conversation.
    if (state.sessionId && state.roleId) {
      join({ role_id: state.roleId, session_id: state.sessionId }).catch(() => {});
    }
  } else if (state.reply) {
    finishReply({ error: t("talk.connectionLost") });
  }
  // The server hangs up a call whose connection dropped.
  if (connState !== "on" && state.call) endCall({ notify: false });
}

function ensureConnection() {
  if (!state.connection) {
    state.connection = new ChatConnection({
      onState: onConnectionState,
      asr_result: onCallAsr,
      call_started: onCallStarted,
      call_ended: onCallEnded,
      vad: onVad,
      asr_partial: onPartial,
      barge_in: onBargeIn,
      ai_text_chunk: onTextChunk,
      tts_audio_chunk_start: onAudioStart,
      tts_audio_chunk: onAudioChunk,
      tts_audio_chunk_end: onAudioEnd,
      chat_response: onChatResponse,
      response_complete: (data) => {
        onCallReplyComplete(data);
        onComplete(data);
        showNewTitle();
      },
      error: onError,
    }, observer);
  }
  state.connection.connect();
}

// ---- screen ------------------------------------------------------------------------------

export function init() {
  onSessionActions({ open: openSession, remove: deleteSession });
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
  initHoldToTalk();
  store.onInvalidate("roles", () => {
    if (!$("#screen-talk").hidden) fillRoles().catch(showError);
  });
  onLangChange(() => {
    setConnectionBadge(state.connState);
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
    const saved = savedSession();
    if (saved) {
      try {
        const session = await api(`/api/sessions/${saved}`);
        if (session.role_id) await openSession(session);
      } catch {
        forgetSavedSession();
      }
    }
    const usual = state.roleId ? null : usualRole();
    if (usual) {
      chooseRole(usual);
      $("#talk-role").value = String(usual);
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
  if (state.connection) state.connection.close();
  state.connection = null;
  stopPlayback();
  state.roleId = null;
  setSession(null);
  clear($("#talk-log"));
}
