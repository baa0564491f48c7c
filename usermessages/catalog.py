"""The sanctioned catalog of user messages.

Rows store only ids (``action_id``, ``detail_id``, ``event_id``); texts are
composed at read time, so deployer overrides apply to old rows too. The ids
and texts of Cinder's catalog (``cinder/message/message_field.py``) are kept
exactly, so stored ``event_id`` values and rendered ``user_message`` strings
match a real Cinder. Entries numbered 100 and up are ours: they sit outside
Cinder's range so that a future Cinder id can never collide with them.

It imports nothing of the project but the error tree: it is data.
"""

from __future__ import annotations

import configparser
import re
import string
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

from usermessages.errors import CatalogError, UserMessagesError

__all__ = [
    "ADVICE",
    "Action",
    "Advice",
    "Catalog",
    "CatalogError",
    "Detail",
    "Kind",
    "LEGACY_DETAILS",
    "LEGACY_EVENTS",
    "Level",
    "PLACEHOLDERS",
    "Resource",
    "detail_for",
    "detail_for_name",
    "event_id",
    "register_exception",
]


class Resource(str, Enum):
    """What a message is about; the value is stored and shown as ``resource_type``."""

    VOLUME = "VOLUME"
    VOLUME_SNAPSHOT = "VOLUME_SNAPSHOT"
    VOLUME_BACKUP = "VOLUME_BACKUP"
    # Ours: the subjects of admin-only messages.
    SERVICE = "SERVICE"
    SYSTEM = "SYSTEM"
    # Ours: a Nova server, for the failures Nova's notifications report.
    INSTANCE = "INSTANCE"


class Level(str, Enum):
    """The ``message_level`` of a message."""

    ERROR = "ERROR"
    WARNING = "WARNING"
    INFO = "INFO"


class Kind(str, Enum):
    """Who may see a message.

    API messages belong to a project and are shown to its users (the spec's
    "API Events"). SERVICE messages (a service stopped reporting) and SYSTEM
    messages (the broker is unreachable) carry no project and only admins
    ever see them.
    """

    API = "API"
    SERVICE = "SERVICE"
    SYSTEM = "SYSTEM"


class _Entry(Enum):
    """An enum whose value is the stable three-digit id and which carries its text."""

    default_text: str

    # ``text`` has a default only for type checkers: ``Action("001")`` is the Enum's
    # lookup by value, which never calls this; each member is defined with its text.
    def __new__(cls, id_: str, text: str = "") -> _Entry:
        member = object.__new__(cls)
        member._value_ = id_
        member.default_text = text
        return member

    @property
    def id(self) -> str:
        return str(self.value)

    @classmethod
    def by_id(cls, id_: str):
        """Return the entry with this id, or None."""
        try:
            return cls(id_)
        except ValueError:
            return None


class Action(_Entry):
    """What the user (or the service) was trying to do."""

    SCHEDULE_ALLOCATE_VOLUME = ("001", "schedule allocate volume")
    ATTACH_VOLUME = ("002", "attach volume")
    COPY_VOLUME_TO_IMAGE = ("003", "copy volume to image")
    UPDATE_ATTACHMENT = ("004", "update attachment")
    COPY_IMAGE_TO_VOLUME = ("005", "copy image to volume")
    UNMANAGE_VOLUME = ("006", "unmanage volume")
    EXTEND_VOLUME = ("007", "extend volume")
    CREATE_VOLUME_FROM_BACKEND = ("008", "create volume from backend storage")
    SNAPSHOT_CREATE = ("009", "create snapshot")
    SNAPSHOT_DELETE = ("010", "delete snapshot")
    SNAPSHOT_UPDATE = ("011", "update snapshot")
    SNAPSHOT_METADATA_UPDATE = ("012", "update snapshot metadata")
    BACKUP_CREATE = ("013", "create backup")
    BACKUP_DELETE = ("014", "delete backup")
    BACKUP_RESTORE = ("015", "restore backup")
    REIMAGE_VOLUME = ("016", "reimage volume")
    # Ours: admin-only kinds.
    SERVICE_STATUS = ("101", "report service status")
    MESSAGE_BUS = ("102", "reach the message bus")
    # Ours: operations Cinder reports nothing for (its bug list, §12.8).
    RETYPE_VOLUME = ("103", "retype volume")
    GROUP_ADD_VOLUME = ("104", "add volume to group")
    DETACH_VOLUME = ("105", "detach volume")
    DELETE_VOLUME = ("106", "delete volume")
    # Ours: Nova server operations whose failures Nova announces in notifications
    # (120 up, apart from the volume-service range above).
    CREATE_SERVER = ("120", "create server")
    REBUILD_SERVER = ("121", "rebuild server")
    REBOOT_SERVER = ("122", "reboot server")
    RESIZE_SERVER = ("123", "resize server")
    MIGRATE_SERVER = ("124", "migrate server")
    ATTACH_INTERFACE = ("125", "attach network interface")
    SWAP_VOLUME = ("126", "swap volume")
    ATTACH_SHARE = ("127", "attach share")
    DETACH_SHARE = ("128", "detach share")


