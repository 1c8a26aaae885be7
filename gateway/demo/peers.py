"""The demo's simulated peers (Modbus server, packet forwarder, serial sensor, API keys) in a
process of their own, as real devices would be: ``python -m gateway.demo.peers DEMO_DIR``.

Renders the demo site from every driver family's part and prints its path and the template
values as one JSON line once the peers run, then runs them until
standard input closes or SIGTERM arrives. Ctrl-C is left to the gateway, which stops first.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from pathlib import Path

from ..cli.demo import demo_peers, render_site


async def serve(demo_dir: Path) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    async with demo_peers(demo_dir) as values:
        # The site is rendered here, where every driver family is imported for its peer
        # anyway: the gateway process then imports only the families the site uses.
        values["site"] = str(render_site(demo_dir, values))
        print(json.dumps(values), flush=True)
        # EOF on stdin means the gateway is gone, however it went (even kill -9).
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        stdin_closed = asyncio.ensure_future(reader.read())
        stopped = asyncio.ensure_future(stop.wait())
        await asyncio.wait({stdin_closed, stopped}, return_when=asyncio.FIRST_COMPLETED)
        stdin_closed.cancel()
        stopped.cancel()


def main() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    asyncio.run(serve(Path(sys.argv[1])))


if __name__ == "__main__":
    main()
