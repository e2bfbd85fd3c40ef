#!/usr/bin/env bash
# The GPU check: lamp and PyTorch side by side on one machine with a GPU, in under 8 minutes.
#
# Builds nothing there: carry the release binary built elsewhere. Runs lamp info, lamp bench
# --json, a 2-epoch train + eval of fmnist-ae (Fashion-MNIST class 0) and of conv-ae 128 (the
# brick textures of scripts/make_textures.sh), then PyTorch on the same models (scripts/torch_gpu.py:
# eager and one CUDA graph per step), and writes everything into $OUT/gpu_check.json (plus the raw
# files and one log).
#
# Data: $LAMP_GPU_DATA (default .gpu-data) holding fashion-mnist/ (the four IDX .gz files) and
# brick/ (a texture category); where absent, /usr/share/datasets/fashion-mnist and textures/brick.
# The bench runs three times: as lamp chooses (the subgroup core where the device has subgroups,
# hidden maps grouped in fours), then with LAMP_GEMM=tiled and with LAMP_LAYOUT=plain, so the
# cores and the layouts are compared on the device.
# Vulkan: the packages in .gl/*.deb are unpacked first (apt-get download libvulkan1 libegl1
# libglvnd0 libopengl0 libgl1 libglx0 libgles2: the NVIDIA driver's Vulkan needs libglvnd).
# LAMP_GPU_CHECK_QUICK=1 is a smoke test of this script on a machine without a GPU (lavapipe,
# PyTorch on the CPU, fewer steps); its figures mean nothing.
set -u
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/lamp-gpu-check}
mkdir -p "$OUT"
QUICK=${LAMP_GPU_CHECK_QUICK:-0}
LAMP=${LAMP:-$(pwd)/target/release/lamp}
DATA=${LAMP_GPU_DATA:-.gpu-data}
FM=$DATA/fashion-mnist; [ -d "$FM" ] || FM=/usr/share/datasets/fashion-mnist
BRICK=$DATA/brick; [ -d "$BRICK" ] || BRICK=textures/brick
WORK=$(mktemp -d)
STEPS=$WORK/steps.jsonl
: > "$STEPS"
LOG=$OUT/log.txt
: > "$LOG"

