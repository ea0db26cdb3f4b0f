"""Helpers the tests share (fixtures are in the conftest.py files; tests import these modules, never a conftest)."""
