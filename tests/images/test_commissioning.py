"""The card's site folder, checked and installed as at boot: with the real `gateway check`, under
both the agreed exit-status contract (0/1/2) and the older "1 for any problem" one."""

from __future__ import annotations

import dataclasses
import os
import pwd
import shutil
import stat
import sys
from pathlib import Path

import pytest
from commissioning.check import parse_problems
from commissioning.importer import apply_installed, import_site_folder, load_result, main, save_result
from commissioning.paths import Paths
from commissioning.report import Facts, render
from commissioning.sitefolder import Staging

REPO = Path(__file__).resolve().parents[2]
TEST_SITE = REPO / "images" / "test-site"
GATEWAY = str(Path(sys.executable).with_name("gateway"))


def contract_gateway(tmp_path: Path) -> str:
    """A `gateway` that follows the agreed contract: exit 2 when any problem is outside the rules."""
    script = tmp_path / "gateway-contract"
    script.write_text(f"""#!{sys.executable}
import subprocess, sys
proc = subprocess.run([{GATEWAY!r}, *sys.argv[1:]], capture_output=True, text=True)
sys.stdout.write(proc.stdout); sys.stderr.write(proc.stderr)
problems = [line for line in proc.stderr.splitlines() if line.startswith("  ")]
site = [line for line in problems if "/rules/" not in line.split(":", 1)[0]]
sys.exit(0 if proc.returncode == 0 else (2 if site else 1))
""")
    script.chmod(0o755)
    return str(script)


@pytest.fixture(params=["contract", "legacy"])
def box(tmp_path: Path, request: pytest.FixtureRequest) -> Paths:
    """A card with the test site, an empty data partition, and the gateway CLI of the given kind."""
    card = tmp_path / "card" / "gateway"
    shutil.copytree(TEST_SITE, card)
    (card / "gateway.toml.example").write_text("# examples are not settings\n")
    gateway_bin = contract_gateway(tmp_path) if request.param == "contract" else GATEWAY
    (tmp_path / "state").mkdir()
    os.environ["STATE_DIRECTORY"] = str(tmp_path / "state")
    (tmp_path / "release").write_text("IMAGE_VERSION=test-1\nGATEWAY_VERSION=0.1.0\nIMAGE_SOURCE=debian\n")
    return Paths(
        card=card,
        installed=tmp_path / "data" / "etc-gateway",
        run=tmp_path / "run",
        ssh=tmp_path / "data" / "ssh",
        hostname_file=tmp_path / "data" / "hostname",
        network_dir=tmp_path / "run" / "network",
        release_file=tmp_path / "release",
        gateway_bin=gateway_bin,
        owner=pwd.getpwuid(os.getuid()).pw_name,
    )


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


def line_of(path: Path, needle: str) -> int:
    return next(n for n, line in enumerate(path.read_text().splitlines(), 1) if needle in line)


def test_first_import_installs_the_folder_and_takes_the_credentials_off_the_card(box: Paths) -> None:
    result = import_site_folder(box)
    assert result.status == "imported", result.findings
    assert (box.installed / "gateway.toml").read_text() == (TEST_SITE / "gateway.toml").read_text()
    assert sorted(p.name for p in (box.installed / "rules").iterdir()) == [
        "failsafe_lamps.toml",
        "street_lighting.toml",
    ]
    credentials = box.installed / "credentials.toml"
    assert stat.S_IMODE(credentials.stat().st_mode) == 0o600
    assert stat.S_IMODE((box.installed / "gateway.toml").stat().st_mode) == 0o640
    assert stat.S_IMODE(box.installed.stat().st_mode) == 0o750
    assert not (box.card / "credentials.toml").exists()
    assert result.removed_from_card == ["gateway/credentials.toml"]
    assert "gateway.toml.example" not in {p.name for p in box.installed.iterdir()}


def test_later_boots_keep_working_without_the_credentials_on_the_card(box: Paths) -> None:
    assert import_site_folder(box).status == "imported"
    edit(box.card / "gateway.toml", 'name = "Test cabinet 17"', 'name = "Test cabinet 17b"')
    second = import_site_folder(box)
    assert second.status == "imported", [str(f) for f in second.findings]
    assert second.changed == ["gateway.toml"]
    assert 'name = "Test cabinet 17b"' in (box.installed / "gateway.toml").read_text()
    assert (box.installed / "credentials.toml").is_file()
    third = import_site_folder(box)
    assert third.status == "imported" and third.changed == []