class Detail(_Entry):
    """Why it failed."""

    UNKNOWN_ERROR = ("001", "An unknown error occurred.")
    DRIVER_NOT_INITIALIZED = ("002", "Driver is not initialized at present.")
    NO_BACKEND_AVAILABLE = ("003", "Could not find any available weighted backend.")
    FAILED_TO_UPLOAD_VOLUME = ("004", "Failed to upload volume to image at backend.")
    VOLUME_ATTACH_MODE_INVALID = ("005", "Volume's attach mode is invalid.")
    QUOTA_EXCEED = ("006", "Not enough quota resource for operation.")
    NOT_ENOUGH_SPACE_FOR_IMAGE = ("007", "Image used for creating volume exceeds available space.")
    UNMANAGE_ENC_NOT_SUPPORTED = ("008", "Unmanaging encrypted volumes is not supported.")
    NOTIFY_COMPUTE_SERVICE_FAILED = ("009", "Compute service failed to extend volume.")
    DRIVER_FAILED_EXTEND = ("010", "Volume Driver failed to extend volume.")
    SIGNATURE_VERIFICATION_FAILED = ("011", "Image signature verification failed.")
    DRIVER_FAILED_CREATE = ("012", "Driver failed to create the volume.")
    SNAPSHOT_CREATE_ERROR = ("013", "Snapshot failed to create.")
    SNAPSHOT_UPDATE_METADATA_FAILED = ("014", "Volume snapshot update metadata failed.")
    SNAPSHOT_IS_BUSY = ("015", "Snapshot is busy.")
    SNAPSHOT_DELETE_ERROR = ("016", "Snapshot failed to delete.")
    BACKUP_INVALID_STATE = ("017", "Backup status is invalid.")
    BACKUP_SERVICE_DOWN = ("018", "Backup service is down.")
    BACKUP_CREATE_DEVICE_ERROR = ("019", "Failed to get backup device from the volume service.")
    BACKUP_CREATE_DRIVER_ERROR = ("020", "Backup driver failed to create backup.")
    ATTACH_ERROR = ("021", "Failed to attach volume.")
    DETACH_ERROR = ("022", "Failed to detach volume.")
    BACKUP_CREATE_CLEANUP_ERROR = ("023", "Cleanup of temporary volume/snapshot failed.")
    BACKUP_SCHEDULE_ERROR = (
        "024",
        "Backup failed to schedule. Service not found for creating backup.",
    )
    BACKUP_DELETE_DRIVER_ERROR = ("025", "Backup driver failed to delete backup.")
    BACKUP_RESTORE_ERROR = ("026", "Backup driver failed to restore backup.")
    VOLUME_INVALID_STATE = ("027", "Volume status is invalid.")
    REIMAGE_VOLUME_FAILED = ("028", "Compute service failed to reimage volume.")
    IMAGE_FORMAT_UNACCEPTABLE = (
        "029",
        "The image disk format must be the same as the volume format for the "
        "volume type you are requesting.",
    )
    INCREMENTAL_BACKUP_FORCES_FULL_BACKUP = (
        "030",
        "Incremental backup not possible, forcing full backup.",
    )
    # Ours: admin-only kinds.
    SERVICE_DOWN = ("101", "The service stopped reporting.")
    SERVICE_UP = ("102", "The service is reporting again.")
    BROKER_UNREACHABLE = ("103", "The message broker is unreachable.")
    BROKER_REACHABLE = ("104", "The message broker is reachable again.")
    # Ours: user-facing causes Cinder has no text for.
    GROUP_BACKEND_MISMATCH = (
        "105",
        "The volume is on a different backend than the group; a group's volumes must "
        "share its backend.",
    )
    DRIVER_FAILED_RETYPE = ("106", "Volume Driver failed to retype volume.")
    DRIVER_FAILED_DELETE = ("107", "Volume Driver failed to delete volume.")
    OPERATION_TIMED_OUT = (
        "108",
        "No service picked up the request in time; the operation was abandoned.",
    )
    SERVICE_UNAVAILABLE = (
        "109",
        "The service is temporarily unavailable; the request was not started. "
        "Try again later.",
    )
    DRIVER_FAILED_GROUP_UPDATE = ("110", "Volume Driver failed to add the volume to the group.")
    # Ours: Nova's scheduler found no compute host (NoValidHost).
    NO_VALID_HOST = ("120", "Could not find a host that can run the server.")


