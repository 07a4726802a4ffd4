#!/bin/bash
# One `gbench sweep` worker per array task, all pulling runs from one study in PostgreSQL (docs/sweeps.md).
#
#   export GBENCH_STORAGE=postgresql://user@db-host/gbench    # no password here: put it in ~/.pgpass (mode 600)
#   sbatch --array=0-7 docs/examples/cluster/slurm_sweep.sh benchmarks/suites/s1_mlp_capacity.toml [more gbench sweep options]
#
# Preemption: SLURM sends SIGTERM to the job's processes; gbench stops at its next step, gives its run
# back to the study (resumable from its last checkpoint) and exits 143; --requeue queues the task again
# and the same command picks up where the study is. Near the time limit, --signal sends gbench SIGTERM
# 120 s early (through srun), and the task requeues itself the same way.
# Each task writes its runs to its own folder, OUT_ROOT/worker-TASK (on a shared disk a requeued task
# finds its checkpoints again); every finished run's record is also in the study, so the report needs
# none of these folders: gbench report --storage "$GBENCH_STORAGE" --study-name SUITE-NAME.
#
#SBATCH --job-name=gbench-sweep
#SBATCH --array=0-7
#SBATCH --cpus-per-task=4
#SBATCH --mem=16G
#SBATCH --time=04:00:00
#SBATCH --requeue
#SBATCH --signal=TERM@120
#SBATCH --output=gbench-sweep-%A_%a.log
# On a GPU partition add: #SBATCH --gres=gpu:1
set -uo pipefail

: "${GBENCH_STORAGE:?export GBENCH_STORAGE=postgresql://user@host/db before sbatch (the password in ~/.pgpass)}"
SUITE=${1:?usage: sbatch --array=0-N slurm_sweep.sh SUITE.toml [gbench sweep options]}
shift
OUT="${GBENCH_OUT_ROOT:-runs/cluster}/worker-${SLURM_ARRAY_TASK_ID:-0}"

# This shell outlives a SIGTERM (SLURM signals every process of the job): it waits for gbench to give its run back.
trap 'echo "SIGTERM: waiting for gbench to give its run back" >&2' TERM
launch=()
if [ -n "${SLURM_JOB_ID:-}" ] && command -v srun >/dev/null; then
    launch=(srun --ntasks=1)  # a job step: what --signal=TERM@120 signals
fi
"${launch[@]}" gbench sweep "$SUITE" --storage "$GBENCH_STORAGE" --out "$OUT" --no-report "$@"
code=$?
if [ "$code" -eq 143 ]; then  # stopped by SIGTERM: its run is back in the study; queue this task again for the rest
    scontrol requeue "${SLURM_ARRAY_JOB_ID:-${SLURM_JOB_ID:-}}_${SLURM_ARRAY_TASK_ID:-0}" || true
fi
exit "$code"
