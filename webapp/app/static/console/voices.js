// Voices: browse voice types with play buttons; create a voice from a recording or a file
// and watch its job; play, edit, publish and delete my voices.

import { api, upload } from "./api.js";
import { Recorder } from "./audio.js";
import { categoryName, getLang, onLangChange, t } from "./i18n.js";
import { RecordButton } from "./microphone.js";
import * as store from "./store.js";
import {
  $, busy, clear, confirmAction, formatSeconds, h, playClip, progress, setStatus, showError,
  stopClip, toast,
} from "./ui.js";
import { orderVoices, voiceLabel } from "./voice-choice.js";

export const id = "voices";

export const stats = { created: 0, jobsWatched: 0, lastJob: null, jobStates: [], progressShown: 0 };

const MAX_SAMPLE_SECONDS = 300;
const JOB_POLL_MS = 1000;
const JOB_GIVE_UP_MS = 15 * 60 * 1000;

let sample = null; // {blob, name, seconds}
const recorder = new RecordButton({
  button: "#voice-record", meter: "#voice-meter", status: "#voice-status", maxSeconds: MAX_SAMPLE_SECONDS,
});
let samplePreviewUrl = null;
let minePage = 1;
const watching = new Map(); // job_id -> {promise, bars}

// ---- voice types -------------------------------------------------------------------------

function renderVoiceTypes(types, details) {
  const box = $("#voice-types");
  clear(box);
  const filter = $("#voice-types-filter").value.trim().toLowerCase();
  const shown = types.filter((type) => !filter
    || `${type.voice_name} ${voiceLabel(type)} ${type.voice_type} ${type.category} ${categoryName(type.category)}`
      .toLowerCase().includes(filter));
  if (!shown.length) {
    box.append(h("p", { class: "empty", text: t("voices.noMatch") }));
    return;
  }
  box.append(h("ul", { class: "chips" },
    orderVoices(shown, { details, me: store.me() }).map(voiceChip)));
}

function voiceChip(type) {
  return h("li", { class: "chip", dataset: { voiceType: type.voice_type } },
    h("button", {
      type: "button", class: "icon play", title: t("common.play"),
      "aria-label": t("voices.playNamed", { name: voiceLabel(type) }),
      onclick: (event) => playClip(type.sample_url, event.currentTarget),
    }, "▶"),
    h("span", { class: "chip-text" },
      h("span", { class: "chip-name", text: voiceLabel(type) }),
      h("small", { class: "muted", title: type.voice_type,
        text: [categoryName(type.category), t(`provider.${type.provider}`)].filter(Boolean).join(" · ") })));
}

async function loadVoiceTypes(force = false) {
  const box = $("#voice-types");
  if (!box.childElementCount) box.append(h("p", { class: "loading", text: t("common.loading") }));
  try {
    const [types, details] = await Promise.all([
      store.voiceTypes(force), store.voiceDetails(force).catch(() => new Map()),
    ]);
    renderVoiceTypes(types, details);
  } catch (err) {
    clear(box);
    showError(err);
  }
}

// ---- my voices ---------------------------------------------------------------------------

function statusBadge(voice) {
  return h("span", { class: `badge status ${voice.status}`, text: t(`voiceStatus.${voice.status}`) });
}

function voiceItem(voice) {
  const item = h("li", { class: "item voice-item", dataset: { voiceId: voice.voice_id } });
  fillVoiceItem(item, voice);
  return item;
}

function fillVoiceItem(item, voice) {
  clear(item);
  const language = voice.labels && voice.labels.language;
  const details = [
    t(`gender.${voice.gender}`) || voice.gender,
    language ? t(`language.${language}`) : null,
    t(`provider.${voice.provider}`),
  ].filter(Boolean).join(" · ");
  const preview = h("button", {
    type: "button", class: "icon play", title: t("voices.preview"),
    disabled: voice.status !== "ready" || !voice.preview_url,
    onclick: (event) => playClip(voice.preview_url, event.currentTarget),
  }, "▶");
  const actions = h("div", { class: "actions" },
    h("button", { type: "button", class: "small", onclick: () => editVoice(item, voice) },
      t("common.edit")),
    h("button", {
      type: "button", class: "small", onclick: (event) => togglePublic(event.currentTarget, item, voice),
    }, voice.is_public ? t("voices.makePrivateShort") : t("voices.makePublicShort")),
    h("button", { type: "button", class: "small danger", onclick: (event) => deleteVoice(event.currentTarget, item, voice) },
      t("common.delete")));
  const body = h("div", { class: "item-body" },
    h("div", { class: "item-title" },
      h("strong", { class: "voice-name", text: voice.name }), statusBadge(voice),
      voice.is_public ? h("span", { class: "badge public", text: t("voices.public") }) : null),
    h("div", { class: "muted small", text: details }),
    voice.description ? h("div", { class: "small", text: voice.description }) : null,
    voice.status === "failed" && voice.error ? h("div", { class: "error small", text: voice.error }) : null);
  item.append(preview, body, actions);
  if (voice.status === "pending" || voice.status === "running") {
    const bar = h("div", { class: "progress-block inline" }, h("progress", { max: "1" }),
      h("span", { text: t("job.pending") }));
    body.append(bar);
    if (voice.job_id) {
      watchJob(voice.job_id, progress(bar)).then(refreshSoon).catch(() => {});
    }
  }
}

