#!/usr/bin/env bash
# The throughput benchmarks on CUDA, one JSON file each under OUT (README "Performance").
#
#   benchmarks/gpu.sh OUT [DATA]
#
# OUT: folder for the results (created). DATA: the real videos (default: ../shared/data next
# to the repository); the predict benchmark loops DATA/clips/arm_wrestling.mp4 and the precision
# benchmark and the torchrun run read every video under DATA. PYTHON picks the interpreter
# (default: python). Without CUDA it stops at once with one line on stderr, exit 1.
set -euo pipefail

if [[ $# -lt 1 || $# -gt 2 ]]; then
    echo "usage: benchmarks/gpu.sh OUT [DATA]" >&2
    exit 2
fi
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
out=$1
data=${2:-$root/../shared/data}
python=${PYTHON:-python}
export PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}"

if ! "$python" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)'; then
    echo "gpu.sh: CUDA is not available here (torch.cuda.is_available() is false); run it on a GPU machine" >&2
    exit 1
fi
if [[ ! -d $data ]]; then
    echo "gpu.sh: no videos at $data; give the data folder as the second argument" >&2
    exit 1
fi
mkdir -p "$out"

# What ran: GPU, driver-side CUDA, torch, bf16 support; the figures depend on all of them.
"$python" - "$out/device.json" <<'EOF'
import json, sys, torch
props = torch.cuda.get_device_properties(0)
info = {
    "gpu": props.name,
    "gpus": torch.cuda.device_count(),
    "memory_gib": round(props.total_memory / 2**30, 1),
    "torch": torch.__version__,
    "cuda": torch.version.cuda,
    "bf16": torch.cuda.is_bf16_supported(),
}
open(sys.argv[1], "w").write(json.dumps(info, indent=2) + "\n")
print(json.dumps(info))
EOF

run() {
    local name=$1
    shift
    echo "== $name $*" >&2
    "$python" "$@" --json "$out/$name.json"
}

run backbones "$here/bench_backbones.py" --device cuda --batch 64 --iters 20 --warmup 5
for precision in fp32 bf16 fp16; do
    run "predict-$precision" "$here/bench_predict.py" --device cuda --precision "$precision" \
        --video "$data/clips/arm_wrestling.mp4"
done
run precision "$here/bench_precision.py" --device cuda --data "$data"
run train "$here/bench_train.py" --device cuda --batch 16

# Many files over every GPU: one process per GPU, rank 0 writes the merged predictions.
gpus=$("$python" -c 'import torch; print(torch.cuda.device_count())')
echo "== torchrun predict on $gpus GPU(s)" >&2
start=$(date +%s.%N)
status=0
"$python" -m torch.distributed.run --standalone --nproc-per-node "$gpus" -m gkaan_cli predict \
    "$data" --device cuda --precision auto -o "$out/torchrun-predict.jsonl" \
    2>"$out/torchrun-predict.log" || status=$?  # 1 when DATA holds a bad file: still written
if [[ ! -f $out/torchrun-predict.jsonl ]]; then
    echo "gpu.sh: torchrun predict failed (exit $status); see $out/torchrun-predict.log" >&2
    exit 1
fi
end=$(date +%s.%N)
"$python" - "$out" "$gpus" "$start" "$end" "$status" <<'EOF'
import json, sys
from pathlib import Path
out, gpus, start, end = Path(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
records = [json.loads(line) for line in (out / "torchrun-predict.jsonl").read_text().splitlines()]
summary = [line for line in (out / "torchrun-predict.log").read_text().splitlines() if " frames in " in line]
result = {"gpus": gpus, "exit": int(sys.argv[5]), "videos": len(records), "wall_s": end - start, "summary": summary[-1:]}
(out / "torchrun-predict.json").write_text(json.dumps(result, indent=2) + "\n")
print(json.dumps(result))
EOF
echo "gpu.sh: results in $out" >&2
