"""The per-user store of the generic path's tables (fieldgen.usercache.load_table): a stored table
is read back bit for bit without building it, a damaged file is detected and built again, and
without a writable cache folder the table is built in memory."""

import numpy as np
import pytest

from fieldgen import usercache


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FIELDGEN_CACHE_DIR", str(tmp_path))
    usercache.cache_root.cache_clear()
    yield tmp_path
    usercache.cache_root.cache_clear()


def _fail():
    raise AssertionError("built although stored")


def test_stored_table_is_read_back_without_building(cache):
    rng = np.random.default_rng(0)
    table = rng.standard_normal((4, 5, 6))
    calls = []
    got = usercache.load_table("k1", lambda: calls.append(1) or table)
    assert got is table and calls == [1]
    again = usercache.load_table("k1", _fail)
    assert again.flags.c_contiguous and again.dtype == np.float64
    np.testing.assert_array_equal(again, table)
    # a tuple stays a tuple; another key is another table (negative control)
    pair = (rng.standard_normal(3), rng.standard_normal((2, 2)))
    usercache.load_table("k2", lambda: pair)
    back = usercache.load_table("k2", _fail)
    assert isinstance(back, tuple) and len(back) == 2
    for x, y in zip(back, pair):
        np.testing.assert_array_equal(x, y)
    with pytest.raises(AssertionError, match="built although stored"):
        usercache.load_table("k3", _fail)


def test_damaged_table_is_built_again(cache):
    table = np.arange(12.0).reshape(3, 4)
    usercache.load_table("k", lambda: table)
    path = usercache.table_path("k")
    data = bytearray(path.read_bytes())
    data[-20] ^= 0xFF  # one flipped byte inside the payload
    path.write_bytes(bytes(data))
    with pytest.warns(RuntimeWarning, match="damaged"):
        got = usercache.load_table("k", lambda: table + 1.0)
    np.testing.assert_array_equal(got, table + 1.0)
    np.testing.assert_array_equal(usercache.load_table("k", _fail), table + 1.0)


def test_no_writable_cache_builds_in_memory(monkeypatch, tmp_path):
    def refuse():
        raise OSError("no cache folder")

    monkeypatch.setattr(usercache, "table_path", lambda key: refuse())
    assert usercache.load_table("k", lambda: np.ones(2)).tolist() == [1.0, 1.0]
