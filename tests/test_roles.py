"""Roles: add, list, user's list, get, update, delete, with its messages."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient

VALID = {"name": "冒险家", "description": "勇敢的冒险者，探索未知世界的旅人", "gender": "男",
         "age": 30, "voice_type": "espeak:cmn"}


def _add(client: FlaskClient, headers: dict[str, str], **changes: Any) -> Any:
    return client.post("/api/role/add", headers=headers, json={**VALID, **changes})


def test_add_returns_role_id_with_success_message(client: FlaskClient,
                                                 auth_headers: dict[str, str]) -> None:
    body = _add(client, auth_headers).get_json()
    assert body["code"] == 200 and body["message"] == "角色创建成功"
    role = client.get(f"/api/role/{body['data']['role_id']}", headers=auth_headers).get_json()
    assert role["data"]["name"] == "冒险家" and role["data"]["voice_type"] == "espeak:cmn"
    assert role["data"]["created_at"].endswith("Z")


@pytest.mark.parametrize(("changes", "message"), [
    ({"age": 121}, "参数错误: 年龄必须在0-120之间"),
    ({"age": -1}, "参数错误: 年龄必须在0-120之间"),
    ({"age": "30"}, "参数错误: 年龄必须在0-120之间"),
    ({"name": "冒"}, "参数错误: 角色名称长度必须在2-100个字符之间"),
    ({"name": "x" * 101}, "参数错误: 角色名称长度必须在2-100个字符之间"),
    ({"description": "太短"}, "参数错误: 角色描述长度不能少于10个字符"),
    ({"gender": "male"}, "参数错误: 性别必须是男、女、其他或未知"),
    ({"voice_type": "qiniu_zh_female_wwxkjx"}, "参数错误: 无效的声音类型"),
    ({"voice_type": "dashscope:longxiaochun_v2"}, "参数错误: 无效的声音类型"),
])
def test_every_rule_answers_with_parameter_error_message(client: FlaskClient,
                                                         auth_headers: dict[str, str],
                                                         changes: dict[str, Any],
                                                         message: str) -> None:
    response = _add(client, auth_headers, **changes)
    assert response.status_code == 400
    body = response.get_json()
    assert body["message"] == message and body["data"] is None


def test_missing_field_is_named(client: FlaskClient, auth_headers: dict[str, str]) -> None:
    payload = {k: v for k, v in VALID.items() if k != "gender"}
    body = client.post("/api/role/add", headers=auth_headers, json=payload).get_json()
    assert body["message"] == "参数错误: 缺少必填字段 gender"


def test_english_rule_message(client: FlaskClient, auth_headers: dict[str, str]) -> None:
    body = _add(client, {**auth_headers, "Accept-Language": "en"}, age=200).get_json()
    assert body["message"] == "Invalid parameter: age must be between 0 and 120"


def test_list_and_user_list_paginate(client: FlaskClient, make_user: Any) -> None:
    alice, bob = make_user(), make_user()
    for i in range(3):
        _add(client, alice["headers"], name=f"角色{i}", is_public=True)
    _add(client, bob["headers"], name="鲍勃的角色")
    everything = client.get("/api/role/list?page=1&page_size=2", headers=bob["headers"])
    data = everything.get_json()["data"]
    assert data["total"] == 4 and data["pages"] == 2 and data["has_more"] is True
    assert set(data["list"][0]) >= {"id", "name", "description", "gender", "age",
                                    "voice_type", "created_at", "is_public"}
    mine = client.get(f"/api/role/user/{alice['id']}?page_size=5",
                      headers=bob["headers"]).get_json()["data"]
    assert mine["total"] == 3 and mine["has_more"] is False
    assert {role["name"] for role in mine["list"]} == {"角色0", "角色1", "角色2"}
    assert client.get("/api/role/user/999999", headers=bob["headers"]).status_code == 404


def test_private_roles_are_seen_only_by_their_owner(client: FlaskClient, make_user: Any) -> None:
    alice, bob = make_user(), make_user()
    private = _add(client, alice["headers"], name="私密角色").get_json()["data"]["role_id"]
    public = _add(client, alice["headers"], name="公开角色",
                  is_public=True).get_json()["data"]["role_id"]
    assert client.get(f"/api/role/{private}", headers=alice["headers"]).get_json()[
        "data"]["is_public"] is False

    def names(path: str, who: dict[str, Any]) -> set[str]:
        body = client.get(path, headers=who["headers"]).get_json()["data"]
        assert body["total"] == len(body["list"])
        return {role["name"] for role in body["list"]}

    assert names("/api/role/list", bob) == {"公开角色"}
    assert names("/api/role/list", alice) == {"私密角色", "公开角色"}
    assert names(f"/api/role/user/{alice['id']}", bob) == {"公开角色"}
    assert names(f"/api/role/user/{alice['id']}", alice) == {"私密角色", "公开角色"}
    hidden = client.get(f"/api/role/{private}", headers=bob["headers"])
    assert hidden.status_code == 404 and hidden.get_json()["error"]["code"] == "ROLE_NOT_FOUND"
    assert client.get(f"/api/role/{public}", headers=bob["headers"]).status_code == 200
    assert client.get(f"/api/voice/profiles/{private}",
                      headers=bob["headers"]).status_code == 404
    assert client.get(f"/api/voice/profiles/{public}", headers=bob["headers"]).status_code == 200
    assert client.post("/api/sessions", headers=bob["headers"],
                       json={"role_id": private}).status_code == 404
    assert client.post("/api/sessions", headers=bob["headers"],
                       json={"role_id": public}).status_code in (200, 201)
    denied = client.put(f"/api/voice/profiles/{public}", headers=bob["headers"],
                        json={"baseSpeed": 1.2})
    assert denied.status_code == 403


def test_owner_switches_visibility(client: FlaskClient, make_user: Any) -> None:
    alice, bob = make_user(), make_user()
    role_id = _add(client, alice["headers"]).get_json()["data"]["role_id"]
    assert client.get(f"/api/role/{role_id}", headers=bob["headers"]).status_code == 404
    client.put(f"/api/role/{role_id}", headers=alice["headers"], json={"is_public": True})
    assert client.get(f"/api/role/{role_id}", headers=bob["headers"]).status_code == 200
    assert client.get("/api/role/list", headers=bob["headers"]).get_json()["data"]["total"] == 1
    client.put(f"/api/role/{role_id}", headers=alice["headers"], json={"age": 33})
    role = client.get(f"/api/role/{role_id}", headers=alice["headers"]).get_json()["data"]
    assert role["is_public"] is True and role["age"] == 33
    client.put(f"/api/role/{role_id}", headers=alice["headers"], json={"is_public": False})
    assert client.get(f"/api/role/{role_id}", headers=bob["headers"]).status_code == 404
    assert client.get("/api/role/list", headers=bob["headers"]).get_json()["data"]["total"] == 0
    bad = client.put(f"/api/role/{role_id}", headers=alice["headers"], json={"is_public": "maybe"})
    assert bad.status_code == 400


def test_only_the_owner_updates_and_deletes(client: FlaskClient, make_user: Any) -> None:
    owner, other = make_user(), make_user()
    role_id = _add(client, owner["headers"], is_public=True).get_json()["data"]["role_id"]
    denied = client.put(f"/api/role/{role_id}", headers=other["headers"], json={"age": 40})
    assert denied.status_code == 403
    assert denied.get_json()["message"] == "角色不存在或您无权修改此角色"
    gone = client.delete(f"/api/role/{role_id}", headers=other["headers"])
    assert gone.status_code == 403
    assert gone.get_json()["message"] == "角色不存在或您无权删除此角色"
    updated = client.put(f"/api/role/{role_id}", headers=owner["headers"], json={"age": 40})
    assert updated.get_json() == {**updated.get_json(), "code": 200, "message": "角色更新成功",
                                  "data": None}
    assert client.get(f"/api/role/{role_id}", headers=other["headers"]).get_json()[
        "data"]["age"] == 40
    deleted = client.delete(f"/api/role/{role_id}", headers=owner["headers"]).get_json()
    assert deleted["message"] == "角色删除成功"
    assert client.get(f"/api/role/{role_id}", headers=owner["headers"]).status_code == 404


def test_invalid_update_changes_nothing(client: FlaskClient, auth_headers: dict[str, str]) -> None:
    role_id = _add(client, auth_headers).get_json()["data"]["role_id"]
    response = client.put(f"/api/role/{role_id}", headers=auth_headers,
                          json={"name": "新名字", "age": 500})
    assert response.status_code == 400
    role = client.get(f"/api/role/{role_id}", headers=auth_headers).get_json()["data"]
    assert role["name"] == "冒险家" and role["age"] == 30


def test_roles_need_a_token(client: FlaskClient) -> None:
    response = client.get("/api/role/list")
    assert response.status_code == 401 and response.get_json()["message"] == "用户未认证"