function editVoice(item, voice) {
  clear(item);
  const name = h("input", { value: voice.name, maxlength: "100", "aria-label": t("voices.name") });
  const description = h("input", {
    value: voice.description || "", maxlength: "500", "aria-label": t("voices.description"),
    placeholder: t("voices.descriptionPlaceholder"),
  });
  const gender = h("select", { "aria-label": t("voices.gender") },
    ["unknown", "female", "male"].map((value) => h("option", {
      value, selected: value === voice.gender,
    }, t(`gender.${value}`))));
  const isPublic = h("input", { type: "checkbox", checked: Boolean(voice.is_public) });
  const status = h("p", { class: "status" });
  const save = h("button", { type: "submit", class: "primary small" }, t("common.save"));
  const form = h("form", { class: "edit-form" },
    h("label", {}, h("span", { text: t("voices.name") }), name),
    h("label", {}, h("span", { text: t("voices.description") }), description),
    h("div", { class: "row wrap" }, h("label", { class: "grow" }, h("span", { text: t("voices.gender") }), gender),
      h("label", { class: "check" }, isPublic, h("span", { text: t("voices.public") }))),
    h("div", { class: "row" }, save,
      h("button", { type: "button", class: "small", onclick: () => fillVoiceItem(item, voice) }, t("common.cancel"))),
    status);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const updated = await busy(save, () => api(`/api/voices/${voice.voice_id}`, {
        method: "PATCH",
        json: { name: name.value.trim(), description: description.value.trim(), gender: gender.value, is_public: isPublic.checked },
      }));
      toast(t("voices.saved"), "success");
      store.invalidate("voiceTypes");
      fillVoiceItem(item, updated);
    } catch (err) {
      showError(err, status);
    }
  });
  item.append(form);
  name.focus();
}

async function togglePublic(button, item, voice) {
  try {
    const updated = await busy(button, () => api(`/api/voices/${voice.voice_id}`, {
      method: "PATCH", json: { is_public: !voice.is_public },
    }));
    toast(updated.is_public ? t("voices.nowPublic") : t("voices.nowPrivate"), "success");
    store.invalidate("voiceTypes");
    fillVoiceItem(item, updated);
  } catch (err) {
    showError(err);
  }
}

async function deleteVoice(button, item, voice) {
  if (!confirmAction(t("voices.confirmDelete", { name: voice.name }))) return;
  try {
    await busy(button, () => api(`/api/voices/${voice.voice_id}`, { method: "DELETE" }));
    stopClip();
    item.remove();
    toast(t("voices.deleted"), "success");
    store.invalidate("voiceTypes");
    if (!$("#voices-mine").childElementCount) $("#voices-mine-empty").hidden = false;
  } catch (err) {
    showError(err);
  }
}

async function loadMine(page = 1) {
  const list = $("#voices-mine");
  const more = $("#voices-mine-more");
  if (page === 1) {
    clear(list);
    list.append(h("li", { class: "loading", text: t("common.loading") }));
  }
  try {
    const data = await busy(page > 1 ? more : null,
      () => api("/api/voices", { query: { mine: "true", page, page_size: 20 } }));
    if (page === 1) clear(list);
    data.list.forEach((voice) => list.append(voiceItem(voice)));
    minePage = page;
    more.hidden = !data.has_more;
    $("#voices-mine-empty").hidden = list.childElementCount > 0;
  } catch (err) {
    if (page === 1) clear(list);
    showError(err);
  }
}

function refreshMine() {
  return loadMine(1);
}

// ---- jobs --------------------------------------------------------------------------------

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Poll a job until it finishes; every `bar` (from ui.progress) shows where it is. */
export function watchJob(jobId, bar = null) {
  let watch = watching.get(jobId);
  if (!watch) {
    watch = { bars: new Set() };
    watch.promise = pollJob(jobId, watch).finally(() => watching.delete(jobId));
    watching.set(jobId, watch);
  }
  if (bar) watch.bars.add(bar);
  return watch.promise;
}

async function pollJob(jobId, watch) {
  stats.jobsWatched += 1;
  const started = Date.now();
  for (;;) {
    const job = await api(`/api/jobs/${jobId}`);
    stats.lastJob = job;
    stats.jobStates.push(job.status);
    const seconds = Math.round((Date.now() - started) / 1000);
    if (job.status === "succeeded" || job.status === "failed") {
      watch.bars.forEach((bar) => bar.show(t(`job.${job.status}`), 1));
      return job;
    }
    watch.bars.forEach((bar) => bar.show(`${t(`job.${job.status}`)} · ${seconds} s`, null));
    if (Date.now() - started > JOB_GIVE_UP_MS) throw new Error(t("job.tooLong"));
    await sleep(JOB_POLL_MS);
  }
}

