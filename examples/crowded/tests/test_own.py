"""This project's own tests, written before rnn-contracts was installed: unchanged."""
import contracts
from fixtures import SAMPLE


def test_own_fixtures_package_is_importable():
    assert SAMPLE == ("h", "e", "l", "o")


def test_own_contracts_package_is_importable():
    assert contracts.OWNER == "crowded"
    contracts.require(True, "never raised")


def test_own_device_fixture_and_option(device, request):
    # one item, not re-parametrized by the plugin; the value is this project's option
    assert device == request.config.getoption("--device") == "cpu"
    assert "[" not in request.node.name
