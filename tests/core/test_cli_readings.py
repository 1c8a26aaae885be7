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
    db.insert([Reading("lamp/level", 100.0, 1000.0, "%"), Reading("lamp/level", 40.0, 1060.0, "%"),
               Reading("carpark/sign", "FULL", 1030.0), Reading("door/open", True, 1010.0)])
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
    code = main(["readings", "--data-dir", str(data), "lamp/level", "--since", "1970-01-01T00:16:00",
                 "--until", "1970-01-01T00:18:00", "--csv"])
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
