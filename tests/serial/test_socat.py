"""The serial driver end to end over socat pty pairs: real frames, damaged lines, unplugging, signs."""

from __future__ import annotations

import asyncio
import os

import pytest

from drivers.serial import sds011
from drivers.serial import sds011_constants as SC
from gateway.driver import WriteError
from gateway.problems import ConfigError
from gateway.service import Service
from tests.conftest import running, wait_until

from .frames import JUNK, corrupt, gga, pms_frame, rmc, sds_frame
from .ptys import Peer, PtyPair, needs_socat

pytestmark = needs_socat


def detail(service: Service, device: str) -> dict:
    """The driver's health figures; empty until the device has opened."""
    return service.devices.runners[device].health_report().get("detail", {})


async def stored(service: Service, point: str) -> list:
    await service.store.flush()
    return [r.value for r in await service.store.history(point)]


def device_block(name: str, port, protocol: str, extra: str = "", interval: str = "") -> str:
    interval_line = f'interval = "{interval}"' if interval else ""
    return f"""
        [[devices]]
        name = "{name}"
        driver = "serial"
        {interval_line}
        [devices.options]
        port = "{port}"
        protocol = "{protocol}"
        reconnect_min = "100ms"
        reconnect_max = "500ms"
        {extra}
    """


def test_pms5003_stream_decodes_every_good_frame_and_counts_every_bad_one(site, tmp_path):
    pair = PtyPair(tmp_path)
    config = site(device_block("air", pair.dev, "pms5003"))
    stream = bytearray()
    good, bad = [], 0
    for i in range(1, 31):
        stream += pms_frame(i)
        good.append(i)
        if i % 5 == 0:
            stream += JUNK
        if i % 7 == 0:
            stream += corrupt(pms_frame(900 + i))
            bad += 1
        if i % 9 == 0:
            stream += pms_frame(800 + i)[: 5 + i % 20]  # cut short: the adapter dropped bytes
            bad += 1

    async def scenario():
        with pair:
            service = Service(config)
            async with running(service):
                await wait_until(lambda: detail(service, "air").get("connected"))
                peer = Peer(pair.peer)
                try:
                    # Sets active mode when the port opens, exactly as the data manual frames it.
                    await peer.wait_received(lambda got: bytes.fromhex("424de100010171") in got)
                    await peer.write_slowly(bytes(stream), chunk=13)
                    await wait_until(lambda: detail(service, "air").get("frames", 0) >= len(good))
                    await wait_until(lambda: detail(service, "air").get("bad_frames_total", 0) >= bad)
                    health = detail(service, "air")
                    assert health["frames"] == len(good)
                    assert health["bad_frames_total"] == bad
                    assert set(health["bad_frames"]) <= {"checksum", "length"}
                    assert health["junk_bytes"] > 0
                    assert health["device_path"] == os.path.realpath(pair.dev)
                    assert await stored(service, "air/pm2_5") == good
                    assert (await stored(service, "air/particles_0_3um"))[:2] == [1001, 1002]
                finally:
                    peer.close()

    asyncio.run(scenario())


def test_unplugged_adapter_reconnects_and_readings_resume(site, tmp_path):
    pair = PtyPair(tmp_path, "usb-Prolific_0001-if00-port0")
    config = site(device_block("air", pair.dev, "pms5003"))

    async def send(frames: range) -> None:
        peer = Peer(pair.peer)
        try:
            await peer.write_slowly(b"".join(pms_frame(i) for i in frames), chunk=32)
        finally:
            peer.close()

    async def scenario():
        service = Service(config)
        pair.start()
        try:
            async with running(service):
                await wait_until(lambda: detail(service, "air").get("connected"))
                await send(range(1, 4))
                await wait_until(lambda: detail(service, "air").get("frames", 0) == 3)
                first_path = detail(service, "air").get("device_path", 0)

                pair.stop()  # unplug: the link disappears
                assert not pair.dev.exists()
                await wait_until(lambda: not detail(service, "air").get("connected", 0))
                await wait_until(lambda: detail(service, "air").get("open_failures", 0) >= 1)

                pair.start()  # plug back in: same stable name, most likely another pts
                await wait_until(lambda: detail(service, "air").get("connected", 0))
                await send(range(4, 7))
                await wait_until(lambda: detail(service, "air").get("frames", 0) == 6)
                health = detail(service, "air")
                assert health["losses"] == 1 and health["opens"] == 2
                assert health["device_path"] == os.path.realpath(pair.dev)
                assert first_path is not None
                # The daemon never restarted the device: the driver itself followed the adapter.
                assert service.devices.runners["air"].health.restarts == 0
                assert await stored(service, "air/pm2_5") == [1, 2, 3, 4, 5, 6]
        finally:
            pair.stop()

    asyncio.run(scenario())


