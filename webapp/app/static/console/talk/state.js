// What the Talk screen knows right now, shared by its modules: the open conversation, the
// reply in flight, the call, the socket, and the one player the reply's audio goes to.

import { PcmStreamPlayer } from "../audio.js";

/** Streamed reply audio (16-bit PCM chunks, played back to back). */
export const player = new PcmStreamPlayer();

export const state = {
  connection: null, // ChatConnection to /chat
  connState: "off", // off | connecting | on | error
  roles: [], // the roles this user may talk to
  roleId: null,
  sessionId: null,
  joinedSession: null, // the session whose room this socket is in
  joining: 0, // joins waiting for their acknowledgement
  language: null, // what the open conversation's last spoken message was recognised as
  reply: null, // the reply in flight (reply.js)
  awaitingAsr: null, // the bubble of a voice message still being recognised
  call: null, // the hands-free call (handsfree.js)
  callState: "off",
};

export function roleById(roleId) {
  return state.roles.find((role) => role.id === Number(roleId)) || null;
}

/** Whether a server event belongs to the open conversation. */
export function sameSession(data) {
  return !data.session_id || !state.sessionId || data.session_id === state.sessionId;
}
