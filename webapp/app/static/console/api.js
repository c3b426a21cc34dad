// The REST API: one envelope {code, message, success, data, error?, meta} for every JSON
// answer, one silent refresh on 401. The tokens are kept in localStorage, so a sign-in
// holds in every tab of this browser until it signs out (the refresh token lasts
// JWT_REFRESH_SECONDS); they only ever travel in the Authorization header, never in a URL.

import { getLang, has, t } from "./i18n.js";

const KEYS = {
  access: "tingshuo.access_token",
  refresh: "tingshuo.refresh_token",
  user: "tingshuo.user",
};

const listeners = new Set();

const tokens = window.localStorage;

export const auth = {
  get token() { return tokens.getItem(KEYS.access); },
  get refreshToken() { return tokens.getItem(KEYS.refresh); },
  get user() {
    try {
      return JSON.parse(tokens.getItem(KEYS.user) || "null");
    } catch {
      return null;
    }
  },
  get signedIn() { return Boolean(this.token); },

  /** Keep the tokens of a sign-in; `detail` goes to the listeners ({firstRoleId} after sign-up). */
  save({ access_token: access, refresh_token: refresh, user }, detail = {}) {
    if (access) tokens.setItem(KEYS.access, access);
    if (refresh) tokens.setItem(KEYS.refresh, refresh);
    if (user) tokens.setItem(KEYS.user, JSON.stringify(user));
    notify("signed-in", detail);
  },

  clear(reason = "signed-out") {
    const had = this.signedIn;
    Object.values(KEYS).forEach((key) => tokens.removeItem(key));
    if (had) notify(reason);
  },

  /** Keep the signed-in user's details (after /api/auth/me). */
  saveUser(user) { tokens.setItem(KEYS.user, JSON.stringify(user)); },

  /** Follow sign-ins and sign-outs made in another tab of this browser. */
  followOtherTabs() {
    window.addEventListener("storage", (event) => {
      if (event.key !== KEYS.access || Boolean(event.oldValue) === Boolean(event.newValue)) return;
      notify(event.newValue ? "signed-in" : "signed-out");
    });
  },

  onChange(listener) { listeners.add(listener); },
};

function notify(reason, detail = {}) {
  listeners.forEach((listener) => listener(reason, detail));
}

export class ApiError extends Error {
  constructor(message, { status = 0, code = "", details = null } = {}) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

// Marshmallow's own range rule, which the server passes on in English.
const RANGE = /greater than or equal to (-?\d+(?:\.\d+)?) and less than or equal to (-?\d+(?:\.\d+)?)/;

function fieldProblem(problem) {
  const text = String(problem);
  if (has(`rule.${text}`)) return t(`rule.${text}`);
  const range = RANGE.exec(text);
  if (range) return t("rule.range", { min: range[1], max: range[2] });
  return t("rule.invalid");
}

/**
 * A validation error in the interface's language, naming the field: the server says
 * which field broke which rule (error.details.fields); null when it did not.
 */
export function validationMessage(details) {
  const fields = details && details.fields;
  if (!fields || typeof fields !== "object") return null;
  const [name, problems] = Object.entries(fields)[0] || [];
  if (!name) return null;
  const problem = Array.isArray(problems) ? problems[0] : problems;
  const field = has(`field.${name}`) ? t(`field.${name}`) : name;
  return t("error.field", { field, problem: fieldProblem(problem) });
}

/** The error an envelope describes; its `message` is what the user reads. */
export function errorFrom(body, status) {
  const details = (body && body.error && body.error.details) || null;
  const message = validationMessage(details)
    || (body && (body.message || (body.error && body.error.message)))
    || t("error.http", { status });
  return new ApiError(message, {
    status: (body && body.code) || status,
    code: (body && body.error && body.error.code) || "",
    details,
  });
}

function buildUrl(path, query) {
  if (!query) return path;
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    if (value !== undefined && value !== null && value !== "") params.set(key, String(value));
  }
  const text = params.toString();
  return text ? `${path}${path.includes("?") ? "&" : "?"}${text}` : path;
}

