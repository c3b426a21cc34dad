// The Socket.IO connection to the `/chat` namespace. The access token goes in the connect
// `auth` payload; a refused connection refreshes the token once and tries again. An
// observer, when given, is told of every event sent, received and acknowledged.

import { auth, refreshAccess } from "./api.js";
import { getLang, t } from "./i18n.js";

const EVENTS = [
  "asr_result", "ai_text_chunk", "tts_audio_chunk_start", "tts_audio_chunk",
  "tts_audio_chunk_end", "chat_response", "response_complete", "error",
  "call_started", "call_ended", "vad", "asr_partial", "barge_in",
];

export class ChatConnection {
  /**
   * handlers: {event name: fn(payload)} plus onState(state, detail);
   * observer: {sent(event, payload), received(event, payload), answered(event, answer)}.
   */
  constructor(handlers, observer = null) {
    this.handlers = handlers;
    this.observer = observer;
    this.socket = null;
    this.state = "off";
    this.refreshedFor = null;
  }

  get connected() { return Boolean(this.socket && this.socket.connected); }

  setState(state, detail = "") {
    this.state = state;
    if (this.handlers.onState) this.handlers.onState(state, detail);
  }

  connect() {
    if (this.socket) {
      if (!this.socket.connected && !this.socket.active) this.socket.connect();
      return;
    }
    if (typeof window.io !== "function") {
      this.setState("error", t("talk.noSocketLib"));
      return;
    }
    this.setState("connecting");
    const socket = window.io("/chat", {
      auth: (send) => send({ token: auth.token, lang: getLang() }),
      transports: ["websocket"],
      reconnectionDelay: 1000,
      reconnectionDelayMax: 5000,
      timeout: 10000,
    });
    this.socket = socket;
    socket.on("connect", () => {
      this.refreshedFor = null;
      this.setState("on");
    });
    socket.on("disconnect", (reason) => {
      // "io server disconnect": the server closed it (an idle connection); the next message
      // connects again. Anything else reconnects on its own.
      this.setState(reason === "io server disconnect" ? "off" : "connecting", reason);
    });
    socket.on("connect_error", (err) => {
      // socket.active is false when the server refused us (no retry on its own).
      if (!socket.active) {
        this.setState("error", err.message);
        this.retryWithFreshToken();
      } else {
        this.setState("connecting", err.message);
      }
    });
    for (const name of EVENTS) {
      socket.on(name, (payload) => {
        const handler = this.handlers[name];
        if (handler) handler(payload || {});
        if (this.observer) this.observer.received(name, payload || {});
      });
    }
  }

  async retryWithFreshToken() {
    const token = auth.token;
    if (!token || this.refreshedFor === token) return;
    this.refreshedFor = token;
    if (await refreshAccess()) {
      this.setState("connecting");
      this.socket.connect();
    }
  }

  /** Connect if needed; resolves once connected, rejects after `timeout` ms. */
  whenConnected(timeout = 10000) {
    if (this.connected) return Promise.resolve();
    this.connect();
    return new Promise((resolve, reject) => {
      const started = Date.now();
      const check = () => {
        if (this.connected) resolve();
        else if (Date.now() - started > timeout) reject(new Error(t("talk.notConnected")));
        else setTimeout(check, 100);
      };
      check();
    });
  }

  emit(event, payload) {
    if (!this.connected) throw new Error(t("talk.notConnected"));
    this.socket.emit(event, payload);
    if (this.observer) this.observer.sent(event, payload);
  }

  /** Send an event the server acknowledges; resolves to its answer, rejects after `timeout` ms. */
  async request(event, payload, timeout) {
    if (!this.connected) throw new Error(t("talk.notConnected"));
    const answer = this.socket.timeout(timeout).emitWithAck(event, payload);
    if (this.observer) this.observer.sent(event, payload);
    const result = await answer;
    if (this.observer) this.observer.answered(event, result);
    return result;
  }

  close() {
    if (this.socket) {
      this.socket.removeAllListeners();
      this.socket.disconnect();
    }
    this.socket = null;
    this.setState("off");
  }
}
