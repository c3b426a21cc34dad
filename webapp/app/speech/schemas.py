from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from webapp.app.audio import OUTPUT_FORMATS
from webapp.app.schemas import SpokenText
from webapp.app.services.speech import transcripts


class TtsSchema(Schema):
    text = SpokenText(required=True)
    voice_id = fields.String(load_default=None, validate=validate.Length(max=160))
    voice_type = fields.String(load_default=None, validate=validate.Length(max=160))
    session_id = fields.String(load_default=None, validate=validate.Length(max=36))
    format = fields.String(load_default="mp3", validate=validate.OneOf(OUTPUT_FORMATS))
    speed = fields.Float(load_default=1.0, validate=validate.Range(0.5, 2.0))
    pitch = fields.Float(load_default=1.0, validate=validate.Range(0.5, 2.0))
    volume = fields.Float(load_default=1.0, validate=validate.Range(0.0, 2.0))
    language = fields.String(load_default=None, validate=validate.Length(max=16))

    @validates_schema
    def _one_voice(self, data: dict, **kwargs: object) -> None:
        if data.get("voice_id") and data.get("voice_type"):
            raise ValidationError("give voice_id or voice_type, not both", "voice_id")


class TtsResultSchema(Schema):
    message_id = fields.String()
    session_id = fields.String()
    audio_url = fields.String()
    format = fields.String()
    duration = fields.Float()
    size = fields.Integer()


class SttFormSchema(Schema):
    file = fields.Raw(metadata={"type": "string", "format": "binary"})
    file_id = fields.String(load_default=None, validate=validate.Length(max=36))
    audio_url = fields.String(load_default=None, validate=validate.Length(max=1000))
    language = fields.String(load_default=None, validate=validate.Length(max=16))
    session_id = fields.String(load_default=None, validate=validate.Length(max=36))
    provider = fields.String(load_default=None, validate=validate.Length(max=32))
    prompt = fields.String(load_default=None, validate=validate.Length(max=500))
    response_format = fields.String(
        load_default="json", validate=validate.OneOf(transcripts.FORMATS),
        metadata={"description": "verbose_json adds words and subtitles; text, srt and vtt "
                                 "add the document as content"})
    timestamp_granularities = fields.List(
        fields.String(validate=validate.OneOf(transcripts.GRANULARITIES)), load_default=list,
        data_key="timestamp_granularities[]",
        metadata={"description": "word: time every word (segments[].words, words)"})
    itn = fields.Boolean(load_default=None, allow_none=True, metadata={
        "description": "numbers, dates, times and money in figures (default: TRANSCRIPT_ITN)"})


class WordSchema(Schema):
    word = fields.String()
    start = fields.Float()
    end = fields.Float()
    probability = fields.Float(allow_none=True)


class SegmentSchema(Schema):
    start = fields.Float()
    end = fields.Float()
    text = fields.String()
    words = fields.List(fields.Nested(WordSchema))


class SubtitlesSchema(Schema):
    srt = fields.String()
    vtt = fields.String()


class SttResultSchema(Schema):
    message_id = fields.String()
    session_id = fields.String()
    transcription = fields.String()
    language = fields.String(allow_none=True)
    duration = fields.Float()
    audio_url = fields.String(metadata={"description": "the recognised audio (signed URL)"})
    segments = fields.List(fields.Nested(SegmentSchema))
    words = fields.List(fields.Nested(WordSchema),
                        metadata={"description": "verbose_json with word granularity"})
    subtitles = fields.Nested(SubtitlesSchema, metadata={"description": "verbose_json"})
    content = fields.String(metadata={"description": "text, srt or vtt"})
