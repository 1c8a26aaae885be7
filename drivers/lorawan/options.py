"""The typed ``[devices.options]`` of a LoRaWAN device, validated once at config load,
and the points such a device offers (radio metadata, codec fields, downlink points).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from gateway.driver import PointSpec
from gateway.model import is_valid_name_part
from gateway.options import Table

from .channels import PLANS
from .codecs import CodecError, example_fields, load_codec
from .codecs.javascript import DEFAULT_MEMORY_BUDGET, DEFAULT_TIME_BUDGET_S
from .constants import DEDUP_WINDOW_S, DEFAULT_UDP_PORT
from .credentials import Credentials, CredentialsError, load_credentials, normalise_eui

DEFAULT_CREDENTIALS = "lorawan-credentials.toml"

#: radio metadata published with every uplink
METADATA_POINTS = (
    PointSpec("rssi", "dBm", description="RSSI of the best reception"),
    PointSpec("snr", "dB", description="SNR of the best reception"),
    PointSpec("frequency", "MHz", description="uplink frequency"),
    PointSpec("data_rate", None, "string", description="uplink modulation, e.g. SF7BW125"),
    PointSpec("fcnt", None, description="uplink frame counter"),
    PointSpec("gateways", None, description="concentrators that heard the uplink"),
    PointSpec("dev_addr", None, "string", description="session DevAddr, published on join"),
)


@dataclass(frozen=True, slots=True)
class LorawanOptions:
    dev_eui: str
    credentials_path: Path
    credentials: Credentials
    region: str
    port: int
    bind: str
    codec: str
    config_dir: Path
    codec_time_budget: float
    codec_memory_budget: int
    downlink_fport: int | None
    relaxed_fcnt: bool
    net_id: int
    rx1_dr_offset: int
    dedup_window: float
    points: tuple[PointSpec, ...]


def parse(options: Table, config_dir: Path) -> LorawanOptions | None:
    dev_eui_raw = options.str("dev_eui")
    dev_eui = normalise_eui(dev_eui_raw) if dev_eui_raw is not None else None
    if dev_eui_raw is not None and dev_eui is None:
        options.error("dev_eui", f"'{dev_eui_raw}' is not a DevEUI (16 hex digits)")
    credentials_name = options.str("credentials", DEFAULT_CREDENTIALS)
    region = options.str("region", "EU868", choices=tuple(PLANS))
    port = options.int("port", DEFAULT_UDP_PORT, min=0, max=65535)
    bind = options.str("bind", "0.0.0.0")
    codec = options.str("codec", "cayenne")
    time_budget = options.duration("codec_time_budget", DEFAULT_TIME_BUDGET_S, min=0.001)
    memory_budget = options.size("codec_memory_budget", DEFAULT_MEMORY_BUDGET)
    downlink_fport = options.int("downlink_fport", None, min=1, max=223)
    relaxed = options.bool("relaxed_frame_counter", False)
    net_id_text = options.str("net_id", "000000")
    rx1_dr_offset = options.int("rx1_dr_offset", 0, min=0, max=5)
    dedup_window = options.duration("dedup_window", DEDUP_WINDOW_S, min=0.0)
    net_id = 0
    try:
        net_id = int(net_id_text, 16)
        if not 0 <= net_id < 1 << 24:
            raise ValueError
    except ValueError:
        options.error("net_id", f"'{net_id_text}' is not a NetID (6 hex digits)")
    points = []
    for table in options.tables("points"):
        name = table.str("name")
        if name is not None and not is_valid_name_part(name):
            table.error("name", f"'{name}' may use letters, digits, '_', '-' and '.' only")
        spec = PointSpec(
            name or "?",
            table.str("unit", None),
            table.str("kind", "number", choices=("number", "bool", "string")) or "number",
            table.bool("writable", False),
            table.str("description", ""),
        )
        table.finish()
        points.append(spec)
    options.finish()
    if dev_eui is None:
        return None
    credentials_path = config_dir / credentials_name
    try:
        credentials = load_credentials(credentials_path, dev_eui)
    except CredentialsError as exc:
        options.error("credentials", str(exc))
        return None
    if time_budget is None or memory_budget is None:
        return None
    try:
        load_codec(
            codec,
            config_dir,
            time_budget=time_budget,
            memory_budget=memory_budget,
            downlink_fport=downlink_fport,
        )
        fields = example_fields(config_dir / codec) if codec.endswith((".yaml", ".yml")) else {}
    except CodecError as exc:
        options.error("codec", str(exc))
        return None
    declared = {p.name for p in points} | {p.name for p in METADATA_POINTS}
    for field_name, sample in fields.items():
        if field_name not in declared and is_valid_name_part(field_name):
            kind = "bool" if isinstance(sample, bool) else "string" if isinstance(sample, str) else "number"
            points.append(PointSpec(field_name, None, kind, description="from the codec's examples"))
            declared.add(field_name)
    return LorawanOptions(
        dev_eui,
        credentials_path,
        credentials,
        region or "EU868",
        port,
        bind or "0.0.0.0",
        codec,
        config_dir,
        time_budget,
        memory_budget,
        downlink_fport,
        bool(relaxed),
        net_id,
        rx1_dr_offset or 0,
        dedup_window if dedup_window is not None else DEDUP_WINDOW_S,
        tuple(points),
    )


def declare(options: LorawanOptions | None) -> list[PointSpec]:
    if options is None:
        return []
    names = {p.name for p in options.points}
    return [p for p in METADATA_POINTS if p.name not in names] + list(options.points)
