"""The 2019 peer's mosaic generator (texturenet.tools.peer): it loads, keeps a photo's size and range, and its noise follows the seed."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import needs_shared
from texturenet.tools import peer as peer_module
from texturenet.errors import TexturenetError
from texturenet.tools.peer import Peer, PeerGenerator, load_peer


@pytest.fixture(scope="module")
def peer() -> Peer:
    return load_peer(needs_shared("data", "eval", "peer_texturenet_mosaic_2019.pt"))


@pytest.fixture(scope="module")
def photo() -> torch.Tensor:
    """A held-out photo shrunk to 96x64: not square, so a swapped height and width would show."""
    image = Image.open(needs_shared("data", "eval", "photos", "1.jpeg")).convert("RGB").resize((96, 64), Image.BILINEAR)
    return torch.from_numpy(np.array(image)).permute(2, 0, 1).float() / 255


@pytest.fixture
def small_pyramid(monkeypatch: pytest.MonkeyPatch) -> None:
    """Run at 256 instead of the peer's 1024 (same code, 16x less work): these tests are about the noise."""
    monkeypatch.setattr(peer_module, "SIZE", 256)


def test_loads_the_peer_file(peer: Peer) -> None:
    assert isinstance(peer.generator, PeerGenerator)
    assert sum(p.numel() for p in peer.generator.parameters()) > 10_000


def test_stylized_photo_keeps_size_and_range(peer: Peer, photo: torch.Tensor) -> None:
    out = peer.stylize(photo)  # the one full 1024x1024 pass (seconds on a CPU)
    assert out.shape == photo.shape
    assert torch.isfinite(out).all() and out.min() >= 0 and out.max() <= 1
    assert out.std() > 0.05  # a picture, not a flat colour


def test_seed_decides_the_noise(peer: Peer, photo: torch.Tensor, small_pyramid: None) -> None:
    first = peer.stylize(photo, seed=0)
    assert torch.equal(first, peer.stylize(photo, seed=0))
    assert (first - peer.stylize(photo, seed=1)).abs().mean() > 1e-3


def test_no_noise_ignores_the_seed(peer: Peer, photo: torch.Tensor, small_pyramid: None) -> None:
    assert torch.equal(peer.stylize(photo, strength=0.0, seed=0), peer.stylize(photo, strength=0.0, seed=1))


def test_junk_file_is_a_clear_error(tmp_path: Path) -> None:
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"this is not a state dict\n" * 10)
    with pytest.raises(TexturenetError, match="junk.pt"):
        load_peer(junk)


def test_other_state_dict_is_a_clear_error(tmp_path: Path) -> None:
    other = tmp_path / "other.pt"
    torch.save({"conv.weight": torch.zeros(3, 3, 1, 1)}, other)
    with pytest.raises(TexturenetError, match="not the peer's"):
        load_peer(other)