@dataclass(frozen=True)
class Advice:
    """What a user can do about a detail: the way out of a failure.

    ``remediation`` is advice in the words of the catalog texts (translated
    like them); ``action_required`` says whether the user must act for the
    operation to succeed (False: informational, or nothing the user can
    change); ``help_url`` is a link to read more ("" when there is none:
    deployers usually point it at their own support pages).
    """

    remediation: str
    action_required: bool
    help_url: str = ""


_QUOTA_HELP = "https://docs.openstack.org/cinder/latest/cli/cli-cinder-quotas.html"
_SIGNATURE_HELP = "https://docs.openstack.org/glance/latest/user/signature.html"
_RETRY = "Try the operation again later; if it keeps failing, contact your cloud's support."

ADVICE: Mapping[Detail, Advice] = {
    Detail.UNKNOWN_ERROR: Advice(
        "Try the operation again; if it fails again, contact your cloud's support "
        "with the request ID.", True),
    Detail.DRIVER_NOT_INITIALIZED: Advice(
        "The storage backend is not ready. " + _RETRY, True),
    Detail.NO_BACKEND_AVAILABLE: Advice(
        "Choose a smaller size or another volume type, or try again later when "
        "more capacity is free.", True),
    Detail.FAILED_TO_UPLOAD_VOLUME: Advice(
        "Check that the image service is reachable and your image quota is not used "
        "up, then try the upload again.", True),
    Detail.VOLUME_ATTACH_MODE_INVALID: Advice(
        "Attach a read-only volume in read-only mode, or change the volume's "
        "read-only flag first.", True),
    Detail.QUOTA_EXCEED: Advice(
        "Delete resources you no longer need, or ask your administrator to raise "
        "your project's quota, then try again.", True, _QUOTA_HELP),
    Detail.NOT_ENOUGH_SPACE_FOR_IMAGE: Advice(
        "Create a larger volume (at least the image's virtual size) or use a "
        "smaller image.", True),
    Detail.UNMANAGE_ENC_NOT_SUPPORTED: Advice(
        "Keep the volume managed, or copy its data to an unencrypted volume and "
        "unmanage that one.", True),
    Detail.NOTIFY_COMPUTE_SERVICE_FAILED: Advice(
        "The volume was extended but the server may not see the new size yet: "
        "detach and reattach the volume, or reboot the server.", True),
    Detail.DRIVER_FAILED_EXTEND: Advice(
        "The volume keeps its old size. Try a smaller extension or try again later.",
        True),
    Detail.SIGNATURE_VERIFICATION_FAILED: Advice(
        "Use an image whose signature properties are correct, or re-sign and "
        "re-upload the image.", True, _SIGNATURE_HELP),
    Detail.DRIVER_FAILED_CREATE: Advice(
        "Delete the failed volume and create it again, perhaps with another volume type.",
        True),
    Detail.SNAPSHOT_CREATE_ERROR: Advice(
        "Delete the failed snapshot and create it again; if the volume is attached, "
        "pause writes to it first.", True),
    Detail.SNAPSHOT_UPDATE_METADATA_FAILED: Advice(
        "Check the metadata keys and values, then update the snapshot again.", True),
    Detail.SNAPSHOT_IS_BUSY: Advice(
        "Delete the volumes created from this snapshot, or wait until they no longer "
        "depend on it, then try again.", True),
    Detail.SNAPSHOT_DELETE_ERROR: Advice(
        "Try deleting the snapshot again; if it stays in error, ask your administrator "
        "to reset its state.", True),
    Detail.BACKUP_INVALID_STATE: Advice(
        "Wait until the backup is available (or in error, to delete it), then try again.",
        True),
    Detail.BACKUP_SERVICE_DOWN: Advice(
        "The backup service is not running. " + _RETRY, True),
    Detail.BACKUP_CREATE_DEVICE_ERROR: Advice(
        "Check that the volume is available or in use and not being changed, then "
        "create the backup again.", True),
    Detail.BACKUP_CREATE_DRIVER_ERROR: Advice(
        "Delete the failed backup and create it again later.", True),
    Detail.ATTACH_ERROR: Advice(
        "Check that the volume is available and the server is running, then attach "
        "again.", True),
    Detail.DETACH_ERROR: Advice(
        "Make sure nothing on the server is using the volume (unmount it), then "
        "detach again.", True),
    Detail.BACKUP_CREATE_CLEANUP_ERROR: Advice(
        "The backup itself may be complete; delete any leftover temporary volume or "
        "snapshot, or ask your administrator to.", False),
    Detail.BACKUP_SCHEDULE_ERROR: Advice(
        "No backup service can reach this volume's backend. " + _RETRY, True),
    Detail.BACKUP_DELETE_DRIVER_ERROR: Advice(
        "Try deleting the backup again; if it stays in error, ask your administrator "
        "to reset its state.", True),
    Detail.BACKUP_RESTORE_ERROR: Advice(
        "Restore to a new volume at least as large as the backup, or try again later.",
        True),
    Detail.VOLUME_INVALID_STATE: Advice(
        "Wait until the volume is available (or in use, for an attachment change), then "
        "try again.", True),
    Detail.REIMAGE_VOLUME_FAILED: Advice(
        "Rebuild the server again; if it fails again, contact your cloud's support.",
        True),
    Detail.IMAGE_FORMAT_UNACCEPTABLE: Advice(
        "Convert the image to the volume type's disk format, or choose a volume type "
        "that accepts the image's format.", True),
    Detail.INCREMENTAL_BACKUP_FORCES_FULL_BACKUP: Advice(
        "Nothing to do: a full backup was made instead. Later incremental backups "
        "build on it.", False),
    Detail.SERVICE_DOWN: Advice(
        "Check the service's process, its host and its connection to the message bus "
        "and the database, and restart it.", True),
    Detail.SERVICE_UP: Advice("Nothing to do: the service recovered.", False),
    Detail.BROKER_UNREACHABLE: Advice(
        "Check the broker's cluster and the network to it; messages are spooled "
        "meanwhile and replayed when it is back.", True),
    Detail.BROKER_REACHABLE: Advice("Nothing to do: spooled messages are being replayed.",
                                    False),
    Detail.GROUP_BACKEND_MISMATCH: Advice(
        "Add only volumes created in the group's backend, or retype or migrate the "
        "volume there first.", True),
    Detail.DRIVER_FAILED_RETYPE: Advice(
        "The volume keeps its old type. Try another volume type or try again later.",
        True),
    Detail.DRIVER_FAILED_DELETE: Advice(
        "Try deleting the volume again; if it stays in error_deleting, ask your "
        "administrator to reset its state.", True),
    Detail.OPERATION_TIMED_OUT: Advice(
        "Check the resource's status, then try the operation again.", True),
    Detail.SERVICE_UNAVAILABLE: Advice(
        "Nothing was changed. Try the operation again in a few minutes.", True),
    Detail.DRIVER_FAILED_GROUP_UPDATE: Advice(
        "Try adding the volume to the group again, or create the volume in the group "
        "from the start.", True),
    Detail.NO_VALID_HOST: Advice(
        "Choose a smaller flavor, another availability zone or fewer servers, or try "
        "again later.", True),
}


