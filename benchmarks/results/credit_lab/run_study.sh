#!/usr/bin/env bash
# The credit-lab study of issue 23 (benchmarks/results/credit_lab/). Two parts that can run at
# once; each (env, method, seed) run is cached under */runs, so a rerun only trains what is missing.
set -euo pipefail
cd "$(dirname "$0")"
LAB="${LAB:-turngym lab}"
case "${1:-all}" in
  corridor|all)
    nice -n 10 $LAB --env corridor-6-8 --seeds 10 --episodes 640 --out corridor \
      --methods "grpo,gigpo,gigpo_gamma1,spa,spa_bonus,discounted,salt,grpo@episode,gigpo_nostd,spa[baseline=group],grpo[score=return]"
    nice -n 10 $LAB --env corridor-8-10 --seeds 10 --episodes 640 --out corridor-long \
      --methods grpo,gigpo,gigpo_gamma1,spa,discounted
    nice -n 10 $LAB --env corridor-6-8-sparse --seeds 10 --episodes 640 --out corridor-sparse \
      --methods grpo,gigpo,gigpo_gamma1,gigpo_nostd,discounted
    ;;&
  families|all)
    nice -n 10 $LAB --env textworld-medium-bc --env alfworld-bc --seeds 5 --out long-horizon \
      --methods grpo,gigpo
    nice -n 10 $LAB --env textworld-hard-bc --seeds 5 --out long-horizon-hard --methods grpo,gigpo
    nice -n 10 $LAB --env webshop-small --seeds 10 --out webshop --methods grpo,gigpo,salt \
      --metric outcome
    # scored by mean outcome: WebShop's partial scores (its full successes are ~0 for every
    # method); TextWorld's outcome is its success
    nice -n 10 $LAB --env webshop-small --env textworld-easy --seeds 5 --out families \
      --methods grpo,gigpo,salt --metric outcome  # webshop/ extends its WebShop runs to 10 seeds
    ;;
esac
# Anchor statistics from a uniform table (no warm start), one batch each: what outcome-relative
# credit sees on the long-horizon envs from scratch.
if [ "${1:-all}" = "scratch" ] || [ "${1:-all}" = "all" ]; then
  for env in TextWorld-Medium-v1 TextWorld-Hard-v1 ALFWorld-v1; do
    nice -n 10 $LAB --env "turngym/$env" --env-kwargs '{"max_turns": 20}' --tasks 4 \
      --group-size 4 --episodes 16 --seeds 3 --methods grpo --out "from-scratch/$env"
  done
fi
