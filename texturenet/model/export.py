"""Export a trained style generator to ONNX, torch.export (.pt2) or TorchScript, for use without texturenet.

The exported graph takes two inputs and returns one output:

* ``image``: float32 (N, 3, H, W) in [0, 1]; N, H and W are dynamic, any H and W >= 1 work;
* ``noise_factor``: float32 scalar; 0 gives the deterministic picture; for a model with the
  strength dial it is also the style strength (0 the photo's shapes in the style's colours, 1 the full style, up to
  the model's max_strength), for older models 1 is what training saw (the graph draws its own
  uniform noise, so results at noise_factor > 0 vary from run to run and are not the numbers PyTorch
  draws for a given --seed);
* ``stylized``: float32 (N, 3, H, W), clamped to [0, 1].

Why a graph of its own: the generator's training and inference paths take a noise source and
Python options that a graph cannot. :class:`StylizeGraph` composes the generator's input plan,
whose padding (reflected, or edge-replicated for tiny photos, chosen by a tensor condition) and
cropping follow the input's shape, with its body, so any size runs and matches the PyTorch
generator with the checkpoint's weights.

Instance norm (Ulyanov et al. 2016/2017) is exported as ONNX InstanceNormalization with the
per-image statistics it uses in PyTorch (``track_running_stats`` is False in texturenet, so
there are no running statistics to confuse; tests/test_export.py checks a batch of different
photos against per-photo PyTorch outputs). Texture models are refused: their input is noise
only, sampled with ``texturenet-stylize --size WxH``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import torch
from torch import Tensor, nn

from .checkpoint import load_generator
from ..errors import TexturenetError
from ..io.files import atomic_path, check_target, refuse_overwriting_inputs
from .pyramid import PyramidBody
from .johnson import JohnsonBody
from .networks import Generator

FORMATS = ("onnx", "pt2", "torchscript")
OPSET = 20
"""ONNX opset of the exported graph (onnxruntime >= 1.17 runs it)."""


class StylizeGraph(nn.Module):
    """The photo -> stylised picture function of a style generator, written to export at any size.

    The generator's own pieces (Ulyanov et al. 2016, Sec. 3.1): its ``InputPlan``, whose
    padding and cropping are index gathers that follow the input's shape, and a copy of its
    body (``PyramidBody``, or ``JohnsonBody`` for --generator johnson, which takes one scale; the
    checkpoint's weights), with the noise drawn inside the graph. Scriptable and exportable.
    """

    def __init__(self, generator: Generator) -> None:
        super().__init__()
        generator.config.require_mode("style", "; export takes style models (photo in, picture out). "
                                      "Sample textures with texturenet-stylize --size WxH")
        self.plan = generator.plan
        johnson = generator.config.generator == "johnson"
        self.levels = 1 if johnson else generator.config.scales
        """Scales of input the body takes: the pyramid's K, the johnson network's one."""
        self.body = (JohnsonBody if johnson else PyramidBody)(generator.config)
        self.body.load_state_dict(generator.state_dict())
        self.body.to(generator.to_rgb.weight)
        self.conditioned = generator.config.max_strength > 0

    def forward(self, image: Tensor, noise_factor: Tensor) -> Tensor:
        """The picture of ``image`` at strength ``noise_factor``, named after the flag: it is the exported graph's input name."""
        inputs: list[Tensor] = []
        for pooled in self.plan.pool(self.plan.pad(image), self.levels):
            noise: Optional[Tensor] = None
            if self.plan.noise_depth > 0:
                noise = torch.rand_like(pooled[:, :1].expand(-1, self.plan.noise_depth, -1, -1)) * noise_factor
            inputs.append(self.plan.with_noise(pooled, noise))
        strengths: Optional[Tensor] = None
        if self.conditioned:
            strengths = noise_factor.to(torch.float32).reshape(1)
        return self.plan.crop(self.body(inputs, strengths).clamp(0, 1), image.shape[2], image.shape[3])


def export_model(model: Path, fmt: str, output: Path) -> Path:
    """Write the style model at ``model`` as ``fmt`` (onnx, pt2 or torchscript) to ``output``."""
    if fmt not in FORMATS:
        raise TexturenetError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    refuse_overwriting_inputs([model], [output])
    check_target(output, "export")
    graph = StylizeGraph(load_generator(model)).eval().requires_grad_(False)
    with atomic_path(output, "export") as temporary:
        _write(graph, fmt, temporary)
    return output


def _write(graph: StylizeGraph, fmt: str, output: Path) -> None:
    """Write ``graph`` as ``fmt`` to ``output`` (a temporary file that export_model puts in place)."""
    if fmt == "torchscript":
        torch.jit.script(graph).save(str(output))
        return
    if fmt == "pt2":
        # An example whose size is not a multiple of 2^(K-1) and a batch of 2: with a multiple,
        # or a batch of 1, torch.export would take the example's padding (none) or batch for
        # constants. Dim.AUTO keeps every dimension symbolic with the guards the graph implies.
        example = (torch.rand(2, 3, 2 * graph.plan.multiple + 5, 3 * graph.plan.multiple + 7), torch.tensor(0.0))
        dims = {axis: torch.export.Dim.AUTO for axis in (0, 2, 3)}
        torch.export.save(torch.export.export(graph, example, dynamic_shapes={"image": dims, "noise_factor": None}), str(output))
        return
    try:
        import onnx  # noqa: F401  (the exporter needs onnx and onnxscript)
        import onnxscript  # noqa: F401
    except ImportError:
        raise TexturenetError("ONNX export needs onnx and onnxscript: pip install 'texturenet[export]'") from None
    example = (torch.rand(1, 3, 2 * graph.plan.multiple, 3 * graph.plan.multiple), torch.tensor(0.0))
    dims = {0: torch.export.Dim("batch"), 2: torch.export.Dim("height"), 3: torch.export.Dim("width")}
    torch.onnx.export(
        graph, example, str(output), dynamo=True, opset_version=OPSET, external_data=False, verbose=False,
        input_names=["image", "noise_factor"], output_names=["stylized"],
        dynamic_shapes={"image": dims, "noise_factor": None},
    )


def max_difference(model: Path, exported: Path, fmt: str, height: int, width: int, batch: int = 2) -> Optional[float]:
    """Largest absolute difference between the exported graph and the PyTorch generator at strength 0.

    Runs on random photos of the given size; None when onnxruntime (for ONNX) is not installed.
    """
    generator = load_generator(model)
    photos = torch.rand(batch, 3, height, width, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        expected = generator(photos, strength=0.0).clamp(0, 1)
    if fmt in ("pt2", "torchscript"):
        program = torch.export.load(str(exported)).module() if fmt == "pt2" else torch.jit.load(str(exported))
        with torch.inference_mode():
            result = program(photos, torch.tensor(0.0))
    else:
        try:
            import onnxruntime
        except ImportError:
            return None
        session = onnxruntime.InferenceSession(str(exported), providers=["CPUExecutionProvider"])
        output = session.run(None, {"image": photos.numpy(), "noise_factor": torch.tensor(0.0).numpy()})[0]
        result = torch.from_numpy(output)
    return float((result - expected).abs().max())