UNKNOWN_ACTION_TEXT = "unknown action"

# Pre-Pike rows have no action_id; their text is looked up by event_id.
LEGACY_EVENTS: Mapping[str, str] = {
    "VOLUME_000001": "An unknown error occurred.",
    "VOLUME_000002": (
        "No storage could be allocated for this volume request. You may be able "
        "to try another size or volume type."
    ),
    "VOLUME_000003": "A readonly volume must be attached as readonly.",
    "VOLUME_000004": (
        "Failed to copy volume to image as image quota has been met. Please "
        "delete images or have your limit increased, then try again."
    ),
    "VOLUME_000005": "Unmanaging encrypted volumes is not supported.",
}


# The details whose advice fits each legacy event.
LEGACY_DETAILS: Mapping[str, Detail] = {
    "VOLUME_000001": Detail.UNKNOWN_ERROR,
    "VOLUME_000002": Detail.NO_BACKEND_AVAILABLE,
    "VOLUME_000003": Detail.VOLUME_ATTACH_MODE_INVALID,
    "VOLUME_000004": Detail.QUOTA_EXCEED,
    "VOLUME_000005": Detail.UNMANAGE_ENC_NOT_SUPPORTED,
}


def event_id(resource: Resource, action: Action, detail: Detail) -> str:
    """Cinder's event id: ``VOLUME_<RESOURCE>_<ACTION>_<DETAIL>``."""
    return f"VOLUME_{resource.value}_{action.id}_{detail.id}"


