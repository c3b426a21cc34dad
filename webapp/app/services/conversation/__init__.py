"""Talking with a role: one turn of chat on every transport, hands-free calls (turn
detection, live recognition), memory, and the voice messages of a session (emotional
generation and its cache, playback sessions) told to its event stream."""
