"""What a conversation is stored as: sessions and their messages, the roles they are
held with, and each session's event stream. Speech requests (text to speech, speech to
text, OpenAI's audio API) store their results here as surely as chat turns do, so this
package sits below both speech and conversation and imports neither."""
