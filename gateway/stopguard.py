"""A stop that hangs is ended, and says where it hung.

The service bounds its own shutdown (``SHUTDOWN_BUDGET``), but a task that does not finish
when cancelled, or a thread the interpreter joins at exit, would hold the process forever:
a technician's Ctrl-C that never returns, a unit that waits for systemd's SIGKILL and leaves
nothing in the journal. Armed when a stop is asked for, this prints the stack of every
asyncio task still pending (if the loop still turns) and then of every thread to stderr, and
exits with status 1 if the process is still alive ``HUNG_STOP_AFTER`` seconds later.
Only the command line arms it: it ends the whole process."""

from __future__ import annotations

import asyncio
import contextlib
import faulthandler
import sys

#: well past the service's 4 s budget and the demo's 10 s for its peers: stuck, not slow
HUNG_STOP_AFTER = 20.0
#: the threads' dump (and the exit) comes this long after the tasks' dump
THREAD_DUMP_LAG = 1.0


def exit_if_stop_hangs() -> None:
    with contextlib.suppress(RuntimeError):  # no running loop: only the threads' dump
        asyncio.get_running_loop().call_later(HUNG_STOP_AFTER, print_pending_tasks)
    faulthandler.dump_traceback_later(HUNG_STOP_AFTER + THREAD_DUMP_LAG, exit=True, file=sys.stderr)


def print_pending_tasks() -> None:
    pending = [task for task in asyncio.all_tasks() if not task.done()]
    print(f"stop hung: {len(pending)} asyncio tasks still pending", file=sys.stderr, flush=True)
    for task in pending:
        task.print_stack(file=sys.stderr)
    sys.stderr.flush()
