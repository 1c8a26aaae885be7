"""The hawkBit DDI core without a server: controller and deployment bases (hawkBit's and goosebit's
shapes, and hostile ones), feedback bodies, the in-flight action record, the final report of a
commit or a rollback, the bundle version rule, and updates.toml (also through commissioning)."""

from __future__ import annotations

import json
import os
import pwd
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from commissioning.importer import import_site_folder
from commissioning.paths import Paths
from ota import hawkbit, hawkbit_config, records
from ota.hawkbit import Action, ControllerBase, DdiError, Deployment, Phase

REPO = Path(__file__).resolve().parents[2]
BASE = "https://updates.city.example/DEFAULT/controller/v1/cabinet-17"
SHA256 = "a" * 64
SHA1 = "b" * 40

#: the shape of hawkBit's documented deployment base (all three hashes, both download links)
HAWKBIT_DEPLOYMENT = {
    "id": "8",
    "deployment": {
        "download": "forced",
        "update": "forced",
        "maintenanceWindow": "available",
        "chunks": [
            {
                "part": "os",
                "version": "2.1.0",
                "name": "city-gateway",
                "artifacts": [
                    {
                        "filename": "gateway-2.1.0.raucb",
                        "size": 4096,
                        "hashes": {"sha1": SHA1, "md5": "c" * 32, "sha256": SHA256.upper()},
                        "_links": {
                            "download": {"href": f"{BASE}/softwaremodules/3/artifacts/gateway-2.1.0.raucb"},
                            "download-http": {"href": "http://updates.city.example/x/gateway-2.1.0.raucb"},
                            "md5sum": {
                                "href": f"{BASE}/softwaremodules/3/artifacts/gateway-2.1.0.raucb.MD5SUM"
                            },
                        },
                    }
                ],
            }
        ],
    },
    "actionHistory": {"status": "RUNNING", "messages": ["Reboot"]},
}

#: what goosebit 0.2.12 answers (sha1 only, one "download" link, http)
GOOSEBIT_DEPLOYMENT = {
    "id": "1",
    "deployment": {
        "download": "forced",
        "update": "forced",
        "chunks": [
            {
                "part": "os",
                "version": "2.0.0",
                "name": "gateway-2.0.raucb",
                "artifacts": [
                    {
                        "filename": "gateway-2.0.raucb",
                        "hashes": {"sha1": SHA1},
                        "size": 3151722,
                        "_links": {
                            "download": {"href": "http://127.0.0.1:9/DEFAULT/controller/v1/gw-01/download"}
                        },
                    }
                ],
            }
        ],
    },
}


def test_the_polling_interval_is_hhmmss_and_clamped():
    assert hawkbit.parse_sleep("00:05:00") == 300
    assert hawkbit.parse_sleep("12:00:00") == 43200
    assert hawkbit.parse_sleep("00:00:00") == hawkbit.MIN_SLEEP_S
    assert hawkbit.parse_sleep("99:59:59") == hawkbit.MAX_SLEEP_S


@pytest.mark.parametrize("value", ["5m", "00:60:00", "1:2:3", "", 300, None, "00:00:10; rm -rf /"])
def test_a_bad_interval_names_the_field(value):
    with pytest.raises(DdiError, match=r"config\.polling\.sleep must be"):
        hawkbit.parse_sleep(value)


def test_the_controller_base_gives_the_interval_and_the_links():
    base = ControllerBase.parse(
        {
            "config": {"polling": {"sleep": "00:00:30"}},
            "_links": {
                "deploymentBase": {"href": f"{BASE}/deploymentBase/8?c=-2129030598"},
                "configData": {"href": f"{BASE}/configData"},
            },
        }
    )
    assert base == ControllerBase(30.0, f"{BASE}/deploymentBase/8?c=-2129030598", f"{BASE}/configData", None)
    assert ControllerBase.parse({}) == ControllerBase(hawkbit.DEFAULT_SLEEP_S)
    assert (
        ControllerBase.parse({"config": {"polling": {"sleep": "00:01:00"}}, "_links": {}}).deployment is None
    )


