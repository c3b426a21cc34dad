// The conversation's message bubbles: drawing one, adding it, patching it as the reply
// streams in, replaying its audio and deleting it.

import { api, numericKey } from "../api.js";
import { getLang, t } from "../i18n.js";
import {
  $, busy, clear, confirmAction, formatSeconds, formatTime, h, icon, playClip, showError, toast,
} from "../ui.js";
import { roleById, state } from "./state.js";

export function scrollToEnd() {
  const log = $("#talk-log");
  log.scrollTop = log.scrollHeight;
}

export function bubble(message) {
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

export function addBubble(message) {
  const log = $("#talk-log");
  const empty = $(".talk-empty", log);
  if (empty) empty.remove();
  const el = bubble(message);
  log.append(el);
  scrollToEnd();
  return el;
}

export function update(el, patch) {
  Object.assign(el.message, patch);
  fillBubble(el);
  scrollToEnd();
}

/** Only the text of a bubble, as the reply streams (no redraw of the rest). */
export function showText(el, text) {
  el.message.text = text;
  $(".text", el).textContent = text;
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

export function showEmptyLog() {
  const log = $("#talk-log");
  clear(log);
  const role = roleById(state.roleId);
  if (!role && !state.roles.length) {
    // Nobody to talk to yet: the one step to take is creating a role.
    log.append(h("div", { class: "talk-empty" },
      h("p", { text: t("talk.noRolesYet") }),
      h("a", { class: "button primary", id: "talk-first-role", href: "#roles" }, t("talk.createFirstRole"))));
    return;
  }
  log.append(h("div", { class: "talk-empty" },
    h("p", { text: role ? t("talk.emptyWithRole", { name: role.name }) : t("talk.emptyNoRole") }),
    role ? h("p", { class: "muted small", text: role.description }) : null));
}
