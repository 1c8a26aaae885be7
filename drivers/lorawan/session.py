"""Sans-IO device session rules: which uplinks a session accepts (MIC and frame counter),
how a JoinRequest is judged and answered, and how session state is kept durable.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from . import crypto, fcnt
from .credentials import AbpCredentials, OtaaCredentials
from .mac import DataFrame, JoinAccept, JoinRequest, build_join_accept

#: DevNonces remembered per device; 1.0.2 devices pick them at random, so keep many
MAX_REMEMBERED_NONCES = 2048


@dataclass(frozen=True, slots=True)
class Session:
    dev_addr: int
    nwk_skey: bytes
    app_skey: bytes
    fcnt_up: int | None = None  # last accepted uplink counter
    fcnt_down: int | None = None  # last used downlink counter
    activation: str = "abp"

    def __repr__(self) -> str:  # keys stay out of logs and tracebacks
        return f"Session(dev_addr={self.dev_addr:08X}, fcnt_up={self.fcnt_up}, fcnt_down={self.fcnt_down})"

    def to_state(self) -> dict[str, Any]:
        return {
            "dev_addr": self.dev_addr,
            "nwk_skey": self.nwk_skey.hex(),
            "app_skey": self.app_skey.hex(),
            "fcnt_up": self.fcnt_up,
            "fcnt_down": self.fcnt_down,
            "activation": self.activation,
        }

    @classmethod
    def from_state(cls, raw: Any) -> Session | None:
        if not isinstance(raw, dict):
            return None
        try:
            return cls(
                int(raw["dev_addr"]),
                bytes.fromhex(raw["nwk_skey"]),
                bytes.fromhex(raw["app_skey"]),
                raw.get("fcnt_up"),
                raw.get("fcnt_down"),
                str(raw.get("activation", "abp")),
            )
        except (KeyError, TypeError, ValueError):
            return None


def abp_session(creds: AbpCredentials, stored: Session | None) -> Session:
    """The ABP session, keeping stored counters only if they belong to the same keys."""
    fresh = Session(creds.dev_addr, creds.nwk_skey.value, creds.app_skey.value)
    if stored is not None and (stored.dev_addr, stored.nwk_skey, stored.app_skey) == (
        fresh.dev_addr,
        fresh.nwk_skey,
        fresh.app_skey,
    ):
        return stored
    return fresh


@dataclass(frozen=True, slots=True)
class UplinkCheck:
    verdict: str  # ok | replay | stale | bad_mic
    fcnt32: int
    counter_reset: bool = False


def check_uplink(session: Session, frame: DataFrame, relaxed: bool) -> UplinkCheck:
    """Judge an uplink; never mutates the session (the caller persists ``fcnt32`` on ok)."""
    guess = fcnt.candidate(session.fcnt_up, frame.fcnt16)
    mic_ok = frame.mic_ok(session.nwk_skey, guess.fcnt32)
    if guess.reason is None:
        return UplinkCheck("ok" if mic_ok else "bad_mic", guess.fcnt32)
    if relaxed and guess.reason == "stale" and frame.mic_ok(session.nwk_skey, frame.fcnt16):
        # A device that lost its counter (battery swap, ABP reboot) starts again near zero.
        return UplinkCheck("ok", frame.fcnt16, counter_reset=True)
    return UplinkCheck(guess.reason if mic_ok else "bad_mic", guess.fcnt32)


def check_join(creds: OtaaCredentials, request: JoinRequest, used_nonces: set[int]) -> str | None:
    """None when the JoinRequest may be answered, else the reason it is refused."""
    if request.app_eui != creds.app_eui:
        return "wrong_app_eui"
    if not request.mic_ok(creds.app_key.value):
        return "bad_mic"
    if request.dev_nonce in used_nonces:
        return "devnonce_replay"
    return None


def accept_join(
    creds: OtaaCredentials,
    request: JoinRequest,
    *,
    app_nonce: int,
    net_id: int,
    dev_addr: int,
    rx1_dr_offset: int,
    rx2_dr: int,
    rx_delay: int = 1,
) -> tuple[Session, bytes]:
    """The new session and the encrypted JoinAccept PHYPayload that announces it."""
    key = creds.app_key.value
    nwk_skey, app_skey = crypto.derive_session_keys(key, app_nonce, net_id, request.dev_nonce)
    accept = JoinAccept(app_nonce, net_id, dev_addr, rx1_dr_offset, rx2_dr, rx_delay, b"")
    return Session(dev_addr, nwk_skey, app_skey, None, None, "otaa"), build_join_accept(key, accept)


def remember_nonce(nonces: list[int], nonce: int) -> list[int]:
    return (nonces + [nonce])[-MAX_REMEMBERED_NONCES:]
