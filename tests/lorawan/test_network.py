"""End to end over loopback UDP: a simulated packet forwarder sends real encrypted frames to
the gateway's network server; readings land in the store, downlinks come back in PULL_RESPs."""

import asyncio
import json

from drivers.lorawan.codecs.cayenne import encode_uplink
from drivers.lorawan.constants import GwmpType
from drivers.lorawan.gwmp import Ack
from drivers.lorawan.mac import DataFrame, parse_phy
from drivers.lorawan.simulator import forwarder
from gateway.service import Service
from tests.conftest import wait_until
from tests.lorawan.sim_site import CREDENTIALS, devices_toml, driver, fresh_bay, fresh_meter, network

GW_A = "AA555A0000000001"
GW_B = "AA555A0000000002"


def make_site(site, tmp_path, **kwargs):
    (tmp_path / "keys.toml").write_text(CREDENTIALS)
    return site(devices_toml(**kwargs))


async def latest(service: Service) -> dict:
    """The latest value of every point as committed to the SQLite buffer."""
    await service.store.flush()
    return {r.point: r.value for r in await service.store.latest()}


def test_abp_uplinks_duplicates_replays_and_bad_input(site, tmp_path):
    config = make_site(site, tmp_path)

    async def scenario():
        async with (
            network(config) as (service, server),
            forwarder(GW_A, ("127.0.0.1", server.port)) as a,
            forwarder(GW_B, ("127.0.0.1", server.port)) as b,
        ):
            bay = fresh_bay()
            bay_driver = driver(service, "bay")
            first = bay.uplink(1, encode_uplink({"presence_1": 1, "temperature_2": 21.5}))
            a.push(a.rxpk(first, rssi=-112, snr=-6.0))
            b.push(b.rxpk(first, rssi=-61, snr=8.5))
            assert isinstance(await asyncio.wait_for(a.acks.get(), 5), Ack)
            await wait_until(lambda: bay_driver.counters["uplinks"] == 1)
            await wait_until(lambda: service.hub.latest.get("bay/temperature_2") is not None)
            values = await latest(service)
            assert values["bay/presence_1"] == 1 and values["bay/temperature_2"] == 21.5
            assert values["bay/rssi"] == -61 and values["bay/snr"] == 8.5 and values["bay/gateways"] == 2
            assert values["bay/frequency"] == 868.1 and values["bay/data_rate"] == "SF7BW125"
            assert server.counters["duplicates"] == 1

            # The counter is durable before the reading is published.
            state = await service.store.get_state("driver:bay", "session")
            assert state["fcnt_up"] == 0

            # Replays of the same frame, an older frame, a forged MIC: refused and counted.
            a.push(a.rxpk(first))
            forged = bytearray(bay.uplink(1, encode_uplink({"presence_1": 0})))
            forged[-1] ^= 0xFF
            a.push(a.rxpk(bytes(forged)))
            await wait_until(
                lambda: bay_driver.counters["replay"] == 1 and bay_driver.counters["bad_mic"] == 1
            )

            # Malformed datagrams, a wrong protocol version, bad base64, a truncated PHYPayload,
            # an unknown DevAddr: each counted, none stops the server.
            a.send_raw(b"\x02")
            a.send_raw(b"\x07\x00\x01\x00" + bytes.fromhex(GW_A) + b"{}")
            a.send_raw(
                b"\x02\x00\x09\x00" + bytes.fromhex(GW_A) + b'{"rxpk":[{"tmst":1,"freq":868.1,'
                b'"datr":"SF7BW125","data":"%%%"}]}'
            )
            a.send_raw(b"\x02\x00\x0a\x00" + bytes.fromhex(GW_A) + b"not json")
            a.push(a.rxpk(b"\x40\x01\x02\x03"))
            stranger = fresh_bay()
            stranger.dev_addr = 0x01020304
            a.push(a.rxpk(stranger.uplink(1, b"\x01\x66\x01")))
            await wait_until(
                lambda: server.counters["unknown_dev_addr"] == 1 and server.counters["phy_truncated"] == 1
            )
            assert server.counters["gwmp_malformed"] == 1 and server.counters["gwmp_bad_version"] == 1
            assert server.counters["rxpk_bad_base64"] == 1 and server.counters["gwmp_bad_json"] == 1

            # Still serving: the next genuine frame (fcnt 2; 1 was the forged one) is accepted.
            a.push(a.rxpk(bay.uplink(1, encode_uplink({"presence_1": 0}))))
            await wait_until(lambda: bay_driver.counters["uplinks"] == 2)
            await wait_until(lambda: service.hub.latest["bay/presence_1"].value == 0)
            assert service.hub.latest["bay/fcnt"].value == 2

            # A gateway status report becomes gateway health readings.
            a.push(stat={"rxnb": 12, "rxok": 10, "rxfw": 10, "ackr": 100.0, "dwnb": 1, "txnb": 1})
            await wait_until(lambda: f"lorawan-gw-{GW_A}/rx_ok" in service.hub.latest)
            assert service.hub.latest[f"lorawan-gw-{GW_A}/rx_received"].value == 12

    asyncio.run(scenario())