function headersFor(withAuth, token = auth.token) {
  const headers = new Headers({ "Accept-Language": getLang() === "en" ? "en" : "zh-CN" });
  if (withAuth && token) headers.set("Authorization", `Bearer ${token}`);
  return headers;
}

async function readEnvelope(response) {
  const type = response.headers.get("Content-Type") || "";
  if (!type.includes("json")) {
    if (response.ok) return { success: true, data: null };
    throw new ApiError(t("error.http", { status: response.status }), { status: response.status });
  }
  let body;
  try {
    body = await response.json();
  } catch {
    throw new ApiError(t("error.badResponse"), { status: response.status });
  }
  if (!response.ok || body.success === false) throw errorFrom(body, response.status);
  return body;
}

let refreshing = null;

async function doRefresh() {
  const token = auth.refreshToken;
  if (!token) return false;
  try {
    const response = await fetch("/api/auth/refresh", {
      method: "POST", headers: headersFor(true, token),
    });
    const body = await response.json();
    if (!response.ok || !body.success) return false;
    tokens.setItem(KEYS.access, body.data.access_token);
    if (body.data.user) tokens.setItem(KEYS.user, JSON.stringify(body.data.user));
    return true;
  } catch {
    return false;
  }
}

/** A new access token from the refresh token; concurrent callers share one request. */
export function refreshAccess() {
  if (!refreshing) refreshing = doRefresh().finally(() => { refreshing = null; });
  return refreshing;
}

function expired() {
  auth.clear("expired");
}

/** A stable positive 31-bit number for a string (/api/voice/generate's messageId is an integer). */
export function numericKey(text) {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i += 1) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return (hash >>> 1) || 1;
}

/**
 * Call the API. Resolves to the envelope's `data` (or the Response itself with raw: true);
 * rejects with an ApiError carrying the envelope's message.
 */
export async function api(path, options = {}) {
  const {
    method = "GET", json, form, query, withAuth = true, raw = false, retry = true, signal,
    token = null,
  } = options;
  const init = { method, headers: headersFor(withAuth, token || auth.token), signal };
  if (json !== undefined) {
    init.headers.set("Content-Type", "application/json");
    init.body = JSON.stringify(json);
  } else if (form) {
    init.body = form;
  }
  let response;
  try {
    response = await fetch(buildUrl(path, query), init);
  } catch (err) {
    if (err.name === "AbortError") throw err;
    throw new ApiError(t("error.network"), { code: "NETWORK" });
  }
  if (response.status === 401 && withAuth && auth.signedIn) {
    if (retry && await refreshAccess()) return api(path, { ...options, retry: false });
    const error = errorFrom(await response.json().catch(() => null), 401);
    expired();
    throw error;
  }
  if (raw) {
    if (!response.ok) await readEnvelope(response);
    return response;
  }
  const body = await readEnvelope(response);
  return body.data;
}

/** A multipart POST with upload progress (fetch cannot report it). */
export function upload(path, form, { onProgress = null, retry = true } = {}) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", path);
    headersFor(true).forEach((value, key) => xhr.setRequestHeader(key, value));
    xhr.responseType = "json";
    if (onProgress) {
      xhr.upload.onprogress = (event) => {
        if (event.lengthComputable) onProgress(event.loaded / event.total);
      };
    }
    xhr.onload = () => resolve(xhr);
    xhr.onerror = () => reject(new ApiError(t("error.network"), { code: "NETWORK" }));
    xhr.send(form);
  }).then(async (xhr) => {
    const body = xhr.response;
    if (xhr.status === 401 && auth.signedIn) {
      if (retry && await refreshAccess()) return upload(path, form, { onProgress, retry: false });
      expired();
    }
    if (xhr.status >= 400 || !body || body.success === false) throw errorFrom(body, xhr.status);
    return body.data;
  });
}

/** Every item of a paginated list ({total, list, page, pages, has_more}), up to `limit`. */
export async function listAll(path, { query = {}, pageSize = 100, limit = 500 } = {}) {
  const items = [];
  for (let page = 1; items.length < limit; page += 1) {
    const data = await api(path, { query: { ...query, page, page_size: pageSize } });
    items.push(...(data.list || []));
    if (!data.has_more) break;
  }
  return items;
}
