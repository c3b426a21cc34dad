// API keys: create one (shown once, with a copyable curl and openai-Python example for
// the OpenAI-compatible /v1), list them with this month's usage, revoke.

import { api } from "./api.js";
import { getLang, t } from "./i18n.js";
import {
  $, busy, clear, confirmAction, formatTime, h, setStatus, showError, toast,
} from "./ui.js";

export const id = "keys";

/** What the screen did; tests read it through window.__console.keys. */
export const stats = { created: 0, revoked: 0, listed: 0, lastCreated: null, copied: null };

function baseUrl() {
  return `${location.origin}/v1`;
}

function curlExample(key) {
  return [
    `curl ${baseUrl()}/audio/speech \\`,
    `  -H "Authorization: Bearer ${key}" \\`,
    "  -H \"Content-Type: application/json\" \\",
    `  -d '{"model": "tts-1", "voice": "alloy", "input": "${t("keys.exampleText")}"}' \\`,
    "  -o speech.mp3",
  ].join("\n");
}

function pythonExample(key) {
  return [
    "from openai import OpenAI",
    "",
    `client = OpenAI(base_url="${baseUrl()}", api_key="${key}")`,
    "speech = client.audio.speech.create(",
    `    model="tts-1", voice="alloy", input="${t("keys.exampleText")}")`,
    "speech.write_to_file(\"speech.mp3\")",
    "with open(\"speech.mp3\", \"rb\") as audio:",
    "    transcript = client.audio.transcriptions.create(",
    "        model=\"whisper-1\", file=audio, response_format=\"verbose_json\",",
    "        timestamp_granularities=[\"word\"])",
    "print(transcript.text, transcript.words)",
  ].join("\n");
}

async function copy(text, what) {
  try {
    await navigator.clipboard.writeText(text);
    toast(t("keys.copied"));
  } catch {
    // Without clipboard permission the text stays selectable on the page.
    toast(t("keys.copyFailed"), "error");
  }
  stats.copied = what;
}

function optionalNumber(input) {
  const value = input.value.trim();
  return value === "" ? null : Number(value);
}

async function create(event) {
  event.preventDefault();
  const status = $("#key-status");
  setStatus(status, "");
  const name = $("#key-name").value.trim();
  if (!name) {
    setStatus(status, t("keys.nameMissing"), "error");
    return;
  }
  try {
    const key = await busy($("#key-submit"), () => api("/api/keys", {
      method: "POST",
      json: {
        name,
        monthly_characters: optionalNumber($("#key-characters")),
        monthly_audio_seconds: optionalNumber($("#key-seconds")),
        history: $("#key-history").checked,
      },
    }));
    stats.created += 1;
    stats.lastCreated = { key_id: key.key_id, prefix: key.prefix };
    showCreated(key.key);
    $("#key-form").reset();
    setStatus(status, t("keys.created"), "success");
    await load();
  } catch (err) {
    showError(err, status);
  }
}

function showCreated(secret) {
  $("#key-created").hidden = false;
  $("#key-secret").textContent = secret;
  $("#key-curl").textContent = curlExample(secret);
  $("#key-python").textContent = pythonExample(secret);
}

function usageText(key) {
  const parts = [
    t("keys.usageCharacters", { used: key.usage.characters,
      limit: key.monthly_characters ?? "∞" }),
    t("keys.usageSeconds", { used: Math.round(key.usage.audio_seconds),
      limit: key.monthly_audio_seconds ?? "∞" }),
  ];
  return parts.join(" · ");
}

function keyItem(key) {
  const lang = getLang();
  const facts = [
    t("keys.createdAt", { when: formatTime(key.created_at, lang) }),
    key.last_used_at ? t("keys.lastUsed", { when: formatTime(key.last_used_at, lang) })
      : t("keys.neverUsed"),
    key.history ? t("keys.historyOn") : t("keys.historyOff"),
  ].join(" · ");
  return h("li", { class: "item key-item", dataset: { keyId: key.key_id } },
    h("div", { class: "item-body" },
      h("div", { class: "item-title" }, h("strong", { class: "key-name", text: key.name }),
        h("code", { class: "key-prefix", text: `${key.prefix}…` })),
      h("div", { class: "muted small", text: facts }),
      h("div", { class: "key-usage", text: usageText(key) })),
    h("div", { class: "actions" },
      h("button", {
        type: "button", class: "small danger key-revoke",
        onclick: (event) => revoke(event.currentTarget, key),
      }, t("keys.revoke"))));
}

async function revoke(button, key) {
  if (!confirmAction(t("keys.confirmRevoke", { name: key.name }))) return;
  try {
    await busy(button, () => api(`/api/keys/${key.key_id}`, { method: "DELETE" }));
    stats.revoked += 1;
    toast(t("keys.revoked"));
    await load();
  } catch (err) {
    showError(err);
  }
}

async function load() {
  const list = clear($("#keys-list"));
  list.append(h("li", { class: "loading", text: t("common.loading") }));
  try {
    const data = await api("/api/keys");
    clear(list);
    data.list.forEach((key) => list.append(keyItem(key)));
    $("#keys-empty").hidden = data.list.length > 0;
    stats.listed = data.list.length;
  } catch (err) {
    clear(list);
    showError(err);
  }
}

export function init() {
  $("#key-form").addEventListener("submit", create);
  $("#keys-refresh").addEventListener("click", () => load());
  $("#key-copy").addEventListener("click", () => copy($("#key-secret").textContent, "key"));
  $("#key-copy-curl").addEventListener("click", () => copy($("#key-curl").textContent, "curl"));
  $("#key-copy-python").addEventListener("click",
    () => copy($("#key-python").textContent, "python"));
}

export async function show() {
  await load();
}

export function hide() {
  // The secret is only for the moment it was made: leaving the screen forgets it.
  $("#key-created").hidden = true;
  $("#key-secret").textContent = "";
  $("#key-curl").textContent = "";
  $("#key-python").textContent = "";
}
