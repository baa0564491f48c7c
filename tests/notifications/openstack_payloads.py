"""Notification payloads built as Cinder 29's and Nova's code builds them.

Each builder follows the named function line by line (keys, nesting, what is an
object to serialize); the exceptions mimic Cinder's and Nova's: a formatted
message kept in ``msg``/``kwargs``, so the real serializer does to them what it
does in those services (``repr``, through oslo.serialization's to_primitive).
These are for tests that need a payload without the services installed; what the
services really send is checked by tests/notifications/test_real.py, which runs
their own code: when the two disagree, that one is right.
"""

from __future__ import annotations

import uuid
from typing import Any

import oslo_messaging
from oslo_context.context import RequestContext


class RequestContextSerializer(oslo_messaging.Serializer):
    """cinder/rpc.py and nova/rpc.py RequestContextSerializer over JsonPayloadSerializer:
    the context goes out as its to_dict() (after oslo.messaging's redacted_copy)."""

    def __init__(self, base: oslo_messaging.Serializer | None = None) -> None:
        self._base = base or oslo_messaging.JsonPayloadSerializer()

    def serialize_entity(self, ctxt: Any, entity: Any) -> Any:
        return self._base.serialize_entity(ctxt, entity)

    def deserialize_entity(self, ctxt: Any, entity: Any) -> Any:
        return self._base.deserialize_entity(ctxt, entity)

    def serialize_context(self, context: RequestContext) -> dict:
        return context.to_dict()

    def deserialize_context(self, context: dict) -> RequestContext:
        return RequestContext.from_dict(context)


class NovaPayloadSerializer(oslo_messaging.NoOpSerializer):
    """nova/rpc.py JsonPayloadSerializer: to_primitive with str as the fallback."""

    def serialize_entity(self, ctxt: Any, entity: Any) -> Any:
        from oslo_serialization import jsonutils

        return jsonutils.to_primitive(entity, convert_instances=True, fallback=str)


class CinderException(Exception):
    """cinder/exception.py CinderException (the parts that matter for serialization)."""

    message = "An unknown exception occurred."
    code = 500

    def __init__(self, message: str | None = None, **kwargs: Any) -> None:
        self.kwargs = kwargs
        self.kwargs.setdefault("code", self.code)
        self.msg = message or self.message % kwargs
        super().__init__(self.msg)


class NoValidBackend(CinderException):
    message = "No valid backend was found. %(reason)s"


class ParameterNotFound(CinderException):
    message = "Could not find parameter %(param)s"
    code = 404


class NovaException(Exception):
    msg_fmt = "An unknown exception occurred."
    code = 500

    def __init__(self, message: str | None = None, **kwargs: Any) -> None:
        self.kwargs = kwargs
        self.kwargs.setdefault("code", self.code)
        super().__init__(message or self.msg_fmt % kwargs)

    def __repr__(self) -> str:
        """nova/exception.py NovaException.__repr__: what its legacy payloads carry."""
        return str({**self.__dict__, "class": type(self).__name__})


class NoValidHost(NovaException):
    msg_fmt = "No valid host was found. %(reason)s"


class FlavorDiskTooSmall(NovaException):
    msg_fmt = "The created instance's disk would be too small."


class BuildAbortException(NovaException):
    msg_fmt = "Build of instance %(instance_uuid)s aborted: %(reason)s"


def cinder_create_volume(volume_id: str, project: str, user: str, reason: Exception) -> dict:
    """cinder/scheduler/flows/create_volume.py ScheduleCreateVolumeTask._notify_failure."""
    request_spec = {
        "volume_id": volume_id,
        "volume_properties": {"size": 5000, "project_id": project, "user_id": user,
                              "status": "creating", "availability_zone": "nova",
                              "display_name": "secret-name", "metadata": {"k": "secret"}},
        "volume_type": {"name": "gold", "extra_specs": {}},
        "resource_properties": {"size": 5000},
    }
    return {"request_spec": request_spec,
            "volume_properties": request_spec.get("volume_properties", {}),
            "volume_id": request_spec["volume_id"], "state": "error",
            "method": "create_volume", "reason": reason}


