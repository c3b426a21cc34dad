// Sign up / log in. Tokens go to sessionStorage (api.js); the app switches screens when
// they arrive.

import { api, auth } from "./api.js";
import { t } from "./i18n.js";
import { $, busy, setStatus, showError } from "./ui.js";

export const id = "login";

let form;
let status;

async function submit(mode) {
  const username = $("#login-username").value.trim();
  const password = $("#login-password").value;
  setStatus(status, "");
  if (!username || !password) {
    setStatus(status, t("auth.missing"), "error");
    return;
  }
  const button = mode === "register" ? $("#register-submit") : $("#login-submit");
  const label = mode === "register" ? t("auth.registering") : t("auth.loggingIn");
  try {
    const data = await busy(button, () => api(`/api/auth/${mode}`, {
      method: "POST", json: { username, password }, withAuth: false,
    }), label);
    $("#login-password").value = "";
    auth.save(data);
  } catch (err) {
    showError(err, status);
  }
}

export function init() {
  form = $("#login-form");
  status = $("#login-status");
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    submit("login");
  });
  $("#register-submit").addEventListener("click", () => submit("register"));
}

export function show(reason) {
  if (reason === "expired") setStatus(status, t("auth.expired"), "error");
  setTimeout(() => $("#login-username").focus(), 0);
}

export function hide() {
  setStatus(status, "");
}
