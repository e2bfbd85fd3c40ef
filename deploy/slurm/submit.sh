#!/bin/bash
# Queues the scoring array (score-array.sh) over SHARDS tasks and a merge job that runs once
# every task has succeeded, writing $RESULTS/scores.jsonl.
#   MODEL=parts.safetensors IMAGES=/data/line RESULTS=/scratch/run1 SHARDS=16 ./submit.sh
set -euo pipefail

: "${MODEL:?set MODEL}" "${IMAGES:?set IMAGES}" "${RESULTS:?set RESULTS}"
SHARDS="${SHARDS:-4}"
LAMP="${LAMP:-lamp}"
here="$(cd "$(dirname "$0")" && pwd)"
export MODEL IMAGES RESULTS LAMP

array=$(sbatch --parsable --array="0-$((SHARDS - 1))" --export=ALL "$here/score-array.sh")
sbatch --dependency="afterok:${array}" --job-name=lamp-merge --export=ALL \
    --output=lamp-merge-%j.log \
    --wrap="\"\$LAMP\" merge \"\$RESULTS\"/shard-*.jsonl --inputs \"\$IMAGES\" -o \"\$RESULTS/scores.jsonl\""
echo "queued scoring array ${array} (${SHARDS} tasks) and its merge into $RESULTS/scores.jsonl"