@pytest.mark.parametrize(
    "body, words",
    [
        ([], "controller base must be a JSON object"),
        ({"config": "fast"}, "config must be a JSON object"),
        ({"config": {"polling": {"sleep": 5}}}, "config.polling.sleep must be a text"),
        ({"_links": []}, "_links must be a JSON object"),
        ({"_links": {"deploymentBase": "http://x"}}, "_links.deploymentBase must be a JSON object"),
        (
            {"_links": {"deploymentBase": {"href": None}}},
            "_links.deploymentBase.href must be a non-empty text",
        ),
        (
            {"_links": {"deploymentBase": {"href": "file:///etc/shadow"}}},
            "_links.deploymentBase.href must be an http",
        ),
        (
            {"_links": {"cancelAction": {"href": "ftp://x/cancel"}}},
            "_links.cancelAction.href must be an http",
        ),
    ],
)
def test_a_hostile_controller_base_is_refused_naming_the_field(body, words):
    with pytest.raises(DdiError) as caught:
        ControllerBase.parse(body)
    assert words in str(caught.value)


def test_hawkbits_deployment_picks_the_bundle_its_sha256_and_the_link_for_the_scheme():
    deployment = Deployment.parse(HAWKBIT_DEPLOYMENT)
    assert (deployment.action_id, deployment.download, deployment.update) == ("8", "forced", "forced")
    action = hawkbit.start(
        deployment, f"{BASE}/deploymentBase/8?c=-2129030598", prefer_plain_http=False, now=5.0
    )
    assert (action.algorithm, action.digest) == ("sha256", SHA256), "the strongest digest, lower case"
    assert action.url.startswith("https://") and action.version == "2.1.0" and action.size == 4096
    assert action.feedback == f"{BASE}/deploymentBase/8/feedback"
    plain = hawkbit.start(deployment, f"{BASE}/deploymentBase/8", prefer_plain_http=True, now=5.0)
    assert plain.url == "http://updates.city.example/x/gateway-2.1.0.raucb"


def test_a_closed_maintenance_window_or_a_skip_defers_the_step():
    deployment = Deployment.parse(HAWKBIT_DEPLOYMENT)
    assert deployment.maintenance_window == "available" and deployment.may_download and deployment.may_install
    closed = json.loads(json.dumps(HAWKBIT_DEPLOYMENT))
    closed["deployment"].update(maintenanceWindow="unavailable")
    assert Deployment.parse(closed).may_download and not Deployment.parse(closed).may_install
    closed["deployment"].update(download="skip", update="skip", maintenanceWindow="available")
    assert not Deployment.parse(closed).may_download and not Deployment.parse(closed).may_install
    closed["deployment"].update(maintenanceWindow="soon")
    with pytest.raises(DdiError, match="deployment.maintenanceWindow must be available or unavailable"):
        Deployment.parse(closed)


def test_goosebits_deployment_is_verified_by_sha1():
    action = hawkbit.start(
        Deployment.parse(GOOSEBIT_DEPLOYMENT),
        "http://127.0.0.1:9/DEFAULT/controller/v1/gw-01/deploymentBase/1",
        prefer_plain_http=True,
        now=0,
    )
    assert (action.algorithm, action.digest, action.version) == ("sha1", SHA1, "2.0.0")
    assert action.url.endswith("/gw-01/download")
    assert action.feedback == "http://127.0.0.1:9/DEFAULT/controller/v1/gw-01/deploymentBase/1/feedback"


def artifact(**changes):
    body = json.loads(json.dumps(GOOSEBIT_DEPLOYMENT))
    body["deployment"]["chunks"][0]["artifacts"][0].update(changes)
    return body


