"""Request bodies of ``/v1`` as OpenAI defines them; fields other clients add are
ignored rather than refused (OpenAI's SDKs grow new optional fields often)."""

from typing import Any

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate

from webapp.app.audio import OUTPUT_FORMATS
from webapp.app.services.speech.openai_audio import MAX_INPUT_CHARACTERS
from webapp.app.services.speech.transcripts import FORMATS, GRANULARITIES


class VoiceField(fields.Field):
    """``"alloy"``, a voice type or voice id, or OpenAI's custom-voice form ``{"id": …}``."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> str:
        if isinstance(value, dict):
            value = value.get("id")
        if not isinstance(value, str) or not value.strip() or len(value) > 160:
            raise ValidationError("voice must be a voice name or id")
        return value.strip()


class SpeechSchema(Schema):
    class Meta:
        unknown = EXCLUDE

    model = fields.String(required=True, validate=validate.Length(1, 100),
                          metadata={"example": "tts-1"})
    input = fields.String(required=True, validate=validate.Length(
        1, MAX_INPUT_CHARACTERS, error=f"input is limited to {MAX_INPUT_CHARACTERS} characters"),
        metadata={"example": "Hello there."})
    voice = VoiceField(required=True, metadata={"type": "string", "example": "alloy"})
    response_format = fields.String(load_default="mp3", validate=validate.OneOf(OUTPUT_FORMATS))
    speed = fields.Float(load_default=1.0, validate=validate.Range(0.25, 4.0))
    instructions = fields.String(load_default=None, allow_none=True,
                                 validate=validate.Length(max=4096))
    stream_format = fields.String(load_default="audio", validate=validate.OneOf(("audio", "sse")))


class TranscriptionSchema(Schema):
    class Meta:
        unknown = EXCLUDE

    file = fields.Raw(metadata={"type": "string", "format": "binary"}, load_only=True)
    model = fields.String(load_default="whisper-1", validate=validate.Length(1, 100),
                          metadata={"example": "whisper-1"})
    language = fields.String(load_default=None, allow_none=True,
                             validate=validate.Length(max=16))
    prompt = fields.String(load_default=None, allow_none=True,
                           validate=validate.Length(max=1000))
    response_format = fields.String(load_default="json", validate=validate.OneOf(FORMATS))
    temperature = fields.Float(load_default=0.0, validate=validate.Range(0.0, 1.0))
    timestamp_granularities = fields.List(
        fields.String(validate=validate.OneOf(GRANULARITIES)), load_default=list,
        data_key="timestamp_granularities[]")
    stream = fields.Boolean(load_default=False)
    itn = fields.Boolean(load_default=None, allow_none=True, metadata={
        "description": "numbers, dates, times and money in figures (default: TRANSCRIPT_ITN)"})
