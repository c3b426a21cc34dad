"""The domain layer: callable from routes, socket handlers, tasks and tests alike.

The DashScope-style service classes are importable from here:
``from webapp.app.services import AliyunAPIService, WebSocketAudioPlayer, FileWriterCallback``.
"""

from webapp.app.services.speech.aliyun import AliyunAPIService, FileWriterCallback
from webapp.app.services.speech.audio_player import WebSocketAudioPlayer

__all__ = ["AliyunAPIService", "FileWriterCallback", "WebSocketAudioPlayer"]
