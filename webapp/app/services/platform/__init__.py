"""What every feature stands on: stored files and signed URLs, background jobs,
accounts and API keys, list counts, health."""