@pytest.mark.parametrize(
    "body, words",
    [
        ("[]", "deploymentBase must be a JSON object"),
        ({"deployment": {}}, "deploymentBase id must be the action id"),
        ({"id": True, "deployment": {}}, "deploymentBase id must be the action id"),
        ({"id": "1", "deployment": []}, "deployment must be a JSON object"),
        ({"id": "1", "deployment": {"chunks": {}}}, "deployment.chunks must be a list"),
        ({"id": "1", "deployment": {"download": "maybe", "chunks": []}}, "deployment.download must be skip"),
        (
            {"id": "1", "deployment": {"chunks": [{"artifacts": "x"}]}},
            "deployment.chunks[0].artifacts must be a list",
        ),
        (
            {"id": "1", "deployment": {"chunks": [{"version": 2, "artifacts": []}]}},
            "deployment.chunks[0].version",
        ),
        (artifact(size=-1), "deployment.chunks[0].artifacts[0].size must be a positive number"),
        (artifact(size="3151722"), "artifacts[0].size must be a positive number"),
        (artifact(size=True), "artifacts[0].size must be a positive number"),
        (artifact(filename="../../etc/rauc/keyring.pem"), "artifacts[0].filename must be a plain file name"),
        (artifact(filename=""), "artifacts[0].filename must be a non-empty text"),
        (artifact(hashes={"sha1": "not hex"}), "artifacts[0].hashes.sha1 must be hex digits"),
        (artifact(hashes={"sha256": "ab"}), "artifacts[0].hashes.sha256 must be 64 hex digits"),
        (artifact(hashes=[SHA1]), "artifacts[0].hashes must be a JSON object"),
        (
            artifact(_links={"download": {"href": "javascript:alert(1)"}}),
            "artifacts[0]._links.download.href must be an http",
        ),
    ],
)
def test_a_hostile_deployment_is_refused_naming_the_field(body, words):
    with pytest.raises(DdiError) as caught:
        Deployment.parse(body)
    assert words in str(caught.value)


@pytest.mark.parametrize(
    "body, words",
    [
        (artifact(hashes={"md5": "c" * 32}), "no sha256 or sha1 in hashes (got md5); it cannot be verified"),
        (artifact(_links={}), "has no _links.download or _links.download-http"),
        ({"id": "4", "deployment": {"chunks": []}}, "action 4: deployment.chunks has no artifact to install"),
        (
            {
                "id": "4",
                "deployment": {
                    "chunks": [
                        {
                            "artifacts": [
                                {"filename": "a.raucb", "size": 1, "hashes": {"sha1": SHA1}},
                                {"filename": "b.raucb", "size": 1, "hashes": {"sha1": SHA1}},
                            ]
                        }
                    ]
                },
            },
            "expected one RAUC bundle (*.raucb) among the artifacts, got a.raucb, b.raucb",
        ),
    ],
)
def test_a_deployment_this_box_cannot_carry_out_says_why(body, words):
    with pytest.raises(DdiError) as caught:
        hawkbit.start(Deployment.parse(body), f"{BASE}/deploymentBase/4", prefer_plain_http=True, now=0)
    assert words in str(caught.value)


def test_feedback_bodies_are_hawkbits():
    body = hawkbit.feedback(
        hawkbit.Execution.PROCEEDING,
        hawkbit.Finished.NONE,
        ["Downloaded 50%"],
        action_id="8",
        progress=(50, 100),
        now=0,
    )
    assert body == {
        "id": "8",
        "time": "1970-01-01T00:00:00Z",
        "status": {
            "execution": "proceeding",
            "result": {"finished": "none", "progress": {"cnt": 50, "of": 100}},
            "details": ["Downloaded 50%"],
        },
    }


def installed():
    action = hawkbit.start(
        Deployment.parse(GOOSEBIT_DEPLOYMENT), f"{BASE}/deploymentBase/1", prefer_plain_http=True, now=0
    )
    return action.advance(Phase.INSTALLED, tried_id="2.0.0@1000")


def test_the_in_flight_action_survives_its_json_and_a_damaged_one_is_refused():
    action = installed()
    assert Action.from_json(json.loads(json.dumps(action.to_json()))) == action
    with pytest.raises(DdiError, match="in-flight action record is damaged"):
        Action.from_json({**action.to_json(), "phase": "exploded"})
    with pytest.raises(DdiError, match="in-flight action record is damaged"):
        Action.from_json({"action_id": "1"})


TRIED = records.tried_record(slot="B", version="2.0.0", from_slot="A", from_version="1.0", now=1000.0)


