from marshmallow import Schema, fields, validate

from webapp.app.schemas import Id, PageQuerySchema, page_of


class SessionCreateSchema(Schema):
    role_id = Id(load_default=None, allow_none=True)
    voice_type = fields.String(data_key="voice_id", load_default=None, allow_none=True,
                               validate=validate.Length(max=160))
    title = fields.String(load_default="", validate=validate.Length(max=200))


class SessionQuerySchema(PageQuerySchema):
    role_id = Id(load_default=None)


class SessionSchema(Schema):
    session_id = fields.String()
    role_id = fields.Integer(allow_none=True)
    voice_id = fields.String(allow_none=True)
    title = fields.String()
    status = fields.String()
    summary = fields.String(allow_none=True,
                            metadata={"description": "rolling summary of the conversation"})
    start_time = fields.String()
    end_time = fields.String(allow_none=True)
    updated_at = fields.String(allow_none=True)


class MessageSchema(Schema):
    message_id = fields.String()
    session_id = fields.String()
    timestamp = fields.String()
    role = fields.String()
    type = fields.String()
    text = fields.String()
    transcription = fields.String(allow_none=True)
    audio_url = fields.String(allow_none=True)
    voice_id = fields.String(allow_none=True)
    format = fields.String(allow_none=True)
    duration = fields.Float(allow_none=True)
    metadata = fields.Dict()


class MessageQuerySchema(PageQuerySchema):
    voice_id = fields.String(load_default=None)
    type = fields.String(load_default=None, validate=validate.OneOf(("text", "voice")))
    role = fields.String(load_default=None, validate=validate.OneOf(("user", "assistant")))


class DeletedCountSchema(Schema):
    deleted = fields.Integer()


SessionPageSchema = page_of(SessionSchema)
MessagePageSchema = page_of(MessageSchema)
