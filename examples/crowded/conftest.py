"""This project's own --device option and device fixture: rnn-contracts must leave both alone."""
import pytest


def pytest_addoption(parser):
    parser.addoption("--device", default="cpu", help="this project's device option")


@pytest.fixture
def device(request):
    return request.config.getoption("--device")