def cinder_set_volume_state(method: str, volume_id: str, project: str, user: str,
                            reason: Exception) -> dict:
    """cinder/scheduler/manager.py SchedulerManager._set_volume_state_and_notify."""
    request_spec = {"volume_id": volume_id,
                    "volume_properties": {"size": 10, "project_id": project, "user_id": user}}
    properties = request_spec.get("volume_properties", {})
    return dict(request_spec=request_spec, volume_properties=properties,
                volume_id=request_spec.get("volume_id"),
                state={"status": "available"}, method=method, reason=reason)


def cinder_create_snapshot(snapshot_id: str, reason: Exception) -> dict:
    """cinder/scheduler/manager.py SchedulerManager._set_snapshot_state_and_notify, with
    the RequestSpec of cinder/volume/api.py _create_snapshot: no project, no user."""
    request_spec = {"snapshot_id": snapshot_id, "volume_properties": {"size": 10},
                    "operation": "create_snapshot", "resource_properties": {"size": 10}}
    return dict(request_spec=request_spec, snapshot_id=snapshot_id, state="error",
                method="create_snapshot", reason=reason)


def nova_legacy_instance_error(instance_id: str, project: str, user: str,
                               fault: Exception) -> dict:
    """nova/compute/utils.py notify_about_instance_usage(..., fault=...): the
    instance's usage info updated with exception_to_dict(fault)."""
    return {"tenant_id": project, "user_id": user, "instance_id": instance_id,
            "display_name": "secret-server", "state": "error", "host": "compute-1",
            "exception": fault, "message": str(fault), "code": 500}


def nova_legacy_compute_task(method: str, instance_id: str, project: str, user: str,
                             reason: Exception) -> dict:
    """nova/scheduler/utils.py set_vm_state_and_notify."""
    request_spec = {"instance_properties": {"project_id": project, "user_id": user,
                                            "uuid": instance_id, "root_gb": 1},
                    "instance_type": {"name": "m1.small"}, "num_instances": 1}
    properties = request_spec.get("instance_properties", {})
    return dict(request_spec=request_spec, instance_properties=properties,
                instance_id=instance_id, state="error", method=method, reason=reason)


def _nova_object(name: str, data: dict, version: str = "1.0") -> dict:
    return {"nova_object.name": name, "nova_object.namespace": "nova",
            "nova_object.version": version, "nova_object.data": data}


def nova_exception_payload(exception: Exception) -> dict:
    """nova/notifications/objects/exception.py ExceptionPayload.from_exception."""
    return _nova_object("ExceptionPayload", {
        "module_name": "nova.compute.manager", "function_name": "_build_resources",
        "exception": exception.__class__.__name__, "exception_message": str(exception),
        "traceback": "Traceback (most recent call last):\n  File ...secret..."}, "1.1")


def nova_versioned_instance_error(instance_id: str, project: str, user: str,
                                  exception: Exception,
                                  name: str = "InstanceActionPayload") -> dict:
    """An InstanceActionPayload (doc/notification_samples/instance-*-error.json) primitive."""
    return _nova_object(name, {
        "uuid": instance_id, "tenant_id": project, "user_id": user,
        "display_name": "secret-server", "state": "error", "host": "compute-1",
        "fault": nova_exception_payload(exception)}, "1.8")


def nova_versioned_compute_task_error(instance_id: str, project: str, user: str,
                                      exception: Exception) -> dict:
    """nova/compute/utils.py notify_about_compute_task_error: a ComputeTaskPayload."""
    return _nova_object("ComputeTaskPayload", {
        "instance_uuid": instance_id, "state": "error",
        "request_spec": _nova_object("RequestSpecPayload", {
            "project_id": project, "user_id": user, "instance_uuid": instance_id,
            "num_instances": 1}, "1.3"),
        "reason": nova_exception_payload(exception)})


def new_id() -> str:
    return str(uuid.uuid4())
