// Roles: create and edit AI characters (name, persona, gender, age, voice, public or
// private), list mine and every role I may use, delete mine, and start talking to any of them.

import { api } from "./api.js";
import { categoryName, getLang, onLangChange, t } from "./i18n.js";
import * as store from "./store.js";
import {
  $, $$, busy, clear, confirmAction, h, playClip, setStatus, showError, stopClip, toast,
} from "./ui.js";
import { defaultVoice, orderVoices, textLanguage, voiceLabel } from "./voice-choice.js";

export const id = "roles";

const GENDER_KEYS = { 男: "male", 女: "female", 其他: "other", 未知: "unknown" };

let app = null;
let scope = "mine";
let page = 1;
let editing = null; // the role being edited, or null when creating
let voiceNames = new Map();
let voiceTouched = false; // the user chose the role's voice: no more suggestions

export function genderLabel(value) {
  return GENDER_KEYS[value] ? t(`roleGender.${GENDER_KEYS[value]}`) : value;
}

export function voiceName(voiceType) {
  return voiceNames.get(voiceType) || voiceType;
}

/**
 * Fill a <select> with voice types: the wanted language's voices first, grouped by
 * language, other people's shared voices last; built-in voices named in the interface's
 * language. `auto` adds a first, empty choice ("automatic"). Keeps `selected` (or what was
 * chosen) when present.
 */
export async function fillVoiceSelect(select, selected = null,
  { force = false, language = getLang(), auto = false } = {}) {
  const [types, details] = await Promise.all([
    store.voiceTypes(force), store.voiceDetails(force).catch(() => new Map()),
  ]);
  voiceNames = new Map(types.map((type) => [type.voice_type, voiceLabel(type)]));
  const keep = selected || select.value;
  clear(select);
  if (auto) select.append(h("option", { value: "" }, t("voice.auto")));
  const me = store.me();
  const groups = new Map();
  for (const type of orderVoices(types, { language, details, me })) {
    const info = details.get(type.voice_type);
    const shared = info && !info.builtin && (!me || info.owner_id !== me.id);
    const key = shared ? t("voices.shared") : categoryName(type.category || t("voices.other"));
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key).push(type);
  }
  for (const [label, items] of groups) {
    select.append(h("optgroup", { label }, items.map((type) => h("option", {
      value: type.voice_type, dataset: { sample: type.sample_url || "" },
    }, voiceLabel(type)))));
  }
  if (keep && types.some((type) => type.voice_type === keep)) select.value = keep;
  else if (keep) {
    // A voice this list does not offer (deleted, or private to someone else): keep it visible.
    select.prepend(h("option", { value: keep }, keep));
    select.value = keep;
  }
  return types;
}

/** The role's language: what its name and persona are written in, else the interface's. */
function roleLanguage() {
  return textLanguage(`${$("#role-name").value} ${$("#role-description").value}`) || getLang();
}

/** Until the user picks a voice, the form offers the one that fits the role. */
async function suggestVoice() {
  if (editing || voiceTouched) return;
  const types = await store.voiceTypes();
  const voice = defaultVoice(types, { language: roleLanguage(), gender: $("#role-gender").value });
  if (voice) $("#role-voice").value = voice;
  updateVoicePlay();
}

function updateVoicePlay() {
  const option = $("#role-voice").selectedOptions[0];
  const button = $("#role-voice-play");
  if (!button.classList.contains("playing")) {
    button.setAttribute("aria-label", t("voices.playNamed", { name: option ? option.textContent : "" }));
  }
}

async function fillRoleVoices() {
  await fillVoiceSelect($("#role-voice"), editing ? editing.voice_type : null,
    { language: roleLanguage() });
  await suggestVoice();
}

function formValues() {
  return {
    name: $("#role-name").value.trim(),
    description: $("#role-description").value.trim(),
    gender: $("#role-gender").value,
    age: Number.parseInt($("#role-age").value, 10),
    voice_type: $("#role-voice").value,
    is_public: $("#role-public").checked,
  };
}

function check(values) {
  if (values.name.length < 2 || values.name.length > 100) return t("roles.ruleName");
  if (values.description.length < 10) return t("roles.ruleDescription");
  if (!Number.isInteger(values.age) || values.age < 0 || values.age > 120) return t("roles.ruleAge");
  if (!values.voice_type) return t("roles.ruleVoice");
  return null;
}

async function submit(event) {
  event.preventDefault();
  const status = $("#role-status");
  setStatus(status, "");
  const values = formValues();
  const problem = check(values);
  if (problem) {
    setStatus(status, problem, "error");
    return;
  }
  try {
    if (editing) {
      await busy($("#role-submit"), () => api(`/api/role/${editing.id}`, { method: "PUT", json: values }),
        t("common.saving"));
      toast(t("roles.saved", { name: values.name }), "success");
    } else {
      await busy($("#role-submit"), () => api("/api/role/add", { method: "POST", json: values }),
        t("common.saving"));
      toast(t("roles.created", { name: values.name }), "success");
    }
    store.invalidate("roles");
    resetForm();
    await loadRoles(1);
  } catch (err) {
    showError(err, status);
  }
}

function resetForm() {
  editing = null;
  voiceTouched = false;
  $("#role-form").reset();
  labelForm();
  $("#role-cancel").hidden = true;
  suggestVoice().catch(showError);
}