class Sds011Emulator:
    """Answers host commands the way an SDS011 does (control protocol V1.3)."""

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.commands: list[bytes] = []
        self.queries = 0
        self.working = True

    def __call__(self, peer: Peer, data: bytes) -> None:
        self.buffer += data
        while len(self.buffer) >= SC.COMMAND_FRAME_SIZE:
            start = self.buffer.find(bytes((SC.HEAD, SC.CMD_HOST)))
            if start < 0:
                self.buffer.clear()
                return
            frame = bytes(self.buffer[start : start + SC.COMMAND_FRAME_SIZE])
            if len(frame) < SC.COMMAND_FRAME_SIZE:
                return
            del self.buffer[: start + SC.COMMAND_FRAME_SIZE]
            assert frame[-1] == SC.TAIL and sum(frame[2:17]) & 0xFF == frame[17], frame.hex()
            self.commands.append(frame)
            sub = frame[2]
            if sub == SC.SUB_QUERY_DATA:
                self.queries += 1
                # Junk and a corrupted frame first: the driver must wait for the good one.
                peer.write(b"\x00\x13" + corrupt(sds_frame(0), 3) + sds_frame(self.queries))
            elif sub in (SC.SUB_REPORTING_MODE, SC.SUB_SLEEP_WORK):
                if sub == SC.SUB_SLEEP_WORK:
                    self.working = bool(frame[4])
                peer.write(sds011.encode_sensor_frame(SC.REPLY_COMMAND, frame[2:6]))


def test_sds011_query_mode_polls_and_sleep_command_is_confirmed(site, tmp_path):
    pair = PtyPair(tmp_path)
    config = site(
        device_block("dust", pair.dev, "sds011", 'mode = "poll"\nresponse_timeout = "3s"', interval="100ms")
    )

    async def scenario():
        with pair:
            emulator = Sds011Emulator()
            peer = Peer(pair.peer)
            peer.on_data(emulator)
            service = Service(config)
            try:
                async with running(service):
                    await wait_until(lambda: detail(service, "dust").get("frames", 0) >= 3)
                    assert emulator.commands[0] == sds011.set_reporting_mode(query=True)
                    await service.devices.write("dust/running", False)
                    assert emulator.working is False
                    await wait_until(lambda: service.hub.latest["dust/running"].value is False)
                    with pytest.raises(WriteError, match="true or false"):
                        await service.devices.write("dust/running", 3)
                    health = detail(service, "dust")
                    values = await stored(service, "dust/pm2_5")
                    assert values[:3] == [1.1, 1.2, 1.3]
                    assert health["bad_frames"].get("checksum", 0) >= 3
            finally:
                peer.close()

    asyncio.run(scenario())


SIGN_AND_COUNTER = r"""
pattern = '^CNT (?P<in>\d+) (?P<out>\d+)$'
ignore = ['^OK$', '^ERR']
[[devices.options.points]]
name = "in"
type = "int"
[[devices.options.points]]
name = "out"
type = "int"
[[devices.options.commands]]
point = "sign"
template = "{value}\r\n"
accept = 'FULL|FREE \d{1,4}'
expect = '^OK$'
error = '^ERR'
timeout = "1s"
"""