# --- Failures a service raises, mapped to details by class ------------------
# Cinder maps by class *name*; we map by class, walking the MRO, so a service
# may subclass these (or register its own classes) and keep the mapping.


class MappedFailure(UserMessagesError):
    """Base of the failure classes that the catalog maps to a detail."""


class DriverNotInitialized(MappedFailure):
    """Raised when a backend driver is not initialized."""


class NoValidBackend(MappedFailure):
    """Raised when the scheduler finds no backend for a request."""


class InvalidVolumeAttachMode(MappedFailure):
    """Raised when an attach mode does not fit the volume."""


class ImageLimitExceeded(MappedFailure):
    """Raised when the image quota is exhausted."""


class BackupLimitExceeded(MappedFailure):
    """Raised when the backup quota is exhausted."""


class SnapshotLimitExceeded(MappedFailure):
    """Raised when the snapshot quota is exhausted."""


class ImageTooBig(MappedFailure):
    """Raised when an image does not fit the space available."""


class SnapshotIsBusy(MappedFailure):
    """Raised when a snapshot cannot be changed because it is in use."""


_EXCEPTION_DETAILS: dict[type[BaseException], Detail] = {
    DriverNotInitialized: Detail.DRIVER_NOT_INITIALIZED,
    NoValidBackend: Detail.NO_BACKEND_AVAILABLE,
    InvalidVolumeAttachMode: Detail.VOLUME_ATTACH_MODE_INVALID,
    ImageLimitExceeded: Detail.QUOTA_EXCEED,
    BackupLimitExceeded: Detail.QUOTA_EXCEED,
    SnapshotLimitExceeded: Detail.QUOTA_EXCEED,
    ImageTooBig: Detail.NOT_ENOUGH_SPACE_FOR_IMAGE,
    SnapshotIsBusy: Detail.SNAPSHOT_IS_BUSY,
}


# Notifications carry an exception's class *name* only (Cinder's scheduler
# sends repr(exc) as "reason", Nova an ExceptionPayload's "exception"); these
# are the OpenStack names mapped to details beyond the classes above.
_EXCEPTION_NAMES: dict[str, Detail] = {
    # Nova (nova/exception.py); MaxRetriesExceeded is a NoValidHost.
    "NoValidHost": Detail.NO_VALID_HOST,
    "MaxRetriesExceeded": Detail.NO_VALID_HOST,
    "TooManyInstances": Detail.QUOTA_EXCEED,
    "OverQuota": Detail.QUOTA_EXCEED,
}


def register_exception(exc_class: type[BaseException], detail: Detail) -> None:
    """Map a service's own exception class (and its subclasses) to a detail."""
    if not (isinstance(exc_class, type) and issubclass(exc_class, BaseException)):
        raise CatalogError(f"{exc_class!r} is not an exception class")
    if not isinstance(detail, Detail):
        raise CatalogError(f"{detail!r} is not a catalog Detail")
    _EXCEPTION_DETAILS[exc_class] = detail


def exception_detail(exception: BaseException | None) -> Detail | None:
    """The detail mapped to this exception's class or nearest base, if any."""
    if exception is None:
        return None
    for cls in type(exception).__mro__:
        found = _EXCEPTION_DETAILS.get(cls)
        if found is not None:
            return found
    return None