async function startEdit(role) {
  editing = role;
  $("#role-name").value = role.name;
  $("#role-description").value = role.description;
  $("#role-gender").value = role.gender;
  $("#role-age").value = role.age;
  $("#role-public").checked = Boolean(role.is_public);
  await fillVoiceSelect($("#role-voice"), role.voice_type);
  updateVoicePlay();
  labelForm();
  $("#role-cancel").hidden = false;
  setStatus($("#role-status"), "");
  $("#role-form").scrollIntoView({ behavior: "smooth", block: "start" });
  $("#role-name").focus();
}

async function removeRole(button, role) {
  if (!confirmAction(t("roles.confirmDelete", { name: role.name }))) return;
  try {
    await busy(button, () => api(`/api/role/${role.id}`, { method: "DELETE" }));
    toast(t("roles.deleted", { name: role.name }), "success");
    store.invalidate("roles");
    if (editing && editing.id === role.id) resetForm();
    await loadRoles(1);
  } catch (err) {
    showError(err);
  }
}

function roleItem(role) {
  const mine = store.me() && role.user_id === store.me().id;
  const facts = [genderLabel(role.gender), t("roles.ageValue", { age: role.age }), voiceName(role.voice_type)]
    .join(" · ");
  return h("li", { class: "item role-item", dataset: { roleId: role.id } },
    h("div", { class: "avatar", "aria-hidden": "true" }, (role.name || "?").slice(0, 1)),
    h("div", { class: "item-body" },
      h("div", { class: "item-title" }, h("strong", { class: "role-name", text: role.name }),
        mine ? h("span", { class: "badge mine", text: t("roles.mineBadge") }) : null,
        role.is_public ? h("span", { class: "badge public", text: t("roles.publicBadge") }) : null),
      h("div", { class: "muted small", text: facts }),
      h("p", { class: "small clamp", text: role.description })),
    h("div", { class: "actions" },
      h("button", { type: "button", class: "small primary", onclick: () => app.navigate("talk", { roleId: role.id }) },
        t("roles.talk")),
      mine ? h("button", { type: "button", class: "small", onclick: () => startEdit(role) }, t("common.edit")) : null,
      mine ? h("button", { type: "button", class: "small danger", onclick: (event) => removeRole(event.currentTarget, role) },
        t("common.delete")) : null));
}

async function loadRoles(pageNo = 1) {
  const list = $("#roles-list");
  const more = $("#roles-more");
  if (pageNo === 1) {
    clear(list);
    list.append(h("li", { class: "loading", text: t("common.loading") }));
  }
  const user = store.me();
  const path = scope === "mine" ? `/api/role/user/${user ? user.id : 0}` : "/api/role/list";
  try {
    await store.voiceTypes().then((types) => {
      voiceNames = new Map(types.map((type) => [type.voice_type, voiceLabel(type)]));
    }).catch(() => {});
    const data = await busy(pageNo > 1 ? more : null,
      () => api(path, { query: { page: pageNo, page_size: 20 } }));
    if (pageNo === 1) clear(list);
    data.list.forEach((role) => list.append(roleItem(role)));
    page = pageNo;
    more.hidden = !data.has_more;
    $("#roles-empty").hidden = list.childElementCount > 0;
  } catch (err) {
    if (pageNo === 1) clear(list);
    showError(err);
  }
}

function setScope(next) {
  scope = next;
  $$("#screen-roles .seg button").forEach((button) => {
    button.classList.toggle("active", button.dataset.scope === next);
    button.setAttribute("aria-selected", String(button.dataset.scope === next));
  });
  loadRoles(1);
}

export function init(context) {
  app = context;
  $("#role-form").addEventListener("submit", submit);
  $("#role-cancel").addEventListener("click", () => {
    resetForm();
    setStatus($("#role-status"), "");
  });
  $$("#screen-roles .seg button").forEach((button) => {
    button.addEventListener("click", () => setScope(button.dataset.scope));
  });
  $("#roles-refresh").addEventListener("click", () => loadRoles(1));
  $("#roles-more").addEventListener("click", () => loadRoles(page + 1));
  $("#role-voice-play").addEventListener("click", (event) => {
    const option = $("#role-voice").selectedOptions[0];
    if (option && option.dataset.sample) playClip(option.dataset.sample, event.currentTarget);
  });
  $("#role-voice").addEventListener("change", () => {
    voiceTouched = true;
    updateVoicePlay();
  });
  for (const field of ["#role-gender", "#role-name", "#role-description"]) {
    $(field).addEventListener(field === "#role-gender" ? "change" : "input",
      () => suggestVoice().catch(showError));
  }
  store.onInvalidate("voiceTypes", () => {
    if (!$("#screen-roles").hidden) {
      fillVoiceSelect($("#role-voice"), null, { force: true, language: roleLanguage() })
        .catch(showError);
    }
  });
  labelForm();
  onLangChange(() => {
    labelForm();
    if (!$("#screen-roles").hidden) {
      fillRoleVoices().catch(showError);
      loadRoles(1);
    }
  });
}

function labelForm() {
  $("#role-form-title").textContent = editing
    ? t("roles.editTitle", { name: editing.name }) : t("roles.createTitle");
  $("#role-submit").textContent = editing ? t("common.save") : t("roles.create");
}

export function show() {
  fillRoleVoices().catch(showError);
  loadRoles(1);
}

export function hide() {
  stopClip();
}
