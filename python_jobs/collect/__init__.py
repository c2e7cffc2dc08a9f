"""Real-time listening events: HTTP collector (server), build loop (follow), client (send)."""