def test_counter_rollover_and_persistence_across_restart(site, tmp_path):
    config = make_site(site, tmp_path)
    bay = fresh_bay()
    bay.fcnt_up = 65534
    frames = [bay.uplink(1, encode_uplink({"presence_1": n % 2})) for n in range(4)]  # 65534 .. 65537

    async def first_run():
        async with network(config) as (service, server), forwarder(GW_A, ("127.0.0.1", server.port)) as a:
            for frame in frames:
                a.push(a.rxpk(frame))
                await asyncio.wait_for(a.acks.get(), 5)
            bay_driver = driver(service, "bay")
            await wait_until(lambda: bay_driver.counters["uplinks"] == 4)
            await wait_until(lambda: service.hub.latest["bay/fcnt"].value == 65537)

    async def second_run():
        # After a restart the counter comes back from the buffer: old frames stay refused.
        async with network(config) as (service, server), forwarder(GW_A, ("127.0.0.1", server.port)) as a:
            bay_driver = driver(service, "bay")
            assert bay_driver.session.fcnt_up == 65537
            a.push(a.rxpk(frames[3]))
            a.push(a.rxpk(frames[0]))
            await wait_until(lambda: bay_driver.counters["replay"] == 1 and bay_driver.counters["stale"] == 1)
            a.push(a.rxpk(bay.uplink(1, encode_uplink({"presence_1": 1}))))
            await wait_until(lambda: bay_driver.counters["uplinks"] == 1)
            assert (await service.store.get_state("driver:bay", "session"))["fcnt_up"] == 65538

    asyncio.run(first_run())
    asyncio.run(second_run())


def test_relaxed_counter_accepts_a_device_reset_and_says_so(site, tmp_path, caplog):
    config = make_site(site, tmp_path, relaxed=True)
    bay = fresh_bay()
    bay.fcnt_up = 500

    async def scenario():
        async with network(config) as (service, server), forwarder(GW_A, ("127.0.0.1", server.port)) as a:
            bay_driver = driver(service, "bay")
            a.push(a.rxpk(bay.uplink(1, encode_uplink({"presence_1": 1}))))
            await wait_until(lambda: bay_driver.counters["uplinks"] == 1)
            bay.fcnt_up = 0  # battery swap
            frame = bay.uplink(1, encode_uplink({"presence_1": 0}))
            a.push(a.rxpk(frame))
            await wait_until(lambda: bay_driver.counters["uplinks"] == 2)
            assert bay_driver.counters["counter_resets"] == 1
            a.push(a.rxpk(frame))  # an exact repeat is still a replay
            await wait_until(lambda: bay_driver.counters["replay"] == 1)

    asyncio.run(scenario())
    assert any("frame_counter_reset_accepted" in r.getMessage() for r in caplog.records)


