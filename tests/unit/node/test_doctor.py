"""The pure pieces of ``vk-node doctor``: the free-space threshold and the text rendering."""

from __future__ import annotations

from pathlib import Path

from vk_node.doctor import MIN_FREE_BYTES, Check, disk_check, render


def test_disk_space_warns_under_one_gib() -> None:
    """Free space below 1 GiB is a warning with a fix; at 1 GiB and above it is ok."""
    low = disk_check(MIN_FREE_BYTES - 1, Path("/data"))
    assert (low.status, low.detail) == ("warn", "1.0 GiB free in /data")
    assert low.fix
    assert disk_check(512 * 1024**2, Path("/data")).detail == "0.5 GiB free in /data"
    enough = disk_check(MIN_FREE_BYTES, Path("/data"))
    assert (enough.status, enough.fix) == ("ok", "")


def test_render_is_one_line_per_check_then_counts() -> None:
    """Each check is one line (status, name, detail, the fix when there is one), then a count."""
    checks = [
        Check("git", "ok", "git version 2.43.0"),
        Check("gh", "warn", "gh not found on PATH", "install gh"),
        Check("hive h", "fail", "unreachable", "check VK_HIVE_URL"),
    ]
    assert render(checks).splitlines() == [
        "ok    git: git version 2.43.0",
        "warn  gh: gh not found on PATH; fix: install gh",
        "fail  hive h: unreachable; fix: check VK_HIVE_URL",
        "1 ok, 1 warnings, 1 failed",
    ]
