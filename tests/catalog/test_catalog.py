"""The catalog is data that users rely on: ids stable, texts exact, overrides strict."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from usermessages import catalog
from usermessages.catalog import Action, Catalog, Detail, Resource, detail_for, event_id
from usermessages.errors import CatalogError

DOCS = Path(__file__).resolve().parents[2] / "docs" / "catalog.md"


@pytest.mark.parametrize("table", [Action, Detail])
def test_ids_are_unique_three_digit_and_never_aliased(table):
    # Enum silently turns a duplicate value into an alias: count names, not members.
    assert len(table.__members__) == len(list(table))
    assert all(re.fullmatch(r"\d{3}", entry.id) for entry in table)


def test_cinder_catalog_is_complete_and_exact():
    cinder_actions = [a for a in Action if int(a.id) < 100]
    cinder_details = [d for d in Detail if int(d.id) < 100]
    assert [a.id for a in cinder_actions] == [f"{i:03d}" for i in range(1, 17)]
    assert [d.id for d in cinder_details] == [f"{i:03d}" for i in range(1, 31)]
    assert Action.SCHEDULE_ALLOCATE_VOLUME.default_text == "schedule allocate volume"
    assert Detail.NO_BACKEND_AVAILABLE.default_text == (
        "Could not find any available weighted backend."
    )
    assert Detail.BACKUP_SCHEDULE_ERROR.id == "024"
    assert [r.value for r in Resource][:3] == ["VOLUME", "VOLUME_SNAPSHOT", "VOLUME_BACKUP"]


def test_event_id_format_matches_cinder():
    assert event_id(Resource.VOLUME, Action.SCHEDULE_ALLOCATE_VOLUME,
                    Detail.NO_BACKEND_AVAILABLE) == "VOLUME_VOLUME_001_003"
    assert event_id(Resource.VOLUME_BACKUP, Action.BACKUP_CREATE,
                    Detail.BACKUP_SERVICE_DOWN) == "VOLUME_VOLUME_BACKUP_013_018"


def test_user_message_has_no_space_after_colon():
    assert Catalog().user_message("002", "021", "VOLUME_VOLUME_002_021") == (
        "attach volume:Failed to attach volume."
    )


def test_unknown_ids_and_legacy_rows_render_instead_of_failing():
    texts = Catalog()
    assert texts.user_message("999", "999", "x") == "unknown action:An unknown error occurred."
    assert texts.user_message(None, None, "VOLUME_000002").startswith("No storage could be")
    # Cinder answers 500 here (KeyError); we show the unknown-error text.
    assert texts.user_message(None, None, "VOLUME_999999") == "An unknown error occurred."


class _Subclassed(catalog.NoValidBackend):
    pass


class _Unmapped(Exception):
    pass


@pytest.mark.parametrize(
    ("exception", "detail", "expected"),
    [
        (None, None, Detail.UNKNOWN_ERROR),
        (None, Detail.ATTACH_ERROR, Detail.ATTACH_ERROR),
        (catalog.ImageTooBig(), None, Detail.NOT_ENOUGH_SPACE_FOR_IMAGE),
        (_Unmapped(), None, Detail.UNKNOWN_ERROR),
        # A mapped exception wins over an explicit detail, as in Cinder.
        (catalog.ImageTooBig(), Detail.ATTACH_ERROR, Detail.NOT_ENOUGH_SPACE_FOR_IMAGE),
        (_Unmapped(), Detail.ATTACH_ERROR, Detail.ATTACH_ERROR),
        # Mapped by class, through the MRO, not by class name.
        (_Subclassed(), None, Detail.NO_BACKEND_AVAILABLE),
        (catalog.SnapshotLimitExceeded(), None, Detail.QUOTA_EXCEED),
    ],
)
def test_detail_precedence(exception, detail, expected):
    assert detail_for(exception, detail) is expected


def test_register_exception_maps_a_service_class():
    class BackendOffline(Exception):
        pass

    catalog.register_exception(BackendOffline, Detail.DRIVER_NOT_INITIALIZED)
    assert detail_for(BackendOffline(), None) is Detail.DRIVER_NOT_INITIALIZED
    with pytest.raises(CatalogError):
        catalog.register_exception("NoValidBackend", Detail.UNKNOWN_ERROR)  # type: ignore[arg-type]


def test_override_file_replaces_texts_and_renders_placeholders(tmp_path):
    path = tmp_path / "overrides.ini"
    path.write_text(
        "[action]\n001 = place your volume\n"
        "[detail]\n003 = No pool can hold {resource_type} {resource_uuid}; try a smaller size.\n"
    )
    texts = Catalog.from_file(path)
    assert texts.user_message(
        "001", "003", "VOLUME_VOLUME_001_003",
        {"resource_type": "VOLUME", "resource_uuid": "v-1", "host": "secret-node"},
    ) == "place your volume:No pool can hold VOLUME v-1; try a smaller size."
    # Untouched entries keep Cinder's text.
    assert texts.detail_texts["021"] == "Failed to attach volume."


@pytest.mark.parametrize(
    ("content", "complaint"),
    [
        ("[detail]\n999 = nope\n", "no id '999'"),
        ("[details]\n003 = typo in the section\n", "unknown section"),
        ("[detail]\n003 = broken {resource_uuid\n", "broken placeholder"),
        ("[detail]\n003 = leaks {host}\n", "unknown placeholder {host}"),
        ("[detail]\n003 = attribute {resource_uuid.__class__}\n", "unknown placeholder"),
        ("[detail]\n003 = spec {resource_uuid!r}\n", "may not carry a format"),
        ("[detail]\n003 =\n", "is empty"),
        ("no section header\n", "cannot read"),
    ],
)
def test_bad_override_files_fail_clearly(tmp_path, content, complaint):
    path = tmp_path / "overrides.ini"
    path.write_text(content)
    with pytest.raises(CatalogError, match=re.escape(complaint)):
        Catalog.from_file(path)


def test_missing_override_file_is_an_error(tmp_path):
    with pytest.raises(CatalogError, match="cannot read"):
        Catalog.from_file(tmp_path / "absent.ini")


def test_every_entry_is_documented():
    text = DOCS.read_text(encoding="utf-8")
    for table, entry_id, name, entry_text in Catalog().rows():
        assert f"| {table} | {entry_id} | {name} | {entry_text} |" in text, (table, entry_id)
