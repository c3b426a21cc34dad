from marshmallow import Schema, fields, validate


class KeyCreateSchema(Schema):
    name = fields.String(required=True, validate=validate.Length(1, 100))
    monthly_characters = fields.Integer(load_default=None, allow_none=True,
                                        validate=validate.Range(1, 10**12))
    monthly_audio_seconds = fields.Float(load_default=None, allow_none=True,
                                         validate=validate.Range(1, 10**9))
    history = fields.Boolean(load_default=True,
                             metadata={"description": "keep every call as a message"})


class KeyUsageSchema(Schema):
    month = fields.String()
    characters = fields.Integer()
    audio_seconds = fields.Float()


class KeySchema(Schema):
    key_id = fields.String()
    name = fields.String()
    prefix = fields.String()
    history = fields.Boolean()
    monthly_characters = fields.Integer(allow_none=True)
    monthly_audio_seconds = fields.Float(allow_none=True)
    created_at = fields.String()
    last_used_at = fields.String(allow_none=True)
    usage = fields.Nested(KeyUsageSchema)


class KeyCreatedSchema(KeySchema):
    key = fields.String(metadata={"description": "the secret, shown only in this response"})


class KeyListSchema(Schema):
    list = fields.List(fields.Nested(KeySchema))
