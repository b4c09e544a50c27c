"""Fixtures shared by the tests."""
import pytest


@pytest.fixture(scope="session")
def reference():
    pytest.importorskip("scipy")
    from fieldgen import reference as ref
    return ref
