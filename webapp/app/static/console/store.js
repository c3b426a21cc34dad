// Data several screens share, fetched once and refreshed when something changes it:
// voice types, engines (/api/providers) and roles.

import { api, auth, listAll } from "./api.js";

const cache = new Map();
const listeners = new Map();

function cached(key, load) {
  return (force = false) => {
    if (force || !cache.has(key)) {
      const pending = load().catch((err) => {
        cache.delete(key);
        throw err;
      });
      cache.set(key, pending);
    }
    return cache.get(key);
  };
}

/** Voice types for roles and synthesis: built-in, public, and my own ready voices. */
export const voiceTypes = cached("voiceTypes", () => api("/api/voiceTypes"));

/**
 * Every voice I can see with its details (owner, language, gender, built-in or not), by
 * voice_type: what /api/voiceTypes does not say, and what sorting and defaults need.
 */
export const voiceDetails = cached("voiceDetails", async () => {
  const voices = await listAll("/api/voices", { limit: 1000 });
  return new Map(voices.map((voice) => [voice.voice_type, voice]));
});

/** Engines and what each can do. */
export const providers = cached("providers", () => api("/api/providers"));

/** Roles I may talk to (everyone's list includes mine). */
export const roles = cached("roles", () => listAll("/api/role/list", { limit: 1000 }));

/** Forget `key` and tell whoever listens that it changed. */
export function invalidate(key) {
  cache.delete(key);
  if (key === "voiceTypes") cache.delete("voiceDetails");
  (listeners.get(key) || []).forEach((listener) => listener());
}

export function onInvalidate(key, listener) {
  if (!listeners.has(key)) listeners.set(key, []);
  listeners.get(key).push(listener);
}

export function resetAll() {
  cache.clear();
}

export function me() {
  return auth.user;
}

/** A TTS engine's description by name (piper, espeak, dashscope…). */
export async function ttsEngine(name) {
  const all = await providers();
  return (all.tts || []).find((engine) => engine.name === name) || null;
}

/** Whether voice cloning through DashScope is available on this server. */
export async function dashscopeCloning() {
  const engine = await ttsEngine("dashscope");
  return Boolean(engine && engine.configured && engine.cloning);
}

/** Whether any configured engine follows emotion instructions natively. */
export async function emotionEngines() {
  const all = await providers();
  return (all.tts || []).filter((engine) => engine.configured && engine.emotion).map((e) => e.name);
}
