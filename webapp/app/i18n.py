"""Human messages in Chinese (the default, as in the seeds) and English."""

from __future__ import annotations

from typing import Any

MESSAGES: dict[str, tuple[str, str]] = {
    "success": ("success", "success"),
    "bad_request": ("参数错误: {detail}", "Invalid parameter: {detail}"),
    "invalid_json": ("请求体必须是JSON对象", "The request body must be a JSON object"),
    "unauthorized": ("用户未认证", "Not authenticated"),
    "token_expired": ("令牌已过期", "Token has expired"),
    "token_invalid": ("令牌无效", "Invalid token"),
    "token_revoked": ("令牌已失效", "Token has been revoked"),
    "refresh_required": ("需要刷新令牌", "A refresh token is required"),
    "access_required": ("需要访问令牌", "An access token is required"),
    "forbidden": ("权限不足", "Permission denied"),
    "not_found": ("资源不存在", "Resource not found"),
    "method_not_allowed": ("请求方法不允许", "Method not allowed"),
    "too_large": ("文件过大，最大允许 {limit}", "File too large; the limit is {limit}"),
    "rate_limited": ("请求过于频繁，请稍后再试", "Too many requests; try again later"),
    "internal_error": ("服务器内部错误", "Internal server error"),
    "conflict": ("资源冲突", "Conflict"),
    "username_taken": ("用户名已存在", "Username already taken"),
    "bad_credentials": ("用户名或密码错误", "Wrong username or password"),
    "registered": ("注册成功", "Registered"),
    "logged_in": ("登录成功", "Logged in"),
    "file_uploaded": ("文件上传成功", "File uploaded"),
    "file_deleted": ("文件删除成功", "File deleted"),
    "file_missing": ("请上传文件 (字段 file)", "Upload a file (field 'file')"),
    "file_empty": ("上传的文件为空", "The uploaded file is empty"),
    "unsupported_audio": (
        "不支持的音频格式，支持 MP3、WAV、OGG、AAC、M4A、FLAC、WebM",
        "Unsupported audio; accepted: MP3, WAV, OGG, AAC, M4A, FLAC, WebM",
    ),
    "audio_too_long": ("音频过长，最长 {limit} 秒", "Audio too long; at most {limit} s"),
    "audio_too_short": ("音频过短，最短 {limit} 秒", "Audio too short; at least {limit} s"),
    "file_not_found": ("文件不存在", "File not found"),
    "link_expired": ("链接无效或已过期", "The link is invalid or has expired"),
    "storage_failed": ("文件存储失败", "Storing the file failed"),
    "storage_full": ("存储空间不足", "Insufficient storage"),
    "provider_not_configured": ("服务未配置: {provider}", "Provider not configured: {provider}"),
    "provider_failed": ("服务调用失败: {detail}", "Provider call failed: {detail}"),
    "field_required": ("缺少必填字段 {field}", "Missing required field {field}"),
    "field_invalid": ("字段 {field} 无效", "Invalid field {field}"),
    "unknown_field": ("未知字段 {field}", "Unknown field {field}"),
    "page_invalid": ("分页参数无效", "Invalid pagination parameters"),
    "job_not_found": ("任务不存在", "Job not found"),
    "voice_not_found": ("音色不存在", "Voice not found"),
    "voice_forbidden": ("您无权修改此音色", "You may not change this voice"),
    "voice_created": ("音色创建任务已提交", "Voice creation accepted"),
    "voice_updated": ("音色更新成功", "Voice updated"),
    "voice_deleted": ("音色删除成功", "Voice deleted"),
    "voice_not_ready": ("音色尚未就绪", "The voice is not ready yet"),
    "invalid_voice_type": ("无效的声音类型", "invalid voice type"),
    "sample_required": ("请提供至少一个音频样本", "Provide at least one audio sample"),
    "role_created": ("角色创建成功", "Role created"),
    "role_updated": ("角色更新成功", "Role updated"),
    "role_deleted": ("角色删除成功", "Role deleted"),
    "role_not_found": ("角色不存在", "Role not found"),
    "role_update_denied": ("角色不存在或您无权修改此角色",
                           "The role does not exist or you may not change it"),
    "role_delete_denied": ("角色不存在或您无权删除此角色",
                           "The role does not exist or you may not delete it"),
    "role_name_rule": ("角色名称长度必须在2-100个字符之间", "name must be 2-100 characters"),
    "role_description_rule": ("角色描述长度不能少于10个字符",
                              "description must be at least 10 characters"),
    "role_gender_rule": ("性别必须是男、女、其他或未知", "gender must be 男, 女, 其他 or 未知"),
    "role_age_rule": ("年龄必须在0-120之间", "age must be between 0 and 120"),
    "session_not_found": ("会话不存在", "Session not found"),
    "message_not_found": ("消息不存在", "Message not found"),
    "session_ended": ("会话已结束", "Session ended"),
    "deleted": ("删除成功", "Deleted"),
    "voice_cache_not_found": ("指定消息的语音缓存不存在",
                              "No cached voice for that message"),
    "voice_profile_not_found": ("语音配置不存在", "Voice profile not found"),
    "playback_not_found": ("播放会话不存在", "Playback session not found"),
    "cache_full": ("缓存大小超限", "Cache size limit exceeded"),
    "text_rule": ("文本长度须为1-5000个字符", "text must be 1-5000 characters"),
    "idle_closed": ("连接空闲超过5分钟，已关闭", "Closed after 5 minutes of inactivity"),
    "no_speech": ("没有识别到语音", "No speech was recognised"),
    "call_busy": ("该会话已有通话进行中", "A call is already in progress in this session"),
    "call_not_started": ("尚未开始通话", "No call has been started"),
    "call_bad_audio": ("通话音频无效: {detail}", "Invalid call audio: {detail}"),
    "user_not_found": ("用户不存在", "User not found"),
    "username_rule": ("用户名长度须为3-64个字符，只含字母、数字、下划线或中文",
                      "Username must be 3-64 letters, digits, underscores or CJK"),
    "password_rule": ("密码长度须为8-128个字符", "Password must be 8-128 characters"),
}


def translate(key: str, lang: str = "zh", **params: Any) -> str:
    """The message for ``key`` in ``lang``; unknown keys are shown as given."""
    pair = MESSAGES.get(key)
    if pair is None:
        text = key
    else:
        text = pair[1] if lang == "en" else pair[0]
    try:
        return text.format(**params)
    except (KeyError, IndexError):
        return text
