"""Named constants of the Semtech UDP packet-forwarder protocol (GWMP v2) and LoRaWAN 1.0.x.

Every number the LoRaWAN driver puts on the wire or reads from it is named here, once.
"""

from __future__ import annotations

import enum

# --- GWMP (Semtech packet forwarder, PROTOCOL.TXT) -------------------------------------------

DEFAULT_UDP_PORT = 1700
GWMP_VERSION = 2
#: versions a concentrator may speak; v1 is the older forwarder with identical framing.
GWMP_ACCEPTED_VERSIONS = frozenset({1, 2})
GWMP_HEADER_LEN = 4  # version, token (2), identifier
GWMP_EUI_LEN = 8
MAX_DATAGRAM = 65507


class GwmpType(enum.IntEnum):
    PUSH_DATA = 0x00
    PUSH_ACK = 0x01
    PULL_DATA = 0x02
    PULL_RESP = 0x03
    PULL_ACK = 0x04
    TX_ACK = 0x05


# --- LoRaWAN MAC (LoRaWAN 1.0.x specification) ----------------------------------------------


class MType(enum.IntEnum):
    JOIN_REQUEST = 0
    JOIN_ACCEPT = 1
    UNCONFIRMED_UP = 2
    UNCONFIRMED_DOWN = 3
    CONFIRMED_UP = 4
    CONFIRMED_DOWN = 5
    REJOIN_REQUEST = 6
    PROPRIETARY = 7


UPLINK_MTYPES = frozenset({MType.UNCONFIRMED_UP, MType.CONFIRMED_UP})
DOWNLINK_MTYPES = frozenset({MType.UNCONFIRMED_DOWN, MType.CONFIRMED_DOWN})

MAJOR_LORAWAN_R1 = 0
MIC_LEN = 4
MHDR_LEN = 1
FHDR_MIN_LEN = 7  # DevAddr(4) + FCtrl(1) + FCnt(2)
MAX_FOPTS_LEN = 15
JOIN_REQUEST_LEN = 23  # MHDR + AppEUI + DevEUI + DevNonce + MIC
JOIN_ACCEPT_LEN = 17  # MHDR + AppNonce(3) + NetID(3) + DevAddr(4) + DLSettings + RxDelay + MIC
JOIN_ACCEPT_CFLIST_LEN = 16

DIR_UPLINK = 0
DIR_DOWNLINK = 1

# FCtrl bits (uplink and downlink share ADR, ACK; uplink has ADRACKReq, downlink FPending)
FCTRL_ADR = 0x80
FCTRL_ADR_ACK_REQ = 0x40
FCTRL_ACK = 0x20
FCTRL_FPENDING = 0x10  # downlink only; ClassB on uplink
FCTRL_FOPTS_LEN_MASK = 0x0F

FPORT_MAC_COMMANDS = 0  # FRMPayload holds MAC commands, encrypted with NwkSKey
FPORT_APP_MIN = 1
FPORT_APP_MAX = 223

# Key derivation prefixes (LoRaWAN 1.0.x §6.2.5)
KEY_PREFIX_NWKSKEY = 0x01
KEY_PREFIX_APPSKEY = 0x02
# Encryption block prefixes (§4.3.3, §4.4)
BLOCK_A_PREFIX = 0x01
BLOCK_B0_PREFIX = 0x49

FCNT_MAX_GAP = 16384  # MAX_FCNT_GAP of LoRaWAN 1.0.2; larger jumps are rejected
FCNT_16_MODULO = 1 << 16
FCNT_32_MODULO = 1 << 32

# --- Receive windows (regional parameters) -------------------------------------------------

RECEIVE_DELAY1_S = 1.0
RECEIVE_DELAY2_S = 2.0
JOIN_ACCEPT_DELAY1_S = 5.0
JOIN_ACCEPT_DELAY2_S = 6.0
TMST_MODULO = 1 << 32  # the concentrator's microsecond counter wraps every ~71.6 minutes
MICROSECONDS = 1_000_000

# --- Uplink de-duplication -----------------------------------------------------------------

#: forwarders of one uplink report within a few hundred ms; the window must end well before RX1
DEDUP_WINDOW_S = 0.2
