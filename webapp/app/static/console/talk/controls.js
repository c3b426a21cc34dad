// The Talk screen's header and buttons: which are usable, the connection badge, the title.

import { Recorder } from "../audio.js";
import { CallMicrophone } from "../call.js";
import { t } from "../i18n.js";
import { $ } from "../ui.js";
import { player, roleById, state } from "./state.js";

export function updateControls() {
  const ready = Boolean(state.connection && state.roleId);
  const inFlight = Boolean(state.reply);
  $("#talk-send").disabled = !ready || inFlight;
  $("#talk-hold").disabled = !ready || !Recorder.supported() || Boolean(state.call);
  $("#talk-call").disabled = !ready || !CallMicrophone.supported();
  $("#talk-attach").disabled = !ready || inFlight;
  $("#talk-stop").hidden = !inFlight && !player.playing;
  $("#talk-clear").disabled = !state.sessionId;
  $("#talk-delete").disabled = !state.sessionId;
}

export function setConnectionBadge(connState, detail = "") {
  state.connState = connState;
  const badge = $("#talk-conn");
  badge.dataset.state = connState;
  badge.textContent = t(`conn.${connState}`);
  badge.title = detail || "";
  updateControls();
}

export function setTitle(name = null) {
  const role = roleById(state.roleId);
  const shown = name || (role && role.name);
  $("#talk-title").textContent = shown ? t("talk.withRole", { name: shown }) : t("talk.pickRole");
}
