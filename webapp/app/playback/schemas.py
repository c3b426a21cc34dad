"""Request bodies of the voice generation and playback API, in camelCase like its clients."""

from marshmallow import Schema, fields, validate

from webapp.app.schemas import MAX_INT64, BoundedInteger, SpokenText
from webapp.app.services.emotion import EMOTIONS
from webapp.app.services.playback import ACTIONS

PROVIDERS = ("doubao", "aliyun", "tencent", "local", "dashscope")


class VoiceProfileInSchema(Schema):
    voiceName = fields.String(validate=validate.Length(1, 160))
    pitch = fields.Float(validate=validate.Range(0.5, 2.0))
    speed = fields.Float(validate=validate.Range(0.5, 2.0))
    volume = fields.Float(validate=validate.Range(0.0, 1.0))


class GenerateSchema(Schema):
    messageId = BoundedInteger(required=True, strict=True)
    text = SpokenText(required=True)
    emotionType = fields.String(load_default="neutral", validate=validate.OneOf(EMOTIONS))
    emotionIntensity = fields.Float(load_default=None, allow_none=True,
                                    validate=validate.Range(0.0, 1.0))
    voiceProfile = fields.Nested(VoiceProfileInSchema, load_default=None, allow_none=True)
    provider = fields.String(load_default=None, validate=validate.OneOf(PROVIDERS))
    forceRegenerate = fields.Boolean(load_default=False)
    debateId = fields.String(load_default=None, validate=validate.Length(max=36))


class GenerateResultSchema(Schema):
    voiceId = fields.Integer()
    messageId = fields.Integer()
    audioUrl = fields.String()
    format = fields.String()
    duration = fields.Float()
    fileSize = fields.Integer()
    emotionType = fields.String()
    emotionIntensity = fields.Float()
    generationTime = fields.Float()
    cached = fields.Boolean()


class CachedVoiceSchema(Schema):
    """``GET /api/voice/cache/<messageId>``."""

    voiceId = fields.Integer()
    messageId = fields.Integer()
    audioUrl = fields.String(allow_none=True)
    format = fields.String()
    duration = fields.Float()
    fileSize = fields.Integer()
    emotionType = fields.String()
    emotionIntensity = fields.Float()
    createdAt = fields.Integer(allow_none=True)
    lastAccessedAt = fields.Integer(allow_none=True)


class SettingsOutSchema(Schema):
    userId = fields.String()
    autoPlay = fields.Boolean()
    defaultVolume = fields.Float()
    playbackSpeed = fields.Float()
    voiceEnabled = fields.Boolean()
    backgroundPlay = fields.Boolean()
    autoAdvance = fields.Boolean()
    preferredProvider = fields.String()
    updatedAt = fields.Integer(allow_none=True)


class ProfileOutSchema(Schema):
    agentId = fields.Integer()
    agentType = fields.String()
    voiceName = fields.String()
    voiceGender = fields.String(allow_none=True)
    voiceAge = fields.String(allow_none=True)
    basePitch = fields.Float()
    baseSpeed = fields.Float()
    baseVolume = fields.Float()
    ttsProvider = fields.String(allow_none=True)


class PlaybackDeletedSchema(Schema):
    sessionId = fields.String()
    deleted = fields.Boolean()


class SettingsSchema(Schema):
    autoPlay = fields.Boolean()
    defaultVolume = fields.Float(validate=validate.Range(0.0, 1.0))
    playbackSpeed = fields.Float(validate=validate.Range(0.5, 2.0))
    voiceEnabled = fields.Boolean()
    backgroundPlay = fields.Boolean()
    autoAdvance = fields.Boolean()
    preferredProvider = fields.String(validate=validate.OneOf(PROVIDERS))


class ProfileSchema(Schema):
    agentType = fields.String(validate=validate.OneOf(("debater", "judge", "audience")))
    voiceName = fields.String(validate=validate.Length(1, 160))
    voiceGender = fields.String(validate=validate.OneOf(("male", "female")))
    voiceAge = fields.String(validate=validate.OneOf(("young", "middle", "mature")))
    basePitch = fields.Float(validate=validate.Range(0.5, 2.0))
    baseSpeed = fields.Float(validate=validate.Range(0.5, 2.0))
    baseVolume = fields.Float(validate=validate.Range(0.0, 1.0))
    ttsProvider = fields.String(validate=validate.OneOf(PROVIDERS))


class PlaylistItem(fields.Field):
    """Message keys: the client's numbers (64-bit, like every integer here), or this
    service's message ids (strings)."""

    default_error_messages = {"invalid": "playlist_item_invalid", "null": "playlist_item_invalid"}

    def _deserialize(self, value: object, attr: object, data: object, **kwargs: object) -> object:
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise self.make_error("invalid")
        if isinstance(value, int) and not 0 <= value <= MAX_INT64:
            raise self.make_error("invalid")
        if isinstance(value, str) and not 1 <= len(value) <= 64:
            raise self.make_error("invalid")
        return value

    def __init__(self, **kwargs: object) -> None:
        super().__init__(metadata={"oneOf": [
            {"type": "integer", "minimum": 0, "maximum": MAX_INT64},
            {"type": "string", "minLength": 1, "maxLength": 64}]}, **kwargs)


class PlaybackCreateSchema(Schema):
    debateId = fields.String(required=True, validate=validate.Length(1, 36))
    playlist = fields.List(PlaylistItem(), required=True, validate=validate.Length(1, 1000))
    repeatMode = fields.String(load_default="none", validate=validate.OneOf(("none", "all",
                                                                               "one")))
    shuffle = fields.Boolean(load_default=False)


class PlaybackUpdateSchema(Schema):
    action = fields.String(required=True, validate=validate.OneOf(ACTIONS))
    position = fields.Float(load_default=None, validate=validate.Range(min=0))
    messageId = PlaylistItem(load_default=None)


class PlaybackSchema(Schema):
    sessionId = fields.String()
    debateId = fields.String()
    userId = fields.String()
    status = fields.String()
    currentMessageId = fields.Raw(allow_none=True)
    playlist = fields.List(fields.Raw())
    currentPosition = fields.Float()
    repeatMode = fields.String()
    shuffle = fields.Boolean()
    createdAt = fields.Integer(allow_none=True)
    updatedAt = fields.Integer(allow_none=True)
