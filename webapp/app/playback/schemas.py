"""Request and response bodies of playback sessions, in camelCase like their clients."""

from marshmallow import Schema, fields, validate

from webapp.app.schemas import MAX_INT64
from webapp.app.services.conversation.playback import ACTIONS


class PlaybackDeletedSchema(Schema):
    sessionId = fields.String()
    deleted = fields.Boolean()


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
