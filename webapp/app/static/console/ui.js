// Small DOM utilities shared by every screen: element creation, notices, busy buttons,
// progress bars, formatting, and one shared <audio> element for short clips.

import { t } from "./i18n.js";

export const $ = (selector, root = document) => root.querySelector(selector);
export const $$ = (selector, root = document) => [...root.querySelectorAll(selector)];

const PROPERTIES = new Set(["value", "checked", "selected", "disabled", "hidden"]);

/** Create an element: h("button", {class: "x", onclick: fn}, "label", child). */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null) continue;
    if (key === "class") el.className = value;
    else if (key === "text") el.textContent = value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key.startsWith("on") && typeof value === "function") {
      el.addEventListener(key.slice(2), value);
    } else if (PROPERTIES.has(key)) el[key] = value;
    else if (value === false) continue;
    else el.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

const ICONS = {
  trash: "M9 3h6l1 2h4v2H4V5h4l1-2zm-3 6h12l-1 12H7L6 9zm4 2v8h1.5v-8H10zm3.5 0v8H15v-8h-1.5z",
  mic: "M12 14a3 3 0 0 0 3-3V5a3 3 0 0 0-6 0v6a3 3 0 0 0 3 3zm5-3a5 5 0 0 1-10 0H5a7 7 0 0 0 6 6.9V21h2v-3.1a7 7 0 0 0 6-6.9h-2z",
};

/** A small inline SVG icon (the page ships no icon font). */
export function icon(name) {
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("width", "14");
  svg.setAttribute("height", "14");
  svg.setAttribute("aria-hidden", "true");
  svg.classList.add("svg-icon");
  const path = document.createElementNS("http://www.w3.org/2000/svg", "path");
  path.setAttribute("d", ICONS[name]);
  path.setAttribute("fill", "currentColor");
  svg.append(path);
  return svg;
}

export function clear(el) {
  while (el.firstChild) el.firstChild.remove();
  return el;
}

const MAX_TOASTS = 3;

/** A short notice in the corner; errors stay longer. The same notice again replaces the
 * one still showing (five clicks on Copy give one "Copied"), and at most three show. */
export function toast(message, kind = "info", timeout = kind === "error" ? 8000 : 4000) {
  const box = $("#toasts");
  [...box.children].forEach((shown) => {
    if (shown.dataset.message === message) shown.remove();
  });
  while (box.childElementCount >= MAX_TOASTS) box.firstElementChild.remove();
  const item = h("div", {
    class: `toast ${kind}`, role: kind === "error" ? "alert" : "status", dataset: { message },
  },
    h("span", { text: message }),
    h("button", { type: "button", class: "icon", "aria-label": t("common.close"),
      onclick: () => item.remove() }, "×"));
  box.append(item);
  setTimeout(() => item.remove(), timeout);
  return item;
}

/** Show an error (the envelope's `message` when the API sent one). */
export function showError(err, statusEl = null) {
  if (err && err.name === "AbortError") return;
  const message = (err && err.message) || t("error.unknown");
  if (statusEl) setStatus(statusEl, message, "error");
  else toast(message, "error");
  // What the user can fix (a refused field, a name taken) is said on the page; only
  // what went wrong in the page or the server is worth a trace in the console.
  const answered = err && err.name === "ApiError" && err.status > 0 && err.status < 500;
  if (!answered) console.warn(err);
}

export function setStatus(el, message = "", kind = "info") {
  if (!el) return;
  el.textContent = message;
  el.dataset.kind = message ? kind : "";
}

/** Run `work` with `button` disabled and spinning; the button's label may change meanwhile. */
export async function busy(button, work, label = null) {
  const original = button ? button.textContent : "";
  if (button) {
    button.disabled = true;
    button.classList.add("busy");
    button.setAttribute("aria-busy", "true");
    if (label) button.textContent = label;
  }
  try {
    return await work();
  } finally {
    if (button) {
      button.disabled = false;
      button.classList.remove("busy");
      button.removeAttribute("aria-busy");
      if (label) button.textContent = original;
    }
  }
}

/** A progress block: <div hidden><progress/><span/></div>. fraction null = indeterminate. */
export function progress(block) {
  const bar = $("progress", block);
  const text = $("span", block);
  return {
    show(message, fraction = null) {
      block.hidden = false;
      if (fraction === null) bar.removeAttribute("value");
      else bar.value = Math.max(0, Math.min(1, fraction));
      text.textContent = message;
    },
    hide() { block.hidden = true; },
  };
}

export function formatSeconds(seconds) {
  if (seconds === null || seconds === undefined || Number.isNaN(Number(seconds))) return "";
  const total = Math.max(0, Number(seconds));
  if (total < 60) return `${total.toFixed(1)} s`;
  const minutes = Math.floor(total / 60);
  return `${minutes}:${String(Math.floor(total % 60)).padStart(2, "0")}`;
}

export function formatBytes(bytes) {
  if (!bytes && bytes !== 0) return "";
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KB`;
  return `${(bytes / 1024 / 1024).toFixed(2)} MB`;
}

export function formatTime(iso, lang) {
  if (!iso) return "";
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  return date.toLocaleString(lang === "zh" ? "zh-CN" : "en-GB",
    { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });
}

// One <audio> element plays short clips (samples, previews, replays): starting a clip
// stops the previous one, and the button that started it shows a stop sign meanwhile.
let clipButton = null;

function sharedAudio() {
  return $("#shared-audio");
}

function resetClipButton() {
  if (clipButton) {
    clipButton.classList.remove("playing");
    clipButton.textContent = clipButton.dataset.label || "▶";
    if (clipButton.dataset.name) clipButton.setAttribute("aria-label", clipButton.dataset.name);
    else clipButton.removeAttribute("aria-label");
    clipButton = null;
  }
}

export function stopClip() {
  const audio = sharedAudio();
  audio.pause();
  resetClipButton();
}

/** Play `url` in the shared element; clicking the same button again stops it. */
export async function playClip(url, button = null) {
  const audio = sharedAudio();
  if (button && clipButton === button) {
    stopClip();
    return;
  }
  stopClip();
  if (button) {
    clipButton = button;
    button.dataset.label = button.dataset.label || button.textContent;
    button.classList.add("playing");
    // The button stops the clip now, and says so to a screen reader too.
    button.dataset.name = button.getAttribute("aria-label") || "";
    button.setAttribute("aria-label", t("common.stop"));
    button.textContent = "■";
  }
  audio.onended = resetClipButton;
  audio.onerror = () => {
    resetClipButton();
    toast(t("error.playback"), "error");
  };
  audio.src = url;
  try {
    await audio.play();
  } catch (err) {
    resetClipButton();
    if (err.name !== "AbortError") toast(t("error.playback"), "error");
  }
}

export function confirmAction(message) {
  return window.confirm(message);
}
