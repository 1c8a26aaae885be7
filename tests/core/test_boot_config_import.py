"""images/import-boot-config run as the box runs it at boot (its own process, paths from the
environment); the detailed cases are in tests/images/test_commissioning.py."""

import os
import pwd
import shutil
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).parents[2] / "images" / "import-boot-config"
GOOD = '[gateway]\nid = "site-9"\ndata_dir = "/tmp"\n'


def run(tmp_path):
    env = {
        "GATEWAY_CARD_DIR": str(tmp_path / "boot" / "gateway"),
        "GATEWAY_ETC_DIR": str(tmp_path / "etc"),
        "GATEWAY_RUN_DIR": str(tmp_path / "run"),
        "GATEWAY_SSH_DIR": str(tmp_path / "ssh"),
        "GATEWAY_HOSTNAME_FILE": str(tmp_path / "hostname"),
        "GATEWAY_NETWORK_DIR": str(tmp_path / "network"),
        "GATEWAY_RELEASE_FILE": str(tmp_path / "release"),
        "GATEWAY_USER": pwd.getpwuid(os.getuid()).pw_name,
        "GATEWAY_BIN": str(Path(sys.executable).with_name("gateway")),
        "PATH": "/usr/bin:/bin",
    }
    return subprocess.run([sys.executable, str(SCRIPT)], env=env, capture_output=True, text=True, timeout=60)


def test_valid_boot_config_is_installed_and_keys_removed_from_boot(tmp_path):
    (tmp_path / "boot" / "gateway").mkdir(parents=True)
    (tmp_path / "boot" / "gateway" / "gateway.toml").write_text(GOOD)
    (tmp_path / "boot" / "gateway" / "credentials.toml").write_text("secret = 1\n")
    result = run(tmp_path)
    assert result.returncode == 0, result.stderr
    assert "event=site_folder_imported" in result.stdout
    assert (tmp_path / "etc" / "gateway.toml").read_text() == GOOD
    assert (tmp_path / "etc" / "credentials.toml").exists()
    assert not (tmp_path / "boot" / "gateway" / "credentials.toml").exists()
    assert "Import:   OK" in (tmp_path / "boot" / "gateway" / "report.txt").read_text()


def test_invalid_boot_config_leaves_the_running_one(tmp_path):
    (tmp_path / "boot" / "gateway").mkdir(parents=True)
    (tmp_path / "boot" / "gateway" / "gateway.toml").write_text('[gateway]\nidd = "x"\n')
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "gateway.toml").write_text(GOOD)
    result = run(tmp_path)
    assert result.returncode == 0
    assert "event=site_folder_rejected" in result.stdout
    assert "gateway/gateway.toml:2: gateway.idd: unknown key 'idd'" in result.stdout
    assert (tmp_path / "etc" / "gateway.toml").read_text() == GOOD
    assert "gateway/gateway.toml:2:" in (tmp_path / "boot" / "gateway" / "report.txt").read_text()
    shutil.rmtree(tmp_path / "boot")