# The loader and GL vendor-neutral dispatch (the NVIDIA Vulkan driver lives in libGLX_nvidia).
if ls .gl/*.deb > /dev/null 2>&1; then
  for f in .gl/*.deb; do dpkg -x "$f" /; done
  ldconfig
fi
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp}
nv_icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
if [ -e "$nv_icd" ] && ! "$LAMP" info 2>&1 | grep -qi nvidia; then
  export VK_DRIVER_FILES=$nv_icd
  export __EGL_VENDOR_LIBRARY_FILENAMES=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
fi

# step NAME LIMIT_S COMMAND...: runs it with its output in the log, records rc and wall time.
step() {
  local name=$1 limit=$2
  shift 2
  echo "== $name: $*" | tee -a "$LOG"
  local t0 t1 rc
  t0=$(date +%s.%N)
  timeout "$limit" "$@" >> "$LOG" 2>&1
  rc=$?
  t1=$(date +%s.%N)
  echo "   rc=$rc" | tee -a "$LOG"
  printf '{"step": "%s", "rc": %d, "wall_s": %s}\n' "$name" "$rc" "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')" >> "$STEPS"
}

"$LAMP" info > "$OUT/info.txt" 2>&1
head -12 "$OUT/info.txt"
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,memory.total --format=csv >> "$OUT/info.txt" 2>&1

if [ "$QUICK" = 1 ]; then bench_args=(--quick --fmnist-only); torch_args=(--device cpu --steps 3)
else bench_args=(); torch_args=(); fi

# A GPU idles at low clocks (an H200 at 345 of 1,980 MHz) and a cold measurement reads up to 5x
# slow: warm it up first.
timeout 60 "$LAMP" bench --quick > /dev/null 2>&1
echo "== bench" | tee -a "$LOG"
t0=$(date +%s.%N)
timeout 200 "$LAMP" bench --json "${bench_args[@]}" > "$OUT/bench.json" 2>> "$LOG"
printf '{"step": "bench", "rc": %d, "wall_s": %s}\n' $? "$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.3f", b - a }')" >> "$STEPS"

# Against the bench above (lamp's choice): the tiled workgroup-memory core, and the plain NCHW
# layout (no vec4 reads of grouped maps), training and scoring.
for variant in LAMP_GEMM=tiled LAMP_LAYOUT=plain; do
  echo "== bench $variant" | tee -a "$LOG"
  env "$variant" timeout 150 "$LAMP" bench --json "${bench_args[@]}" > "$OUT/bench-${variant#*=}.json" 2>> "$LOG"
  echo "   rc=$?" | tee -a "$LOG"
done

# Correctness on this device: lamp's gradients and Adam steps against PyTorch (acceptance 1e-3 and
# 1e-4), and the kernel and layer tests (built elsewhere with `cargo test --release --no-run` and
# carried in .gpu-tests/) on this adapter.
step torch-check 150 python3 scripts/torch_check.py --lamp "$LAMP"
for t in .gpu-tests/*; do
  [ -x "$t" ] && step "test-$(basename "$t")" 150 "$t" --test-threads 4
done

step train-fmnist-ae 90 "$LAMP" train fashion-mnist:0 --idx-dir "$FM" --epochs 2 --seed 1 \
  --out "$WORK/fmnist.safetensors"
step eval-fmnist-ae 90 "$LAMP" eval "$WORK/fmnist.safetensors" fashion-mnist:0 --idx-dir "$FM" \
  --out "$WORK/fmnist-eval"
step train-conv-ae-128 120 "$LAMP" train "$BRICK" --epochs 2 --seed 1 --out "$WORK/brick.safetensors"
step eval-conv-ae-128 90 "$LAMP" eval "$WORK/brick.safetensors" "$BRICK" --out "$WORK/brick-eval"

# Cold start of `lamp score MODEL one.png` (conv-ae 128) and what lamp's pipeline cache saves:
# with the driver's own disk cache off (__GL_SHADER_DISK_CACHE=0 for NVIDIA, MESA_SHADER_CACHE_DISABLE
# for Mesa), no lamp cache, then a fresh lamp cache filled by the first run and used by the second.
one=$(find "$BRICK/test/good" -name '*.png' | sort | head -1)
nocache=(env __GL_SHADER_DISK_CACHE=0 MESA_SHADER_CACHE_DISABLE=true)
step score-one-no-cache 60 "${nocache[@]}" LAMP_PIPELINE_CACHE=off "$LAMP" score "$WORK/brick.safetensors" "$one"
step score-one-lamp-cache-filling 60 "${nocache[@]}" LAMP_PIPELINE_CACHE="$WORK/pc" "$LAMP" score "$WORK/brick.safetensors" "$one"
step score-one-lamp-cache-used 60 "${nocache[@]}" LAMP_PIPELINE_CACHE="$WORK/pc" "$LAMP" score "$WORK/brick.safetensors" "$one"
ls -l "$WORK/pc" >> "$LOG" 2>&1
step score-one-driver-cache 60 env LAMP_PIPELINE_CACHE=off "$LAMP" score "$WORK/brick.safetensors" "$one"

# PyTorch scores conv-ae 128 at the batch lamp bench chose (the largest up to 64 the device binds).
big_b=$(python3 -c 'import json,sys; print(next((s["batch"] for s in json.load(open(sys.argv[1]))["scoring"] if s["model"].startswith("conv-ae")), 64))' "$OUT/bench.json" 2>/dev/null || echo 64)
echo "== PyTorch" | tee -a "$LOG"
PYTHONUNBUFFERED=1 timeout 170 python3 scripts/torch_gpu.py "${torch_args[@]}" --big-score-batch "$big_b" > "$OUT/torch.json" 2>> "$LOG"
echo "   rc=$?" | tee -a "$LOG"

python3 - "$OUT" "$WORK" <<'PY'
import json, os, sys
out, work = sys.argv[1], sys.argv[2]
def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except Exception as e:
        return {"unreadable": f"{os.path.basename(path)}: {e}"}
res = {
    "info": open(os.path.join(out, "info.txt")).read(),
    "steps": [json.loads(l) for l in open(os.path.join(work, "steps.jsonl"))],
    "bench": load(os.path.join(out, "bench.json")),
    "bench_tiled_core": load(os.path.join(out, "bench-tiled.json")),
    "bench_plain_layout": load(os.path.join(out, "bench-plain.json")),
    "eval_fmnist_ae": load(os.path.join(work, "fmnist-eval", "metrics.json")),
    "eval_conv_ae_128": load(os.path.join(work, "brick-eval", "metrics.json")),
    "torch": load(os.path.join(out, "torch.json")),
}
# Ratios lamp / PyTorch at the same model and batch (training) and for scoring.
ratios = []
try:
    b, t = res["bench"], res["torch"]
    def torch_run(model, batch):
        return next(r for r in t["runs"] if r["model"].startswith(model) and r["batch"] == batch)
    # The default rows: whole images, steps grouped as lamp groups them.
    grouped = max((s.get("steps_per_submit", 1) for s in b["steps"]), default=1)
    for s in b["steps"]:
        if s["views"] != "whole images" or (s.get("steps_per_submit", 1) == 1 and grouped > 1):
            continue
        model = "conv-ae" if s["model"].startswith("conv-ae") else "fmnist-ae"
        try:
            r = torch_run(model, s["batch"])
        except StopIteration:
            continue
        row = {"what": f"train {s['model']} batch {s['batch']}", "lamp_img_s": s["images_per_s"],
               "torch_eager_img_s": r["train_eager_img_s"],
               "vs_eager": s["images_per_s"] / r["train_eager_img_s"]}
        if "train_graph_img_s" in r:
            row["torch_graph_img_s"] = r["train_graph_img_s"]
            row["vs_graph"] = s["images_per_s"] / r["train_graph_img_s"]
        ratios.append(row)
    for s in b["scoring"]:
        model = "conv-ae" if s["model"].startswith("conv-ae") else "fmnist-ae"
        r = next(r for r in t["runs"] if r["model"].startswith(model) and r["score_batch"] == s["batch"])
        ratios.append({"what": f"score {s['model']} batch {s['batch']}", "lamp_img_s": s["images_per_s"],
                       "torch_img_s": r["score_img_s"], "vs_torch": s["images_per_s"] / r["score_img_s"]})
except Exception as e:
    ratios.append({"error": repr(e)})
res["ratios"] = ratios
with open(os.path.join(out, "gpu_check.json"), "w") as f:
    json.dump(res, f, indent=1)
print(json.dumps(res["steps"]))
for r in ratios:
    print(json.dumps(r))
for k in ("eval_fmnist_ae", "eval_conv_ae_128"):
    m = res[k]
    print(k, {x: m.get(x) for x in ("image_auroc", "pixel_auroc")} if isinstance(m, dict) else m)
PY
rm -rf "$WORK"