let refreshTimer = 0;

/** Re-read my voices soon (several jobs finishing together cause one reload). */
function refreshSoon() {
  clearTimeout(refreshTimer);
  refreshTimer = setTimeout(refreshMine, 200);
}

// ---- creating a voice --------------------------------------------------------------------

function setSample(blob, name, seconds = null) {
  sample = blob ? { blob, name, seconds } : null;
  if (samplePreviewUrl) URL.revokeObjectURL(samplePreviewUrl);
  samplePreviewUrl = blob ? URL.createObjectURL(blob) : null;
  const box = $("#voice-sample");
  box.hidden = !blob;
  const audio = $("#voice-sample-audio");
  if (blob) {
    audio.src = samplePreviewUrl;
    $("#voice-sample-label").textContent = seconds
      ? t("voices.recorded", { seconds: formatSeconds(seconds) }) : name;
  } else {
    audio.removeAttribute("src");
    $("#voice-file").value = "";
  }
}

async function toggleRecording() {
  if (recorder.recording) {
    const result = await recorder.stop();
    if (result && result.seconds >= 1) {
      setSample(result.blob, `recording.${result.format}`, result.seconds);
    } else {
      toast(t("rec.tooShort"), "error");
    }
    return;
  }
  stopClip();
  if (await recorder.start()) setSample(null);
}

async function createVoice(event) {
  event.preventDefault();
  const status = $("#voice-status");
  const bar = progress($("#voice-progress"));
  setStatus(status, "");
  const name = $("#voice-name").value.trim();
  if (!name) {
    setStatus(status, t("voices.needName"), "error");
    $("#voice-name").focus();
    return;
  }
  if (recorder.recording) await toggleRecording();
  if (!sample) {
    setStatus(status, t("voices.needSample"), "error");
    return;
  }
  const form = new FormData();
  form.append("name", name);
  form.append("files", sample.blob, sample.name);
  form.append("labels", JSON.stringify({ language: $("#voice-language").value }));
  form.append("description", $("#voice-description").value.trim());
  form.append("gender", $("#voice-gender").value);
  form.append("provider", $("#voice-provider").value);
  form.append("is_public", $("#voice-public").checked ? "true" : "false");
  const button = $("#voice-submit");
  try {
    await busy(button, async () => {
      bar.show(t("voices.uploading", { percent: 0 }), 0);
      stats.progressShown += 1;
      const accepted = await upload("/api/voices", form, {
        onProgress: (fraction) => bar.show(t("voices.uploading", { percent: Math.round(fraction * 100) }), fraction),
      });
      stats.created += 1;
      refreshMine();
      const job = await watchJob(accepted.job_id, bar);
      if (job.status === "failed") throw new Error(t("voices.failed", { reason: job.error || "" }));
      toast(t("voices.ready", { name }), "success");
      setStatus(status, t("voices.ready", { name }), "success");
      store.invalidate("voiceTypes");
      $("#voice-form").reset();
      setSample(null);
      await refreshMine();
    });
  } catch (err) {
    showError(err, status);
  } finally {
    setTimeout(() => bar.hide(), 1500);
  }
}

async function fillProviders() {
  const select = $("#voice-provider");
  const dashscope = await store.dashscopeCloning().catch(() => false);
  const existing = [...select.options].map((option) => option.value);
  if (dashscope && !existing.includes("dashscope")) {
    select.append(h("option", { value: "dashscope", "data-i18n": "provider.dashscope" },
      t("provider.dashscope")));
  }
  $("#voice-provider-field").hidden = select.options.length < 2;
}

// ---- screen ------------------------------------------------------------------------------

export function init() {
  $("#voice-form").addEventListener("submit", createVoice);
  $("#voice-record").addEventListener("click", () => toggleRecording());
  $("#voice-record").disabled = !Recorder.supported();
  $("#voice-file").addEventListener("change", (event) => {
    const file = event.target.files[0];
    if (file) setSample(file, file.name);
  });
  $("#voice-sample-clear").addEventListener("click", () => setSample(null));
  $("#voice-types-filter").addEventListener("input", () => loadVoiceTypes());
  $("#voices-mine-refresh").addEventListener("click", () => {
    refreshMine();
    loadVoiceTypes(true);
  });
  $("#voices-mine-more").addEventListener("click", () => loadMine(minePage + 1));
  $("#voice-language").value = getLang() === "zh" ? "zh" : "en";
  store.onInvalidate("voiceTypes", () => {
    if (!$("#screen-voices").hidden) loadVoiceTypes(true);
  });
  onLangChange(() => {
    if (!$("#screen-voices").hidden) {
      loadVoiceTypes();
      refreshMine();
    }
  });
}

export function show() {
  fillProviders();
  loadVoiceTypes();
  refreshMine();
}

export function hide() {
  stopClip();
}
