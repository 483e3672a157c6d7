"""The node's one git runner against real git: a clean environment (the user's GIT_* overrides
and the node's secrets stay out), a timeout that kills what git started, and one typed error
carrying git's stderr — for the executor and for the project path checks alike."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from vk_node.errors import Unprocessable
from vk_node.executor.git import GitError, GitRunner, command_env
from vk_node.services.git import validate_repo_path

pytestmark = pytest.mark.asyncio


async def test_user_git_overrides_do_not_reach_git(
    git_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With GIT_DIR, GIT_WORK_TREE and GIT_INDEX_FILE of the node's environment pointing at
    another repository, the runner and the path check still see the repository they were
    given; the node's own settings never reach git either."""
    other = tmp_path / "other"
    other.mkdir()
    await GitRunner(10).check(other, "init", "-q", "-b", "other")
    monkeypatch.setenv("GIT_DIR", str(other / ".git"))
    monkeypatch.setenv("GIT_WORK_TREE", str(other))
    monkeypatch.setenv("GIT_INDEX_FILE", str(other / ".git" / "index"))
    monkeypatch.setenv("VK_NODE_API_KEY", "secret-of-the-node")
    runner = GitRunner(10)
    head = await runner.head(git_repo)
    assert head is not None
    assert await runner.check(git_repo, "symbolic-ref", "--short", "HEAD") == "main"
    root = await asyncio.to_thread(git_repo.resolve)
    assert await validate_repo_path(str(git_repo)) == str(root)
    for program in ("git", "gh"):
        env = command_env(program)
        assert not [name for name in env if name.startswith(("GIT_DIR", "GIT_WORK", "GIT_INDEX"))]
        assert "VK_NODE_API_KEY" not in env
    assert command_env("git")["GIT_TERMINAL_PROMPT"] == "0"
    assert command_env("gh", {"GH_TOKEN": "t", "GIT_DIR": "/x"}) == {
        "GH_TOKEN": "t",
        "GH_PROMPT_DISABLED": "1",
    }


async def test_a_command_past_its_timeout_is_killed_with_its_children(git_repo: Path) -> None:
    """A git command that runs longer than the runner's timeout (here an alias running a shell)
    is a GitError naming the command and the timeout, and the shell it started dies with it."""
    marker = git_repo / "finished"
    runner = GitRunner(0.2)
    started = time.monotonic()
    with pytest.raises(GitError, match=r"git -c did not finish within 0.2 s") as caught:
        await runner.run(git_repo, "-c", f"alias.hang=!sleep 1 && touch {marker}", "hang")
    assert time.monotonic() - started < 0.9
    assert caught.value.exit_code is None
    assert isinstance(caught.value, Unprocessable)  # answered 422 over REST
    await asyncio.sleep(1.2 - (time.monotonic() - started))
    assert not marker.exists()


async def test_failures_are_one_typed_error_with_stderr(
    git_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failing command is a GitError (422) with the command, its exit status and git's own
    words; git missing from PATH is one too; the path check answers its one message."""
    runner = GitRunner(10)
    with pytest.raises(GitError) as caught:
        await runner.check(git_repo, "rev-parse", "--verify", "no-such-ref")
    error = caught.value
    assert isinstance(error, Unprocessable)
    assert error.command == ("git", "rev-parse", "--verify", "no-such-ref")
    assert error.exit_code == 128
    assert error.stderr
    assert error.stderr in error.detail
    assert error.detail.startswith("git rev-parse --verify failed:")
    plain = tmp_path / "plain"
    plain.mkdir()
    with pytest.raises(Unprocessable, match="not the root of a git repository"):
        await validate_repo_path(str(plain))
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(GitError, match="git is not installed on this node"):
        await runner.head(git_repo)


async def test_check_head_keeps_the_first_bytes_and_counts_the_rest(git_repo: Path) -> None:
    """``check_head`` returns exactly the first ``limit_bytes`` of a long output, untouched, and
    the size of all of it; a failing command is the usual GitError; one past the timeout is
    killed like any other."""
    blob = "".join(f"line {i}\n" for i in range(50_000)).encode()
    runner = GitRunner(10)
    oid = await runner.check(git_repo, "hash-object", "-w", "--stdin", stdin=blob)
    head, total = await runner.check_head(git_repo, "cat-file", "blob", oid, limit_bytes=1000)
    assert head == blob[:1000]
    assert total == len(blob)
    whole, size = await runner.check_head(git_repo, "cat-file", "blob", oid, limit_bytes=10**7)
    assert whole == blob
    assert size == len(blob)
    with pytest.raises(GitError, match="git cat-file blob failed:") as caught:
        await runner.check_head(git_repo, "cat-file", "blob", "0" * 40, limit_bytes=10)
    assert caught.value.exit_code == 128
    with pytest.raises(GitError, match=r"did not finish within 0\.2 s"):
        await GitRunner(0.2).check_head(
            git_repo, "-c", "alias.hang=!sleep 1", "hang", limit_bytes=10
        )
