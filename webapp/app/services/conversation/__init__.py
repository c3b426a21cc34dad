"""Talking with a role: one turn of chat on every transport, hands-free calls (turn
detection, live recognition), memory."""
