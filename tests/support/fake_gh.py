"""The GitHub CLI for tests: GitHub is not reachable from the test machine, so
``tests/fixtures/gh/_fake_gh.py`` stands in for ``gh`` on PATH and answers from a JSON state file
that :class:`FakeGitHub` edits (a PR opened, merged, closed)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["FakeGitHub"]

FAKE_GH = Path(__file__).resolve().parent.parent / "fixtures" / "gh" / "_fake_gh.py"
REPO_URL = "https://github.com/acme/widgets"


class FakeGitHub:
    """``bin_dir/gh`` and its state; put ``bin_dir`` first on the node's PATH."""

    def __init__(self, bin_dir: Path) -> None:
        bin_dir.mkdir(parents=True, exist_ok=True)
        self.bin_dir = bin_dir
        (bin_dir / "gh").symlink_to(FAKE_GH)
        self._state = bin_dir / "gh-state.json"
        self._write({"prs": []})

    def _read(self) -> dict[str, Any]:
        state: dict[str, Any] = json.loads(self._state.read_text(encoding="utf-8"))
        return state

    def _write(self, state: dict[str, Any]) -> None:
        tmp = self._state.with_suffix(".tmp")
        tmp.write_text(json.dumps(state), encoding="utf-8")
        tmp.replace(self._state)  # atomic: gh never reads half a file

    def open_pr(self, branch: str, number: int) -> str:
        """A PR from ``branch``, open on 'GitHub'; its URL."""
        state = self._read()
        url = f"{REPO_URL}/pull/{number}"
        state["prs"].append(
            {
                "number": number,
                "url": url,
                "state": "OPEN",
                "mergedAt": None,
                "mergeCommit": None,
                "headRefName": branch,
            }
        )
        self._write(state)
        return url

    def set_state(self, number: int, state: str, *, merge_commit: str | None = None) -> None:
        """Flip PR ``number`` to ``MERGED`` or ``CLOSED`` as GitHub would."""
        current = self._read()
        for pr in current["prs"]:
            if pr["number"] == number:
                pr["state"] = state
                if state == "MERGED":
                    pr["mergedAt"] = "2026-01-02T03:04:05Z"
                    pr["mergeCommit"] = {"oid": merge_commit or "f" * 40}
        self._write(current)

    def calls(self) -> list[list[str]]:
        """Every argv gh received, oldest first."""
        log = self.bin_dir / "gh-calls.jsonl"
        if not log.exists():
            return []
        return [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]
