"""Never hang: the broker down, no scheduler or worker running, a service that stops.

These run the service as separate processes on a real RabbitMQ, as it is deployed
at scale, and assert both the bound on every answer and the message that explains.
"""

from __future__ import annotations

import os
import time
import uuid

from tests.blockstorage.conftest import FAST, Cloud, blockstorage_server
from tests.blockstorage.test_attachments import CONNECTOR, V344
from tests.harness import servers

BUS_TIMEOUT = 1.0
# Documented bound on an API call while the broker is down: connect plus confirm,
# each bounded by [bus] timeout, plus slack for a loaded CI machine.
API_BOUND = 4 * BUS_TIMEOUT + 2


def _config(bus_url: str, extra: str = "") -> str:
    return FAST + f"\n[bus]\nurl = {bus_url}\ntimeout = {BUS_TIMEOUT}\n" + extra


def test_broker_down_gives_a_fast_503_and_a_message(tmp_path):
    with servers.rabbitmq_broker() as broker:
        with blockstorage_server(_config(broker.url), workdir=tmp_path) as base:
            user = Cloud(base, "alice", os.urandom(4).hex())
            volume_id, _ = user.create_volume(1)
            user.wait(f"/volumes/{volume_id}", "volume", "available")

            broker.stop_app()
            started = time.monotonic()
            response = user.post("/volumes", {"volume": {"size": 1}})
            elapsed = time.monotonic() - started
            assert response.status_code == 503, response.text
            assert elapsed < API_BOUND, elapsed
            fault = response.json()["serviceUnavailable"]
            assert fault["code"] == 503 and "message bus" in fault["message"]
            request_id = response.headers["x-openstack-request-id"]
            assert request_id in fault["message"]
            # The user message is there at once (sink both: straight into the store).
            message = user.wait_message(request_id=request_id, timeout=5)
            assert message["event_id"] == "VOLUME_VOLUME_001_109"
            assert message["user_message"].startswith("schedule allocate volume:The service is "
                                                      "temporarily unavailable")
            failed = [v for v in user.get("/volumes/detail").json()["volumes"]
                      if v["id"] == message["resource_uuid"]]
            assert failed[0]["status"] == "error"
            # Reads never needed the bus: they keep answering.
            assert user.volume(volume_id)["status"] == "available"

            broker.start_app()
            again = user.create_volume_once_accepted(1)
            user.wait(f"/volumes/{again}", "volume", "available", timeout=30)


def test_broker_down_during_an_attach_frees_the_volume_and_says_why(tmp_path):
    # The attach cast's undo once reported nothing: the volume went back to
    # available and the user had the 503 but no message (mypy found it).
    with servers.rabbitmq_broker() as broker:
        with blockstorage_server(_config(broker.url), workdir=tmp_path) as base:
            user = Cloud(base, "alice", os.urandom(4).hex())
            volume_id, _ = user.create_volume(1)
            user.wait(f"/volumes/{volume_id}", "volume", "available")

            broker.stop_app()
            response = user.http.post("/attachments", headers=V344, json={"attachment": {
                "volume_uuid": volume_id, "instance_uuid": str(uuid.uuid4()),
                "connector": CONNECTOR}})
            assert response.status_code == 503, response.text
            request_id = response.headers["x-openstack-request-id"]
            message = user.wait_message(request_id=request_id, timeout=5)
            assert message["event_id"] == "VOLUME_VOLUME_002_109"
            assert message["resource_uuid"] == volume_id
            assert user.volume(volume_id)["status"] == "available"


def test_no_scheduler_running_fails_the_volume_after_the_deadline(rabbitmq_url, tmp_path):
    # Only the API: nobody consumes the scheduler's queue.
    with blockstorage_server(_config(rabbitmq_url), components="api", workdir=tmp_path) as base:
        user = Cloud(base, "alice", os.urandom(4).hex())
        volume_id, request_id = user.create_volume(1)
        assert user.volume(volume_id)["status"] == "creating"
        volume = user.wait(f"/volumes/{volume_id}", "volume", "error", timeout=20)
        assert volume["status"] == "error"
        message = user.wait_message(resource_uuid=volume_id)
        assert message["event_id"] == "VOLUME_VOLUME_001_108"
        assert message["request_id"] == request_id
        assert "No service picked up the request in time" in message["user_message"]


