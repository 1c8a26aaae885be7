import shutil
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).parents[2] / "images" / "import-boot-config"
GOOD = '[gateway]\nid = "site-9"\ndata_dir = "/tmp"\n'


def run(tmp_path):
    env = {"BOOT_DIR": str(tmp_path / "boot"), "ETC_DIR": str(tmp_path / "etc"),
           "GATEWAY_BIN": str(Path(sys.executable).with_name("gateway")), "PATH": "/usr/bin:/bin"}
    return subprocess.run(["sh", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=60)


def test_valid_boot_config_is_installed_and_keys_removed_from_boot(tmp_path):
    (tmp_path / "boot" / "gateway").mkdir(parents=True)
    (tmp_path / "boot" / "gateway" / "gateway.toml").write_text(GOOD)
    (tmp_path / "boot" / "gateway" / "credentials.toml").write_text("secret = 1\n")
    result = run(tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "etc" / "gateway.toml").read_text() == GOOD
    assert (tmp_path / "etc" / "credentials.toml").exists()
    assert not (tmp_path / "boot" / "gateway" / "credentials.toml").exists()


def test_invalid_boot_config_leaves_the_running_one(tmp_path):
    (tmp_path / "boot" / "gateway").mkdir(parents=True)
    (tmp_path / "boot" / "gateway" / "gateway.toml").write_text('[gateway]\nidd = "x"\n')
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "gateway.toml").write_text(GOOD)
    result = run(tmp_path)
    assert result.returncode == 0
    assert "unknown key 'idd'" in result.stderr and "boot_config_rejected" in result.stderr
    assert (tmp_path / "etc" / "gateway.toml").read_text() == GOOD
    shutil.rmtree(tmp_path / "boot")
