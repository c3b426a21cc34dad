"""Voices and what is said with them: the library, cloning, emotional generation and
its cache, per-user settings and per-role profiles, playback sessions."""
