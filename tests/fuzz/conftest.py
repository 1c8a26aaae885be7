"""Fixtures the fuzz tests borrow from the component test folders."""

from tests.coap_api.conftest import api_site  # noqa: F401 - a fixture, used by name
