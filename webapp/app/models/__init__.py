"""SQLAlchemy 2.0 typed models, one module per aggregate."""

from webapp.app.models.api_key import ApiKey, ApiKeyUsage
from webapp.app.models.conversation import Conversation, Message
from webapp.app.models.file import File
from webapp.app.models.job import Job
from webapp.app.models.playback import GeneratedVoice, PlaybackSession, VoiceProfile, VoiceSettings
from webapp.app.models.role import Role
from webapp.app.models.usage import UserDailyUsage
from webapp.app.models.user import User
from webapp.app.models.voice import Voice, VoiceModel

__all__ = ["ApiKey", "ApiKeyUsage", "File", "GeneratedVoice", "Job", "Message",
           "PlaybackSession", "Role", "Conversation", "User", "UserDailyUsage", "Voice",
           "VoiceModel", "VoiceProfile", "VoiceSettings"]
