import re
from importlib import resources

from gateway.cli.demo import TEMPLATE_DEFAULTS, render_site
from gateway.config import load_config


def test_every_template_value_has_a_default_so_the_site_parses_without_peers(tmp_path):
    text = resources.files("gateway.demo").joinpath("site.toml").read_text()
    names = set(re.findall(r"\{\{(\w+)\}\}", text)) - {"data_dir", "names"}
    assert names <= set(TEMPLATE_DEFAULTS), names - set(TEMPLATE_DEFAULTS)
    config = load_config(render_site(tmp_path, {}))
    assert config.device("lamp-1") is not None
    assert config.section("api") is not None