def detail_for_name(name: str) -> Detail | None:
    """The detail mapped to an exception class known only by its name, if any.

    A registered class of that name wins, then the OpenStack names above;
    subclasses cannot be followed: a name carries no MRO.
    """
    for cls, detail in _EXCEPTION_DETAILS.items():
        if cls.__name__ == name:
            return detail
    return _EXCEPTION_NAMES.get(name)


def detail_for(exception: BaseException | None, detail: Detail | None) -> Detail:
    """Cinder's precedence: a mapped exception, then the given detail, then 001."""
    return exception_detail(exception) or detail or Detail.UNKNOWN_ERROR


# --- Texts, with deployer overrides -----------------------------------------

# Fields an override text may name, e.g. "Volume {resource_uuid} found no home."
# Only what a project user may already see; the host and exception never are.
PLACEHOLDERS = frozenset({"resource_type", "resource_uuid", "request_id", "message_level"})


def _check_placeholders(where: str, text: str) -> None:
    try:
        parts = list(string.Formatter().parse(text))
    except ValueError as exc:
        raise CatalogError(f"{where}: broken placeholder in {text!r}: {exc}") from exc
    for _literal, name, spec, conversion in parts:
        if name is None:
            continue
        if name not in PLACEHOLDERS:
            allowed = ", ".join(sorted(PLACEHOLDERS))
            raise CatalogError(
                f"{where}: unknown placeholder {{{name}}} in {text!r}; allowed: {allowed}"
            )
        if spec or conversion:
            raise CatalogError(f"{where}: placeholder {{{name}}} may not carry a format")


def _render(text: str, fields: Mapping[str, str] | None) -> str:
    if "{" not in text:
        return text
    values = {name: "" for name in PLACEHOLDERS}
    values.update({k: v for k, v in (fields or {}).items() if k in PLACEHOLDERS})
    return text.format_map(values)


# An override section is a table, or a table and a language: ``[detail:de]``.
TRANSLATABLE = ("action", "detail", "remediation", "help_url")
TABLES = (*TRANSLATABLE, "action_required")
# A gettext language name as the shipped catalogs use: ``de``, ``zh_CN``, ``sr_Latn``.
LANGUAGE = re.compile(r"[a-z]{2,3}(?:_(?:[A-Z]{2}|[0-9]{3}|[A-Z][a-z]{3}))?")
BOOLEANS = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}


def _check_help_url(where: str, url: str) -> None:
    if not re.fullmatch(r"https?://[^\s<>\"'{}]+", url):
        raise CatalogError(f"{where}: {url!r} is not an http(s) URL")


