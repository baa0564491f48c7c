"""Per-request language (Accept-Language) and the messages-ext detail with its remediation,
through the real app on SQLite and PostgreSQL."""

from __future__ import annotations

import concurrent.futures
import random
import string
from urllib.parse import quote

import httpx
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from tests.api.conftest import headers, row
from tests.harness import servers
from usermessages import Messenger, RequestContext
from usermessages.catalog import Action, Detail
from usermessages.service import create_app

P, Q = "aaaa1111", "bbbb2222"


def _get(client: TestClient, url: str, language: str | None, user: str = "alice",
         project: str = P) -> tuple[int, dict, dict]:
    extra = {"Accept-Language": language} if language is not None else {}
    response = client.get(url, headers=headers(user, project, **extra))
    return response.status_code, response.json(), dict(response.headers)


def test_only_user_message_follows_accept_language(client, seed):
    [message] = seed(row(P, action=Action.SCHEDULE_ALLOCATE_VOLUME,
                         detail=Detail.NO_BACKEND_AVAILABLE))
    _, english, english_headers = _get(client, f"/v3/{P}/messages/{message['id']}", None)
    assert english_headers["content-language"] == "en"
    expected = {
        "de": "Volume zuteilen (Planung):Es wurde kein verfügbares gewichtetes Backend gefunden.",
        "fr": "planifier l'allocation du volume:Aucun backend pondéré disponible n'a été trouvé.",
        "ja": "ボリューム割り当てのスケジュール:"
              "利用可能な重み付けバックエンドが見つかりませんでした。",
        "zh-CN": "调度分配卷:找不到任何可用的加权后端。",
    }
    for tag, text in expected.items():
        status, body, answer = _get(client, f"/v3/{P}/messages/{message['id']}", tag)
        assert status == 200
        assert answer["content-language"] == tag
        assert answer["vary"] == "OpenStack-API-Version"  # Cinder's, exactly
        assert body["message"]["user_message"] == text
        # Same keys, same values, in the same order: only the text changed.
        assert list(body["message"]) == list(english["message"])
        assert {k: v for k, v in body["message"].items() if k != "user_message"} == {
            k: v for k, v in english["message"].items() if k != "user_message"}
    status, listed, answer = _get(client, f"/v3/{P}/messages", "de-AT, en;q=0.5")
    assert answer["content-language"] == "de"
    assert listed["messages"][0]["user_message"] == expected["de"]
    assert listed["messages"][0]["event_id"] == "VOLUME_VOLUME_001_003"


def test_negotiation_q_values_aliases_and_fallback(client, seed):
    [message] = seed(row(P, action=Action.ATTACH_VOLUME, detail=Detail.ATTACH_ERROR))
    url = f"/v3/{P}/messages/{message['id']}"
    cases = {
        "fr;q=0.5, ja;q=0.9": ("ja", "ボリュームの接続:ボリュームを接続できませんでした。"),
        "zh-Hans-CN, de;q=0.1": ("zh-CN", "挂载卷:挂载卷失败。"),
        "zh-TW, fr;q=0.4": ("fr", "attacher le volume:Échec de l'attachement du volume."),
        "de;q=0, fr": ("fr", "attacher le volume:Échec de l'attachement du volume."),
        "tlh, x-klingon": ("en", "attach volume:Failed to attach volume."),
        "*": ("en", "attach volume:Failed to attach volume."),
        "de;q=2": ("en", "attach volume:Failed to attach volume."),  # malformed weight: ignored
        ";;;,,,": ("en", "attach volume:Failed to attach volume."),
    }
    for header, (tag, text) in cases.items():
        status, body, answer = _get(client, url, header)
        assert (status, answer["content-language"], body["message"]["user_message"]) == (
            200, tag, text), header


def test_messages_ext_detail_adds_remediation_in_the_callers_language(client, seed):
    [message] = seed(row(P, action=Action.SCHEDULE_ALLOCATE_VOLUME,
                         detail=Detail.QUOTA_EXCEED))
    status, cinder, _ = _get(client, f"/v3/{P}/messages/{message['id']}", "fr")
    status, body, answer = _get(client, f"/v3/{P}/messages-ext/messages/{message['id']}", "fr")
    assert status == 200
    assert answer["content-language"] == "fr"
    rich = body["message"]
    assert {k: rich[k] for k in cinder["message"]} == cinder["message"]
    assert rich["remediation"] == (
        "Supprimez les ressources dont vous n'avez plus besoin, ou demandez à votre "
        "administrateur d'augmenter le quota de votre projet, puis réessayez.")
    assert rich["action_required"] is True
    assert rich["help_url"].startswith("https://docs.openstack.org/")
    assert rich["language"] == "fr"
    assert set(rich) - set(cinder["message"]) == {
        "remediation", "action_required", "help_url", "language"}
    # ...and none of it leaks into Cinder's representation.
    assert "remediation" not in cinder["message"]


