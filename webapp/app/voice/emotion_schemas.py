"""Request and response bodies of voice generation, settings and role voice profiles, in
camelCase like their clients."""

from marshmallow import Schema, fields, validate

from webapp.app.schemas import BoundedInteger, SpokenText
from webapp.app.services.voice_library.emotion import EMOTIONS

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
