"""A modbus-tk TCP slave in its own process for the wire-latency bench.

Unit 1 is a sensor whose input register 0 counts up every ``--step`` seconds; unit 2 is a lamp
controller. Every write request to unit 2's holding register 0 is reported on stdout as
``<value> <CLOCK_MONOTONIC seconds>`` the moment the slave receives it, so the bench can
compare it with the moment the gateway received the sensor reading (same clock, same host).
"""

from __future__ import annotations

import argparse
import struct
import sys
import threading
import time

from modbus_tk import defines, hooks, modbus_tcp


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--step", type=float, default=0.1)
    parser.add_argument("--count", type=int, default=400)
    args = parser.parse_args()
    lock = threading.Lock()

    def on_write(call_args: tuple) -> None:
        slave, request_pdu = call_args
        arrived = time.monotonic()
        function, address = struct.unpack(">BH", request_pdu[:3])
        if function == defines.WRITE_SINGLE_REGISTER:
            value = struct.unpack(">H", request_pdu[3:5])[0]
        else:
            value = struct.unpack(">H", request_pdu[6:8])[0]
        if address == 0:
            with lock:
                sys.stdout.write(f"{value} {arrived:.9f}\n")
                sys.stdout.flush()

    hooks.install_hook("modbus.Slave.handle_write_single_register_request", on_write)
    hooks.install_hook("modbus.Slave.handle_write_multiple_registers_request", on_write)
    server = modbus_tcp.TcpServer(port=args.port, address="127.0.0.1", timeout_in_sec=0.2)
    sensor, lamp = server.add_slave(1), server.add_slave(2)
    sensor.add_block("ir", defines.ANALOG_INPUTS, 0, 10)
    for table, kind in (
        ("coil", defines.COILS),
        ("di", defines.DISCRETE_INPUTS),
        ("hr", defines.HOLDING_REGISTERS),
        ("ir", defines.ANALOG_INPUTS),
    ):
        lamp.add_block(table, kind, 0, 32)
    server.start()
    print("ready", flush=True)
    try:
        for i in range(1, args.count + 1):
            time.sleep(args.step)
            sensor.set_values("ir", 0, [i])
        time.sleep(1.0)
    finally:
        server.stop()


if __name__ == "__main__":
    main()
