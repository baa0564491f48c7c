"""Logging as every OpenStack service: oslo.log's options honoured by every service
command, and every line a request logs carrying its request id, the caller's global
request id, user and project (oslo.context's format), even under concurrent requests.

Real commands in subprocesses, real log files; waits are on the file's content, with a
deadline.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.api.conftest import row
from tests.harness import servers
from usermessages.store import engine as store_engine
from usermessages.store import migrate, writer

PROJECT, OTHER = "aaaa1111", "bbbb2222"
V = {"OpenStack-API-Version": "volume 3.5"}
GLOBAL = "req-0e0e0e0e-1111-4222-8333-444455556666"
REQUEST_ID = re.compile(r"req-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
WAIT = 60.0


def _store(tmp_path: Path, *projects: str) -> tuple[str, list[str]]:
    url = f"sqlite:///{tmp_path}/usermessages.sqlite"
    engine = store_engine.connect(url)
    migrate.upgrade(engine)
    # Rows that outlive the run: the server's reaper would take row()'s past ones.
    rows = [row(project, expires_in=dt.timedelta(days=3650)) for project in projects]
    with engine.begin() as conn:
        writer.insert(conn, rows)
    engine.dispose()
    return url, [r["id"] for r in rows]


def _lines_when(log: Path, done: Callable[[list[str]], bool], what: str) -> list[str]:
    """The log's lines once ``done`` says they hold what is awaited."""
    deadline = time.monotonic() + WAIT
    while True:
        lines = log.read_text().splitlines() if log.exists() else []
        if done(lines):
            return lines
        assert time.monotonic() < deadline, f"{what}: the log has {lines[-20:]}"
        time.sleep(0.1)


def test_every_line_of_a_request_carries_its_ids_user_and_project(tmp_path: Path) -> None:
    url, (mine, theirs) = _store(tmp_path, PROJECT, OTHER)
    log = tmp_path / "api.log"
    conf = tmp_path / "usermessages.conf"
    conf.write_text(f"[DEFAULT]\nlog_file = {log}\n")
    with servers.api_server(url, config_file=str(conf)) as base:
        headers = {"X-Auth-Token": f"alice:{PROJECT}", "X-OpenStack-Request-Id": GLOBAL, **V}
        for message_id, status in ((mine, 204), (theirs, 404)):
            answer = httpx.delete(f"{base}/v3/{PROJECT}/messages/{message_id}", headers=headers,
                                  timeout=30)
            assert answer.status_code == status
            request_id = answer.headers["x-openstack-request-id"]
            # Its lines: the audit line and the access line (both name the message).
            lines = _lines_when(log, lambda ls, m=message_id: sum(m in x for x in ls) >= 2,
                                f"the delete of {message_id}")
            produced = [line for line in lines if message_id in line]
            assert [line for line in lines if request_id in line] == produced
            assert any("audit: delete message" in line for line in produced)
            assert any(f'"DELETE /v3/{PROJECT}/messages/{message_id}" status: {status}' in line
                       for line in produced)
            for line in produced:
                assert f"[{GLOBAL} {request_id} alice {PROJECT} " in line, line


def test_concurrent_requests_never_mix_their_ids(tmp_path: Path) -> None:
    url, ids = _store(tmp_path, *[PROJECT] * 20)
    log = tmp_path / "api.log"
    conf = tmp_path / "usermessages.conf"
    conf.write_text(f"[DEFAULT]\nlog_file = {log}\n")
    with servers.api_server(url, config_file=str(conf)) as base:
        def delete(message_id: str) -> str:
            answer = httpx.delete(f"{base}/v3/{PROJECT}/messages/{message_id}", timeout=30,
                                  headers={"X-Auth-Token": f"user-{message_id[:8]}:{PROJECT}",
                                           **V})
            assert answer.status_code == 204
            return answer.headers["x-openstack-request-id"]

        with ThreadPoolExecutor(20) as pool:
            request_ids = dict(zip(ids, pool.map(delete, ids), strict=True))
        lines = _lines_when(log, lambda ls: all(sum(m in x for x in ls) >= 2 for m in ids),
                            "20 concurrent deletes")
    for message_id, request_id in request_ids.items():
        for line in (x for x in lines if message_id in x):
            assert REQUEST_ID.findall(line) == [request_id], line
            assert f" user-{message_id[:8]} {PROJECT} " in line, line


SERVICE_COMMANDS = {
    # command -> (arguments, a line it logs, runs until stopped)
    "serve": (["serve", "--port", "{port}"], "Deleted 0 expired messages.", True),
    "collector": (["collector", "--bus", "memory://"], "collector consuming usermessages",
                  True),
    "webhook-deliverer": (["webhook-deliverer"], "webhook deliverer started", True),
    "zaqar-collector": (["zaqar-collector", "--zaqar", "http://127.0.0.1:{port}"],
                        "Zaqar collector round failed", True),
    "reap": (["reap"], "Deleted 0 expired messages.", False),
    "db upgrade": (["db", "upgrade"], "upgraded the schema from revision (none)", False),
}


