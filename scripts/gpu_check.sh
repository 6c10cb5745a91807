#!/usr/bin/env bash
# The prepared GPU check: run it first whenever a task is lent a GPU (the device tool), then copy its figures
# into BENCHMARKS.md. Sized to finish in under 8 minutes on one H100; needs torch, torchvision, numpy, pillow
# and tqdm only (no visdom, no network, no ../shared: the loss network is random, which does not change speed).
#
#   bash scripts/gpu_check.sh [OUT_DIR]      (default OUT_DIR: $OUT, else /tmp/gpu_check)
#
# 1. scripts/benchmark.py --cuda: inference up to 3840x2160, training steps at 256 and 512 px, fp32 and
#    --amp --channels_last (two runs; each writes its own JSON and Markdown);
# 2. a 256-px training run of the real script with --amp --channels_last (200 iterations, batch 16), timed;
# 3. a stylise of a 3840x2160 photo with the model it wrote, timed (first call includes CUDA start-up).
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
out="${1:-${OUT:-/tmp/gpu_check}}"
mkdir -p "$out"
exec > >(tee "$out/gpu_check.log") 2>&1

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || true
python -c "import torch, torchvision; print('torch', torch.__version__, 'torchvision', torchvision.__version__, 'cuda', torch.version.cuda)"

stamp() { date +%s.%N; }
took() { python -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f} s')" "$1" "$(stamp)"; }

echo "== 1a. benchmark, fp32"
t=$(stamp)
python scripts/benchmark.py --cuda --sizes 256,512,1024,2048,3840x2160 --train_sizes 256,512 --batch_size 16 \
  --repeats 5 --profile_size 0 --loader_steps 20 --workers 8 --json "$out/bench_fp32.json" --markdown "$out/bench_fp32.md"
echo "benchmark fp32: $(took "$t")"

echo "== 1b. benchmark, --amp --channels_last"
t=$(stamp)
python scripts/benchmark.py --cuda --amp --channels_last --sizes 1024,3840x2160 --train_sizes 256,512 --batch_size 16 \
  --repeats 5 --profile_size 0 --loader_steps 20 --workers 8 --json "$out/bench_amp.json" --markdown "$out/bench_amp.md"
echo "benchmark amp: $(took "$t")"

echo "== 2. training at 256 px, --amp --channels_last"
t=$(stamp)
python scripts/train.py --cuda --amp --channels_last --vgg_weights random --image_size 256 --batch_size 16 \
  --iterations 200 --save_every 0 --log_every 50 --workers 8 --checkpoint_dir "$out/ckpt" --name gpu_check --overwrite
echo "training 200 x 16 at 256 px: $(took "$t")"

echo "== 3. stylise a 3840x2160 photo"
python - "$out/photo_4k.jpg" <<'EOF'
import sys
from PIL import Image
Image.open("texturenet/assets/photos/rocket.jpg").convert("RGB").resize((3840, 2160), Image.BICUBIC).save(sys.argv[1], quality=92)
EOF
for run in 1 2; do
  t=$(stamp)
  python scripts/stylize.py --cuda --model "$out/ckpt/gpu_check.pth" --input "$out/photo_4k.jpg" --output "$out/styled_4k_$run.jpg"
  echo "stylise 3840x2160, process $run (start-up, decode, encode included): $(took "$t")"
done
echo "gpu_check done; figures in $out"
