// Conversations: the list of them, which one is open, and its stored messages. The
// messages are read once when a conversation opens; after that the page keeps them
// itself, from what the socket tells it (reply.js), and never reads them again.

import { api, listAll } from "../api.js";
import { getLang, t } from "../i18n.js";
import {
  $, busy, clear, confirmAction, formatTime, h, icon, showError, toast,
} from "../ui.js";
import { bubble, scrollToEnd, showEmptyLog } from "./bubbles.js";
import { updateControls } from "./controls.js";
import { stopPlayback } from "./indicator.js";
import { roleById, state } from "./state.js";

const SESSION_KEY = "tingshuo.talk.session";
const HISTORY_LIMIT = 2000;

let actions = { open: () => {}, remove: () => {} };

/** What a conversation in the list does when clicked: {open(session), remove(id, button)}. */
export function onSessionActions(handlers) {
  actions = handlers;
}

function markActiveSession() {
  document.querySelectorAll("#talk-sessions .session").forEach((item) => {
    item.classList.toggle("active", item.dataset.sessionId === state.sessionId);
  });
}

export function setSession(sessionId) {
  if (sessionId !== state.sessionId) state.language = null;
  state.sessionId = sessionId;
  if (sessionId) sessionStorage.setItem(SESSION_KEY, sessionId);
  else sessionStorage.removeItem(SESSION_KEY);
  markActiveSession();
  updateControls();
}

/** The conversation open when the tab was last used (it survives a reload). */
export function savedSession() {
  return sessionStorage.getItem(SESSION_KEY);
}

export function forgetSavedSession() {
  sessionStorage.removeItem(SESSION_KEY);
}

/** The language the conversation's last spoken message was recognised as. */
function spokenLanguage(messages) {
  const spoken = messages.filter((m) => m.role === "user" && m.type === "voice"
    && m.metadata && m.metadata.language);
  return spoken.length ? spoken[spoken.length - 1].metadata.language : null;
}

export async function loadHistory() {
  const log = $("#talk-log");
  if (!state.sessionId) {
    showEmptyLog();
    return;
  }
  const sessionId = state.sessionId;
  clear(log);
  log.append(h("p", { class: "loading", text: t("common.loading") }));
  try {
    const messages = await listAll(`/api/sessions/${sessionId}/messages`, { limit: HISTORY_LIMIT });
    if (sessionId !== state.sessionId) return;
    clear(log);
    if (!messages.length) showEmptyLog();
    messages.forEach((message) => log.append(bubble(message)));
    state.language = spokenLanguage(messages);
    scrollToEnd();
  } catch (err) {
    clear(log);
    showError(err);
  }
}

export async function loadSessions() {
  const list = $("#talk-sessions");
  try {
    const data = await api("/api/sessions", { query: { page: 1, page_size: 50 } });
    clear(list);
    const conversations = data.list.filter((session) => session.role_id);
    for (const session of conversations) {
      const role = roleById(session.role_id);
      const item = h("li", {
        class: `item session${session.session_id === state.sessionId ? " active" : ""}`,
        dataset: { sessionId: session.session_id, untitled: session.title ? "" : "yes" },
      },
      h("button", { type: "button", class: "session-open", onclick: () => actions.open(session) },
        h("strong", { class: "session-title", text: session.title || t("talk.untitled") }),
        h("small", { class: "muted", text: [role ? role.name : `#${session.role_id}`,
          formatTime(session.start_time, getLang())].join(" · ") })),
      h("button", {
        type: "button", class: "icon delete", title: t("talk.deleteSession"),
        "aria-label": `${t("talk.deleteSession")}: ${session.title || t("talk.untitled")}`,
        onclick: (event) => actions.remove(session.session_id, event.currentTarget),
      }, icon("trash")));
      list.append(item);
    }
    $("#talk-sessions-empty").hidden = conversations.length > 0;
  } catch (err) {
    showError(err);
  }
}

export async function clearMessages() {
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
