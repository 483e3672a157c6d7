"""Image types by magic bytes, and how an agent's prompt refers to a task's images."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import uuid4

from vk_node.services.images import prompt_with_images, sniff
from vk_node.store.models import Image

HASH_A = "a" * 64
HASH_B = "b" * 64


def _image(digest: str) -> Image:
    now = datetime.now(UTC)
    return Image(
        id=uuid4(),
        file_path=f"{digest}.png",
        original_name="x.png",
        mime_type="image/png",
        size_bytes=1,
        hash=digest,
        created_at=now,
        updated_at=now,
    )


def test_sniff_knows_the_four_types_by_their_bytes_only() -> None:
    """PNG, JPEG, GIF (87a/89a) and WebP are recognised; HTML, SVG, truncated RIFF are not."""
    assert sniff(b"\x89PNG\r\n\x1a\n...") == "image/png"
    assert sniff(b"\xff\xd8\xff\xe0") == "image/jpeg"
    assert sniff(b"GIF87a..") == sniff(b"GIF89a..") == "image/gif"
    assert sniff(b"RIFF\x00\x00\x00\x00WEBPVP8 ") == "image/webp"
    for other in (b"<html>", b"<svg/>", b"RIFF\x00\x00\x00\x00WAVE", b"RIFF", b""):
        assert sniff(other) is None


def test_the_prompt_points_at_the_worktree_copies() -> None:
    """A relative .vibe-images/ reference becomes the copy's absolute path (once, even when the
    prompt already holds an absolute one); images the prompt does not mention are listed."""
    prompt = f"Fix this: ![a](.vibe-images/{HASH_A}.png) and /wt/.vibe-images/{HASH_A}.png"
    out = prompt_with_images(prompt, "/wt", [_image(HASH_A), _image(HASH_B)])
    assert out.startswith(f"Fix this: ![a](/wt/.vibe-images/{HASH_A}.png) and ")
    assert f" and /wt/.vibe-images/{HASH_A}.png\n" in out
    assert out.endswith(f"Attached images:\n- /wt/.vibe-images/{HASH_B}.png")
    assert prompt_with_images("plain", "/wt", []) == "plain"
    assert prompt_with_images("plain", None, [_image(HASH_A)]) == "plain"
