"""Runs inside Cinder 29's own virtualenv (a benchmark peer, never a dependency).

    cinder_ingest.py CONF N      -> prints {"created": N, "seconds": S} for N x db.message_create
    cinder_ingest.py CONF reap   -> prints {"deleted": D, "seconds": S, "began": T0, "ended": T1}
                                    for cleanup_expired_messages (T0, T1: wall clock)
"""

import datetime
import json
import sys
import time
import uuid

from cinder import context as cinder_context
from cinder import objects
from cinder.common import config  # noqa: F401  (registers options; must precede CONF())
from cinder.db import api as db
from oslo_config import cfg

objects.register_all()
CONF = cfg.CONF
CONF([], project="cinder", default_config_files=[sys.argv[1]])
admin = cinder_context.get_admin_context()

if sys.argv[2] == "reap":
    began = time.time()  # wall clock: the caller times its listing load against it
    started = time.perf_counter()
    deleted = db.cleanup_expired_messages(admin)
    print(json.dumps({"deleted": deleted, "seconds": time.perf_counter() - started,
                      "began": began, "ended": time.time()}))
    sys.exit(0)

n = int(sys.argv[2])
expires = datetime.datetime.utcnow() + datetime.timedelta(days=30)
started = time.perf_counter()
for i in range(n):
    # The path cinder.message.api.API.create takes: one db.message_create per message.
    db.message_create(admin, {
        "project_id": f"{i % 1000:08x}", "request_id": f"req-{uuid.uuid4()}",
        "resource_type": "VOLUME", "resource_uuid": str(uuid.uuid4()),
        "event_id": "VOLUME_VOLUME_001_003", "message_level": "ERROR",
        "action_id": "001", "detail_id": "003", "expires_at": expires,
    })
print(json.dumps({"created": n, "seconds": time.perf_counter() - started}))
