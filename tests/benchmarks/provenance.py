"""Which commit a generated document came from (written into BENCHMARKS*.md)."""

import pathlib
import subprocess

REPO = pathlib.Path(__file__).resolve().parents[2]


def commit() -> str:
    """``commit 1a2b3c4``, with a note when the working tree differs from it, or ``an unknown
    commit`` outside a git checkout."""

    def git(*args):
        return subprocess.run(
            ["git", *args], cwd=REPO, capture_output=True, text=True, timeout=30, check=False
        )

    head = git("rev-parse", "--short", "HEAD")
    if head.returncode != 0:
        return "an unknown commit"
    # The generated documents themselves (docs/) do not count: make bench rewrites them.
    dirty = git("status", "--porcelain", "--untracked-files=no", "--", ".", ":!docs").stdout.strip()
    return f"commit {head.stdout.strip()}" + (" with uncommitted changes" if dirty else "")
