"""The pytest11 plugin: --ptd-backends and the ptd_backend fixture."""

from __future__ import annotations

pytest_plugins = ["pytester"]


def test_ptd_backend_fixture_and_option(pytester):
    pytester.makepyfile(
        """
        def test_backend(ptd_backend):
            assert ptd_backend.name in ("pybind11", "cffi")
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider", "--ptd-backends=pybind11,cffi", "-v")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*test_backend?pybind11?*PASSED*", "*test_backend?cffi?*PASSED*"])