def test_backup_service_down_and_back(rabbitmq_url, tmp_path):
    config = _config(rabbitmq_url, "\n[collector]\nembedded = true\n")
    with blockstorage_server(config, components="api,scheduler,volume", workdir=tmp_path) as base:
        admin = Cloud(base, "admin", "adadadad")
        user = Cloud(base, "alice", os.urandom(4).hex())
        type_id = admin.create_type(f"g-{uuid.uuid4().hex[:6]}", volume_backend_name="gold")
        volume_id, _ = user.create_volume(1, type_id)
        user.wait(f"/volumes/{volume_id}", "volume", "available")

        # No backup service has ever run: "service not found".
        backup = user.post("/backups", {"backup": {"volume_id": volume_id}}).json()["backup"]
        user.wait(f"/backups/{backup['id']}", "backup", "error")
        assert user.wait_message(resource_uuid=backup["id"])["event_id"] == (
            "VOLUME_VOLUME_BACKUP_013_024")
        user.wait(f"/volumes/{volume_id}", "volume", "available")

        # A backup service runs in its own process, then stops.
        with blockstorage_server(config, components="backup", workdir=tmp_path):
            def backup_services():
                return [s for s in admin.get("/os-services").json()["services"]
                        if s["binary"] == "blockstorage-backup"]

            deadline = time.monotonic() + 15
            while not backup_services() or backup_services()[0]["state"] != "up":
                assert time.monotonic() < deadline, "backup service never reported"
                time.sleep(0.2)
            ok = user.post("/backups", {"backup": {"volume_id": volume_id}}).json()["backup"]
            user.wait(f"/backups/{ok['id']}", "backup", "available")

        # Silent for service_down_time: admins get a SERVICE message, users a clear one.
        down = admin.wait_message(timeout=20, event_id="VOLUME_SERVICE_101_101")
        assert down["user_message"] == "report service status:The service stopped reporting."
        assert user.messages(event_id="VOLUME_SERVICE_101_101") == []
        user.wait(f"/volumes/{volume_id}", "volume", "available")
        # Cinder's scheduler finds no backup host up: 024, as when none ever ran.
        late = user.post("/backups", {"backup": {"volume_id": volume_id}}).json()["backup"]
        user.wait(f"/backups/{late['id']}", "backup", "error")
        assert user.wait_message(resource_uuid=late["id"])["event_id"] == (
            "VOLUME_VOLUME_BACKUP_013_024")

        # It comes back: one more SERVICE message, and backups work again.
        with blockstorage_server(config, components="backup", workdir=tmp_path):
            up = admin.wait_message(timeout=20, event_id="VOLUME_SERVICE_101_102")
            assert up["user_message"] == "report service status:The service is reporting again."
            user.wait(f"/volumes/{volume_id}", "volume", "available")
            again = user.post("/backups", {"backup": {"volume_id": volume_id}}).json()["backup"]
            user.wait(f"/backups/{again['id']}", "backup", "available")
        # Each transition was announced exactly once.
        assert len(admin.messages(event_id="VOLUME_SERVICE_101_101")) == 1


def test_broker_restart_loses_no_request(tmp_path):
    # API, scheduler and volume workers in three processes: after a broker restart with
    # no call in between, both the API's and the scheduler's idle publishers find their
    # connection dead; each reconnects once, so the create is accepted and completes.
    with servers.rabbitmq_broker() as broker:
        config = _config(broker.url)
        with blockstorage_server(config, components="api", workdir=tmp_path) as base, \
                blockstorage_server(config, components="scheduler", workdir=tmp_path), \
                blockstorage_server(config, components="volume", workdir=tmp_path):
            Cloud(base, "admin", "adadadad").wait_services_up(
                "blockstorage-scheduler", "blockstorage-volume")
            user = Cloud(base, "alice", os.urandom(4).hex())
            first, _ = user.create_volume(1)
            user.wait(f"/volumes/{first}", "volume", "available")

            broker.stop_app()
            broker.start_app()
            volume_id, request_id = user.create_volume(1)  # asserts 202, not 503
            volume = user.wait(f"/volumes/{volume_id}", "volume", ("available", "error"),
                               timeout=30)
            assert volume["status"] == "available", user.messages(request_id=request_id)
            assert user.messages(request_id=request_id) == []


def test_broker_down_while_connecting_an_attachment_tells_the_user(tmp_path):
    # The attachments API's connect undoes like every other cast: volume freed, user told.
    v344 = {"OpenStack-API-Version": "volume 3.44"}
    with servers.rabbitmq_broker() as broker:
        with blockstorage_server(_config(broker.url), workdir=tmp_path) as base:
            user = Cloud(base, "alice", os.urandom(4).hex())
            volume_id, _ = user.create_volume(1)
            user.wait(f"/volumes/{volume_id}", "volume", "available")
            reserved = user.http.post("/attachments", headers=v344, json={"attachment": {
                "volume_uuid": volume_id, "instance_uuid": str(uuid.uuid4())}})
            assert reserved.status_code == 200, reserved.text
            attachment_id = reserved.json()["attachment"]["id"]

            broker.stop_app()
            response = user.http.put(f"/attachments/{attachment_id}", headers=v344, json={
                "attachment": {"connector": {"host": "host1", "mountpoint": "/dev/vdb"}}})
            assert response.status_code == 503, response.text
            request_id = response.headers["x-openstack-request-id"]
            message = user.wait_message(request_id=request_id, timeout=5)
            assert message["event_id"] == "VOLUME_VOLUME_002_109"
            assert message["resource_uuid"] == volume_id
            assert user.volume(volume_id)["status"] == "available"
            broker.start_app()


def test_a_stopping_service_counts_what_its_bus_sink_could_not_deliver(tmp_path):
    """message_sink = bus with the broker unreachable: the message the 503 explains waits
    in the in-memory spool; on SIGTERM the service closes its messenger, which says
    (bounded by its close timeout) that it is lost rather than dropping it silently."""
    from usermessages.messenger import CLOSE_TIMEOUT

    bus_url = f"amqp://guest:guest@127.0.0.1:{servers.free_port()}//"  # nothing listens
    config = _config(bus_url).replace("[blockstorage]\n", "[blockstorage]\nmessage_sink = bus\n")
    with blockstorage_server(config, workdir=tmp_path, stop_timeout=CLOSE_TIMEOUT + 30) as base:
        user = Cloud(base, "alice", os.urandom(4).hex())
        response = user.post("/volumes", {"volume": {"size": 1}})
        assert response.status_code == 503, response.text
    log = "".join(path.read_text() for path in tmp_path.glob("server-*.log"))
    assert "user messages undelivered: lost with the in-memory spool" in log, log
