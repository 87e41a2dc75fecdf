"""pytest entry point for tools/test_other_pythons.sh: run as a script (so neither the repo root
nor python/ is on sys.path) with a plugin that refuses to test any satchel but the venv's."""

import os
import sys

import pytest


class InstalledSatchelOnly:
    @staticmethod
    def _origin():
        import satchel

        return os.path.realpath(satchel.__file__)

    def pytest_report_header(self):
        return f"satchel under test: {self._origin()}"

    def pytest_sessionstart(self, session):
        origin, prefix = self._origin(), os.path.realpath(sys.prefix) + os.sep
        if not origin.startswith(prefix):
            raise pytest.UsageError(f"satchel imported from {origin}, not from the venv {prefix}")


if __name__ == "__main__":
    sys.exit(pytest.main(sys.argv[1:], plugins=[InstalledSatchelOnly()]))
