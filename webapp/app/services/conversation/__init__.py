"""Talking with a role: conversations and their messages, one turn of chat on every
transport, hands-free calls (turn detection, live recognition), memory, roles."""
