"""The rules component: feeds hub readings and timers to the engine and carries out its commands.

It owns the asyncio side only: subscription, timers, the actuator queue, hot reload of the
rules directory, pickup of overrides set by other processes, and durable rule state.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from pathlib import Path
from typing import Any, assert_never

from ..actuation import WriteSkipped
from ..components import ComponentContext
from ..driver import WriteError
from ..hub import Subscription
from ..model import Reading
from ..store.state import NamespacedState
from .accepted import AcceptedCopies
from .config import RulesConfig
from .engine import Engine
from .model import (
    Command,
    EventCommand,
    FailSafeCommand,
    PublishCommand,
    RuleNotice,
    SetCommand,
    WriteCommand,
)
from .ruleset import ReloadResult, RuleDirectory
from .timeofday import SiteTimes

log = logging.getLogger("gateway.rules")

STATE_NAMESPACE = "rules"
QUEUE_BATCHES = 1024
#: commands waiting for the actuator task; beyond this the oldest is dropped and its point
#: re-sent by the engine's next evaluation (a device that slow is already failing writes)
COMMAND_QUEUE = 1024
#: how long to wait before saving rule state again after the store refused it
PERSIST_RETRY = 5.0
#: a virtual point read by another rule is fed back at most this deep per reading (no loops)
MAX_VIRTUAL_DEPTH = 8


class RulesComponent:
    """The ``[rules]`` component: owns the engine, feeds it hub readings and its timers,
    carries out its commands, reloads rule files and saves rule state."""

    name = "rules"

    def __init__(self, ctx: ComponentContext, config: RulesConfig):
        self.ctx = ctx
        self.config = config
        self.clock = ctx.clock
        self.actuation = ctx.actuation
        self.state = NamespacedState(ctx.store, STATE_NAMESPACE)
        site = ctx.config.site
        self.directory = RuleDirectory(
            config.directory,
            ctx.config.points,
            site_has_location=site.latitude is not None,
            accepted=AcceptedCopies(site.data_dir),
        )
        self.engine = Engine(
            SiteTimes(site.timezone, site.latitude, site.longitude),
            ctx.config.actuators.points,
            now=self.clock.time(),
            default_stale_after=config.stale_after,
        )
        self._wanted: frozenset[str] = frozenset()
        self._subscription: Subscription | None = None
        self._commands: asyncio.Queue[Command] = asyncio.Queue(COMMAND_QUEUE)
        self._retries: dict[str, tuple[float, Command]] = {}
        self._wake = asyncio.Event()
        self._sleeping_until: float | None = None
        self._persist_wanted = asyncio.Event()
        self._held_noted: dict[str, float] = {}
        self._unguarded_noted: set[str] = set()
        self._unsaved: dict[str, Any] = {}  # rule state the store could not take yet
        self.counts = {
            "readings": 0,
            "commands": 0,
            "reloads": 0,
            "rejected_reloads": 0,
            "dropped_commands": 0,
        }
        self.last_reload_problems: list[str] = []

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        saved = await self.state.all()
        self.engine.now = self.clock.time()
        self.engine.started_at = self.engine.now
        try:
            # a broken rule file is reported and runs its accepted copy, or is skipped with its
            # actuators held at their fail-safe values; it never stops the gateway
            result = self.directory.reload()
            self._log_reload(result)
            self.engine.load(self.directory.rules, saved)
        except Exception:  # noqa: BLE001 - a rule problem is never fatal
            log.exception("event=rules_load_failed directory=%s", self.config.directory)
            result = None
        stale_keys = {k: None for k in saved if k not in self.engine.rules}
        if stale_keys:
            await self.state.put_many(stale_keys)
        await self._prime(self.engine.points)
        self._subscription = self.ctx.hub.subscribe(
            "rules", maxsize=QUEUE_BATCHES, overflow="block", accepts=self._accepts
        )
        self._hold_failsafes()
        await self._keep_accepted_copies()
        if result is not None and result.rejected:
            await self._report_rejected(result)
        log.info(
            "event=rules_started rules=%d files=%d rejected=%d directory=%s",
            len(self.engine.rules),
            len(self.directory.active),
            len(self.directory.rejected),
            self.config.directory,
        )

    def _accepts(self, reading: Reading) -> bool:
        # virtual points are fed to the engine directly; taking them back from the hub would
        # make the consumer wait on its own queue
        return reading.point in self._wanted and not reading.point.startswith("virtual/")

    async def _prime(self, points: frozenset[str]) -> None:
        """Latest values and window history from the buffer, so a restart resumes informed."""
        new = points - self._wanted
        self._wanted = points
        if not new:
            return
        now = self.clock.time()
        latest = await self.ctx.store.latest(new)
        history: list[Any] = []
        for point, seconds in self.engine.window_spans.items():
            if point in new:
                history.extend(await self.ctx.store.history(point, now - seconds, now))
        self.engine.prime(Reading(r.point, r.value, r.ts, r.unit) for r in [*history, *latest])

    async def run(self) -> None:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._consume(), name="rules:consume")
            tg.create_task(self._timers(), name="rules:timers")
            tg.create_task(self._actuate(), name="rules:actuate")
            tg.create_task(self._watch(), name="rules:watch")
            tg.create_task(self._persist(), name="rules:persist")

    async def stop(self) -> None:
        if self._subscription is not None:
            self.ctx.hub.unsubscribe(self._subscription)
        await self._save_dirty()

    # -- the engine's inputs --------------------------------------------------------------

    async def _consume(self) -> None:
        assert self._subscription is not None
        while True:
            batch = await self._subscription.get()
            self.counts["readings"] += len(batch)
            try:
                self._submit(self.engine.feed(batch, self.clock.time()))
            except Exception:  # noqa: BLE001 - a rule problem is never fatal: log, go on
                self.counts["engine_failures"] = self.counts.get("engine_failures", 0) + 1
                log.exception("event=rules_feed_failed readings=%d", len(batch))

    def _submit(self, commands: list[Command], depth: int = 0) -> None:
        virtual: list[Reading] = []
        for command in commands:
            self.counts["commands"] += 1
            _log_command(command)
            self._enqueue(command)
            if isinstance(command, PublishCommand):
                virtual.append(Reading(command.point, command.value, command.ts, command.unit))
        if virtual and depth < MAX_VIRTUAL_DEPTH:
            self._submit(self.engine.feed(virtual, self.clock.time()), depth + 1)
        self._after_engine_step()

    def _enqueue(self, command: Command) -> None:
        if self._commands.full():
            dropped = self._commands.get_nowait()
            self.counts["dropped_commands"] += 1
            if isinstance(dropped, SetCommand | FailSafeCommand):
                self.engine.forget_output(dropped.point)
            log.warning(
                "event=command_dropped reason=queue_full rule=%s point=%s", dropped.rule, dropped.point
            )
        self._commands.put_nowait(command)

    def _after_engine_step(self) -> None:
        deadline = self._deadline()
        if deadline is not None and (self._sleeping_until is None or deadline < self._sleeping_until):
            self._wake.set()
        self._persist_wanted.set()

    def _deadline(self) -> float | None:
        times = [
            t for t in (self.engine.next_deadline(), *(r[0] for r in self._retries.values())) if t is not None
        ]
        return min(times) if times else None

    async def _timers(self) -> None:
        while True:
            self._wake.clear()
            deadline = self._deadline()
            self._sleeping_until = deadline
            if deadline is None:
                await self._wake.wait()
                continue
            delay = deadline - self.clock.time()
            if delay > 0:
                sleeper = asyncio.ensure_future(self.clock.sleep(delay))
                waker = asyncio.ensure_future(self._wake.wait())
                try:
                    await asyncio.wait({sleeper, waker}, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    sleeper.cancel()
                    waker.cancel()
                if self.clock.time() < deadline:
                    continue
            self._sleeping_until = None
            now = self.clock.time()
            for point, (due, command) in list(self._retries.items()):
                if due <= now:
                    del self._retries[point]
                    desired = self.engine.desired(point)
                    if desired is not None and desired[1] == command.value:
                        self._enqueue(command)
            try:
                self._submit(self.engine.tick(now))
            except Exception:  # noqa: BLE001 - a rule problem is never fatal: log, go on
                self.counts["engine_failures"] = self.counts.get("engine_failures", 0) + 1
                log.exception("event=rules_timer_failed")
                await self.clock.sleep(1.0)  # the same failure must not spin the loop

    # -- carrying out commands ------------------------------------------------------------

    async def _actuate(self) -> None:
        while True:
            command = await self._commands.get()
            try:
                await self._carry_out(command)
            except Exception:  # noqa: BLE001 - one bad command must not stop the engine
                log.exception("event=command_failed rule=%s point=%s", command.rule, command.point)

    async def _carry_out(self, command: Command) -> None:
        match command:
            case SetCommand() | FailSafeCommand():
                await self._write(command)
                return
            case PublishCommand():
                reading = Reading(
                    command.point, command.value, command.ts, command.unit, clock_synced=self.clock.synced()
                )
            case EventCommand():
                body = {"rule": command.rule, "message": command.value}
                reading = Reading(
                    command.point,
                    json.dumps(body, separators=(",", ":")),
                    command.ts,
                    clock_synced=self.clock.synced(),
                )
            case RuleNotice():
                body = {"rule": command.rule, "result": command.kind, "message": command.value}
                reading = Reading(
                    command.point,
                    json.dumps(body, separators=(",", ":")),
                    command.ts,
                    clock_synced=self.clock.synced(),
                )
            case _:
                assert_never(command)
        self.ctx.hub.publish_nowait([reading])  # a record: never wait on the store

    async def _write(self, command: WriteCommand) -> None:
        prefix = "rule" if isinstance(command, SetCommand) else "failsafe"
        source = f"{prefix}:{command.rule}"
        reason = command.reason if isinstance(command, FailSafeCommand) else ""
        override = self.actuation.overrides.active(command.point)
        if override is not None:
            # one record per override, not one per evaluation while it holds
            if self._held_noted.get(command.point) != override.set_at:
                self._held_noted[command.point] = override.set_at
                with contextlib.suppress(WriteError):
                    await self.actuation.write(command.point, command.value, source=source, reason=reason)
            return
        try:
            outcome = await self.actuation.write(command.point, command.value, source=source, reason=reason)
        except WriteSkipped as exc:
            if exc.retry_at is not None:
                self._retries[command.point] = (exc.retry_at, command)
                self._wake.set()
            else:
                self.engine.forget_output(command.point)
            return
        except WriteError:
            self.engine.forget_output(command.point)
            return
        if outcome.retry_at is not None:
            self._retries[command.point] = (outcome.retry_at, command)
            self._wake.set()
        else:
            self._retries.pop(command.point, None)

    # -- reload, overrides, persistence ---------------------------------------------------

    async def _watch(self) -> None:
        while True:
            await self.clock.sleep(self.config.reload_interval)
            try:
                await self.check_now()
            except Exception:  # noqa: BLE001 - a rule problem is never fatal: log, retry next round
                self.counts["engine_failures"] = self.counts.get("engine_failures", 0) + 1
                log.exception("event=rules_check_failed")

    async def check_now(self) -> None:
        """One round of the periodic check: rule files changed? overrides set or ended?"""
        if self.directory.changed():
            result = self.directory.reload()
            self._log_reload(result)
            if result.rejected:
                self.counts["rejected_reloads"] += 1
                await self._report_rejected(result)
            if result.changed:
                self.counts["reloads"] += 1
                self.engine.now = self.clock.time()
                self.engine.load(self.directory.rules)
                await self._prime(self.engine.points)
                self._after_engine_step()
                self._wake.set()
            self._hold_failsafes()
            await self._keep_accepted_copies()
        try:
            _, ended = await self.actuation.sync_overrides()
        except Exception as exc:  # noqa: BLE001 - the store may be busy; try next round
            log.warning("event=override_sync_failed error=%r", str(exc))
            return
        for point in ended:
            self._held_noted.pop(point, None)
            self.engine.now = self.clock.time()
            self._submit(self.engine.reassert(point))

    def _log_reload(self, result: ReloadResult) -> None:
        self.last_reload_problems = [str(p) for p in result.problems]
        for path in result.loaded:
            log.info("event=rules_loaded file=%s", path)
        for path in result.removed:
            log.info("event=rules_removed file=%s", path)
        for path in result.rejected:
            outcome = self.directory.outcome(Path(path))
            for problem in self.directory.rejected[Path(path)].problems:
                log.error("event=rules_rejected file=%s outcome=%s problem=%r", path, outcome, str(problem))
            for problem in self.directory.copy_problems.get(Path(path), []):
                log.error("event=rules_accepted_copy_rejected file=%s problem=%r", path, str(problem))
        for path in result.restored:
            log.warning(
                "event=rules_accepted_copy_runs file=%s accepted_at=%s",
                path,
                self.directory.accepted.accepted_at(Path(path)) if self.directory.accepted else None,
            )

    async def _report_rejected(self, result: ReloadResult) -> None:
        """An ``events/rules`` reading, so the rejection travels upstream with the readings."""
        outcomes = {Path(p).name: self.directory.outcome(Path(p)) for p in result.rejected}
        self.ctx.hub.publish_nowait(
            [
                Reading(
                    "events/rules",
                    json.dumps(
                        {
                            "result": "rejected",
                            "files": list(result.rejected),
                            "outcome": outcomes,
                            "problems": self.last_reload_problems[:20],
                        }
                    ),
                    self.clock.time(),
                    clock_synced=self.clock.synced(),
                )
            ]
        )

    def _hold_failsafes(self) -> None:
        """Actuators a skipped (broken, never accepted) rule file would write go to fail-safe."""
        wanted = self.directory.unguarded_writes()
        self.engine.now = self.clock.time()
        commands = self.engine.hold_failsafe(wanted)
        for point, source in sorted(wanted.items()):
            if point not in self.engine.held and point not in self._unguarded_noted:
                log.error(
                    "event=rules_skipped_unguarded file=%s point=%s reason=no_fail_safe_value", source, point
                )
        self._unguarded_noted = {p for p in wanted if p not in self.engine.held}
        if commands:
            self._submit(commands)

    async def _keep_accepted_copies(self) -> None:
        save, forget = self.directory.take_pending()
        if not save and not forget:
            return
        try:
            await asyncio.to_thread(self.directory.write_copies, save, forget)
        except OSError as exc:  # a full or read-only disk must not stop the rules
            log.error("event=rules_accepted_copy_failed error=%r", str(exc))

    async def _persist(self) -> None:
        while True:
            await self._persist_wanted.wait()
            self._persist_wanted.clear()
            try:
                await self._save_dirty()
            except Exception as exc:  # noqa: BLE001 - a full or failing disk: keep it, retry
                log.warning(
                    "event=rules_state_save_failed rules=%d error=%r retry_in=%gs",
                    len(self._unsaved),
                    str(exc),
                    PERSIST_RETRY,
                )
                await asyncio.sleep(PERSIST_RETRY)
                self._persist_wanted.set()

    async def _save_dirty(self) -> None:
        changed, removed = self.engine.take_dirty()
        items: dict[str, Any] = self._unsaved
        items.update(changed)
        items.update(dict.fromkeys(removed))
        if items:
            await self.state.put_many(items)
            self._unsaved = {}

    def health(self) -> dict[str, Any]:
        return {
            "rules": len(self.engine.rules),
            **self.directory.health(),
            "counts": dict(self.counts),
            "queued_commands": self._commands.qsize(),
            "next_timer": self.engine.next_deadline(),
            "status": self.engine.status(),
            "failsafe_held": dict(self.engine.held),
            "actuation": self.actuation.health(),
        }


def _log_command(command: Command) -> None:
    """Log what a technician must see; the engine itself is sans-IO and logs nothing."""
    if isinstance(command, FailSafeCommand):
        log.warning(
            "event=rule_failsafe rule=%s point=%s value=%r reason=%r",
            command.rule,
            command.point,
            command.value,
            command.reason,
        )
    elif isinstance(command, RuleNotice) and command.error:
        log.warning("event=rule_error rule=%s error=%r", command.rule, command.value)
