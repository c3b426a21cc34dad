// The console's entry point: language, sign-in state, and which screen is showing
// (#talk, #roles, #voices, #playground, #keys; the sign-in screen when there is no token).

import { api, auth } from "./api.js";
import { audioTime } from "./audio.js";
import { applyI18n, getLang, onLangChange, setLang, t } from "./i18n.js";
import * as login from "./login.js";
import * as keys from "./keys.js";
import * as playground from "./playground.js";
import * as roles from "./roles.js";
import * as store from "./store.js";
import * as talk from "./talk.js";
import { $, $$, stopClip, toast } from "./ui.js";
import * as voices from "./voices.js";

const screens = { login, voices, roles, talk, playground, keys };
const MAIN_SCREENS = ["voices", "roles", "talk", "playground", "keys"];

let current = null;
let pendingParams = {};

/** State for people and tests poking at the page (window.__console). */
const exposed = {
  ready: false,
  get lang() { return getLang(); },
  get screen() { return current; },
  get signedIn() { return auth.signedIn; },
  talk: talk.stats,
  playground: playground.stats,
  keys: keys.stats,
  voices: voices.stats,
  audioTime,
};
window.__console = exposed;

// Where a signed-in user starts: the conversation.
const HOME = "talk";

function screenFromHash() {
  return location.hash.replace(/^#/, "").split("?")[0] || HOME;
}

function showScreen(requested, params = {}) {
  let name = requested;
  if (!auth.signedIn) name = "login";
  else if (!MAIN_SCREENS.includes(name)) name = HOME;
  if (current && current !== name && screens[current].hide) screens[current].hide();
  $$("main > .screen").forEach((section) => { section.hidden = section.id !== `screen-${name}`; });
  $("#boot").hidden = true;
  $$("#nav a").forEach((link) => {
    if (link.dataset.screen === name) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  });
  current = name;
  document.body.dataset.screen = name;
  screens[name].show(name === "login" ? params.reason : params);
}

const app = {
  /** Go to a screen, passing it parameters (e.g. {roleId} for Talk). */
  navigate(name, params = {}) {
    pendingParams = params;
    if (screenFromHash() === name) {
      pendingParams = {};
      showScreen(name, params);
    } else {
      location.hash = name;
    }
  },
};

function updateHeader() {
  const user = auth.user;
  $("#nav").hidden = !auth.signedIn;
  $("#user-box").hidden = !auth.signedIn;
  $("#user-name").textContent = user ? user.username : "";
  $("#lang-switch").textContent = t("lang.label");
}

function onAuthChange(reason, detail = {}) {
  store.resetAll();
  updateHeader();
  if (reason === "signed-in") {
    if ("firstRoleId" in detail) {
      // A new account lands where a conversation starts, with its starter role chosen.
      app.navigate("talk", detail.firstRoleId ? { roleId: detail.firstRoleId } : {});
      return;
    }
    const target = MAIN_SCREENS.includes(screenFromHash()) ? screenFromHash() : HOME;
    app.navigate(target);
    return;
  }
  talk.reset();
  stopClip();
  if (reason === "signed-out") toast(t("auth.signedOut"));
  showScreen("login", { reason });
}

async function boot() {
  applyI18n();
  updateHeader();
  $("#lang-switch").addEventListener("click", () => setLang(getLang() === "zh" ? "en" : "zh"));
  onLangChange(updateHeader);
  $("#logout").addEventListener("click", () => auth.clear("signed-out"));
  auth.onChange(onAuthChange);
  auth.followOtherTabs();
  Object.values(screens).forEach((screen) => screen.init(app));
  window.addEventListener("hashchange", () => {
    const params = pendingParams;
    pendingParams = {};
    showScreen(screenFromHash(), params);
  });
  if (auth.signedIn) {
    try {
      // The stored token may have expired while the tab was closed; api() refreshes it.
      const user = await api("/api/auth/me");
      auth.saveUser(user);
      updateHeader();
    } catch (err) {
      // When the token could not be renewed, the sign-in screen says so already.
      if (auth.signedIn) toast(err.message, "error");
    }
  }
  if (auth.signedIn || current !== "login") showScreen(screenFromHash());
  exposed.ready = true;
}

boot();
