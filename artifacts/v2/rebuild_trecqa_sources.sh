#!/bin/sh
# Rebuild what the TREC-QA seeds 1-2 need after a machine renewal (artifacts/PLAN.md, step 4), in a
# run worktree (git worktree add --detach /work/runs HEAD), each run at its recorded thread count.
# Every step resumes or skips what is finished, so a stage can be started again at any time.
#   teachers:  each WikiQA teacher (2 threads), then its TREC-QA teacher (1 thread) and its tables
#   students:  the WikiQA students the TREC-QA seeds start from (1 thread; replicated seed 1: 2)
#   trecqa:    the TREC-QA students of seeds 0-2 (1 thread; start it twice for two workers)
# Environment: PYTHON (the main checkout's .venv/bin/python) and CERBERUS_CACHE as `make` sets it.
# Run the worktree's own copy (git -C WORKTREE checkout --detach <main's HEAD> first).
# Run `teachers` and `students` side by side, `trecqa` once both are done: it refuses to start while
# `git diff` shows a rebuilt source that is not bit for bit (that would make the committed TREC-QA
# runs stale: PLAN step 4; a teacher that is not also rescores the tables the students read).
set -e
cd "$(dirname "$0")/../.."  # the checkout this script is in
[ -f .git ] || { echo "$(pwd): run this in a run worktree, not in the main checkout" >&2; exit 2; }
: "${PYTHON:?set PYTHON to the main checkout's .venv/bin/python}" "${CERBERUS_CACHE:?set CERBERUS_CACHE as make does}"
export PYTHONPATH="$(pwd)" CERBERUS_CACHE
rebuild() { OMP_NUM_THREADS=$1 "$PYTHON" artifacts/v2/rebuild_weights.py "$2"; }
# Rebuilt sources equal to their records differ from them in code_version and timing only (PLAN step 4).
differs() {
  git diff -U0 -- artifacts/v2/teachers artifacts/v2/teacher_scores artifacts/v2/students \
      artifacts/v2/trecqa/teachers ':(exclude)*/timing.json' | grep '^[-+][^-+]' | grep -v '"code_version"'
}
case "$1" in
  teachers)
    for t in mpnet-base minilm-l6 minilm-l3; do
      rebuild 2 artifacts/v2/teachers/$t
      rebuild 1 artifacts/v2/trecqa/teachers/$t
    done ;;
  students)
    for r in cerberus/seed1 gold/seed2 single-minilm-l3/seed2 single-minilm-l6/seed2 single-mpnet-base/seed2 \
             ensemble/seed2 replicated-mpnet-base/seed2 cerberus/seed2; do
      rebuild 1 artifacts/v2/students/$r
    done
    rebuild 2 artifacts/v2/students/replicated-mpnet-base/seed1 ;;
  trecqa)
    if differs; then echo "the rebuilt sources above differ from their records: not bit for bit (PLAN step 4)" >&2; exit 1; fi
    OMP_NUM_THREADS=1 "$PYTHON" -m cerberus_core reproduce --preset v2-trecqa --seeds 0 1 2 ;;
  *)
    echo "usage: $0 teachers|students|trecqa" >&2; exit 2 ;;
esac
