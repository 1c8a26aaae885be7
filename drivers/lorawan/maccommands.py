"""Sans-IO MAC commands of LoRaWAN 1.0.x carried in FOpts or on FPort 0: the uplink ones are
split by their fixed lengths, LinkCheckReq is answered; others are reported, not acted on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

LINK_CHECK = 0x02
DEVICE_TIME = 0x0D

#: payload length of each device-to-network command (LoRaWAN 1.0.4 §5)
UPLINK_LENGTHS: dict[int, int] = {
    0x02: 0,  # LinkCheckReq
    0x03: 1,  # LinkADRAns
    0x04: 0,  # DutyCycleAns
    0x05: 1,  # RXParamSetupAns
    0x06: 2,  # DevStatusAns
    0x07: 1,  # NewChannelAns
    0x08: 0,  # RXTimingSetupAns
    0x09: 0,  # TxParamSetupAns
    0x0A: 1,  # DlChannelAns
    0x0D: 0,  # DeviceTimeReq
}

#: demodulation floor by spreading factor (dB), for LinkCheckAns margins
REQUIRED_SNR = {7: -7.5, 8: -10.0, 9: -12.5, 10: -15.0, 11: -17.5, 12: -20.0}


@dataclass(frozen=True, slots=True)
class MacCommand:
    cid: int
    payload: bytes


def split_uplink(raw: bytes) -> tuple[list[MacCommand], bool]:
    """Commands in ``raw``; the flag is False when an unknown CID stopped the parse."""
    out: list[MacCommand] = []
    i = 0
    while i < len(raw):
        cid = raw[i]
        length = UPLINK_LENGTHS.get(cid)
        if length is None or i + 1 + length > len(raw):
            return out, False
        out.append(MacCommand(cid, raw[i + 1 : i + 1 + length]))
        i += 1 + length
    return out, True


#: a LoRa data rate as concentrators report it, e.g. "SF7BW125"
_LORA_DATR = re.compile(r"SF([0-9]{1,2})BW[0-9]+", re.ASCII)


def link_check_answer(snr: float, datr: str, gateways: int) -> bytes:
    # The data rate is the concentrator's text: anything unexpected counts as the slowest rate.
    match = _LORA_DATR.fullmatch(datr)
    spreading = int(match.group(1)) if match else 12
    margin = max(0, min(254, int(snr - REQUIRED_SNR.get(spreading, -20.0))))
    return bytes([LINK_CHECK, margin, max(1, min(255, gateways))])


def answers(commands: list[MacCommand], snr: float, datr: str, gateways: int) -> bytes:
    out = b""
    for command in commands:
        if command.cid == LINK_CHECK:
            out += link_check_answer(snr, datr, gateways)
    return out
