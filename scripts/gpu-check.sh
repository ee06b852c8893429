#!/usr/bin/env bash
# Checks sda's GPU path on an NVIDIA machine, and measures it:
#  1. the card (nvidia-smi);
#  2. the Vulkan loader: the system's; else Debian's packages (libvulkan1 and the GL dispatch
#     libraries), fetched with `apt-get download` and unpacked with `dpkg -x`, or taken from
#     $DEBS, a folder of those .deb files fetched beforehand for a machine without network;
#  3. the NVIDIA Vulkan driver manifest (nvidia_icd.json) → VK_DRIVER_FILES, written from the
#     driver's libGLX_nvidia.so.0 where the machine has the library but no manifest;
#  4. `sda bench --device vulkan` for the Lorenz MLP (B = 64 and 1024) and the paper's U-Net;
#  5. the PyTorch twins on CUDA (fp32 and TF32) when torch with CUDA imports;
#  6. a short Kolmogorov training on the GPU and a scenario-1 posterior picture, when this
#     binary has `sda simulate kolmogorov`;
#  7. the half-precision probe of the U-Net bench.
# Every figure is printed and kept under $OUT (default out/gpu-check). Each step has a time
# limit, so that a hung driver or kernel compilation cannot stall the check; a step that fails
# or times out is reported and the script goes on. Without a Vulkan loader the Vulkan steps are
# skipped with a message. DEADLINE (seconds, optional) bounds the whole script.
#
#   SDA=gpu/bin/sda OUT=/path scripts/gpu-check.sh
#
# SDA: a binary built with `cargo build --release --features vulkan` (default gpu/bin/sda,
# else target/release/sda). Compiled kernels are cached in $OUT/cubecl-cache (seeded from
# gpu/cache if present), so that a later run can carry them back as gpu/cache.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
OUT=${OUT:-$ROOT/out/gpu-check}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
SDA=${SDA:-$([ -x gpu/bin/sda ] && echo gpu/bin/sda || echo target/release/sda)}
SDA=$(cd "$(dirname "$SDA")" && pwd)/$(basename "$SDA")
DEBS=${DEBS:-}
START=$(date +%s)
DEADLINE=${DEADLINE:-0} # seconds for the whole script; 0: no bound beyond each step's
elapsed() { echo $(($(date +%s) - START)); }

# run NAME SECONDS CMD...: runs CMD with a time limit (cut to what is left of DEADLINE when one
# is set), its output in $OUT/NAME.log, echoed.
run() {
    local name=$1 limit=$2
    shift 2
    if [ "$DEADLINE" -gt 0 ]; then
        local left=$((DEADLINE - $(elapsed)))
        [ "$left" -lt "$limit" ] && limit=$left
    fi
    if [ "$limit" -lt 10 ]; then
        echo "=== [$name] SKIPPED: DEADLINE=${DEADLINE}s is spent"
        return 1
    fi
    echo "=== [$name] $* (limit ${limit}s, at $(elapsed)s)"
    timeout --kill-after=10 "$limit" "$@" >"$OUT/$name.log" 2>&1
    local rc=$?
    grep -v '^\s*$' "$OUT/$name.log" | tail -n 40
    case $rc in
        0) echo "=== [$name] ok in $(elapsed)s total" ;;
        124 | 137) echo "=== [$name] TIMED OUT after ${limit}s" ;;
        *) echo "=== [$name] FAILED (exit $rc)" ;;
    esac
    return $rc
}

# 1. The card
echo "=== card"
if command -v nvidia-smi >/dev/null; then
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$OUT/nvidia-smi.txt"
else
    echo "nvidia-smi not found"
fi
echo "sda: $SDA ($(du -h "$SDA" | cut -f1))"

# 2. The Vulkan loader
PACKAGES="libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2"
VULKAN=1
if ldconfig -p 2>/dev/null | grep -q 'libvulkan\.so\.1 '; then
    echo "=== Vulkan loader: the system's"
