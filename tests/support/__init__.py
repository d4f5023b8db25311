"""Code the tests, the e2e suite and the benchmark share: fixtures live in conftest.py files and use it."""