@pytest.mark.parametrize("command", sorted(SERVICE_COMMANDS))
def test_every_service_command_logs_where_the_file_says(tmp_path: Path, command: str) -> None:
    """[DEFAULT] log_file and debug, as oslo.log reads them: the command's lines go to
    the file, none to the console."""
    args, expected, lasts = SERVICE_COMMANDS[command]
    url = f"sqlite:///{tmp_path}/usermessages.sqlite"
    if command != "db upgrade":
        migrate.upgrade(store_engine.connect(url))
    log = tmp_path / "logs" / "service.log"
    log.parent.mkdir()
    conf = tmp_path / "usermessages.conf"
    conf.write_text(f"[DEFAULT]\ndebug = true\nlog_dir = {log.parent}\nlog_file = {log.name}\n"
                    f"[database]\nconnection = {url}\n")
    port = str(servers.free_port())
    argv = [sys.executable, "-m", "usermessages.cli.main",
            *(arg.replace("{port}", port) for arg in args), "--config", str(conf)]
    process = subprocess.Popen(argv, cwd=tmp_path, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        lines = _lines_when(log, lambda ls: any(expected in x for x in ls), command)
        # debug = true: oslo's dump of every option's value first.
        assert any(" DEBUG usermessages.logs [-] debug " in x for x in lines), lines[:5]
    finally:
        if lasts and process.poll() is None:
            process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr
    assert expected not in stderr and " INFO " not in stderr, stderr


def test_log_config_append_and_use_json_are_oslo_log_s(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/usermessages.sqlite"
    migrate.upgrade(store_engine.connect(url))
    custom = tmp_path / "custom.log"
    logging_conf = tmp_path / "logging.conf"
    logging_conf.write_text(
        "[loggers]\nkeys = root\n[handlers]\nkeys = file\n[formatters]\nkeys = plain\n"
        "[logger_root]\nlevel = INFO\nhandlers = file\n"
        f"[handler_file]\nclass = FileHandler\nformatter = plain\nargs = ('{custom}',)\n"
        "[formatter_plain]\nformat = custom %(levelname)s %(message)s\n")
    conf = tmp_path / "a.conf"
    conf.write_text(f"[DEFAULT]\nlog_config_append = {logging_conf}\n")
    ran = _cli(["reap", "--db", url, "--config", str(conf)], tmp_path)
    assert ran.stdout == "deleted 0 expired messages\n"
    assert "custom INFO Deleted 0 expired messages." in custom.read_text()
    log = tmp_path / "json.log"
    conf.write_text(f"[DEFAULT]\nuse_json = true\nlog_file = {log}\n")
    ran = _cli(["reap", "--db", url, "--config", str(conf)], tmp_path)
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert any(r["message"] == "Deleted 0 expired messages." and r["levelname"] == "INFO"
               for r in records)


def test_the_console_is_stderr_warnings_only_unless_verbose(tmp_path: Path) -> None:
    """Without a log destination, lines go to stderr (stdout is the command's output),
    warnings and errors only; -v adds info, debug = true everything."""
    url = f"sqlite:///{tmp_path}/usermessages.sqlite"
    migrate.upgrade(store_engine.connect(url))
    quiet = _cli(["reap", "--db", url], tmp_path)
    assert (quiet.stdout, quiet.stderr) == ("deleted 0 expired messages\n", "")
    verbose = _cli(["-v", "reap", "--db", url], tmp_path)
    assert verbose.stdout == "deleted 0 expired messages\n"
    assert re.search(r"^\S+ \S+ \d+ INFO usermessages.reaper \[-\] Deleted 0 expired "
                     r"messages\.$", verbose.stderr, flags=re.M), verbose.stderr
    conf = tmp_path / "debug.conf"
    conf.write_text("[DEFAULT]\ndebug = true\n")
    debug = _cli(["reap", "--db", url, "--config", str(conf)], tmp_path)
    assert debug.stdout == "deleted 0 expired messages\n" and " INFO " in debug.stderr


def test_a_bad_oslo_log_option_is_one_line_at_start(tmp_path: Path) -> None:
    conf = tmp_path / "bad.conf"
    for text, complaint in (("[DEFAULT]\ndebug = loud\n", "[DEFAULT] debug is not valid"),
                            ("[DEFAULT]\nlog_fil = x\n", "unknown option [DEFAULT] log_fil"),
                            ("[DEFAULT]\nlog_rotation_type = weekly\n",
                             "[DEFAULT] log_rotation_type is not valid")):
        conf.write_text(text)
        ran = _cli(["reap", "--config", str(conf)], tmp_path)
        assert ran.returncode == 1 and ran.stdout == ""
        assert ran.stderr.startswith("Error: ") and ran.stderr.count("\n") == 1, ran.stderr
        assert complaint in ran.stderr, ran.stderr


def _cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "200"}
    env.pop("USERMESSAGES_CONFIG", None)
    return subprocess.run([sys.executable, "-m", "usermessages.cli.main", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=120, env=env)
