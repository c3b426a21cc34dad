from marshmallow import Schema, fields

from webapp.app.schemas import PageQuerySchema, page_of

__all__ = ["FilePageSchema", "FileSchema", "PageQuerySchema", "UploadFormSchema"]


class UploadFormSchema(Schema):
    file = fields.Raw(required=True, metadata={"type": "string", "format": "binary"})
    is_public = fields.Boolean(load_default=False)


class FileSchema(Schema):
    file_id = fields.String()
    filename = fields.String()
    name = fields.String()
    url = fields.String(metadata={"description": "path to fetch the file (relative)"})
    audio_url = fields.String(metadata={"description": "absolute URL, signed unless public"})
    format = fields.String()
    size = fields.Integer()
    duration = fields.Float()
    is_public = fields.Boolean()
    kind = fields.String()
    created_at = fields.String()


FilePageSchema = page_of(FileSchema)
