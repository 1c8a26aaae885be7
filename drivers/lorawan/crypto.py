"""LoRaWAN 1.0.x cryptography: AES-CMAC MICs, FRMPayload encryption, join-accept
encryption and session-key derivation, all over the ``cryptography`` package.
"""

from __future__ import annotations

from cryptography.hazmat.primitives import cmac
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from .constants import BLOCK_A_PREFIX, BLOCK_B0_PREFIX, KEY_PREFIX_APPSKEY, KEY_PREFIX_NWKSKEY, MIC_LEN

BLOCK = 16


def aes_encrypt(key: bytes, data: bytes) -> bytes:
    encryptor = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
    return encryptor.update(data) + encryptor.finalize()


def aes_decrypt(key: bytes, data: bytes) -> bytes:
    decryptor = Cipher(algorithms.AES(key), modes.ECB()).decryptor()
    return decryptor.update(data) + decryptor.finalize()


def aes_cmac(key: bytes, data: bytes) -> bytes:
    mac = cmac.CMAC(algorithms.AES(key))
    mac.update(data)
    return mac.finalize()


def _block(prefix: int, direction: int, dev_addr: int, fcnt: int, last: int) -> bytes:
    return (
        bytes([prefix, 0, 0, 0, 0, direction])
        + dev_addr.to_bytes(4, "little")
        + (fcnt % (1 << 32)).to_bytes(4, "little")
        + bytes([0, last])
    )


def data_mic(nwk_skey: bytes, direction: int, dev_addr: int, fcnt: int, msg: bytes) -> bytes:
    """MIC of a data frame: CMAC over B0 | MHDR..FRMPayload, first four bytes (§4.4)."""
    return aes_cmac(nwk_skey, _block(BLOCK_B0_PREFIX, direction, dev_addr, fcnt, len(msg) & 0xFF) + msg)[
        :MIC_LEN
    ]


def frm_crypt(key: bytes, direction: int, dev_addr: int, fcnt: int, payload: bytes) -> bytes:
    """Encrypt or decrypt FRMPayload (the same XOR with an AES keystream, §4.3.3)."""
    if not payload:
        return b""
    blocks = (len(payload) + BLOCK - 1) // BLOCK
    stream = aes_encrypt(
        key, b"".join(_block(BLOCK_A_PREFIX, direction, dev_addr, fcnt, i + 1) for i in range(blocks))
    )
    return bytes(a ^ b for a, b in zip(payload, stream, strict=False))


def join_mic(app_key: bytes, msg: bytes) -> bytes:
    return aes_cmac(app_key, msg)[:MIC_LEN]


def encrypt_join_accept(app_key: bytes, body_and_mic: bytes) -> bytes:
    """The network encrypts a JoinAccept with AES *decrypt*, so the device only needs AES encrypt."""
    return aes_decrypt(app_key, body_and_mic)


def decrypt_join_accept(app_key: bytes, encrypted: bytes) -> bytes:
    return aes_encrypt(app_key, encrypted)


def derive_session_keys(app_key: bytes, app_nonce: int, net_id: int, dev_nonce: int) -> tuple[bytes, bytes]:
    """(NwkSKey, AppSKey) of LoRaWAN 1.0.x §6.2.5."""
    tail = app_nonce.to_bytes(3, "little") + net_id.to_bytes(3, "little") + dev_nonce.to_bytes(2, "little")
    pad = bytes(BLOCK - 1 - len(tail))
    nwk = aes_encrypt(app_key, bytes([KEY_PREFIX_NWKSKEY]) + tail + pad)
    app = aes_encrypt(app_key, bytes([KEY_PREFIX_APPSKEY]) + tail + pad)
    return nwk, app