def test_line_counter_streams_and_a_sign_takes_templated_commands(site, tmp_path):
    pair = PtyPair(tmp_path)
    config = site(device_block("carpark", pair.dev, "line", SIGN_AND_COUNTER))

    def sign(peer: Peer, data: bytes) -> None:
        for line in data.decode().split("\r\n"):
            if line in ("FULL", "FREE 23"):
                peer.write(b"OK\r\n")
            elif line == "FREE 999":
                peer.write(b"ERR display fault\r\n")

    async def scenario():
        with pair:
            peer = Peer(pair.peer)
            peer.on_data(sign)
            service = Service(config)
            try:
                async with running(service):
                    await wait_until(lambda: detail(service, "carpark").get("connected", 0))
                    await peer.write_slowly(b"CNT 5 1\r\nhello?\r\nCNT 6 1\r\n", chunk=4)
                    await service.devices.write("carpark/sign", "FREE 23")
                    await service.devices.write("carpark/sign", "FULL")
                    with pytest.raises(WriteError, match="not accepted"):
                        await service.devices.write("carpark/sign", "HELLO")
                    with pytest.raises(WriteError, match="refused"):
                        await service.devices.write("carpark/sign", "FREE 999")
                    with pytest.raises(WriteError, match="no reply"):
                        await service.devices.write("carpark/sign", "FREE 1")
                    await wait_until(lambda: detail(service, "carpark").get("frames", 0) == 2)
                    assert bytes(peer.received) == b"FREE 23\r\nFULL\r\nFREE 999\r\nFREE 1\r\n"
                    assert await stored(service, "carpark/in") == [5, 6]
                    assert await stored(service, "carpark/sign") == ["FREE 23", "FULL"]
                    assert detail(service, "carpark").get("bad_frames", 0) == {"no_match": 1}
            finally:
                peer.close()

    asyncio.run(scenario())


def test_polled_line_device_reads_replies_and_counts_timeouts(site, tmp_path):
    pair = PtyPair(tmp_path)
    extra = r"""
poll_command = "T?\r\n"
response_timeout = "300ms"
pattern = '^T=(?P<t>-?\d+)$'
[[devices.options.points]]
name = "temperature"
group = "t"
scale = 0.1
unit = "Cel"
"""
    config = site(device_block("probe", pair.dev, "line", extra, interval="100ms"))
    answered = []

    def probe(peer: Peer, data: bytes) -> None:
        for _ in range(data.count(b"T?\r\n")):
            if len(answered) < 3:
                answered.append(True)
                peer.write(b"T=%d\r\n" % (200 + len(answered)))

    async def scenario():
        with pair:
            peer = Peer(pair.peer)
            peer.on_data(probe)
            service = Service(config)
            try:
                async with running(service):
                    await wait_until(lambda: detail(service, "probe").get("frames", 0) == 3)
                    await wait_until(lambda: detail(service, "probe").get("timeouts", 0) >= 1)
                    assert service.devices.runners["probe"].health.poll_errors >= 1
                    assert await stored(service, "probe/temperature") == pytest.approx([20.1, 20.2, 20.3])
            finally:
                peer.close()

    asyncio.run(scenario())


def test_gps_receiver_stream(site, tmp_path):
    pair = PtyPair(tmp_path)
    config = site(device_block("bus-gps", pair.dev, "nmea", "baudrate = 4800"))

    async def scenario():
        with pair:
            service = Service(config)
            async with running(service):
                await wait_until(lambda: detail(service, "bus-gps").get("connected", 0))
                peer = Peer(pair.peer)
                try:
                    broken = bytearray(rmc())
                    broken[12] ^= 0x02
                    await peer.write_slowly(
                        gga() + bytes(broken) + gga(quality=2)[:30] + rmc() + b"$GPGSV,3,1,11*00\r\n", chunk=7
                    )
                    await wait_until(lambda: detail(service, "bus-gps").get("frames", 0) == 2)
                    await wait_until(lambda: detail(service, "bus-gps").get("bad_frames_total", 0) == 3)
                    assert detail(service, "bus-gps").get("bad_frames", 0) == {"checksum": 2, "truncated": 1}
                    assert await stored(service, "bus-gps/latitude") == [48.1173, 48.1173]
                    assert await stored(service, "bus-gps/fix_valid") == [True]
                finally:
                    peer.close()

    asyncio.run(scenario())


