"""The suite's own scheduling (tests/conftest.py): what `make test`'s two workers take
first names files that are there, and the packaging files stay one unit."""

from __future__ import annotations

from tests.conftest import LONGEST_FIRST, ROOT, worker_group


def test_the_longest_first_order_names_files_that_exist() -> None:
    # a renamed or removed file would silently drop out of the order
    assert [p for p in LONGEST_FIRST if not (ROOT / p).exists()] == []
    assert len(set(LONGEST_FIRST)) == len(LONGEST_FIRST)


def test_the_packaging_files_are_one_unit_and_the_others_their_own() -> None:
    assert worker_group("tests/deploy/test_emr.py::test_a") == "packaging"
    assert worker_group("tests/foundation/test_wheel.py::test_b") == "packaging"
    assert worker_group("tests/chains/test_e2e.py::test_c[x]") == "tests/chains/test_e2e.py"
