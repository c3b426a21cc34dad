// The REST API: one envelope {code, message, success, data, error?, meta} for every JSON
// answer, bearer tokens kept in sessionStorage, one silent refresh on 401.

import { getLang, t } from "./i18n.js";

const KEYS = {
  access: "tingshuo.access_token",
  refresh: "tingshuo.refresh_token",
  user: "tingshuo.user",
};

const listeners = new Set();

export const auth = {
  get token() { return sessionStorage.getItem(KEYS.access); },
  get refreshToken() { return sessionStorage.getItem(KEYS.refresh); },
  get user() {
    try {
      return JSON.parse(sessionStorage.getItem(KEYS.user) || "null");
    } catch {
      return null;
    }
  },
  get signedIn() { return Boolean(this.token); },

  save({ access_token: access, refresh_token: refresh, user }) {
    if (access) sessionStorage.setItem(KEYS.access, access);
    if (refresh) sessionStorage.setItem(KEYS.refresh, refresh);
    if (user) sessionStorage.setItem(KEYS.user, JSON.stringify(user));
    notify("signed-in");
  },

  clear(reason = "signed-out") {
    const had = this.signedIn;
    Object.values(KEYS).forEach((key) => sessionStorage.removeItem(key));
    if (had) notify(reason);
  },

  onChange(listener) { listeners.add(listener); },
};

function notify(reason) {
  listeners.forEach((listener) => listener(reason));
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

/** The error an envelope describes; its `message` is what the user reads. */
export function errorFrom(body, status) {
  const message = (body && (body.message || (body.error && body.error.message)))
    || t("error.http", { status });
  return new ApiError(message, {
    status: (body && body.code) || status,
    code: (body && body.error && body.error.code) || "",
    details: (body && body.error && body.error.details) || null,
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
    sessionStorage.setItem(KEYS.access, body.data.access_token);
    if (body.data.user) sessionStorage.setItem(KEYS.user, JSON.stringify(body.data.user));
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
  } = options;
  const init = { method, headers: headersFor(withAuth), signal };
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
