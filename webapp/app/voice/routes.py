"""Voice types for roles, the voices API and its jobs, and creating a cloned voice."""

from typing import Any

from flask import Response, request
from flask_jwt_extended import jwt_required

from webapp.app.api import ok, parse
from webapp.app.openapi import AUDIO, doc
from webapp.app.pagination import page_args
from webapp.app.services.platform import jobs
from webapp.app.services.voice_library import voices
from webapp.app.voice import bp
from webapp.app.voice.schemas import (
    CreateVoiceSchema,
    GetVoicesSchema,
    JobSchema,
    VoiceAcceptedSchema,
    VoiceCreateFormSchema,
    VoiceListQuerySchema,
    VoicePageSchema,
    VoicePatchSchema,
    VoiceSchema,
    VoiceTypeSchema,
)
from webapp.app.web import current_user_id as _user_id
from webapp.app.web import optional_user_id, rate_limited, send_object


def _create(**fields: Any) -> Response:
    """Start making the caller's voice; 202 with the job that makes it."""
    voice, job = voices.create(_user_id(), **fields)
    return ok({"voice_id": voice.id, "job_id": job.id, "status": voice.status},
              message="voice_created", status=202)


@bp.get("/api/voiceTypes")
@doc("Voice types for roles: built-in, public, and with a token your own",
     tag="voices", response=VoiceTypeSchema(many=True), auth=False)
def voice_types() -> Response:
    return ok(voices.voice_types(optional_user_id()))


@bp.get("/api/voiceTypes/<path:voice_type>/sample")
@doc("A built-in voice's sample (made once, then stored)", tag="voices", auth=False,
     errors=(404,), media=AUDIO, stored=True)
def voice_type_sample(voice_type: str) -> Response:
    key, content_type = voices.builtin_sample(voice_type)
    return send_object(key, content_type, f"{voice_type.replace(':', '_')}.mp3")


@bp.post("/api/voices")
@jwt_required()
@rate_limited("cloning")
@doc("Create a voice from samples (multipart: files and/or file_ids)", tag="voices",
     form=VoiceCreateFormSchema, response=VoiceAcceptedSchema, status=202,
     errors=(404, 413, 415, 503))
def create_voice() -> Response:
    form = request.form.to_dict()
    form["file_ids"] = [fid for value in request.form.getlist("file_ids")
                        for fid in value.split(",") if fid.strip()]
    form.pop("files", None)
    args = parse(VoiceCreateFormSchema(), form)
    uploads = [(upload.read(), upload.filename or "")
               for key in ("files", "file") for upload in request.files.getlist(key)]
    return _create(name=args["name"], uploads=uploads, file_ids=args["file_ids"],
                   description=args["description"], gender=args["gender"],
                   labels=args["labels"], provider=args["provider"], is_public=args["is_public"])


@bp.get("/api/voices")
@jwt_required()
@doc("Voices I can use: filters gender, provider, search, mine", tag="voices",
     query=VoiceListQuerySchema, response=VoicePageSchema)
def list_voices() -> Response:
    page_no, size = page_args(request.args)
    args = parse(VoiceListQuerySchema(), request.args.to_dict())
    return ok(voices.page(_user_id(), page_no, size, gender=args["gender"],
                          provider=args["provider"], search=args["search"], mine=args["mine"]))


@bp.get("/api/voices/<voice_id>")
@jwt_required()
@doc("One voice", tag="voices", response=VoiceSchema, errors=(404,))
def get_voice(voice_id: str) -> Response:
    return ok(voices.render(voices.get_visible(voice_id, _user_id())))


@bp.patch("/api/voices/<voice_id>")
@jwt_required()
@doc("Edit my voice", tag="voices", body=VoicePatchSchema, response=VoiceSchema,
     errors=(403, 404))
def patch_voice(voice_id: str) -> Response:
    changes = parse(VoicePatchSchema(), partial=True)
    voice = voices.edit(voices.get_owned(voice_id, _user_id()), changes)
    return ok(voices.render(voice), message="voice_updated")


@bp.delete("/api/voices/<voice_id>")
@jwt_required()
@doc("Delete my voice: provider-side voice and stored audio too", tag="voices",
     errors=(403, 404))
def delete_voice(voice_id: str) -> Response:
    voices.delete(voices.get_owned(voice_id, _user_id()))
    return ok(None, message="voice_deleted")


@bp.get("/api/voices/<voice_id>/preview")
@jwt_required()
@doc("Listen to a voice's preview", tag="voices", errors=(404, 409), media=AUDIO, stored=True)
def preview_voice(voice_id: str) -> Response:
    return send_object(*voices.preview_object(voices.get_visible(voice_id, _user_id())))


@bp.get("/api/jobs/<job_id>")
@jwt_required()
@doc("A background job's state", tag="jobs", response=JobSchema, errors=(404,))
def get_job(job_id: str) -> Response:
    return ok(jobs.get_for(job_id, _user_id()).to_dict())


@bp.post("/api/voice/create_voice")
@jwt_required()
@rate_limited("cloning")
@doc("Create a cloned voice from an uploaded file", tag="voices",
     body=CreateVoiceSchema, response=VoiceAcceptedSchema, status=202,
     errors=(403, 404, 503))
def create_voice_from_file() -> Response:
    args = parse(CreateVoiceSchema())
    labels = {"language": args["language"]} if args["language"] else {}
    return _create(name=args["voice_name"], uploads=[], file_ids=[args["audio_file_id"]],
                   description=args["voice_description"], gender=args["voice_gender"],
                   labels=labels, provider=args["provider"], is_public=args["is_public"])


@bp.post("/api/voice/get_voices")
@jwt_required()
@doc("Cloned voices: public and mine, or only mine", tag="voices",
     body=GetVoicesSchema, response=VoicePageSchema)
def get_voices() -> Response:
    args = parse(GetVoicesSchema())
    gender = None if args["gender"] == "all" else args["gender"]
    return ok(voices.page(_user_id(), args["page"], args["page_size"], gender=gender,
                          mine=args["created_by_current_user"], include_builtin=False))

