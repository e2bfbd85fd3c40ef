#!/bin/bash
# Scores a folder of images with a trained lamp model as a Slurm job array: task I scores part I
# of the images (sorted by path) and writes $RESULTS/shard-I.jsonl. Submit with submit.sh, which
# also queues the merge after every task has succeeded, or by hand:
#   sbatch --array=0-3 --export=ALL,MODEL=m.safetensors,IMAGES=line/,RESULTS=out/ score-array.sh
#SBATCH --job-name=lamp-score
#SBATCH --array=0-3
#SBATCH --cpus-per-task=2
#SBATCH --mem=4G
#SBATCH --time=01:00:00
#SBATCH --output=lamp-score-%A_%a.log
set -euo pipefail

: "${MODEL:?set MODEL to the checkpoint (the --out of lamp train)}"
: "${IMAGES:?set IMAGES to the folder (or pattern) of images to score}"
: "${RESULTS:?set RESULTS to a folder shared by all tasks}"
: "${SLURM_ARRAY_TASK_ID:?run this script as a job array (sbatch --array=0-N)}"
LAMP="${LAMP:-lamp}"
mkdir -p "$RESULTS"

# --shard auto/N takes the index from SLURM_ARRAY_TASK_ID (less SLURM_ARRAY_TASK_MIN, so
# --array=1-4 works too); the count is the array's size. -o writes the part atomically.
exec "$LAMP" score "$MODEL" "$IMAGES" \
    --shard "auto/${SLURM_ARRAY_TASK_COUNT}" --json \
    -o "$RESULTS/shard-${SLURM_ARRAY_TASK_ID}.jsonl"
