"""Voices and how they are spoken: the library, cloning, synthesis, emotions, per-user
settings and per-role profiles."""
