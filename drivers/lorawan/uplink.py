"""A data uplink through one device's session, as values: frame in, effects out (h11-style).

Decides what a data frame does to the session (frame counter, MAC answers, the next
downlink and its counter) and says what to do about it: refuse it, persist the session,
send a downlink, publish the frame. No sockets, no store, no clock: the driver carries the
effects out, in order.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from .constants import FPORT_MAC_COMMANDS, MType
from .mac import DataFrame, build_data_frame
from .maccommands import answers, split_uplink
from .session import Session, check_uplink

#: the most MAC answer bytes a downlink's FOpts field holds
MAX_FOPTS = 15


@dataclass(frozen=True, slots=True)
class Radio:
    """How the uplink was heard: what a LinkCheckAns reports back."""

    snr: float
    data_rate: str
    gateways: int


@dataclass(frozen=True, slots=True)
class Pending:
    """The first downlink waiting for this device, and whether more wait behind it."""

    fport: int
    payload: bytes
    more: bool


@dataclass(frozen=True, slots=True)
class Refuse:
    """The frame is not taken; counted and logged under ``reason``."""

    reason: str
    detail: tuple[tuple[str, object], ...] = ()


@dataclass(frozen=True, slots=True)
class Count:
    """Something worth a counter that changes nothing else (a retransmission, unparsed MAC bytes)."""

    name: str


@dataclass(frozen=True, slots=True)
class CounterReset:
    """A relaxed device started counting again near zero; taken, and worth a warning."""

    fcnt32: int
    last_fcnt: int | None


@dataclass(frozen=True, slots=True)
class Persist:
    """Store the session before anything leaves: a power cut must not let this frame replay,
    nor a downlink counter be used twice."""

    session: Session


@dataclass(frozen=True, slots=True)
class Send:
    """A downlink PHYPayload for the uplink's receive windows; ``carries_pending``: it holds
    the first queued downlink, which is done once it is scheduled."""

    phy: bytes
    carries_pending: bool


@dataclass(frozen=True, slots=True)
class Publish:
    """The frame is taken: publish its metadata and decode ``payload`` on ``fport`` (None or
    the MAC port: nothing to decode)."""

    fcnt32: int
    fport: int | None
    payload: bytes


Effect = Refuse | Count | CounterReset | Persist | Send | Publish


@dataclass(frozen=True, slots=True)
class Outcome:
    effects: tuple[Effect, ...]
    #: the counter of the last confirmed frame acknowledged again (once per counter)
    reacked_fcnt: int | None


def next_fcnt_down(session: Session) -> int:
    """The downlink counter to use next (32 bits, wrapping)."""
    return 0 if session.fcnt_down is None else (session.fcnt_down + 1) % (1 << 32)


def _downlink(
    session: Session, *, ack: bool, pending: Pending | None = None, mac: bytes = b""
) -> tuple[Session, bytes]:
    fcnt_down = next_fcnt_down(session)
    fport, data = (pending.fport, pending.payload) if pending is not None else (None, b"")
    phy = build_data_frame(
        MType.UNCONFIRMED_DOWN,
        session.dev_addr,
        fcnt_down,
        session.nwk_skey,
        session.app_skey,
        fport,
        data,
        ack=ack,
        fpending=pending is not None and pending.more,
        fopts=mac[:MAX_FOPTS],
    )
    return replace(session, fcnt_down=fcnt_down), phy


def on_data_uplink(
    session: Session | None,
    frame: DataFrame,
    radio: Radio,
    *,
    relaxed: bool,
    reacked_fcnt: int | None,
    pending: Pending | None,
) -> Outcome:
    """What a data frame for this device does."""
    if session is None or session.dev_addr != frame.dev_addr:
        return Outcome((Refuse("no_session", (("dev_addr", frame.dev_addr_hex),)),), reacked_fcnt)
    check = check_uplink(session, frame, relaxed)
    if check.verdict == "replay" and frame.confirmed and reacked_fcnt != check.fcnt32:
        # Its ACK was lost: ACK it again, publish nothing twice. Once per counter: a recorded
        # frame replayed in a loop must not buy downlink airtime.
        session, phy = _downlink(session, ack=True)
        return Outcome((Count("confirmed_retransmissions"), Persist(session), Send(phy, False)), check.fcnt32)
    if check.verdict != "ok":
        return Outcome(
            (Refuse(check.verdict, (("fcnt", check.fcnt32), ("last_fcnt", session.fcnt_up))),), reacked_fcnt
        )
    effects: list[Effect] = []
    if check.counter_reset:
        effects.append(CounterReset(check.fcnt32, session.fcnt_up))
    payload = frame.decrypt(session.nwk_skey, session.app_skey, check.fcnt32)
    commands, complete = split_uplink(payload if frame.fport == FPORT_MAC_COMMANDS else frame.fopts)
    if not complete:
        effects.append(Count("mac_commands_unparsed"))
    mac = answers(commands, radio.snr, radio.data_rate, radio.gateways)
    session = replace(session, fcnt_up=check.fcnt32)
    send: Send | None = None
    if frame.confirmed or pending is not None or mac:
        session, phy = _downlink(session, ack=frame.confirmed, pending=pending, mac=mac)
        send = Send(phy, pending is not None)
    effects.append(Persist(session))
    if send is not None:
        effects.append(send)
    effects.append(Publish(check.fcnt32, frame.fport, payload))
    return Outcome(tuple(effects), reacked_fcnt)