def test_messages_ext_detail_is_project_scoped(client, seed):
    [theirs] = seed(row(Q))
    status, body, _ = _get(client, f"/v3/{P}/messages-ext/messages/{theirs['id']}", "de")
    # Exactly the fault /messages answers for another project's message.
    assert (status, body) == _get(client, f"/v3/{P}/messages/{theirs['id']}", "de")[:2]
    assert status == 404 and body["itemNotFound"]["code"] == 404
    # The project in the URL must be the caller's.
    status, body, _ = _get(client, f"/v3/{Q}/messages-ext/messages/{theirs['id']}", "de")
    assert status in (400, 403, 404) and "message" in next(iter(body.values()))
    # The project-less form is an admin's.
    status, body, _ = _get(client, f"/v3/messages-ext/messages/{theirs['id']}", "de",
                           user="admin", project=P)
    assert status == 200 and body["message"]["id"] == theirs["id"]
    status, _, _ = _get(client, f"/v3/messages-ext/messages/{theirs['id']}", None)
    assert status == 404


@given(message_id=st.text(max_size=300).filter(lambda s: "/" not in s and "?" not in s
                                               and "#" not in s and s not in ("", ".", "..")))
@hsettings(max_examples=60, deadline=None,
           suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_crafted_ids_on_messages_ext_are_a_cinder_404(client, message_id):
    response = client.get(f"/v3/{P}/messages-ext/messages/{quote(message_id, safe='')}",
                          headers=headers("alice", P, **{"Accept-Language": "ja"}))
    assert response.status_code == 404
    [(name, fault)] = response.json().items()
    assert name == "itemNotFound" and fault["code"] == 404


def test_messages_ext_needs_the_messages_microversion(client, seed):
    [message] = seed(row(P))
    for version, status in ((None, 404), ("3.2", 404), ("3.3", 200), ("3.71", 200)):
        response = client.get(f"/v3/{P}/messages-ext/messages/{message['id']}",
                              headers=headers("alice", P, version))
        assert response.status_code == status, version


def test_informational_details_need_no_action_and_legacy_rows_get_advice(client, seed):
    [full] = seed(row(P, action=Action.BACKUP_CREATE,
                      detail=Detail.INCREMENTAL_BACKUP_FORCES_FULL_BACKUP, level="WARNING"))
    _, body, _ = _get(client, f"/v3/{P}/messages-ext/messages/{full['id']}", "ja")
    assert body["message"]["action_required"] is False
    assert body["message"]["help_url"] is None
    assert body["message"]["remediation"].startswith("対応は不要です。")
    legacy = row(P)
    legacy.update(action_id=None, detail_id=None, event_id="VOLUME_000004")
    seed(legacy)
    _, body, _ = _get(client, f"/v3/{P}/messages-ext/messages/{legacy['id']}", "de")
    assert body["message"]["user_message"].startswith("Das Volume konnte nicht in ein Image")
    assert body["message"]["remediation"].startswith("Löschen Sie nicht mehr benötigte")


def test_deployer_overrides_per_language(settings, engine, seed, tmp_path):
    overrides = tmp_path / "overrides.ini"
    overrides.write_text(
        "[detail]\n003 = No pool can hold {resource_type} {resource_uuid}.\n"
        "[detail:de]\n021 = Anhängen von {resource_uuid} fehlgeschlagen.\n"
        "[remediation]\n021 = Call the storage desk.\n"
        "[remediation:fr]\n021 = Appelez le support stockage.\n"
        "[action_required]\n021 = false\n"
        "[help_url]\n021 = https://help.example/attach\n"
        "[help_url:de]\n021 = https://help.example/de/attach\n", encoding="utf-8")
    app = create_app(settings.replace(catalog_overrides_file=str(overrides)), engine=engine)
    attach, alloc = seed(row(P, action=Action.ATTACH_VOLUME, detail=Detail.ATTACH_ERROR,
                             resource_uuid="v-1"),
                         row(P, action=Action.SCHEDULE_ALLOCATE_VOLUME,
                             detail=Detail.NO_BACKEND_AVAILABLE, resource_uuid="v-2"))
    with TestClient(app) as client:
        _, body, _ = _get(client, f"/v3/{P}/messages-ext/messages/{attach['id']}", "de")
        assert body["message"]["user_message"] == (
            "Volume anhängen:Anhängen von v-1 fehlgeschlagen.")
        # German has no remediation of its own: the deployer's English one, not the
        # shipped translation of the text it replaced.
        assert body["message"]["remediation"] == "Call the storage desk."
        assert body["message"]["action_required"] is False
        assert body["message"]["help_url"] == "https://help.example/de/attach"
        _, body, _ = _get(client, f"/v3/{P}/messages-ext/messages/{attach['id']}", "fr")
        assert body["message"]["user_message"] == (
            "attacher le volume:Échec de l'attachement du volume.")
        assert body["message"]["remediation"] == "Appelez le support stockage."
        assert body["message"]["help_url"] == "https://help.example/attach"
        _, body, _ = _get(client, f"/v3/{P}/messages/{alloc['id']}", "ja")
        assert body["message"]["user_message"] == (
            "ボリューム割り当てのスケジュール:No pool can hold VOLUME v-2.")


def test_a_deployer_language_beyond_the_shipped_ones(settings, engine, seed, tmp_path):
    overrides = tmp_path / "overrides.ini"
    overrides.write_text("[detail:pt_BR]\n021 = Falha ao anexar o volume.\n",
                         encoding="utf-8")
    app = create_app(settings.replace(catalog_overrides_file=str(overrides)), engine=engine)
    [message] = seed(row(P, action=Action.ATTACH_VOLUME, detail=Detail.ATTACH_ERROR))
    with TestClient(app) as client:
        _, body, answer = _get(client, f"/v3/{P}/messages/{message['id']}", "pt-BR,pt;q=0.8")
        assert answer["content-language"] == "pt-BR"
        assert body["message"]["user_message"] == "attach volume:Falha ao anexar o volume."


@pytest.fixture
def one_message(seed) -> dict:
    # Seeded once per test run (hypothesis reuses function-scoped fixtures across examples).
    return seed(row(P))[0]


HEADER_CHARS = string.ascii_letters + string.digits + "-_;=,.* \t"


@hsettings(max_examples=150, deadline=None,
           suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(header=st.one_of(st.text(alphabet=HEADER_CHARS, max_size=80),
                        st.text(max_size=40).filter(lambda s: s.isprintable() and s.isascii())))
def test_any_accept_language_answers_200_in_a_known_language(client, one_message, header):
    message = one_message
    response = client.get(f"/v3/{P}/messages/{message['id']}",
                          headers=headers("alice", P, **{"Accept-Language": header}))
    assert response.status_code == 200
    assert response.headers["content-language"] in {"en", "de", "fr", "ja", "zh-CN"}
    assert response.json()["message"]["event_id"] == message["event_id"]


def test_concurrent_readers_each_get_their_own_language(tmp_path):
    # A live server (uvicorn's thread pool): requests in five languages, interleaved from
    # many threads, each answered in its own language, on a translator composed once.
    db_url = f"sqlite:///{tmp_path}/usermessages.sqlite"
    expected = {"en": "attach volume:Failed to attach volume.",
                "de": "Volume anhängen:Das Volume konnte nicht angehängt werden.",
                "fr": "attacher le volume:Échec de l'attachement du volume.",
                "ja": "ボリュームの接続:ボリュームを接続できませんでした。",
                "zh-CN": "挂载卷:挂载卷失败。"}
    with servers.api_server(db_url) as base:
        message_id = Messenger.from_url(db_url).create(
            RequestContext(project_id=P, user_id="alice"), Action.ATTACH_VOLUME,
            detail=Detail.ATTACH_ERROR)
        asked = [random.Random(i).choice(sorted(expected)) for i in range(100)]

        def read(tag: str) -> tuple[str, str, str]:
            answer = httpx.get(f"{base}/v3/{P}/messages/{message_id}", timeout=30,
                               headers=headers("alice", P, **{"Accept-Language": tag}))
            assert answer.status_code == 200
            return tag, answer.headers["content-language"], answer.json()["message"][
                "user_message"]

        with concurrent.futures.ThreadPoolExecutor(max_workers=16) as pool:
            results = list(pool.map(read, asked))
    assert len(results) == len(asked)
    for tag, language, text in results:
        assert (language, text) == (tag, expected[tag])
