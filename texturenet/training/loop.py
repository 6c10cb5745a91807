"""The training loop: Adam on the generator against the perceptual loss (Ulyanov et al. 2016, Sec. 3.2).

Style mode: each iteration takes a batch of photo crops x, computes y = g(x, z) with fresh
noise z, and minimises style_weight * L_style(y, s) + content_weight * L_content(y, x)
+ tv_weight * TV(y) (paper Eq. 5 plus a smoothness term). Texture mode: y = g(z) and no
content term (Eq. 4). Everything about a run lives in :class:`TrainConfig`.

The shape is nanoGPT's train.py: :meth:`Trainer.__init__` checks the inputs, :meth:`Trainer._build`
builds everything the loop uses (a :class:`_Run`), and :meth:`Trainer._loop` steps, logs, saves,
samples and stops in sight of each other.

Nothing is lost: checkpoints are written atomically and carry the optimiser, schedule,
iteration and random state, so ``--resume`` reaches the weights an uninterrupted run would
(training/resume.py); SIGINT/SIGTERM finish the current step, save, and say how to resume. A run never
writes over another run's files, a diverged run writes nothing, and a checkpoint that its folder
cannot take (a full disk) is kept elsewhere, with the ``--resume`` that continues from it.
"""
from __future__ import annotations

import signal
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Optional, Sequence

import torch
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from ..model.checkpoint import make_checkpoint, save_atomic
from ..config import TrainConfig
from .data import PhotoDataset, photo_loader, photo_paths
from ..devices import cuda_device
from .distributed import any_rank, process_group, rank_from_environment
from ..errors import TexturenetError, first_few, printable
from ..io.images import UnreadableImage, load_rgb, load_style, resize_short_side, to_tensor
from ..loss.terms import DIVERSITY, TERMS, PerceptualLoss
from .monitor import FileMonitor, Monitor
from ..model.networks import Generator, make_generator
from ..model.noise import ShardedNoise
from ..io.plots import sample_grid
from .resume import Resume, file_digest
from .run import (RunLock, check_space, check_writable, newest_run_file, other_runs_in_the_way, remove_stale_temporaries,
                  run_file, run_files)


def mixed_precision(device: torch.device, amp: bool, dtype: str = "auto") -> tuple[torch.dtype, torch.amp.GradScaler]:
    """--amp's autocast dtype and gradient scaler on ``device`` (the scaler is a no-op unless needed).

    bfloat16 keeps float32's range, so it needs no loss scaling; ``dtype`` "auto" takes it where
    the device has it, and GPUs without it get float16. float16's narrow range would flush
    small gradients to zero, so it comes with a GradScaler (dynamic loss scaling).
    """
    if dtype == "auto":
        dtype = "bfloat16" if device.type == "cpu" or torch.cuda.is_bf16_supported() else "float16"
    fp16 = dtype == "float16"
    return (torch.float16 if fp16 else torch.bfloat16), torch.amp.GradScaler(device.type, enabled=amp and fp16)


@dataclass
class _Run:
    """Everything :meth:`Trainer._build` makes for :meth:`Trainer._loop`."""

    generator: Generator
    """The bare generator: checkpoints and samples use it."""
    model: torch.nn.Module
    """What the training step calls: the generator, or its DDP / compiled wrapper sharing its parameters."""
    loss: PerceptualLoss
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.StepLR
    autocast_dtype: torch.dtype
    scaler: torch.amp.GradScaler
    """float16's dynamic loss scaling (a no-op otherwise: :func:`mixed_precision`)."""
    start: int
    """Iterations already done (resumed from a checkpoint)."""
    val_inputs: Optional[torch.Tensor]
    """The fixed photos of the sample grid (None: texture mode, or --val_images 0)."""
    dataset: Optional[PhotoDataset]
    """The training photos (None in texture mode)."""
    batches: Iterator