def test_a_broken_site_config_changes_nothing_and_names_the_file_on_the_card(box: Paths) -> None:
    assert import_site_folder(box).status == "imported"
    before = (box.installed / "gateway.toml").read_text()
    edit(box.card / "gateway.toml", 'interval = "3s"', 'interval = "3 seconds"')
    edit(box.card / "gateway.toml", 'name = "Test cabinet 17"', 'name = "Broken"')
    line = line_of(box.card / "gateway.toml", '"3 seconds"')
    result = import_site_folder(box)
    assert result.status == "rejected"
    assert (box.installed / "gateway.toml").read_text() == before
    assert any(f.file == "gateway/gateway.toml" and f.line == line for f in result.findings), [
        str(f) for f in result.findings
    ]
    assert all(str(box.run) not in str(f) for f in result.findings)
    text = render({}, result, None, "now")
    assert f"gateway/gateway.toml:{line}:" in text and "REJECTED" in text


def test_malformed_toml_is_reported_with_its_line(box: Paths) -> None:
    with (box.card / "gateway.toml").open("a") as handle:
        handle.write("\n[[[broken\n")
    line = line_of(box.card / "gateway.toml", "[[[broken")
    result = import_site_folder(box)
    assert result.status == "rejected"
    assert [(f.file, f.line) for f in result.findings] == [("gateway/gateway.toml", line)]
    assert not box.installed.exists()


def test_a_broken_rule_file_is_imported_and_reported(box: Paths) -> None:
    assert import_site_folder(box).status == "imported"
    rule = box.card / "rules" / "street_lighting.toml"
    edit(rule, 'set = "lamp-1/level"', 'set = "lamp-9/level"')
    result = import_site_folder(box)
    assert result.status == "imported-rule-problems", [str(f) for f in result.findings]
    assert result.findings and all(f.kind == "rules" for f in result.findings)
    assert result.findings[0].file == "gateway/rules/street_lighting.toml"
    assert "lamp-9" in (box.installed / "rules" / "street_lighting.toml").read_text()
    assert "[rule file] gateway/rules/street_lighting.toml:" in render({}, result, None, "now")


def test_a_rule_file_deleted_on_the_card_is_deleted_on_the_box(box: Paths) -> None:
    assert import_site_folder(box).status == "imported"
    (box.card / "rules" / "failsafe_lamps.toml").unlink()
    result = import_site_folder(box)
    assert result.status == "imported"
    assert "rules/failsafe_lamps.toml (removed)" in result.changed
    assert not (box.installed / "rules" / "failsafe_lamps.toml").exists()


def test_identity_must_match_the_site_id(box: Paths) -> None:
    (box.card / "identity.toml").write_text('id = "cabinet-18"\n')
    result = import_site_folder(box)
    assert result.status == "rejected"
    finding = next(f for f in result.findings if f.file == "gateway/gateway.toml")
    assert "cabinet-18" in finding.message and finding.line == line_of(
        box.card / "gateway.toml", 'id = "cabinet'
    )


def test_identity_sets_the_hostname(box: Paths) -> None:
    assert import_site_folder(box).status == "imported"
    done = apply_installed(box)
    assert box.hostname_file.read_text() == "cabinet-test-17\n"
    assert "hostname: cabinet-test-17" in done


def test_a_static_address_becomes_a_networkd_file(box: Paths) -> None:
    (box.card / "network.toml").write_text(
        '[ethernet]\ndhcp = false\naddress = "192.168.10.17/24"\n'
        'gateway = "192.168.10.1"\ndns = ["192.168.10.1"]\n'
    )
    assert import_site_folder(box).status == "imported"
    apply_installed(box)
    text = (box.network_dir / "10-gateway-ethernet.network").read_text()
    assert "Address=192.168.10.17/24" in text and "Gateway=192.168.10.1" in text and "DHCP" not in text


def test_a_bad_address_is_rejected_with_its_line(box: Paths) -> None:
    (box.card / "network.toml").write_text('[ethernet]\ndhcp = false\naddress = "192.168.10.300/24"\n')
    result = import_site_folder(box)
    assert result.status == "rejected"
    assert [(f.file, f.line) for f in result.findings] == [("gateway/network.toml", 3)]


def test_a_wifi_password_leaves_the_card(box: Paths) -> None:
    (box.card / "network.toml").write_text(
        '[wifi]\ncountry = "NL"\nssid = "cabinet-net"\npsk = "correct horse"\n'
    )
    result = import_site_folder(box)
    assert result.status == "imported"
    assert not (box.card / "network.toml").exists()
    assert stat.S_IMODE((box.installed / "network.toml").stat().st_mode) == 0o600
    apply_installed(box)
    wpa = box.run / "wpa_supplicant-wlan0.conf"
    assert 'psk="correct horse"' in wpa.read_text() and stat.S_IMODE(wpa.stat().st_mode) == 0o600