def test_a_commit_is_reported_as_success_and_a_rollback_as_failure_with_its_reason():
    action = installed()
    committed = records.settle(TRIED, None, booted="B", default="B", watchdog_reset=False, now=1100)
    body = hawkbit.outcome_feedback(action, committed)
    assert body["status"]["execution"] == "closed" and body["status"]["result"]["finished"] == "success"
    attempt = records.attempt_record(
        TRIED,
        slot="B",
        version="2.0.0",
        stage=records.FAILED,
        now=1050,
        check="gateway.service",
        reason="gateway.service exited with status 3",
        exit_status=3,
    )
    rolled_back = records.settle(TRIED, attempt, booted="A", default="A", watchdog_reset=False, now=1100)
    body = hawkbit.outcome_feedback(action, rolled_back)
    assert body["status"]["result"]["finished"] == "failure"
    assert body["status"]["details"] == [
        "rolled back: gateway.service exited with status 3",
        "check: gateway.service",
        "running 1.0 in slot A again",
        "exit status: 3",
    ]


def test_nothing_is_reported_before_the_outcome_of_this_very_install():
    action = installed()
    older = {"id": "1.9.0@10", "result": records.ROLLED_BACK, "reason": "an older update"}
    assert hawkbit.outcome_feedback(action, older) is None
    assert hawkbit.outcome_feedback(action, None) is None
    downloading = Action.from_json({**action.to_json(), "phase": "downloading"})
    assert hawkbit.outcome_feedback(downloading, {"id": "2.0.0@1000", "result": "committed"}) is None


def test_a_cancel_names_the_action_to_stop():
    assert hawkbit.cancel_stop_id({"id": "11", "cancelAction": {"stopId": "11"}}) == "11"
    with pytest.raises(DdiError, match="cancelAction.stopId must be the action id"):
        hawkbit.cancel_stop_id({"id": "11", "cancelAction": {}})


VERSIONS = [
    ("2.0", "2.0.0"),
    ("2.1.3", "2.1.3"),
    ("v1.4.0", "1.4.0"),
    ("1.0.0-rc.1+b7", "1.0.0-rc.1+b7"),
    ("7bd97a3", "0.0.0+g7bd97a3"),
    ("7bd97a3-dirty", "0.0.0+g7bd97a3-dirty"),
    ("v1.2.3-4-gabc", "1.2.3-4-gabc"),
    ("my build/2", "0.0.0+gmy-build-2"),
    ("01.2.3", "0.0.0+g01.2.3"),
]