class Trainer:
    """Runs one training; validates every input before building any model."""

    def __init__(self, config: TrainConfig, monitors: Sequence[Monitor] = ()) -> None:
        self.config = config
        self.name = config.run_name
        self.paths = photo_paths(Path(config.data_dir)) if config.mode == "style" else []
        self.style = load_style(Path(config.texture), config.style_size)
        cuda_device(config.cuda, "train")  # refused without CUDA before torchrun's variables are read
        self.rank = rank_from_environment(config.cuda)  # torchrun's; else rank 0 of 1 (the group is joined in run())
        self.noise = ShardedNoise(self.rank)
        """Training noise from torch's seeded global RNG: each rank keeps its rows of the global batch's (training/distributed.py)."""
        self.device = cuda_device(config.cuda, "train", self.rank.local_rank)
        self.lock: Optional[RunLock] = None
        self.replaced: list[Path] = []
        if self.rank.is_main:
            check_writable(config.checkpoint_dir)
        self.resume = Resume.of(config)
        self.resume_from = self.resume.path if self.resume else None
        self.history: list[dict[str, float]] = []
        if config.viz:  # checks the server now, before any model is built; visdom is imported only here
            from .monitor import VisdomMonitor

            monitors = [*monitors, VisdomMonitor(config.viz_server, config.viz_port, config.viz_env, self.history)]
        # Only rank 0 writes pictures, plots and logs.
        self.monitors: list[Monitor] = [FileMonitor(config.checkpoint_dir, self.history), *monitors] if self.rank.is_main else []
        self.bad_files: set[int] = set()
        self._stop_signal: Optional[str] = None
        self._watched: list[str] = []
        """The loss terms :meth:`_watch` follows, in the order of :attr:`_bad_terms`."""
        self._first_bad: Optional[torch.Tensor] = None
        """On the device: the first iteration whose loss terms were not all finite (0: none yet)."""
        self._bad_terms: Optional[torch.Tensor] = None
        """On the device: which of :attr:`_watched` were not finite at that iteration."""

    def _earlier_run(self) -> list[Path]:
        """The checkpoints of an earlier run of this name that ``--overwrite`` replaces; refuses to touch them otherwise.

        A finished ``NAME.pth`` may hold hours of GPU time, so a new run never writes over it, or
        over a stopped run's ``NAME_iterN.pth``, unless told to; a ``--resume`` of another run's
        checkpoint under this name is a new run here too. Files of other runs that this run's
        names would hit (see :func:`~texturenet.training.run.run_files`) are never replaced, not even with --overwrite.
        """
        folder = self.config.checkpoint_dir
        if in_the_way := other_runs_in_the_way(folder, self.name, self.config.iterations):
            path, owner = in_the_way[0]
            raise TexturenetError(f"run {self.name!r} could write over {path}, which holds another run ({owner!r}); "
                                  "choose another --name or --checkpoint_dir")
        existing = run_files(folder, self.name)
        if not existing or (self.resume is not None and self.resume.continues(self.config)):
            return []
        if not self.config.overwrite:
            listed = first_few([p.name for p in existing])
            if self.resume is not None:
                raise TexturenetError(
                    f"run {self.name!r} already has checkpoints in {folder} ({listed}), and --resume {self.resume.path} is not "
                    f"one of them (it holds run {self.resume.owner!r}): pass --name OTHER to "
                    f"continue it as a run beside them, or --overwrite to replace run {self.name!r}"
                )
            raise TexturenetError(
                f"run {self.name!r} already has checkpoints in {folder} ({listed}); pass --resume auto to "
                "continue it, --name OTHER to start a new run beside it, or --overwrite to replace it"
            )
        return existing

    # -- the run -----------------------------------------------------------------------------

    def run(self) -> Path:
        """Train, writing checkpoints along the way; returns the final checkpoint's path."""
        with process_group(self.rank, self.config.cuda):
            try:
                if self.rank.is_main:  # under the lock, so that no other run of this name writes between check and run
                    self.lock = RunLock(self.config.checkpoint_dir, self.name)
                    self.replaced = self._earlier_run()
                    if stale := remove_stale_temporaries(self.config.checkpoint_dir, self.name):
                        tqdm.write(f"removed {stale} temporary file(s) that an interrupted save left in {self.config.checkpoint_dir}")
                return self._loop(self._build())
            finally:
                if self.lock is not None:
                    self.lock.release()

    def _build(self) -> _Run:
        """Everything the loop needs, built once and checked before the first step (nanoGPT's shape: build, then loop)."""
        config = self.config
        torch.manual_seed(config.seed)
        generator = make_generator(config.generator).to(self.device)
        loss = PerceptualLoss(config.loss).to(self.device)
        loss.set_style(self.style.to(self.device))
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # fixed crop size: pick the fastest convolution algorithms once
        if config.channels_last:
            generator.to(memory_format=torch.channels_last)
            loss.to(memory_format=torch.channels_last)
        if config.compile:  # the loss network here; the generator is wrapped below
            loss.network = torch.compile(loss.network)
        autocast_dtype, scaler = mixed_precision(self.device, config.amp, config.amp_dtype)
        optimizer = torch.optim.Adam(generator.parameters(), lr=config.lr)
        scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=config.lr_step, gamma=config.lr_decay)
        if self.rank.is_main:  # weights, Adam's two moments, and ~1 MiB for the pictures and history
            check_space(config.checkpoint_dir, 3 * sum(p.numel() * p.element_size() for p in generator.parameters()) + 2**20)
        start = 0
        if self.resume is not None:
            start, history = self.resume.restore(config, generator, optimizer, scheduler, scaler)
            self.history.extend(history)  # in place: the monitors hold this list
        for path in self.replaced:  # --overwrite: the earlier run's files go once everything has been checked
            path.unlink(missing_ok=True)
        if self.replaced:
            tqdm.write(f"--overwrite: removed {len(self.replaced)} checkpoint(s) of the earlier run {self.name!r}")
        model: torch.nn.Module = generator
        if self.rank.distributed:  # averages gradients over ranks; saving and samples use the bare generator
            model = DistributedDataParallel(generator, device_ids=[self.rank.local_rank] if config.cuda else None)
        if config.compile:  # the compiled wrapper shares the generator's parameters; checkpoints save the bare one
            model = torch.compile(model)

        held_out, train_paths = self._split_validation()
        val_inputs = self._validation_inputs(held_out)
        dataset, batches = None, iter(())
        if config.mode == "style":
            dataset = PhotoDataset(train_paths, config.image_size)
            batches = iter(photo_loader(dataset, config.batch_size, config.seed, start * config.batch_size * self.rank.world_size,
                                        config.workers, self.device.type == "cuda", self.rank))  # from the global batch stream's position
        run = _Run(generator, model, loss, optimizer, scheduler, autocast_dtype, scaler, start, val_inputs, dataset, batches)
        for monitor in self.monitors:
            monitor.start(self.name, config.to_dict())
        if self.rank.is_main:
            tqdm.write(self._summary(generator, train_paths, held_out, start))
        return run

    def _loop(self, run: _Run) -> Path:
        """Train from ``run.start`` to ``--iterations``, with checkpoints and samples along the way; returns the final checkpoint.

        SIGINT/SIGTERM are handled until the final save is done: one arriving there lets it finish
        (the model, its sample grid, plot and loss table), and the run ends complete, saying so.
        """
        config = self.config
        iteration = run.start
        bar = tqdm(total=config.iterations, initial=iteration, desc=self.name, unit="it", dynamic_ncols=True, disable=not self.rank.is_main)
        tick, tick_iteration = time.perf_counter(), iteration
        stopping = False
        with self._stop_on_signals():
            while iteration < config.iterations and not stopping:
                terms = self._step(run)
                run.scheduler.step()
                iteration += 1
                self._watch(terms, iteration)
                bar.update(1)
                if iteration % config.log_every == 0 or iteration == config.iterations:
                    self._stop_if_diverged(run, iteration)  # before the history takes any non-finite value
                    now = time.perf_counter()
                    speed = (iteration - tick_iteration) * config.batch_size * self.rank.world_size / max(now - tick, 1e-9)
                    tick, tick_iteration = now, iteration
                    self._log(bar, iteration, terms, run.optimizer.param_groups[0]["lr"], speed)
                if config.save_every and iteration % config.save_every == 0 and iteration < config.iterations:
                    self._save(run, iteration, run_file(config.checkpoint_dir, self.name, iteration))
                elif config.viz and iteration % config.viz_every == 0 and iteration < config.iterations:
                    self._stop_if_diverged(run, iteration)
                    self._show_samples(run, iteration)
                stopping = any_rank(self._stop_signal is not None, self.rank, self.device)  # all ranks stop at one step
            bar.close()
            if stopping:
                signal_name = self._stop_signal or "SIGTERM"  # a rank told to stop by another rank
                path = run_file(config.checkpoint_dir, self.name, iteration)
                self._save(run, iteration, path)
                if self.rank.is_main:
                    tqdm.write(
                        f"stopped by {signal_name} after iteration {iteration}; saved {path}. "
                        f"Resume with the same command plus --resume {path} (or --resume auto)"
                    )
                self._close()
                raise SystemExit(130 if signal_name == "SIGINT" else 143)
            final = run_file(config.checkpoint_dir, self.name)
            self._save(run, iteration, final)
        if self.rank.is_main:
            if self.bad_files:
                tqdm.write(f"skipped {len(self.bad_files)} unreadable image file(s) in total")
            tqdm.write(f"saved {final}")
            if self._stop_signal:
                tqdm.write(f"{self._stop_signal} arrived after the last iteration, during the final save, which was finished "
                           "first: the run is complete")
        self._close()
        return final

    def _step(self, run: _Run) -> dict[str, torch.Tensor]:
        """One optimiser step on the next batch (style mode) or on fresh noise (texture mode); returns the loss terms."""
        config = self.config
        with torch.autocast(self.device.type, dtype=run.autocast_dtype, enabled=config.amp):
            if config.mode == "style":
                photos, bad = next(run.batches)
                self._report_bad(run, bad)
                photos = photos.to(self.device, non_blocking=True)
                if config.channels_last:
                    photos = photos.contiguous(memory_format=torch.channels_last)
                batch = run.loss.batch(photos, self._strengths(len(photos)))  # each photo as often as the loss terms need
                output = run.model(batch.photos, noise=self.noise, strength=1.0 if batch.strength is None else batch.strength)
                terms = run.loss(output, batch)
            else:
                output = run.model(size=(config.image_size, config.image_size), batch=config.batch_size, noise=self.noise)
                terms = run.loss(output)
        run.optimizer.zero_grad(set_to_none=True)
        run.scaler.scale(terms["total"]).backward()
        run.scaler.step(run.optimizer)
        run.scaler.update()
        return terms

    def _strengths(self, n: int) -> Optional[torch.Tensor]:
        """(n,) style strengths for this rank's photos, each 0 or max_strength (or max_strength / 2 with ``dial_points`` 3);
        None without the strength dial.

        The strength scales each photo's noise and its style term and conditions the generator's
        norms (generator.InstanceNorm), so one model learns a range of style weights (Babaeizadeh &
        Ghiasi 2020, Sec. 3, who sample the loss weight per step). Only the two ends are drawn, half
        the photos each, and the dial's middle interpolates between them: measured on HED VGG16 and
        mosaic (300 CPU iterations, 6 held-out photos), strengths drawn uniformly taught a faint dial
        (style loss 0.157 at 0 to 0.126 at 1), the two ends a strong, even one (0.554, 0.423 at 0.5,
        0.237 at 1, 0.065 at 2). Exactly half of every global batch gets each end (an odd batch's extra
        photo goes to either end by a coin), in a random order: drawn independently, a batch of 2 was all
        strength 0 a quarter of the time. With ``dial_points`` 3 (for ``--fade``, whose untrained middle
        is a washed-out blend of the photo and the change: docs/QUALITY.md) a third each gets 0, the
        middle and the top. Drawn from torch's seeded global RNG (checkpointed, so a resumed run draws
        what an uninterrupted one would), for the global batch, each rank keeping its rows.
        """
        top = self.config.generator.max_strength
        if not top:
            return None
        total = n * self.rank.world_size
        if self.config.dial_points == 2:
            extra = int(torch.randint(2, ())) if total % 2 else 0  # which end an odd batch's extra photo goes to
            ends = (torch.arange(total) < total // 2 + extra).float() * top  # (total + 1) // 2 at top when extra, else total // 2
        else:  # 0, the middle and the top in turn from a random start, so a batch smaller than 3 still meets all of them
            start = int(torch.randint(3, ()))
            ends = ((torch.arange(total) + start) % 3).float() * (top / 2)
        ends = ends[torch.randperm(total)][self.rank.block(n)]
        return ends.to(self.device, non_blocking=True)

    # -- data --------------------------------------------------------------------------------

    def _split_validation(self) -> tuple[list[Path], list[Path]]:
        """Fixed photos for the sample grid: held out when the data set can spare them (>= 10x)."""
        n = self.config.val_images
        if not self.paths or n == 0:
            return [], self.paths
        if len(self.paths) >= 10 * n:
            return self.paths[:n], self.paths[n:]
        return self.paths[:n], self.paths  # too few photos to spare: shown, but also trained on

    def _validation_inputs(self, paths: list[Path]) -> Optional[torch.Tensor]:
        size = self.config.image_size
        crops = []
        for path in paths:
            try:
                image = resize_short_side(load_rgb(path), size)
            except UnreadableImage as error:
                if self.rank.is_main:
                    tqdm.write(f"skipping unreadable validation image {printable(path)} ({error})")
                continue
            w, h = image.size
            left, top = (w - size) // 2, (h - size) // 2
            crops.append(to_tensor(image.crop((left, top, left + size, top + size))))
        return torch.stack(crops).to(self.device) if crops else None

    def _report_bad(self, run: _Run, bad: list[int]) -> None:
        assert run.dataset is not None
        for index in bad:
            if index not in self.bad_files:
                self.bad_files.add(index)
                if self.rank.is_main:  # other ranks count their own; only rank 0 logs
                    tqdm.write(f"skipping unreadable image {printable(run.dataset.paths[index])} ({len(self.bad_files)} so far)")

    # -- reporting and saving ----------------------------------------------------------------

    def _summary(self, generator: Generator, train_paths: list[Path], held_out: list[Path], start: int) -> str:
        params = sum(p.numel() for p in generator.parameters())
        data = (
            f"{len(train_paths)} photos from {self.config.data_dir}"
            + (f" ({len(held_out)} held out for samples)" if held_out and held_out[0] not in train_paths else "")
            if self.config.mode == "style"
            else "noise only (texture mode)"
        )
        where = f"resuming at iteration {start}" if start else "from scratch"
        world = self.rank.world_size
        ranks = f" x {world} processes = {self.config.batch_size * world}" if world > 1 else ""
        return (
            f"training {self.name!r} ({self.config.mode} mode, {self.config.generator.generator} generator, {params:,} parameters) "
            f"on {self.device.type}: "
            f"{data}; {self.config.iterations} iterations x {self.config.batch_size}{ranks}, {where}"
        )

    def _log(self, bar: tqdm, iteration: int, terms: dict[str, torch.Tensor], lr: float, speed: float) -> None:
        values = {k: float(v.detach()) for k, v in terms.items()}  # the only host-device sync
        self.history.append({"iteration": iteration, **values, "lr": lr})
        bar.set_postfix({k: f"{values[k]:.3g}" for k in ("content", "style", "total") if k in values}, refresh=False)
        for monitor in self.monitors:
            monitor.log(iteration, values, lr, speed)

    @torch.no_grad()
    def _samples(self, run: _Run) -> Optional[torch.Tensor]:
        """Outputs for the fixed validation photos (or fixed texture noise), with fixed noise.

        With the strength dial, a row per strength: 0, 1 and max_strength (the dial's range, as training
        shapes it). None in style mode without validation photos (``--val_images 0``).
        """
        generator, val_inputs = run.generator, run.val_inputs
        if self.config.mode == "style" and val_inputs is None:
            return None

        def fixed_noise() -> ShardedNoise:
            return ShardedNoise(self.rank, torch.Generator(device=self.device).manual_seed(self.config.seed))

        was_training = generator.training
        generator.eval()
        size = self.config.image_size
        if val_inputs is not None:
            top = self.config.generator.max_strength
            strengths = sorted({0.0, min(1.0, top), top}) if top else [1.0]
            grid = sample_grid(val_inputs, *(generator(val_inputs, noise=fixed_noise(), strength=s) for s in strengths))
        else:
            grid = sample_grid(None, generator(size=(size, size), batch=4, noise=fixed_noise()))
        generator.train(was_training)
        return grid

    def _show_samples(self, run: _Run, iteration: int) -> None:
        grid = self._samples(run)
        for monitor in self.monitors:
            if grid is not None:
                monitor.samples(iteration, grid)

    def _save(self, run: _Run, iteration: int, path: Path) -> None:
        self._stop_if_diverged(run, iteration, weights=True)  # on every rank: the check is collective
        if not self.rank.is_main:
            return  # one set of checkpoints per run: rank 0's (all ranks hold the same weights)
        train_state = {
            "config": self.config.to_dict(),
            "optimizer": run.optimizer.state_dict(),
            "scheduler": run.scheduler.state_dict(),
            "scaler": run.scaler.state_dict(),  # float16 loss scale and growth count; {} when not scaling
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if self.device.type == "cuda" else [],
            "texture_sha256": file_digest(Path(self.config.texture)),
            "history": self.history,
            "bad_files": len(self.bad_files),
        }
        self._write(make_checkpoint(run.generator, self.name, iteration, train_state), path)
        self._show_samples(run, iteration)
        for monitor in self.monitors:
            monitor.checkpoint(iteration, path)

    def _write(self, checkpoint: dict[str, Any], path: Path) -> None:
        """Write ``checkpoint`` to ``path``; when that fails (a full disk), keep it elsewhere and stop, saying where.

        The run's state is in memory only, so a failed write must not end the run with nothing
        resumable. It goes to a new private folder in the temporary directory ($TMPDIR, usually
        another file system than the checkpoints'), and the error line gives the exact --resume.
        No retry in place first: a full disk seldom frees itself within seconds. Only when that
        fails too does the line say what is lost, and point to the newest checkpoint that exists.
        """
        try:
            save_atomic(checkpoint, path)
            return
        except TexturenetError as error:
            failed = str(error)
        iteration = checkpoint["iteration"]
        try:
            folder = Path(tempfile.mkdtemp(prefix="texturenet-rescue-"))
        except OSError as error:
            problem = error.strerror or str(error)
        else:
            try:
                save_atomic(checkpoint, folder / path.name)
            except TexturenetError as error:
                folder.rmdir()  # empty: save_atomic leaves nothing behind
                problem = str(error)
            else:
                raise TexturenetError(f"{failed}; the run's state at iteration {iteration} is kept in {folder / path.name} instead: "
                                      f"free some space, then continue with the same command plus --resume {folder / path.name}")
        try:
            newest = newest_run_file(self.config.checkpoint_dir, self.name)
            left = f"continue from the newest checkpoint with the same command plus --resume {newest}"
        except TexturenetError:
            left = "no checkpoint of this run exists to resume from"
        raise TexturenetError(f"{failed}; keeping it in {tempfile.gettempdir()} failed too ({problem}), so the state at iteration "
                              f"{iteration} is lost: {left}")


    def _watch(self, terms: dict[str, torch.Tensor], iteration: int) -> None:
        """Note, on the device, the first iteration whose loss terms are not all finite (no host-device sync; see :meth:`_stop_if_diverged`)."""
        bad = ~torch.isfinite(torch.stack([value.detach().float() for value in terms.values()]))
        if self._first_bad is None or self._bad_terms is None:
            self._watched = list(terms)
            self._first_bad = torch.zeros((), dtype=torch.long, device=bad.device)
            self._bad_terms = torch.zeros_like(bad)
        newly = (self._first_bad == 0) & bad.any()
        self._first_bad = torch.where(newly, iteration, self._first_bad)
        self._bad_terms = torch.where(newly, bad, self._bad_terms)

    def _stop_if_diverged(self, run: _Run, iteration: int, weights: bool = False) -> None:
        """Stop the run, writing nothing more, once a loss term (or, with ``weights``, a weight) is NaN or infinite.

        Adam turns one non-finite loss into non-finite weights at once, and every later checkpoint and
        sample grid would carry them, replacing the last good model with a blank one. Reading each
        step's loss back from the device would cost a host-device sync per step, so :meth:`_watch`
        keeps the first bad iteration on the device, and it is read only here: at log steps (which
        read the losses anyway) and before anything is written, when the weights are checked too
        (finite losses can still give non-finite gradients). The last checkpoint written stays as it was.
        """
        first = int(self._first_bad) if self._first_bad is not None else 0
        broken = weights and not bool(torch.stack([torch.isfinite(value).all() for value in run.generator.state_dict().values()
                                                   if value.is_floating_point()]).all())  # buffers too
        if not any_rank(bool(first) or broken, self.rank, self.device):
            return
        named: list[str] = []
        if first and self._bad_terms is not None:
            bad = [name for name, flag in zip(self._watched, self._bad_terms.tolist()) if flag]
            named = [name for name in (*TERMS[1:], DIVERSITY) if name in bad] or bad  # the weighted terms, not each style layer's
            what = f"the {' and '.join(named)} loss{'es were' if len(named) > 1 else ' was'} NaN or infinite at iteration {first}"
        elif broken:
            what = f"the weights became NaN or infinite by iteration {iteration}"
        else:
            what = f"another process's loss was NaN or infinite by iteration {iteration}"
        if first and named == ["total"]:  # each term finite, their weighted sum not
            cause = "loss weights too large for float32 (--style_weight, --content_weight, --tv_weight)"
        elif first == run.start + 1:  # no step taken yet: the learning rate cannot be the cause
            cause = ("the loss network's weights (--vgg_weights, TEXTURENET_VGG_WEIGHTS), the style image or the resumed weights, "
                     "as no step had been taken yet")
        else:
            cause = f"a learning rate too high (--lr {self.config.lr:g}: try 10x lower)" + (
                f", or the optimizer state resumed from {self.resume_from}" if self.resume_from else "")
        try:
            kept = newest_run_file(self.config.checkpoint_dir, self.name)
            left = f"the last checkpoint, {kept}, is kept as it was"
        except TexturenetError:
            left = "no checkpoint of this run was written"
        raise TexturenetError(f"training diverged: {what}; likely cause: {cause}; stopped without writing anything: {left}")

    def _close(self) -> None:
        for monitor in self.monitors:
            monitor.close()

    @contextmanager
    def _stop_on_signals(self) -> Iterator[None]:
        """SIGINT/SIGTERM: let the current step finish, then save and stop (see :meth:`run`)."""

        def handler(signum: int, _frame: Any) -> None:
            self._stop_signal = signal.Signals(signum).name

        previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for s, h in previous.items():
                signal.signal(s, h)
