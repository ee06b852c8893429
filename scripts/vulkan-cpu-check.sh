#!/usr/bin/env bash
# The Vulkan path executed without a GPU, on Mesa's software Vulkan device (lavapipe):
#  1. installs Debian's mesa-vulkan-drivers if no lavapipe manifest (lvp_icd*.json) is found
#     (BACKPORTS=1: from bookworm-backports, Mesa 25);
#  2. builds with --features $FEATURE (default wgpu: WGSL kernels that wgpu's naga translates
#     to SPIR-V; FEATURE=vulkan: cubecl's own SPIR-V compiler) in target/$FEATURE;
#  3. points the Vulkan loader at lavapipe only (VK_DRIVER_FILES, VK_ICD_FILENAMES) with
#     XDG_RUNTIME_DIR set, and runs tests/vulkan.rs: the MLP's and a small U-Net's ε and input
#     VJP, and a short sampling run, on the Vulkan device against the CPU (largest differences
#     printed);
#  4. `sda sample --device vulkan` against `--device cpu` on a tiny model, through the CLI;
#  5. `--device vulkan` with no Vulkan driver at all: must be a one-line error.
#
#   scripts/vulkan-cpu-check.sh            # FEATURE=vulkan BACKPORTS=1 for the alternatives
set -uo pipefail
cd "$(dirname "$0")/.."
FEATURE=${FEATURE:-wgpu}
TARGET=target/$FEATURE
OUT=${OUT:-out/vulkan-cpu-check}
mkdir -p "$OUT"

manifest() { ls /usr/share/vulkan/icd.d/lvp_icd*.json /usr/share/vulkan/icd.d/lvp_icd.json 2>/dev/null | head -1; }
if [ -z "$(manifest)" ]; then
    echo "== installing mesa-vulkan-drivers (lavapipe)"
    apt-get update -qq
    if [ "${BACKPORTS:-0}" = 1 ]; then
        echo "deb http://deb.debian.org/debian bookworm-backports main" > /etc/apt/sources.list.d/backports.list
        apt-get update -qq
        apt-get install -y -qq -t bookworm-backports mesa-vulkan-drivers >/dev/null
    else
        apt-get install -y -qq mesa-vulkan-drivers >/dev/null
    fi
fi
ICD=$(manifest)
[ -n "$ICD" ] || { echo "no lavapipe manifest found"; exit 1; }
echo "== lavapipe: $ICD ($(dpkg-query -W -f '${Version}' mesa-vulkan-drivers 2>/dev/null))"
export VK_DRIVER_FILES=$ICD VK_ICD_FILENAMES=$ICD
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-$(mktemp -d)}

echo "== build (--features $FEATURE, $TARGET)"
nice cargo build --release --features "$FEATURE" --target-dir "$TARGET" 2>&1 | tail -1
SDA=$TARGET/release/sda

echo "== networks and sampling on Vulkan (lavapipe) against the CPU"
nice cargo test --release --features "$FEATURE" --target-dir "$TARGET" --test vulkan \
    -- --ignored --nocapture --test-threads 1 2>&1 | grep -E 'MLP|U-Net|sampling|test result|panicked|error'
STATUS=${PIPESTATUS[0]}

echo "== sda sample --device vulkan against --device cpu"
D=$OUT/cli
rm -rf "$D"
$SDA simulate lorenz63 --output "$D/data" --trajectories 20 --length 40 --burn-in 50 >/dev/null
$SDA train --data "$D/data" --output "$D/run" --width 32 --depth 2 --epochs 4 --batch-size 8 \
    --engine burn --precision f32 >/dev/null
for dev in cpu vulkan; do
    $SDA sample --model "$D/run" --length 17 --samples 4 --steps 16 --precision f32 --seed 1 \
        --device $dev --output "$D/x-$dev.npy" > "$D/log-$dev.txt" && head -1 "$D/log-$dev.txt"
done
python3 - "$D/x-cpu.npy" "$D/x-vulkan.npy" <<'PY'
import sys, numpy as np
a, b = (np.load(p) for p in sys.argv[1:3])
d = np.abs(a - b).max()
print(f"CLI samples: max |Vulkan - CPU| = {d:.2e} (max |x| {np.abs(a).max():.2f}, relative {d / np.abs(a).max():.1e})")
PY

echo "== --device vulkan without any Vulkan driver"
VK_DRIVER_FILES=/nonexistent.json VK_ICD_FILENAMES=/nonexistent.json \
    $SDA sample --model "$D/run" --length 17 --samples 4 --steps 4 --device vulkan \
    --output "$D/none.npy" 2>&1 | tee "$OUT/no-device.txt"
echo "(exit status ${PIPESTATUS[0]}, $(wc -l < "$OUT/no-device.txt") line(s))"
exit "$STATUS"
