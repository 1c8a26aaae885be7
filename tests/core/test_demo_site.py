import re
from importlib import resources

import pytest

from gateway.cli.demo import demo_parts, render_site, template_defaults
from gateway.config import load_config


def test_every_template_value_has_a_default_so_the_site_parses_without_peers(tmp_path):
    texts = [resources.files("gateway.demo").joinpath("site.toml").read_text()]
    for part in demo_parts().values():
        texts.append(part.site_fragment())
    names = set(re.findall(r"\{\{(\w+)\}\}", "\n".join(texts))) - {"data_dir", "names", "devices"}
    assert names <= set(template_defaults()), names - set(template_defaults())
    config = load_config(render_site(tmp_path, {}))
    assert config.device("lamp-1") is not None
    assert config.section("api") is not None
    # every family's part is on the site: its devices are configured
    drivers = {device.driver for device in config.devices}
    assert {"simulated", "serial", "gpio", "modbus", "lorawan"} <= drivers, drivers


def test_rule_templates_are_written_only_where_absent_and_reset_restores_them(tmp_path):
    from gateway.demo.rule_templates import install_rule_templates, rule_template_notes

    first = install_rule_templates(tmp_path)
    assert "street_lighting.toml" in first.written and first.edited == ()
    edited = tmp_path / "rules" / "street_lighting.toml"
    template = edited.read_text()
    edited.write_text(template + "\n# dimmer after midnight, agreed with the council\n")
    (tmp_path / "rules" / "carpark_sign.toml").unlink()
    (tmp_path / "rules" / "mine.toml").write_text("# a technician's own file\n")

    again = install_rule_templates(tmp_path)
    config = load_config(render_site(tmp_path, {}))  # the demo's site rendering keeps them too
    assert config.section("rules") is not None
    assert again.written == ("carpark_sign.toml",) and again.edited == ("street_lighting.toml",)
    assert edited.read_text().endswith("agreed with the council\n")
    assert "keeping your edited rule files" in rule_template_notes(again, reset=False)[0]

    reset = install_rule_templates(tmp_path, reset=True)
    assert reset.written == ("street_lighting.toml",) and edited.read_text() == template
    assert (tmp_path / "rules" / "mine.toml").exists()  # not a template: never touched
    note = rule_template_notes(reset, reset=True)[0]
    assert (
        note.startswith("--reset: rule files rewritten from the templates") and "street_lighting.toml" in note
    )


def test_a_section_is_asked_for_by_its_type(tmp_path):
    from gateway.coap.api_config import ApiConfig
    from gateway.rules.config import RulesConfig

    config = load_config(render_site(tmp_path, {}))
    assert isinstance(config.section("api", ApiConfig), ApiConfig)
    assert config.section("directory", ApiConfig) is None  # not on the demo site
    with pytest.raises(TypeError, match=r"section \[api\] holds ApiConfig, not RulesConfig"):
        config.section("api", RulesConfig)
