import json
from typing import Any

from marshmallow import Schema, ValidationError, fields, pre_load, validate

from webapp.app.schemas import PageQuerySchema, page_of

GENDERS = ("male", "female", "unknown")
PROVIDERS = ("local", "dashscope")


class LabelsField(fields.Field):
    """A JSON object, sent as an object (JSON bodies) or as a JSON string (multipart)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> dict:
        if isinstance(value, str):
            try:
                value = json.loads(value) if value.strip() else {}
            except json.JSONDecodeError as exc:
                raise ValidationError("labels must be a JSON object") from exc
        if not isinstance(value, dict):
            raise ValidationError("labels must be a JSON object")
        return value


class VoiceCreateFormSchema(Schema):
    name = fields.String(required=True, validate=validate.Length(1, 100))
    files = fields.List(fields.Raw(metadata={"type": "string", "format": "binary"}))
    file_ids = fields.List(fields.String(), load_default=list)
    labels = LabelsField(load_default=dict)
    description = fields.String(load_default="", validate=validate.Length(max=500))
    gender = fields.String(load_default="unknown", validate=validate.OneOf(GENDERS))
    provider = fields.String(load_default=None, validate=validate.OneOf(PROVIDERS))
    is_public = fields.Boolean(load_default=False)


class VoiceAcceptedSchema(Schema):
    voice_id = fields.String()
    job_id = fields.String()
    status = fields.String()


class VoiceModelSchema(Schema):
    """The voice's model: what an engine needs to speak with the voice."""

    model_id = fields.String()
    voice_id = fields.String()
    model_file_path = fields.String(allow_none=True)
    training_file_id = fields.String(allow_none=True)
    metadata = fields.Dict()
    local_training = fields.Boolean()


class VoiceSchema(Schema):
    voice_id = fields.String()
    voice_type = fields.String()
    name = fields.String()
    gender = fields.String()
    description = fields.String()
    labels = fields.Dict()
    category = fields.String()
    language = fields.String(allow_none=True)
    provider = fields.String()
    engine = fields.String()
    provider_voice_id = fields.String(allow_none=True)
    status = fields.String()
    error = fields.String(allow_none=True)
    is_public = fields.Boolean()
    builtin = fields.Boolean()
    owner_id = fields.Integer(allow_none=True)
    preview_url = fields.String(allow_none=True)
    sample_url = fields.String()
    model = fields.Nested(VoiceModelSchema, allow_none=True)
    voice_name = fields.String(metadata={"description": "name, as voice creation calls it"})
    voice_gender = fields.String(metadata={"description": "gender, as voice creation calls it"})
    voice_description = fields.String(metadata={"description": "description, as voice "
                                                              "creation calls it"})
    job_id = fields.String(allow_none=True)
    created_at = fields.String()
    updated_at = fields.String(allow_none=True)


VoicePageSchema = page_of(VoiceSchema)


class VoiceListQuerySchema(PageQuerySchema):
    gender = fields.String(load_default=None, validate=validate.OneOf(GENDERS))
    provider = fields.String(load_default=None, validate=validate.OneOf(PROVIDERS))
    search = fields.String(load_default=None, validate=validate.Length(max=100))
    mine = fields.Boolean(load_default=False)


class VoicePatchSchema(Schema):
    name = fields.String(validate=validate.Length(1, 100))
    description = fields.String(validate=validate.Length(max=500))
    gender = fields.String(validate=validate.OneOf(GENDERS))
    labels = LabelsField()
    is_public = fields.Boolean()


class CreateVoiceSchema(Schema):
    """The ``/api/voice/create_voice`` body."""

    audio_file_id = fields.String(required=True, validate=validate.Length(1, 36))
    voice_name = fields.String(required=True, validate=validate.Length(1, 100))
    voice_gender = fields.String(load_default="unknown", validate=validate.OneOf(GENDERS))
    voice_description = fields.String(load_default="", validate=validate.Length(max=500))
    is_public = fields.Boolean(load_default=False)
    provider = fields.String(load_default=None, validate=validate.OneOf(PROVIDERS))
    language = fields.String(load_default=None, validate=validate.Length(max=16))


class GetVoicesSchema(PageQuerySchema):
    """The ``/api/voice/get_voices`` body."""

    gender = fields.String(load_default="all", validate=validate.OneOf(("all", "male", "female")))
    created_by_current_user = fields.Boolean(load_default=False)

    @pre_load
    def _none_is_default(self, data: Any, **kwargs: Any) -> Any:
        return {k: v for k, v in data.items() if v is not None} if isinstance(data, dict) else data


class VoiceTypeSchema(Schema):
    voice_type = fields.String()
    voice_name = fields.String()
    category = fields.String()
    sample_url = fields.String()
    provider = fields.String()


class JobSchema(Schema):
    job_id = fields.String()
    type = fields.String()
    status = fields.String(metadata={"enum": ["pending", "running", "succeeded", "failed"]})
    result = fields.Dict(allow_none=True)
    error = fields.String(allow_none=True)
    attempts = fields.Integer()
    target_id = fields.String(allow_none=True, metadata={"description": "e.g. the voice"})
    created_at = fields.String()
    updated_at = fields.String(allow_none=True)
    started_at = fields.String(allow_none=True)
    finished_at = fields.String(allow_none=True)
