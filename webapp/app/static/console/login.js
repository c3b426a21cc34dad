// Sign up / log in. Tokens go to localStorage (api.js); the app switches screens when
// they arrive. The account's rules are shown under the fields and checked before
// anything is sent; a new account gets a starter role to talk to (starter.js).

import { api, auth } from "./api.js";
import { t } from "./i18n.js";
import { createStarterRole } from "./starter.js";
import { $, busy, setStatus, showError } from "./ui.js";

export const id = "login";

// The server's rules (auth/schemas.py): what the hints under the fields say.
const USERNAME = /^[\w\u4e00-\u9fff]{3,64}$/;
const PASSWORD_MIN = 8;
const PASSWORD_MAX = 128;

let form;
let status;

/** The first rule the form breaks, named by its field, or null. */
function broken(mode, username, password) {
  if (!username || !password) return t("auth.missing");
  if (mode !== "register") return null;
  if (!USERNAME.test(username)) {
    return t("error.field", { field: t("field.username"), problem: t("rule.username_rule") });
  }
  if (password.length < PASSWORD_MIN || password.length > PASSWORD_MAX) {
    return t("error.field", { field: t("field.password"), problem: t("rule.password_rule") });
  }
  return null;
}

async function submit(mode) {
  const username = $("#login-username").value.trim();
  const password = $("#login-password").value;
  setStatus(status, "");
  const problem = broken(mode, username, password);
  if (problem) {
    setStatus(status, problem, "error");
    return;
  }
  const button = mode === "register" ? $("#register-submit") : $("#login-submit");
  const label = mode === "register" ? t("auth.registering") : t("auth.loggingIn");
  try {
    const data = await busy(button, async () => {
      const tokens = await api(`/api/auth/${mode}`, {
        method: "POST", json: { username, password }, withAuth: false,
      });
      const starter = mode === "register" ? await createStarterRole(tokens.access_token) : null;
      return { tokens, starter };
    }, label);
    $("#login-password").value = "";
    auth.save(data.tokens, mode === "register" ? { firstRoleId: data.starter && data.starter.role_id } : {});
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