@pytest.mark.parametrize("image_version, expected", VERSIONS)
def test_the_bundle_version_is_semver_by_the_same_rule_as_images_bundle(image_version, expected):
    assert hawkbit.bundle_version(image_version) == expected
    script = (REPO / "images/bundle").read_text()
    rule = script[script.index("semver=") : script.index("fi\n", script.index("semver=")) + 3]
    done = subprocess.run(
        ["bash", "-c", f'image_version="$1"\n{rule}\necho "$version"', "bash", image_version],
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.strip() == expected


# -- updates.toml --------------------------------------------------------------------------


def parse(text, identity="cabinet-17"):
    return hawkbit_config.parse(text, path="gateway/updates.toml", identity_id=identity)


def test_updates_toml_defaults_the_controller_id_to_the_identity():
    config = parse('[hawkbit]\nserver = "https://updates.city.example/"\ntarget_token = "5f2b9c"\n')
    assert config.controller_base == "https://updates.city.example/DEFAULT/controller/v1/cabinet-17"
    assert config.authorization == "TargetToken 5f2b9c" and config.has_secret
    gateway = parse(
        '[hawkbit]\nserver = "http://10.0.0.2:8080"\ntenant = "CITY"\ncontroller_id = "lamp-cab-3"\n'
        'gateway_token = "t0k"\n'
    )
    assert gateway.controller_base == "http://10.0.0.2:8080/CITY/controller/v1/lamp-cab-3"
    assert gateway.authorization == "GatewayToken t0k"
    assert parse("# no server: updates come on a USB stick\n") is None


@pytest.mark.parametrize(
    "text, field, words",
    [
        ("[hawkbit]\n", "server", "required"),
        ('[hawkbit]\nserver = "updates.city.example"\n', "server", "must be an http:// or https:// URL"),
        ('[hawkbit]\nserver = "https://u.example/?x=1"\n', "server", "without query"),
        ('[hawkbit]\nserver = "https://u.example"\ntenant = "a b"\n', "tenant", "must be letters"),
        (
            '[hawkbit]\nserver = "https://u.example"\ncontroller_id = "../x"\n',
            "controller_id",
            "must be letters",
        ),
        (
            '[hawkbit]\nserver = "https://u.example"\ntarget_token = "a"\ngateway_token = "b"\n',
            "gateway_token",
            "either target_token or gateway_token",
        ),
        (
            '[hawkbit]\nserver = "https://u.example"\ntarget_token = "two words"\n',
            "target_token",
            "without spaces",
        ),
        (
            '[hawkbit]\nserver = "http://u.example"\nca_file = "ca.pem"\n',
            "ca_file",
            "only means something for an https",
        ),
        ('[hawkbit]\nserver = "https://u.example"\nurl = "x"\n', "url", "unknown key (known: server"),
    ],
)
def test_updates_toml_mistakes_name_the_file_and_the_field(text, field, words):
    with pytest.raises(hawkbit_config.ConfigError) as caught:
        parse(text)
    assert str(caught.value).startswith(f"gateway/updates.toml: [hawkbit] {field}: ") and words in str(
        caught.value
    )


def test_updates_toml_without_an_identity_needs_a_controller_id():
    with pytest.raises(
        hawkbit_config.ConfigError, match=r"\[hawkbit\] controller_id: not set and identity.toml"
    ):
        parse('[hawkbit]\nserver = "https://u.example"\n', identity=None)
    with pytest.raises(hawkbit_config.ConfigError, match="malformed TOML"):
        parse("[hawkbit\n")
    with pytest.raises(hawkbit_config.ConfigError, match="unknown table or key 'updates'"):
        parse("[updates]\n")


# -- through the card's commissioning ---------------------------------------------------------


@pytest.fixture
def card(tmp_path):
    card = tmp_path / "card" / "gateway"
    shutil.copytree(REPO / "images/test-site", card)
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
        gateway_bin=str(Path(sys.executable).with_name("gateway")),
        owner=pwd.getpwuid(os.getuid()).pw_name,
    )


def test_updates_toml_with_a_token_is_installed_as_a_secret_and_leaves_the_card(card):
    (card.card / "updates.toml").write_text(
        '[hawkbit]\nserver = "https://updates.city.example"\ntarget_token = "5f2b9c0d"\n'
    )
    result = import_site_folder(card)
    assert result.status == "imported", result.findings
    assert not (card.card / "updates.toml").exists()
    installed_file = card.installed / "updates.toml"
    assert stat.S_IMODE(installed_file.stat().st_mode) == 0o600
    config = hawkbit_config.load(installed_file, card.installed / "identity.toml")
    assert config.controller_id == "cabinet-test-17", "the identity's id"


def test_a_wrong_updates_toml_rejects_the_folder_naming_file_line_and_field(card):
    (card.card / "updates.toml").write_text(
        '[hawkbit]\nserver = "https://updates.city.example"\ntarget_token = "two words"\n'
    )
    result = import_site_folder(card)
    assert result.status == "rejected"
    assert [(f.file, f.line) for f in result.findings] == [("gateway/updates.toml", 3)]
    assert re.search(r"\[hawkbit\] target_token: must be the token text", result.findings[0].message)
    assert not (card.installed / "updates.toml").exists() and (card.card / "updates.toml").exists()


def test_the_site_examples_updates_toml_parses_once_its_token_is_filled_in():
    text = (REPO / "images/site-example/updates.toml.example").read_text()
    with pytest.raises(hawkbit_config.ConfigError, match="target_token: must be the token text"):
        parse(text)
    config = parse(text.replace("<the target's security token from the server>", "5f2b9c0d"))
    assert config.controller_base == "https://updates.city.example/DEFAULT/controller/v1/cabinet-17"