def test_otaa_join_confirmed_ack_and_queued_downlink(site, tmp_path):
    config = make_site(site, tmp_path)

    async def scenario():
        async with network(config) as (service, server), forwarder(GW_A, ("127.0.0.1", server.port)) as a:
            meter = fresh_meter()
            meter_driver = driver(service, "meter")
            a.pull()
            assert (await asyncio.wait_for(a.acks.get(), 5)).kind is GwmpType.PULL_ACK

            join = meter.join_request()
            rx = a.rxpk(join, tmst=4_294_000_000, freq=868.3, datr="SF9BW125")  # tmst wraps in the window
            a.push(rx)
            resp = await asyncio.wait_for(a.downlinks.get(), 10)
            assert resp.txpk.tmst == (4_294_000_000 + 5_000_000) % (1 << 32)
            assert (resp.txpk.freq, resp.txpk.datr, resp.txpk.ipol) == (868.3, "SF9BW125", True)
            meter.accept(resp.txpk.payload)
            assert f"{meter.dev_addr:08X}" == meter_driver.health()["dev_addr"]
            await wait_until(lambda: "meter/dev_addr" in service.hub.latest)
            assert server.last_downlink_margin is not None and server.last_downlink_margin > 0

            # The same DevNonce again is a replay: no second accept.
            meter.dev_nonce -= 1
            a.push(a.rxpk(meter.join_request()))
            await wait_until(lambda: meter_driver.counters["join_devnonce_replay"] == 1)

            # A confirmed uplink decoded by the JavaScript codec, acknowledged in RX1.
            up = a.rxpk(meter.uplink(1, bytes.fromhex("0001E24001F4005A"), confirmed=True), freq=868.5)
            a.push(up)
            ack = await asyncio.wait_for(a.downlinks.get(), 10)
            assert ack.txpk.tmst == (up.tmst + 1_000_000) % (1 << 32) and ack.txpk.freq == 868.5
            frame, payload = meter.open_downlink(ack.txpk.payload)
            assert frame.ack and frame.fport is None and payload == b""
            await wait_until(lambda: "meter/volume" in service.hub.latest)
            values = await latest(service)
            assert values["meter/volume"] == 123.456 and values["meter/leak"] is False

            # A write to a writable point waits for the next uplink, then leaves in its RX1.
            await service.actuation.write("meter/report_interval", 15, source="api")
            assert meter_driver.health()["queued_downlinks"] == 1
            assert a.downlinks.empty()
            up = a.rxpk(meter.uplink(1, bytes.fromhex("0001E24101F4005A")))
            a.push(up)
            down = await asyncio.wait_for(a.downlinks.get(), 10)
            assert down.txpk.tmst == (up.tmst + 1_000_000) % (1 << 32)
            frame, payload = meter.open_downlink(down.txpk.payload)
            assert isinstance(frame, DataFrame) and not frame.ack
            assert (frame.fport, payload) == (10, b"\x00\x0f")
            assert frame.fcnt16 == 1  # downlink counter advanced past the ACK's
            await wait_until(lambda: meter_driver.health()["queued_downlinks"] == 0)
            await wait_until(lambda: "meter/report_interval" in service.hub.latest)
            assert service.hub.latest["meter/report_interval"].value == 15

            # A confirmed uplink repeated because its ACK was lost: ACKed again, not published twice.
            confirmed = meter.uplink(1, bytes.fromhex("0001E24201F4005A"), confirmed=True)
            a.push(a.rxpk(confirmed))
            first_ack = await asyncio.wait_for(a.downlinks.get(), 10)
            uplinks = meter_driver.counters["uplinks"]
            a.push(a.rxpk(confirmed))
            second_ack = await asyncio.wait_for(a.downlinks.get(), 10)
            assert meter.open_downlink(second_ack.txpk.payload)[0].ack
            assert parse_phy(second_ack.txpk.payload).fcnt16 == parse_phy(first_ack.txpk.payload).fcnt16 + 1
            assert meter_driver.counters["uplinks"] == uplinks
            assert meter_driver.counters["confirmed_retransmissions"] == 1
            a.push(a.rxpk(confirmed))  # a third copy is a replay: no more airtime for it
            await wait_until(lambda: meter_driver.counters["replay"] == 1)
            assert a.downlinks.empty()

    asyncio.run(scenario())


def test_join_accept_falls_back_to_rx2_when_rx1_is_refused(site, tmp_path):
    config = make_site(site, tmp_path)

    async def scenario():
        async with network(config) as (service, server), forwarder(GW_A, ("127.0.0.1", server.port)) as a:
            a.tx_ack_error = "TOO_LATE"
            a.pull()
            meter = fresh_meter()
            rx = a.rxpk(meter.join_request(), freq=868.1)
            a.push(rx)
            first = await asyncio.wait_for(a.downlinks.get(), 10)
            second = await asyncio.wait_for(a.downlinks.get(), 10)
            assert first.txpk.tmst == rx.tmst + 5_000_000
            assert second.txpk.tmst == rx.tmst + 6_000_000
            assert (second.txpk.freq, second.txpk.datr) == (869.525, "SF12BW125")
            assert server.counters["rx2_fallbacks"] == 1
            meter.accept(second.txpk.payload)

    asyncio.run(scenario())


