"""Speech as a request: text to speech and speech to text stored as messages, OpenAI's
audio API, transcript formats, streamed text spoken sentence by sentence, speech for voice
assistants, and the DashScope-style service classes (AliyunAPIService, FileWriterCallback,
WebSocketAudioPlayer)."""
