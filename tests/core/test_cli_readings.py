import csv
import io
import json

from gateway.cli import main
from gateway.model import Reading
from gateway.store import Database


def make_buffer(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    db = Database(data / "buffer.db")
    db.insert(
        [
            Reading("lamp/level", 100.0, 1000.0, "%"),
            Reading("lamp/level", 40.0, 1060.0, "%"),
            Reading("carpark/sign", "FULL", 1030.0),
            Reading("door/open", True, 1010.0),
        ]
    )
    db.close()
    return data


def test_latest_per_point_as_json(tmp_path, capsys):
    data = make_buffer(tmp_path)
    assert main(["readings", "--data-dir", str(data), "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    by_point = {r["point"]: r for r in rows}
    assert by_point["lamp/level"]["value"] == 40.0 and by_point["lamp/level"]["unit"] == "%"
    assert by_point["carpark/sign"]["value"] == "FULL"
    assert by_point["door/open"]["value"] is True


def test_point_over_time_range_as_csv(tmp_path, capsys):
    data = make_buffer(tmp_path)
    code = main(
        [
            "readings",
            "--data-dir",
            str(data),
            "lamp/level",
            "--since",
            "1970-01-01T00:16:00",
            "--until",
            "1970-01-01T00:18:00",
            "--csv",
        ]
    )
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [r["value"] for r in rows] == ["100.0", "40.0"]
    assert rows[0]["ts"] == "1970-01-01T00:16:40.000Z"


def test_table_output_and_unknown_point(tmp_path, capsys):
    data = make_buffer(tmp_path)
    assert main(["readings", "--data-dir", str(data)]) == 0
    out = capsys.readouterr().out
    assert "lamp/level" in out and "40 %" in out
    assert main(["readings", "--data-dir", str(data), "no/such"]) == 1
    assert "no point 'no/such' in the buffer or the config" in capsys.readouterr().err


def test_missing_buffer_is_explained(tmp_path, capsys):
    assert main(["readings", "--data-dir", str(tmp_path)]) == 1
    assert "no buffer at" in capsys.readouterr().err


SITE = """
[gateway]
id = "t"
data_dir = "data"
timezone = "Europe/Amsterdam"

[[devices]]
name = "lamp-1"
driver = "simulated"
interval = "1s"
[devices.options]
profile = "custom"
[[devices.options.points]]
name = "level"
waveform = "counter"
"""


def make_site(tmp_path, readings):
    config = tmp_path / "gateway.toml"
    config.write_text(SITE)
    (tmp_path / "data").mkdir()
    db = Database(tmp_path / "data" / "buffer.db")
    db.insert(readings)
    db.close()
    return config


WINTER_TS = 1764651601.25  # 2025-12-02T05:00:01.250Z


def test_times_are_in_the_site_zone_with_its_offset_or_utc(tmp_path, capsys):
    config = make_site(tmp_path, [Reading("meter/voltage", 2301 * 0.1, WINTER_TS, "V")])
    assert main(["readings", "-c", str(config)]) == 0
    assert capsys.readouterr().out == "2025-12-02 06:00:01.250+01:00  meter/voltage  230.1 V\n"
    assert main(["readings", "-c", str(config), "--utc", "--csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert rows[0]["ts"] == "2025-12-02T05:00:01.250Z" and rows[0]["value"] == "230.10000000000002"
    # --data-dir with a readable config still shows the site's zone
    assert main(["readings", "-c", str(config), "--data-dir", str(tmp_path / "data"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["ts"] == "2025-12-02T06:00:01.250+01:00"


def test_since_without_offset_is_site_time(tmp_path, capsys):
    config = make_site(
        tmp_path, [Reading("meter/voltage", 1.0, WINTER_TS - 3600), Reading("meter/voltage", 2.0, WINTER_TS)]
    )
    assert (
        main(["readings", "-c", str(config), "meter/voltage", "--since", "2025-12-02T06:00", "--json"]) == 0
    )
    assert [json.loads(line)["value"] for line in capsys.readouterr().out.splitlines()] == [2.0]


def test_clock_not_synced_is_said_once(tmp_path, capsys):
    config = make_site(
        tmp_path,
        [Reading(f"p/{i}", i, WINTER_TS + i, clock_synced=False) for i in range(5)]
        + [Reading("q/ok", 1, WINTER_TS)],
    )
    assert main(["readings", "-c", str(config)]) == 0
    out = capsys.readouterr().out
    assert out.count("clock not synced") == 1
    lines = out.splitlines()
    assert lines[0].startswith("* clock not synced")
    assert sum(1 for line in lines if "+01:00* " in line) == 5
    assert any(line.endswith("q/ok  1") and "+01:00  q/ok" in line for line in lines)


def test_a_misspelt_point_gets_a_did_you_mean_from_buffer_or_config(tmp_path, capsys):
    config = make_site(tmp_path, [Reading("carpark/occupied", 3, WINTER_TS)])
    assert main(["readings", "-c", str(config), "lamp-1/levle"]) == 1
    err = capsys.readouterr().err
    assert "no point 'lamp-1/levle' in the buffer or the config (did you mean 'lamp-1/level'?)" in err
    assert main(["readings", "-c", str(config), "carpark/ocupied", "carpark/occupied"]) == 1
    captured = capsys.readouterr()
    assert "(did you mean 'carpark/occupied'?)" in captured.err and "carpark/occupied  3" in captured.out
    # a configured point that has not read yet is said plainly, not as a typo
    assert main(["readings", "-c", str(config), "lamp-1/level"]) == 1
    assert capsys.readouterr().err == "no readings for lamp-1/level yet\n"


def test_globs_select_points(tmp_path, capsys):
    config = make_site(
        tmp_path,
        [
            Reading("lamp-1/level", 1, WINTER_TS),
            Reading("lamp-2/level", 2, WINTER_TS),
            Reading("lamp-2/power", 3, WINTER_TS),
        ],
    )
    assert main(["readings", "-c", str(config), "lamp-*/level", "--json"]) == 0
    assert [json.loads(line)["point"] for line in capsys.readouterr().out.splitlines()] == [
        "lamp-1/level",
        "lamp-2/level",
    ]
    assert main(["readings", "-c", str(config), "nothing-*/x"]) == 1
    assert "no point matches 'nothing-*/x'" in capsys.readouterr().err


def test_a_bad_since_explains_the_accepted_forms(tmp_path, capsys):
    config = make_site(tmp_path, [Reading("lamp-1/level", 1, WINTER_TS)])
    assert main(["readings", "-c", str(config), "--since", "5 min"]) == 2
    err = capsys.readouterr().err
    assert "Invalid isoformat" not in err
    assert "'5 min' is not a time; write a duration back from now (30s, 15m, 2h, 7d, 1h30m)" in err
    assert "without an offset is in Europe/Amsterdam" in err


def test_export_csv_in_site_time_with_exact_values_and_a_half_open_range(tmp_path, capsys):
    config = make_site(
        tmp_path,
        [
            Reading("meter/voltage", 2301 * 0.1, WINTER_TS, "V"),
            Reading("meter/voltage", 1.0, WINTER_TS + 60, "V"),
        ],
    )
    assert (
        main(
            [
                "export",
                "-c",
                str(config),
                "--since",
                "2025-12-02T06:00:01.250",
                "--until",
                "2025-12-02T06:01:01.250",
            ]
        )
        == 0
    )
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [(r["ts"], r["value"]) for r in rows] == [("2025-12-02T06:00:01.250+01:00", "230.10000000000002")]
    assert main(["export", "-c", str(config), "--since", "1h", "--until", "2h"]) == 2
    assert "is not before --until" in capsys.readouterr().err
    assert main(["export", "-c", str(config), "--since", "5 min"]) == 2
    assert "'5 min' is not a time" in capsys.readouterr().err
