"""The training photos: the data set of crops and its deterministic sampling.

Any folder tree of images works (MSCOCO's train2014 is one flat folder of 82,783 JPEGs). A file
that cannot be decoded is skipped and reported, never fatal (io/images.py says what "cannot be
decoded" means). Sampling is a pure function of (seed, position in the run), so a resumed run
sees exactly the batches and crops an uninterrupted run would have, whatever the number of workers.
"""
from __future__ import annotations

import random
import signal
from pathlib import Path
from typing import Iterator, Sequence

import torch
from PIL import Image
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Sampler

from .distributed import RankShard
from ..errors import TexturenetError, printable
from ..io.images import IMAGE_EXTENSIONS, UnreadableImage, find_images, load_rgb, resize_short_side, to_tensor
from ..model.rank import Rank


def photo_paths(data_dir: Path) -> list[Path]:
    """The training photos; one clear error for a missing folder or one without images."""
    if not data_dir.is_dir():
        raise TexturenetError(f"--data_dir {printable(data_dir)}: no such folder; give a folder of training photos (e.g. MSCOCO train2014)")
    paths = find_images(data_dir)
    if not paths:
        raise TexturenetError(
            f"--data_dir {printable(data_dir)} holds no images ({', '.join(sorted(IMAGE_EXTENSIONS))}, searched recursively)"
        )
    return paths


class PhotoDataset(Dataset):
    """Training photos: short side resized to ``image_size``, then a random ``image_size`` crop.

    Indexed by ``(index, crop_seed)`` pairs from :class:`RunSampler`. An unreadable file is
    replaced by the next readable one; its index is returned so the trainer can count and
    report it once.
    """

    def __init__(self, paths: Sequence[Path], image_size: int) -> None:
        self.paths = list(paths)
        self.image_size = image_size

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, key: tuple[int, int]) -> tuple[Tensor, list[int]]:
        index, crop_seed = key
        bad: list[int] = []
        for attempt in range(len(self.paths)):
            i = (index + attempt) % len(self.paths)
            try:
                image = load_rgb(self.paths[i], min_side=self.image_size)
            except UnreadableImage:
                bad.append(i)
                continue
            return self.crop(image, random.Random(crop_seed)), bad
        raise TexturenetError("no image in the data set could be decoded")

    def crop(self, image: Image.Image, rng: random.Random) -> Tensor:
        image = resize_short_side(image, self.image_size)
        w, h = image.size
        left, top = rng.randint(0, w - self.image_size), rng.randint(0, h - self.image_size)
        return to_tensor(image.crop((left, top, left + self.image_size, top + self.image_size)))


def collate(samples: list[tuple[Tensor, list[int]]]) -> tuple[Tensor, list[int]]:
    """Stack images; gather the indices of files that failed to decode."""
    return torch.stack([s[0] for s in samples]), [i for s in samples for i in s[1]]


class RunSampler(Sampler):
    """Endless ``(index, crop_seed)`` keys: a fresh permutation each epoch, seeded by (seed, epoch).

    ``start`` is the position in the run (iteration x batch size) to begin at, which is how a
    resumed run continues the exact sequence of an uninterrupted one.
    """

    def __init__(self, size: int, seed: int, start: int = 0) -> None:
        self.size, self.seed, self.start = size, seed, start

    def __iter__(self) -> Iterator[tuple[int, int]]:
        position = self.start
        while True:
            epoch, offset = divmod(position, self.size)
            order = torch.randperm(self.size, generator=torch.Generator().manual_seed(self.seed * 1_000_003 + epoch))
            for index in order[offset:].tolist():
                yield index, self.seed * 1_000_003 ** 2 + position
                position += 1


def _ignore_stop_signals(_worker_id: int) -> None:
    """Ctrl-C and SIGTERM are the main process's to handle (finish the step, save, shut the loader down); workers keep serving it.

    Both reach the workers too: Ctrl-C goes to the terminal's process group, and ``timeout``, systemd and SLURM
    send SIGTERM to the whole group, which would kill a worker and the run with it.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def photo_loader(
    dataset: PhotoDataset, batch_size: int, seed: int, start: int, workers: int, pin_memory: bool, rank: Rank = Rank()
) -> DataLoader:
    """An endless loader of (batch, bad indices), beginning at run position ``start``.

    Under torchrun, ``start`` counts global-batch positions and this rank gets its block of
    each global batch (:class:`~texturenet.training.distributed.RankShard`).
    """
    stream = RunSampler(len(dataset), seed, start)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=RankShard(stream, batch_size, rank) if rank.distributed else stream,
        num_workers=workers,
        collate_fn=collate,
        pin_memory=pin_memory,
        persistent_workers=workers > 0,
        prefetch_factor=4 if workers > 0 else None,
        worker_init_fn=_ignore_stop_signals if workers > 0 else None,
        # Its own RNG for worker seeds: otherwise starting the loader draws from torch's global
        # RNG, which drives the generator's noise, and a resumed run would drift from the original.
        generator=torch.Generator().manual_seed(seed),
    )
