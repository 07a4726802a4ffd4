#!/usr/bin/env bash
# gbench tune on study S6's setting (Fashion-MNIST, MLP GAN with a discriminator
# of `depth` Linear+LeakyReLU(0.2) blocks, 5 epochs, batch 100), searching
# latent size, discriminator depth and discriminator steps k (the rest fixed at
# S6's hidden 256, Adam 2e-4, beta1 0.5): once with the
# median pruner and once without, same sampler seed. Prints for each the wall
# time, the best FID, and how many trials were pruned.
#
#   GBENCH_DATA=../shared/data benchmarks/tune_s6.sh            # the real thing: 2 x 50 trials
#   PRUNERS="median:1200" benchmarks/tune_s6.sh                 # median pruner, no pruning before step 1200
#   TRIALS=3 EPOCHS=0.05 EVAL_SAMPLES=500 EVAL_EVERY=10 benchmarks/tune_s6.sh   # a smoke test
#
# PRUNERS: space-separated PRUNER[:WARMUP_STEPS] (median, hyperband, none); default "median none".
# Fashion-MNIST: apt-get install -y dataset-fashion-mnist (or --data-root via DATA_ROOT).
# Last lines: one per pruner (wall time, trials, pruned, reused, best FID); then, when both
# "median" and "none" ran, median_s=... none_s=... speedup=....
set -euo pipefail

TRIALS=${TRIALS:-50}
EPOCHS=${EPOCHS:-5}
EVAL_SAMPLES=${EVAL_SAMPLES:-10000}
EVAL_EVERY=${EVAL_EVERY:-600}          # once per epoch at batch 100 (600 steps)
OUT=${OUT:-runs/tune-s6}
N_JOBS=${N_JOBS:-1}
SEED=${SEED:-0}
EXTRA=(${EXTRA:-})                     # e.g. EXTRA="--train-limit 2000 --device cuda"
[ -n "${DATA_ROOT:-}" ] && EXTRA+=(--data-root "$DATA_ROOT")
GBENCH=${GBENCH:-"python -m gbench"}

PRUNERS=${PRUNERS:-"median none"}

declare -A SECONDS_TAKEN
for VARIANT in $PRUNERS; do
  PRUNER=${VARIANT%%:*}
  WARMUP=0
  [ "$VARIANT" != "$PRUNER" ] && WARMUP=${VARIANT#*:}
  NAME=${VARIANT/:/-warmup}
  folder="$OUT/$NAME"
  rm -rf "$folder"; mkdir -p "$OUT"
  start=$(date +%s.%N)
  $GBENCH tune mlp \
    --dataset fashion-mnist --epochs "$EPOCHS" --batch-size 100 \
    --space architecture=deep-leakyrelu --space latent_dim=4:32:log --space depth=1:6 --space k=1:4 \
    --set hidden_dim=256 --set lr=0.0002 --set beta1=0.5 \
    --eval-samples "$EVAL_SAMPLES" --eval-every "$EVAL_EVERY" \
    --trials "$TRIALS" --pruner "$PRUNER" --pruner-warmup "$WARMUP" --sampler-seed "$SEED" --n-jobs "$N_JOBS" \
    --study-name "tune-s6-$NAME" --out "$folder" "${EXTRA[@]}" > "$folder.log" 2>&1 \
    || { echo "gbench tune --pruner $PRUNER failed; see $folder.log" >&2; tail -n 5 "$folder.log" >&2; exit 1; }
  end=$(date +%s.%N)
  SECONDS_TAKEN[$NAME]=$(python -c "print(f'{$end - $start:.1f}')")
done

for VARIANT in $PRUNERS; do
  NAME=${VARIANT/:/-warmup}
  python - "$OUT/$NAME/trials.csv" "$NAME" "${SECONDS_TAKEN[$NAME]}" <<'EOF'
import csv, sys
path, pruner, seconds = sys.argv[1:]
rows = list(csv.DictReader(open(path)))
complete = [r for r in rows if r["state"] == "COMPLETE" and r["fid"] not in ("", "inf")]
pruned = sum(r["state"] == "PRUNED" for r in rows)
reused = sum(bool(r.get("same_as")) for r in rows)
best = min(complete, key=lambda r: float(r["fid"])) if complete else None
params = ", ".join(f"{k[6:]}={v}" for k, v in best.items() if k.startswith("param_") and v) if best else "-"
print(f"pruner={pruner} wall_s={seconds} trials={len(complete) + pruned} complete={len(complete)} pruned={pruned} reused={reused} "
      f"best_fid={float(best['fid']):.2f} best=({params})" if best else f"pruner={pruner} wall_s={seconds} no complete trial")
EOF
done
if [ -n "${SECONDS_TAKEN[median]:-}" ] && [ -n "${SECONDS_TAKEN[none]:-}" ]; then
  python -c "m, n = ${SECONDS_TAKEN[median]}, ${SECONDS_TAKEN[none]}; print(f'median_s={m:.1f} none_s={n:.1f} speedup={n / m:.2f}')"
fi
