"""The test suite, a package so that test files of one name in two directories stay apart."""

import pytest

# The builders in helpers.py assert as they build; rewritten like test modules, a failing
# one shows the values it compared.
pytest.register_assert_rewrite("tests.helpers")
