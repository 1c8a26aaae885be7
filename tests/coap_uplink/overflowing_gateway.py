"""A gateway process for the drop tests: puts batch 1 in flight to an upstream that is down,
overflows the hard quota, prints how many readings were dropped, then waits to be killed.

    python -m tests.coap_uplink.overflowing_gateway CONFIG
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from gateway.config import load_config
from gateway.service import Service
from tests.conftest import running

from .test_gateway_drops import overflow_while_down


async def main(config: Path) -> None:
    service = Service(load_config(config))
    async with running(service):
        dropped = await overflow_while_down(service)
        print(f"dropped {dropped}", flush=True)
        await asyncio.Event().wait()  # until SIGKILL: no clean stop, no final flush


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1])))