else
    VK=$(mktemp -d)
    if [ -z "$DEBS" ]; then
        # Debian's packages, downloaded (not installed) into a scratch folder.
        DEBS=$VK/debs
        mkdir -p "$DEBS"
        if ! command -v apt-get >/dev/null; then
            echo "=== Vulkan loader: none on the system and no apt-get to fetch $PACKAGES"
        # shellcheck disable=SC2086
        elif ! (cd "$DEBS" && timeout 120 apt-get download $PACKAGES) >"$OUT/apt-get.log" 2>&1; then
            echo "=== Vulkan loader: none on the system, and \`apt-get download\` failed (package"
            echo "    registry unreachable?); see $OUT/apt-get.log. Fetch the packages on a machine"
            echo "    with network (apt-get download $PACKAGES) and pass their folder as DEBS=..."
        fi
    fi
    n=0
    for deb in "$DEBS"/*.deb; do
        [ -e "$deb" ] || continue
        dpkg -x "$deb" "$VK/root" && n=$((n + 1))
    done
    if [ "$n" -eq 0 ]; then
        VULKAN=0
        echo "=== Vulkan loader: none available: the Vulkan steps are SKIPPED"
    else
        export LD_LIBRARY_PATH="$VK/root/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
        echo "=== Vulkan loader: $n packages from $DEBS unpacked under $VK/root"
    fi
fi

# vk NAME SECONDS CMD...: `run`, for a step that needs Vulkan.
vk() {
    if [ "$VULKAN" -eq 0 ]; then
        echo "=== [$1] SKIPPED: no Vulkan loader"
        return 1
    fi
    run "$@"
}

# 3. The NVIDIA driver manifest
ICD=""
for f in /usr/share/vulkan/icd.d/nvidia_icd.json /etc/vulkan/icd.d/nvidia_icd.json \
    /usr/local/share/vulkan/icd.d/nvidia_icd.json /usr/share/vulkan/icd.d/nvidia_icd.x86_64.json \
    /etc/vulkan/icd.d/nvidia_icd.x86_64.json; do
    [ -f "$f" ] && ICD=$f && break
done
if [ -z "$ICD" ]; then
    ICD=$(timeout 20 find /usr /etc /opt -name 'nvidia_icd*.json' 2>/dev/null | head -n 1)
fi
if [ -z "$ICD" ]; then
    GLX=$(ldconfig -p 2>/dev/null | awk '/libGLX_nvidia\.so\.0 /{print $NF; exit}')
    [ -z "$GLX" ] && GLX=$(timeout 20 find /usr /lib /opt -name 'libGLX_nvidia.so.0' 2>/dev/null | head -n 1)
    if [ -n "$GLX" ]; then
        ICD=$OUT/nvidia_icd.json
        printf '{"file_format_version": "1.0.1", "ICD": {"library_path": "%s", "api_version": "1.3.0"}}\n' \
            "$GLX" >"$ICD"
        echo "=== no nvidia_icd.json on the machine: wrote one for $GLX"
    else
        echo "=== no nvidia_icd.json and no libGLX_nvidia.so.0: the driver has no Vulkan part here"
    fi
fi
if [ -n "$ICD" ]; then
    export VK_DRIVER_FILES=$ICD VK_ICD_FILENAMES=$ICD
    echo "=== VK_DRIVER_FILES=$ICD"
    cat "$ICD"
fi

# Kernel cache (compiled SPIR-V and autotune results): cubecl reads cubecl.toml from the
# working directory, so every sda command runs in $WORK.
CACHE=$OUT/cubecl-cache
mkdir -p "$CACHE"
[ -d "$ROOT/gpu/cache" ] && cp -r "$ROOT/gpu/cache/." "$CACHE/"
WORK=$OUT/work
mkdir -p "$WORK"
cat >"$WORK/cubecl.toml" <<EOF
[compilation]
cache = true

[environment]
path = { directory = "$CACHE" }
EOF
cd "$WORK"

# 4. sda bench on Vulkan
vk bench-lorenz 110 "$SDA" bench --network lorenz --device vulkan --json
vk bench-unet 200 "$SDA" bench --network unet --device vulkan --json

# 5. The PyTorch twins
if python3 -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
    run torch-unet-fp32 75 python3 "$ROOT/benches/pytorch_unet.py" --device cuda --json
    run torch-unet-tf32 75 python3 "$ROOT/benches/pytorch_unet.py" --device cuda --tf32 --json
    run torch-lorenz 40 python3 "$ROOT/benches/pytorch_lorenz.py" --device cuda --json
else
    echo "=== PyTorch with CUDA is not importable here: the PyTorch figures are skipped"
fi

# 6. A short Kolmogorov training on the GPU and a scenario-1 posterior
if "$SDA" simulate --help 2>/dev/null | grep -q kolmogorov; then
    D=$(mktemp -d)/kolmogorov # data and weights stay out of $OUT (hundreds of MB)
    EPOCHS=${KOLMOGOROV_EPOCHS:-60}
    run simulate 60 "$SDA" simulate kolmogorov --output "$D/data" --trajectories 128 \
        --length 32 --burn-in 32 --size 128 --coarsen 2 &&
        vk train 150 "$SDA" train --data "$D/data" --output "$D/run" --device vulkan \
            --epochs "$EPOCHS" --checkpoint-every "$EPOCHS" &&
        run observe 20 "$SDA" observe "$D/data/test.npy" --index 0 --length 16 \
            --operator 'stride:4|coarsen:8' --noise 0.1 --output "$D/obs" &&
        vk assimilate 100 "$SDA" assimilate --model "$D/run" --observations "$D/obs/y.npy" \
            --operator 'stride:4|coarsen:8' --noise 0.1 --length 16 --samples 2 --batch 2 \
            --steps 256 --corrections 1 --tau 0.5 --gamma 0.01 --device vulkan \
            --output "$D/posterior.npy" &&
        run plot 30 "$SDA" plot vorticity "$D/posterior.npy" --truth "$D/obs/truth.npy" \
            --samples 2 --output "$OUT/posterior.png"
    cp "$D/run/stats.csv" "$D/posterior.npy" "$D/obs/truth.npy" "$OUT/" 2>/dev/null
else
    echo "=== this sda has no 'simulate kolmogorov': the training and posterior steps are skipped"
fi

# 7. The half-precision probe (everything in f16; a speed bound, not a setting)
vk bench-unet-f16 90 "$SDA" bench --network unet --device vulkan --dtype f16 --lengths 8,64 \
    --assimilation-states 0 --json

echo "=== done in $(elapsed)s; figures in $OUT/*.log, kernel cache in $CACHE ($(du -sh "$CACHE" | cut -f1))"
