// The first conversation: right after sign-up the console makes a starter role in the
// interface's language, with the voice that fits it, so that a new user lands on Talk
// with someone to talk to. Only the console does this: accounts made through the API
// get no role they did not ask for.

import { api } from "./api.js";
import { getLang, t } from "./i18n.js";
import * as store from "./store.js";
import { defaultVoice } from "./voice-choice.js";

const STARTERS = {
  zh: { gender: "女", age: 24 },
  en: { gender: "男", age: 28 },
};

/** Create the starter role with the new account's token; resolves to the role, or null. */
export async function createStarterRole(token) {
  const lang = getLang();
  const starter = STARTERS[lang] || STARTERS.zh;
  try {
    const types = await api("/api/voiceTypes", { token });
    const role = await api("/api/role/add", {
      method: "POST", token,
      json: {
        name: t("starter.name"), description: t("starter.description"),
        gender: starter.gender, age: starter.age, is_public: false,
        voice_type: defaultVoice(types, { language: lang, gender: starter.gender }),
      },
    });
    store.invalidate("roles");
    return role;
  } catch (err) {
    // Sign-up worked; without a starter the Talk screen points to the Roles screen.
    console.warn("no starter role", err);
    return null;
  }
}
