"""`gateway check` on a valid site and on a missing file; the data-driven cases under
tests/cases/config/ run in tests/test_case_folders.py."""

from gateway.cli import main


def test_valid_config_passes_check(tmp_path, capsys):
    config = tmp_path / "gateway.toml"
    config.write_text(
        '[gateway]\nid = "ok"\ndata_dir = "data"\n[[devices]]\nname = "lamp"\n'
        'driver = "simulated"\n[devices.options]\nprofile = "streetlight"\n'
    )
    assert main(["check", "--config", str(config)]) == 0
    assert "1 devices, 4 points (1 writable)" in capsys.readouterr().out


def test_missing_file_is_named(tmp_path, capsys):
    assert main(["check", "--config", str(tmp_path / "nope.toml")]) == 2
    assert f"{tmp_path / 'nope.toml'}: file not found" in capsys.readouterr().err