def test_codecs_that_loop_or_throw_do_not_stop_the_device(site, tmp_path):
    (tmp_path / "loop.js").write_text(
        "function decodeUplink(i) { if (i.bytes[0] === 1) { while (true) {} }"
        " if (i.bytes[0] === 2) { throw new Error('bad'); } return { data: { v: i.bytes[0] } }; }"
    )
    config = make_site(site, tmp_path, bay_codec="loop.js")

    async def scenario():
        async with network(config) as (service, server), forwarder(GW_A, ("127.0.0.1", server.port)) as a:
            bay = fresh_bay()
            bay_driver = driver(service, "bay")
            for first_byte in (1, 2, 9):
                a.push(a.rxpk(bay.uplink(1, bytes([first_byte]))))
            await wait_until(lambda: bay_driver.counters["uplinks"] == 3, timeout=20)
            await wait_until(lambda: "bay/v" in service.hub.latest)
            assert bay_driver.counters["codec_timeout"] == 1 and bay_driver.counters["codec_threw"] == 1
            assert service.hub.latest["bay/v"].value == 9
            assert service.hub.latest["bay/fcnt"].value == 2

    asyncio.run(scenario())


def test_keys_never_reach_the_logs(site, tmp_path, caplog):
    config = make_site(site, tmp_path)
    caplog.set_level("DEBUG")

    async def scenario():
        async with network(config) as (service, server), forwarder(GW_A, ("127.0.0.1", server.port)) as a:
            bay = fresh_bay()
            a.push(a.rxpk(bay.uplink(1, b"\x01\x66\x01")))
            await wait_until(lambda: driver(service, "bay").counters["uplinks"] == 1)
            health = json.dumps(service.health(), default=str)
        return health

    health = asyncio.run(scenario())
    text = "\n".join(r.getMessage() for r in caplog.records) + health + repr(config.devices)
    for secret in (
        fresh_bay().nwk_skey.hex(),
        fresh_bay().app_skey.hex(),
        "11223344556677889900aabbccddeeff",
    ):
        assert secret not in text.lower()


def test_us915_join_accept_uses_the_downlink_channel_plan(site, tmp_path):
    config = make_site(site, tmp_path, meter_region="US915")

    async def scenario():
        async with network(config) as (service, server), forwarder(GW_A, ("127.0.0.1", server.port)) as a:
            a.pull()
            meter = fresh_meter()
            rx = a.rxpk(meter.join_request(), freq=902.7, datr="SF10BW125")  # uplink channel 2, DR0
            a.push(rx)
            resp = await asyncio.wait_for(a.downlinks.get(), 10)
            assert resp.txpk.tmst == rx.tmst + 5_000_000
            assert (resp.txpk.freq, resp.txpk.datr, resp.txpk.powe) == (924.5, "SF10BW500", 20)
            meter.accept(resp.txpk.payload)

    asyncio.run(scenario())


def test_downlink_leaves_through_a_reachable_concentrator_with_its_own_tmst(site, tmp_path):
    config = make_site(site, tmp_path)

    async def scenario():
        async with (
            network(config) as (service, server),
            forwarder(GW_A, ("127.0.0.1", server.port)) as a,
            forwarder(GW_B, ("127.0.0.1", server.port)) as b,
        ):
            a.pull()  # only A keeps a downlink path open; B hears the device better
            await asyncio.wait_for(a.acks.get(), 5)
            bay = fresh_bay()
            frame = bay.uplink(1, encode_uplink({"presence_1": 1}), confirmed=True)
            rx_a = a.rxpk(frame, tmst=1_000, rssi=-110, snr=-3)
            rx_b = b.rxpk(frame, tmst=9_000_000, rssi=-60, snr=9)
            a.push(rx_a)
            b.push(rx_b)
            ack = await asyncio.wait_for(a.downlinks.get(), 10)
            assert ack.txpk.tmst == 1_000 + 1_000_000
            assert bay.open_downlink(ack.txpk.payload)[0].ack
            assert b.downlinks.empty()
            await wait_until(lambda: "bay/rssi" in service.hub.latest)
            assert service.hub.latest["bay/rssi"].value == -60

    asyncio.run(scenario())
