#!/usr/bin/env bash
# The five observation scenarios of the paper's Kolmogorov experiment (docs/method.md §8), each one
# `sda observe` + `sda assimilate` with SDA and with DPS, then pictures and `sda evaluate`.
#
#   scripts/kolmogorov-scenarios.sh DATA RUN OUT [SAMPLES] [DEVICE]
#
# DATA: a folder from `sda simulate kolmogorov` (fields of H × H, H = 32 or 64); RUN: a model
# trained on it; OUT: where observations, samples, pictures and summary.csv go. The operators
# scale with H so that the observations have the paper's sizes (8 × 8 block means, …).
# Environment: SDA (the binary), LENGTH (states, 8), INDEX (test trajectory, 0), STEPS (override
# the sampler steps of every scenario), SPACE_STRIDE (scenario 4, 4), LIKELIHOODS (the likelihoods
# to compare, "sda dps"; "sda mmps" puts moment matching beside SDA), SEED (sampler seed, 0).
set -euo pipefail
DATA=${1:?data folder}
RUN=${2:?run folder}
OUT=${3:?output folder}
SAMPLES=${4:-4}
DEVICE=${5:-cpu}
SDA=${SDA:-sda}
LIKELIHOODS=${LIKELIHOODS:-sda dps}
SEED=${SEED:-0}
LENGTH=${LENGTH:-8}
INDEX=${INDEX:-0}
H=$(python3 -c "import json;print(json.load(open('$DATA/system.json'))['state_shape'][1])" 2>/dev/null \
    || grep -A3 state_shape "$DATA/system.json" | sed -n 3p | tr -dc 0-9)
mkdir -p "$OUT"
"$SDA" mask --size "$H" --inner 0.4 --outer 0.6 --output "$OUT/ring.npy"
C8=$((H / 8)); C16=$((H / 16)); SS=${SPACE_STRIDE:-4}
#  name ; operator ; noise ; sampler steps ; extra flags of `sda observe`
SCENARIOS=(
  "1-assimilation;stride:4|coarsen:$C8;0.1;256;"
  "2-extrapolation;stride:3|coarsen:$C16|crop:4:12:4:12;0.01;256;"
  "3-nonlinear;stride:3|coarsen:$C16|vorticity|saturate|crop:2:14:2:14;0.05;512;"
  "4-sparse;space-stride:$SS;0.1;256;"
  "5-constraint;last|vorticity|mask:$OUT/ring.npy;0.2;256;--fill 0.6"
)
echo "scenario,likelihood,seconds,std_residual,noise_std" > "$OUT/summary.csv"
for s in "${SCENARIOS[@]}"; do
  IFS=';' read -r name op noise steps extra <<< "$s"
  steps=${STEPS:-$steps}
  echo "== $name: '$op', noise $noise, $steps steps"
  # shellcheck disable=SC2086
  "$SDA" observe "$DATA/test.npy" --index "$INDEX" --length "$LENGTH" \
      --operator "$op" --noise "$noise" --output "$OUT/$name" $extra
  for lik in $LIKELIHOODS; do
    t0=$(date +%s.%N)
    "$SDA" assimilate --model "$RUN" --observations "$OUT/$name/y.npy" --operator "$op" \
        --noise "$noise" --length "$LENGTH" --samples "$SAMPLES" --steps "$steps" \
        --corrections 1 --tau 0.5 --likelihood "$lik" --device "$DEVICE" --seed "$SEED" \
        --output "$OUT/$name/x-$lik.npy" | tee "$OUT/$name/$lik.log"
    t1=$(date +%s.%N)
    res=$(grep -o 'std(A(x) − y): [0-9.eE+-]*' "$OUT/$name/$lik.log" | awk '{print $NF}')
    echo "$name,$lik,$(awk "BEGIN{printf \"%.1f\", $t1 - $t0}"),$res,$noise" >> "$OUT/summary.csv"
    mask=()
    [[ $name == 5-* ]] && mask=(--mask "$OUT/ring.npy")
    "$SDA" plot vorticity "$OUT/$name/x-$lik.npy" --truth "$OUT/$name/truth.npy" \
        --samples 3 "${mask[@]}" --output "$OUT/$name-$lik.png"
  done
done
"$SDA" evaluate "$OUT/1-assimilation/x-sda.npy" --system "$DATA" \
    --truth "$OUT/1-assimilation/truth.npy" --observations "$OUT/1-assimilation/y.npy" \
    --operator "stride:4|coarsen:$C8" --noise 0.1 | tee "$OUT/1-assimilation/evaluate-sda.txt"
"$SDA" plot vorticity "$OUT/1-assimilation/x-sda.npy" --samples 1 \
    --gif "$OUT/1-assimilation-sda.gif" --output "$OUT/1-assimilation-sample0.png"
column -s, -t < "$OUT/summary.csv"