def test_ssh_keys_are_checked_and_installed(box: Paths) -> None:
    (box.card / "ssh.pub").write_text(
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeFakeFakeFakeFake tech@laptop\nnot a key\n"
    )
    result = import_site_folder(box)
    assert result.status == "rejected"
    assert [(f.file, f.line) for f in result.findings] == [("gateway/ssh.pub", 2)]
    (box.card / "ssh.pub").write_text(
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeFakeFakeFakeFake tech@laptop\n"
    )
    assert import_site_folder(box).status == "imported"
    assert "ssh: 1 authorized key for root" in apply_installed(box)
    assert (box.ssh / "authorized_keys" / "root").read_text().startswith("ssh-ed25519 ")


def test_no_site_folder_changes_nothing(box: Paths) -> None:
    (box.card / "gateway.toml").unlink()
    assert import_site_folder(box).status == "no-site-folder"
    assert not box.installed.exists()


def test_main_writes_the_result_and_the_report(box: Paths, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "GATEWAY_CARD_DIR": box.card,
        "GATEWAY_ETC_DIR": box.installed,
        "GATEWAY_RUN_DIR": box.run,
        "GATEWAY_SSH_DIR": box.ssh,
        "GATEWAY_HOSTNAME_FILE": box.hostname_file,
        "GATEWAY_NETWORK_DIR": box.network_dir,
        "GATEWAY_RELEASE_FILE": box.release_file,
        "GATEWAY_BIN": box.gateway_bin,
        "GATEWAY_USER": box.owner,
    }.items():
        monkeypatch.setenv(name, str(value))
    assert main() == 0
    saved = load_result(box)
    assert saved is not None and saved.status == "imported"
    report = (box.card / "report.txt").read_bytes().decode()
    assert "Import:   OK" in report and "test-1" in report and "\r\n" in report
    save_result(saved, box)
    assert load_result(box) == saved


def test_problem_lines_are_mapped_back_to_the_card(tmp_path: Path) -> None:
    staging = Staging(
        tmp_path / "stage",
        {
            "gateway.toml": "gateway/gateway.toml",
            "credentials.toml": "/etc/gateway/credentials.toml (installed earlier)",
        },
    )
    output = (
        f"event=credentials_file_too_open path=x\n2 problems found:\n  {tmp_path}/stage/gateway.toml:17: api.credentials: in "
        f"{tmp_path}/stage/credentials.toml: file not found\n"
        f"  {tmp_path}/stage/rules/a.toml: malformed TOML: Invalid value (at line 29, column 7)\n"
    )
    findings = parse_problems(output, staging, "rules")
    assert [str(f) for f in findings] == [
        "gateway/gateway.toml:17: api.credentials: in /etc/gateway/credentials.toml (installed earlier): file not found",
        "gateway/rules/a.toml:29: malformed TOML: Invalid value (at line 29, column 7)",
    ]
    assert [f.kind for f in findings] == ["site", "rules"]


def test_report_lists_what_the_box_found() -> None:
    from commissioning.importer import ImportResult

    result = ImportResult(
        "imported",
        "2026-12-02T04:00:00Z",
        0,
        changed=["gateway.toml"],
        removed_from_card=["gateway/credentials.toml"],
    )
    facts = Facts(
        gateway="gateway service active, status ok, id 'cab-1'",
        upstream="city: answered",
        clock="NOT synchronised with NTP",
        serial_ports=("/dev/ttyAMA0 (uart-pl011)",),
        devices=("GPIO gpiochip0",),
        data_partition="1000 MiB, 1% used",
    )
    text = render({"IMAGE_VERSION": "v1", "GATEWAY_VERSION": "0.1.0", "KERNEL": "6.12"}, result, facts, "now")
    for expected in (
        "Image:    v1",
        "Gateway:  version 0.1.0",
        "Import:   OK",
        "Installed on the box: gateway.toml",
        "gateway/credentials.toml",
        "Status:   gateway service active",
        "Upstream: city: answered",
        "Clock:    NOT synchronised",
        "Serial ports: /dev/ttyAMA0 (uart-pl011)",
        "Devices:  GPIO gpiochip0",
        "Data partition: 1000 MiB",
    ):
        assert expected in text, expected


def test_a_hostname_that_cannot_be_set_does_not_keep_ssh_keys_away(box: Paths) -> None:
    (box.card / "ssh.pub").write_text(
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeFakeFakeFakeFake tech@laptop\n"
    )
    assert import_site_folder(box).status == "imported"
    broken = dataclasses.replace(box, hostname_file=box.run / "missing-dir" / "hostname")
    done = apply_installed(broken)
    assert any(line.startswith("hostname NOT set") for line in done)
    assert "ssh: 1 authorized key for root" in done
