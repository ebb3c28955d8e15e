#!/usr/bin/env bash
# GPU check: the CUDA and bf16 tests, then every benchmark topic on the GPU, the tables written to a file.
#
#   scripts/gpu_check.sh                      # on a CUDA machine; writes gpu_check_<date>.md
#   scripts/gpu_check.sh --out results.md     # choose the file
#   scripts/gpu_check.sh --dry-run            # anywhere (CPU): collect the tests, import every topic, run nothing
#
# Budget: under 10 minutes on one GPU (each step has its own timeout; a step that runs out is
# recorded as such in the file and the check goes on). Run from any folder; uses the `python` on PATH.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
DRY=0
OUT="gpu_check_$(date -u +%Y%m%d_%H%M).md"
while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run) DRY=1 ;;
    --out) OUT="$2"; shift ;;
    -h|--help) sed -n 2,9p "$0"; exit 0 ;;
    *) echo "gpu_check.sh: unknown argument '$1' (expected --dry-run, --out FILE)" >&2; exit 2 ;;
  esac
  shift
done

# The CUDA tests (tests/test_cuda.py) and every test that exercises bf16 / autocast.
TESTS=(tests/test_cuda.py tests/nn tests/tokenizers tests/lm tests/flows tests/gans)
TEST_FILTER="cuda or bf16 or bfloat16 or autocast"

if [ "$DRY" = 1 ]; then
  echo "dry run: would write $OUT"
  for path in "${TESTS[@]}"; do [ -e "$path" ] || { echo "dry run: $path is missing" >&2; exit 1; }; done
  selected="$(python -m pytest -q --collect-only -p no:cacheprovider tests/test_cuda.py 2>&1 | grep -c '::')"
  if [ "$selected" -lt 1 ]; then echo "dry run: tests/test_cuda.py collects no test" >&2; exit 1; fi
  echo "dry run: $selected CUDA tests collected in tests/test_cuda.py; bf16 tests from ${TESTS[*]:1} with -k '$TEST_FILTER'"
  python scripts/bench.py --dry-run --device cuda || exit 1  # every topic
  echo "dry run: OK"
  exit 0
fi

python -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else "no CUDA device: run with --dry-run on CPU")' || exit 1
TOPICS="$(python -c 'from scripts.bench import TOPICS; print(",".join(TOPICS))')" || exit 1
status=0
{
  echo "# GPU check $(date -u +%Y-%m-%dT%H:%MZ)"
  echo
  python -c 'import torch; p = torch.cuda.get_device_properties(0); print(f"GPU: {p.name}, {p.total_memory / 2**30:.0f} GiB, torch {torch.__version__}, CUDA {torch.version.cuda}, bf16 {torch.cuda.is_bf16_supported()}")'
  nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv,noheader 2>/dev/null || true
  echo
  echo "## Tests (-k '$TEST_FILTER')"
  echo
  echo '```'
} > "$OUT"
timeout 120 python -m pytest -q -p no:cacheprovider "${TESTS[@]}" -k "$TEST_FILTER" 2>&1 | tail -n 25 >> "$OUT"
rc=${PIPESTATUS[0]}; [ "$rc" = 0 ] || status=1
echo '```' >> "$OUT"
echo "tests: exit $rc"

echo -e "\n## Benchmarks (python scripts/bench.py --device cuda --quick)\n" >> "$OUT"
BUDGET=570  # seconds for the whole check
for topic in ${TOPICS//,/ }; do
  left=$((BUDGET - SECONDS)); limit=$((left < 75 ? left : 75))
  if [ "$limit" -lt 10 ]; then echo -e "\n$topic: skipped (the 10-minute budget is spent)" >> "$OUT"; status=1; continue; fi
  timeout "$limit" python scripts/bench.py --device cuda --quick --only "$topic" --out "$OUT.part" > /dev/null 2> "$OUT.err"
  rc=$?
  if [ -f "$OUT.part" ]; then cat "$OUT.part" >> "$OUT"; rm -f "$OUT.part"; fi
  if [ "$rc" != 0 ]; then
    status=1
    echo -e "\n$topic: exit $rc$([ "$rc" = 124 ] && echo ' (timed out after $limit s)')\n\`\`\`\n$(tail -n 15 "$OUT.err")\n\`\`\`" >> "$OUT"
  fi
  echo "bench $topic: exit $rc"
done
rm -f "$OUT.err"
echo "wrote $OUT"
exit $status