def test_a_sign_shares_the_counters_port_and_a_second_streaming_sensor_is_refused_at_check_time(
    site, tmp_path
):
    pair = PtyPair(tmp_path)
    counter = device_block(
        "counter",
        pair.dev,
        "line",
        r"""
pattern = '^CNT (?P<n>\d+)$'
[[devices.options.points]]
name = "n"
type = "int"
""",
    )
    sign = device_block(
        "sign",
        pair.dev,
        "line",
        r"""
[[devices.options.commands]]
point = "text"
template = "{value}\r\n"
expect = '^OK$'
""",
    )
    intruder = device_block("intruder", pair.dev, "pms5003")
    # A second sensor that sends by itself would interleave its frames with the counter's:
    # `gateway check` refuses it, naming both (it used to be refused and retried at run time).
    with pytest.raises(
        ConfigError, match="device 'intruder' and device 'counter' both stream from serial port"
    ):
        site(counter + sign + intruder)
    config = site(counter + sign)

    def answer(peer: Peer, data: bytes) -> None:
        if data.endswith(b"\r\n"):
            peer.write(b"OK\r\n")

    async def scenario():
        with pair:
            peer = Peer(pair.peer)
            peer.on_data(answer)
            service = Service(config)
            try:
                async with running(service):
                    await wait_until(lambda: detail(service, "counter").get("connected", 0))
                    peer.write(b"CNT 1\r\n")
                    await wait_until(lambda: detail(service, "counter").get("frames", 0) == 1)
                    await service.devices.write("sign/text", "FULL")
                    peer.write(b"CNT 2\r\n")
                    await wait_until(lambda: detail(service, "counter").get("frames", 0) == 2)
                    # The sign's "OK" went to the sign, not to the counter as an unmatched line.
                    assert detail(service, "counter").get("bad_frames") == {}
            finally:
                peer.close()

    asyncio.run(scenario())


def test_pms7003_passive_mode_is_polled_with_the_read_command(site, tmp_path):
    pair = PtyPair(tmp_path)
    config = site(device_block("air", pair.dev, "pms7003", 'mode = "poll"', interval="100ms"))
    read_command = bytes.fromhex("424de200000171")
    reads = []

    def sensor(peer: Peer, data: bytes) -> None:
        for _ in range(data.count(read_command)):
            reads.append(True)
            peer.write(pms_frame(len(reads)))

    async def scenario():
        with pair:
            peer = Peer(pair.peer)
            peer.on_data(sensor)
            service = Service(config)
            try:
                async with running(service):
                    await wait_until(lambda: detail(service, "air").get("frames", 0) >= 3)
                    # Passive mode was requested first, as the data manual frames it.
                    assert bytes(peer.received).startswith(bytes.fromhex("424de100000170"))
                    assert (await stored(service, "air/pm2_5"))[:3] == [1, 2, 3]
                    await service.devices.write("air/running", False)
                    await peer.wait_received(lambda got: got.endswith(bytes.fromhex("424de400000173")))
            finally:
                peer.close()

    asyncio.run(scenario())


def test_a_silent_port_is_reopened_when_asked(site, tmp_path):
    pair = PtyPair(tmp_path)
    config = site(device_block("air", pair.dev, "pms5003", 'reopen_after_silence = "300ms"'))

    async def scenario():
        with pair:
            service = Service(config)
            async with running(service):
                await wait_until(lambda: detail(service, "air").get("connected", 0))
                await wait_until(lambda: detail(service, "air").get("silence_reopens", 0) >= 1)
                await wait_until(lambda: detail(service, "air").get("opens", 0) >= 2)
                peer = Peer(pair.peer)
                try:
                    async with asyncio.timeout(10):
                        # Repeat: a frame that lands during a reopen is legitimately lost.
                        while detail(service, "air").get("frames", 0) == 0:
                            peer.write(pms_frame(42))
                            await asyncio.sleep(0.05)
                    assert service.devices.runners["air"].health.restarts == 0
                finally:
                    peer.close()

    asyncio.run(scenario())