@dataclass(frozen=True)
class Catalog:
    """The texts and advice in force for one language: defaults plus a deployer's overrides.

    ``Catalog()`` and ``from_file`` are English, with the deployer's texts for
    other languages kept as data; ``usermessages.translations`` composes the
    catalog of another language from them and the shipped gettext catalogs.
    """

    action_texts: Mapping[str, str] = field(
        default_factory=lambda: {a.id: a.default_text for a in Action}
    )
    detail_texts: Mapping[str, str] = field(
        default_factory=lambda: {d.id: d.default_text for d in Detail}
    )
    remediation_texts: Mapping[str, str] = field(
        default_factory=lambda: {d.id: a.remediation for d, a in ADVICE.items()}
    )
    help_urls: Mapping[str, str] = field(
        default_factory=lambda: {d.id: a.help_url for d, a in ADVICE.items()}
    )
    action_required: Mapping[str, bool] = field(
        default_factory=lambda: {d.id: a.action_required for d, a in ADVICE.items()}
    )
    legacy_texts: Mapping[str, str] = field(default_factory=lambda: dict(LEGACY_EVENTS))
    language: str = "en"
    # (table, id) of the English entries a deployer replaced.
    overridden: frozenset[tuple[str, str]] = frozenset()
    # language -> table -> id -> the deployer's text in that language.
    translations: Mapping[str, Mapping[str, Mapping[str, str]]] = field(default_factory=dict)

    @classmethod
    def from_file(cls, path: str | Path | None) -> Catalog:
        """Load overrides from an INI file; sections are tables, keys are ids (``003 = ...``).

        ``[action]`` and ``[detail]`` replace texts, ``[remediation]``,
        ``[action_required]`` (true/false) and ``[help_url]`` a detail's
        advice; ``[detail:de]`` (any table but action_required, any language)
        gives the text for one language. An unknown section or id, or a text
        with a broken or unknown placeholder, raises CatalogError: a typo should
        stop the service at start-up, not surface as a wrong message later.
        """
        if path is None:
            return cls()
        parser = configparser.ConfigParser(interpolation=None, default_section="__none__")
        parser.optionxform = str  # type: ignore[assignment,method-assign]
        try:
            with open(path, encoding="utf-8") as handle:
                parser.read_file(handle)
        except (OSError, UnicodeDecodeError, configparser.Error) as exc:
            raise CatalogError(f"cannot read catalog overrides {path}: {exc}") from exc
        base = cls()
        english: dict[str, dict[str, str]] = {
            "action": dict(base.action_texts), "detail": dict(base.detail_texts),
            "remediation": dict(base.remediation_texts), "help_url": dict(base.help_urls),
        }
        required = dict(base.action_required)
        overridden: set[tuple[str, str]] = set()
        translations: dict[str, dict[str, dict[str, str]]] = {}
        for section in parser.sections():
            table, colon, language = section.partition(":")
            if table not in TABLES or (language and table not in TRANSLATABLE):
                raise CatalogError(
                    f"{path}: unknown section [{section}]; use [action], [detail], "
                    f"[remediation], [help_url], [action_required], or [<table>:<language>]")
            if colon and not LANGUAGE.fullmatch(language):
                raise CatalogError(
                    f"{path}: [{section}]: {language!r} is not a language name like de or zh_CN")
            known = required if table == "action_required" else english[table]
            for key, text in parser.items(section):
                where = f"{path}: [{section}] {key}"
                if key not in known:
                    raise CatalogError(f"{path}: [{section}] has no id {key!r}")
                if not text.strip():
                    raise CatalogError(f"{where} is empty")
                if table == "action_required":
                    if text.strip().lower() not in BOOLEANS:
                        raise CatalogError(f"{where}: {text!r} is not true or false")
                    required[key] = BOOLEANS[text.strip().lower()]
                    continue
                if table == "help_url":
                    _check_help_url(where, text)
                else:
                    _check_placeholders(where, text)
                if language:
                    translations.setdefault(language, {}).setdefault(table, {})[key] = text
                else:
                    english[table][key] = text
                    overridden.add((table, key))
        return cls(action_texts=english["action"], detail_texts=english["detail"],
                   remediation_texts=english["remediation"], help_urls=english["help_url"],
                   action_required=required, overridden=frozenset(overridden),
                   translations=translations)

    def user_message(
        self,
        action_id: str | None,
        detail_id: str | None,
        event_id: str,
        fields: Mapping[str, str] | None = None,
    ) -> str:
        """Compose ``"<action>:<detail>"`` (no space, as Cinder does).

        A legacy row (no action id) is looked up by event id; an unknown one
        gets the unknown-error text rather than failing the request.
        """
        if action_id is None:
            return self.legacy_texts.get(event_id, self.detail_texts["001"])
        action = self.action_texts.get(action_id, UNKNOWN_ACTION_TEXT)
        detail = self.detail_texts.get(detail_id or "", self.detail_texts["001"])
        return _render(f"{action}:{detail}", fields)

    def advice(self, detail_id: str | None, fields: Mapping[str, str] | None = None) -> Advice:
        """A detail's advice in this catalog's language; an unknown detail gets 001's."""
        key = detail_id if detail_id is not None and detail_id in self.remediation_texts \
            else "001"
        return Advice(_render(self.remediation_texts[key], fields),
                      self.action_required[key], self.help_urls[key])

    def rows(self) -> Iterable[tuple[str, str, str, str]]:
        """(table, id, name, text) for every entry, for listings and docs."""
        for resource in Resource:
            yield "resource", resource.value, resource.name, resource.value
        for action in Action:
            yield "action", action.id, action.name, self.action_texts[action.id]
        for detail in Detail:
            yield "detail", detail.id, detail.name, self.detail_texts[detail.id]

    def advice_rows(self) -> Iterable[tuple[str, str, Advice]]:
        """(id, name, advice) for every detail, for listings and docs."""
        for detail in Detail:
            yield detail.id, detail.name, self.advice(detail.id)

