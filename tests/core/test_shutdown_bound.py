"""SIGTERM ends the daemon within 5 s under load, even when the store's writer hangs.

A hung SD card is played by a ``sitecustomize`` that makes every commit after the first few
block forever, the way a write stuck in the kernel blocks the writer thread.
"""

import signal
import time

import pytest

from .test_daemon_process import committed, start_daemon, wait_for, write_site

#: the promise: systemd (TimeoutStopSec) and a technician both wait at most this long
SIGTERM_TO_EXIT_S = 5.0

HANG_AFTER_COMMITS = """
import threading
import gateway.store.database as database

_real_insert = database.Database.insert
_commits = 0

def _insert_then_hang(self, batch, **kwargs):
    global _commits
    _commits += 1
    if _commits > {commits}:
        threading.Event().wait()  # a write that never returns
    return _real_insert(self, batch, **kwargs)

database.Database.insert = _insert_then_hang
"""


@pytest.mark.parametrize("writer", ["healthy", "hung"])
def test_sigterm_exits_within_five_seconds_under_load(tmp_path, writer):
    config = write_site(tmp_path, points=50)  # 5,000 readings/s
    db_path = tmp_path / "data" / "buffer.db"
    env = {}
    if writer == "hung":
        hook = tmp_path / "hook"
        hook.mkdir()
        (hook / "sitecustomize.py").write_text(HANG_AFTER_COMMITS.format(commits=20))
        env["PYTHONPATH"] = str(hook)
    proc = start_daemon(config, env)
    try:
        enough = 2000 if writer == "healthy" else 100  # a hung writer stops after 20 commits
        wait_for(lambda: db_path.exists() and len(committed(db_path)) >= enough)
        if writer == "hung":
            time.sleep(0.5)  # let the queue fill behind the hung commit
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
        took = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    log = err.decode()
    assert took < SIGTERM_TO_EXIT_S, f"took {took:.1f}s\n{log[-2000:]}"
    last_seq = int(log.split("event=stopped last_seq=")[1].split()[0])
    assert committed(db_path)[-1][0] == last_seq  # what it says is committed, is
    if writer == "healthy":
        assert proc.returncode == 0 and "clean=true" in log
    else:
        assert proc.returncode == 3, log[-2000:]
        assert "event=store_close_abandoned" in log and "reason=writer_unresponsive" in log


#: a driver whose close never finishes, even when cancelled: no budget inside the service
#: can end that, only the guard the command line arms when a stop is asked for
CLOSE_NEVER_RETURNS = """
import asyncio
import gateway.stopguard
import drivers.simulated.driver as simulated

gateway.stopguard.HUNG_STOP_AFTER = 3.0

async def _close_forever(self):
    while True:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            pass  # the bug being played: a close that swallows its cancellation

simulated.SimulatedDriver.close = _close_forever
"""


def test_a_stop_that_hangs_ends_with_every_threads_traceback(tmp_path):
    config = write_site(tmp_path, points=1)
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(CLOSE_NEVER_RETURNS)
    proc = start_daemon(config, {"PYTHONPATH": str(hook)})
    try:
        wait_for(lambda: (tmp_path / "data" / "buffer.db").exists())
        time.sleep(0.5)  # the device task is running its driver
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    log = err.decode()
    assert proc.returncode == 1, log[-3000:]
    assert "stop hung:" in log and "in _close_forever" in log, log[-3000:]  # where it hung
    assert "Timeout (0:00:04)!" in log, log[-3000:]  # then every thread, and out
