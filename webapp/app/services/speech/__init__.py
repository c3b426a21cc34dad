"""Speech as a request: text to speech and speech to text stored as messages, OpenAI's
audio API, transcript formats, and the DashScope-style service classes
(AliyunAPIService, FileWriterCallback, WebSocketAudioPlayer)."""
