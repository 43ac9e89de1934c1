#!/usr/bin/env bash
# Runs the reliability suite and rewrites docs/reliability.md from what it measured:
# the reliability tests and the exit-time programs under each preset (and loop_tests and
# bridge_tests in dev, for the misuse catalogue; loop_tests in uring, for the backend's
# defects), the backlog test at full size in the release build, the soak, the lifetime test
# under valgrind, and the fuzz harnesses.
# Failing tests do not stop the run: they are what the report is for.
# Usage: bash tests/reliability/report.sh [--soak-minutes N] [--fuzz-seconds N]
#                                         [--presets "dev uring asan tsan"] [--no-valgrind]
set -uo pipefail
cd "$(dirname "$0")/../.."

soak_minutes=2
fuzz_seconds=60
presets=(dev uring asan tsan)
use_valgrind=1
while (($# > 0)); do
  case "$1" in
    --soak-minutes) soak_minutes=$2; shift 2 ;;
    --fuzz-seconds) fuzz_seconds=$2; shift 2 ;;
    --presets) read -r -a presets <<< "$2"; shift 2 ;;
    --no-valgrind) use_valgrind=0; shift ;;
    *) echo "unknown option: $1" >&2; exit 2 ;;
  esac
done

source cmake/debian-deps.sh
extra_deps=()
((use_valgrind)) && extra_deps+=(valgrind)
loopbridge_install_deps "${extra_deps[@]}" || exit 1
set +e  # debian-deps.sh sets -e; failing steps are reported, not fatal

out=build/reliability-report
rm -rf "$out"
mkdir -p "$out"
results="$out/results.txt"     # preset|test name|Passed or Failed or Timeout
: > "$results"

# ---------------------------------------------------------------- the test suites

executable_of() {  # preset, ctest name prefix -> path
  case "$2" in
    reliability_tests | alloc_failure_tests) echo "build/$1/tests/reliability/$2" ;;
    *) echo "build/$1/tests/$2" ;;
  esac
}

for preset in "${presets[@]}"; do
  echo "=== report: ${preset}"
  targets=(reliability_tests alloc_failure_tests exit_scenarios exit_cases)
  regex='^(reliability_tests|alloc_failure_tests|exit):'
  if [[ "$preset" == dev ]]; then
    targets+=(loop_tests bridge_tests)
    regex='^(reliability_tests|alloc_failure_tests|exit|loop_tests|bridge_tests):'
  elif [[ "$preset" == uring ]]; then  # the backend's own defects are reproduced by loop_tests
    targets+=(loop_tests)
    regex='^(reliability_tests|alloc_failure_tests|exit|loop_tests):'
  fi
  cmake --preset "$preset" > /dev/null &&
    cmake --build --preset "$preset" --target "${targets[@]}" > "$out/build-$preset.log" 2>&1 ||
    { echo "build failed, see $out/build-$preset.log"; echo "$preset|(build)|Failed" >> "$results"; continue; }
  LOOPBRIDGE_RELIABILITY_LOG="$PWD/$out/figures-$preset.txt" \
    LOOPBRIDGE_REENTRANCY_TABLE="$PWD/$out/reentrancy-$preset.txt" \
    ctest --preset "$preset" -R "$regex" --timeout 300 > "$out/ctest-$preset.log" 2>&1
  # "  3/25 Test #12: reliability_tests: name ....   Passed    0.13 sec"
  sed -nE 's/^ *[0-9]+\/[0-9]+ Test +#[0-9]+: (.*[^ ]) \.+ *(\*\*\*)?([A-Za-z]+).*/\1|\3/p' "$out/ctest-$preset.log" |
    sed -E 's/^([a-z_]+):([^ ])/\1: \2/' | sed "s/^/$preset|/" >> "$results"
  # Each failure in Catch's compact form (rerun alone; capped), paths made relative.
  grep "^$preset|" "$results" | grep -v '|Passed$' | while IFS='|' read -r _ name _; do
    exe=$(executable_of "$preset" "${name%%: *}")
    {
      echo "@@$name"
      "$exe" "${name#*: }" -r compact 2>&1 | sed -n '/failed:/,$p' | grep -v '^Failed [0-9]* test case' |
        sed "s|$PWD/||g" | head -n 40 | cut -c1-300
    } >> "$out/failures-$preset.txt"
  done
done

# ---------------------------------------------------------------- backlog, full size

echo "=== report: backlog at stop, release build"
if cmake --preset release > /dev/null &&
  cmake --build --preset release --target reliability_tests > "$out/build-release.log" 2>&1; then
  LOOPBRIDGE_RELIABILITY_LOG="$PWD/$out/figures-release.txt" \
    timeout 600 build/release/tests/reliability/reliability_tests "[backlog]" > "$out/backlog-release.log" 2>&1
  echo "backlog|$?" >> "$out/status.txt"
else
  echo "backlog|build" >> "$out/status.txt"
fi

# ---------------------------------------------------------------- soak, valgrind, fuzz

if ((soak_minutes > 0)); then
  echo "=== report: soak, ${soak_minutes} min"
  bash tests/reliability/soak.sh "$soak_minutes" > "$out/soak.log" 2>&1
  echo "soak|$?" >> "$out/status.txt"
fi

if ((use_valgrind)) && [[ -x build/dev/tests/reliability/reliability_tests ]]; then
  echo "=== report: valgrind memcheck, 200 lifetime cycles"
  LOOPBRIDGE_CYCLES=200 valgrind --leak-check=full --errors-for-leak-kinds=definite,indirect --error-exitcode=99 \
    build/dev/tests/reliability/reliability_tests "[lifetime]" > "$out/valgrind.log" 2>&1
  echo "valgrind|$?" >> "$out/status.txt"
fi

if ((fuzz_seconds > 0)); then
  echo "=== report: fuzz, ${fuzz_seconds} s per harness"
  LOOPBRIDGE_RELIABILITY_LOG="$PWD/$out/figures-fuzz.txt" bash tests/fuzz/run_fuzz.sh "$fuzz_seconds" \
    > "$out/fuzz.log" 2>&1
  echo "fuzz|$?" >> "$out/status.txt"
fi

# ---------------------------------------------------------------- the document

figure() {  # file area figure -> the sum of its values, or "-"
  [[ -f "$1" ]] || { echo "-"; return; }
  awk -F'|' -v a="$2" -v f="$3" '$1 == a && $2 == f { s += $3; n = 1 } END { print n ? s : "-" }' "$1"
}
soak_value() {  # key -> value from the soak's result line, or "-"
  sed -nE "s/.*soak: result .*\\b$1=([0-9]+).*/\\1/p" "$out/soak.log" 2> /dev/null | tail -n 1 | grep . || echo "-"
}
count_results() {  # preset status -> how many
  grep -c "^$1|.*|$2\$" "$results"
}
status_of() {  # step -> exit status, or empty
  sed -n "s/^$1|//p" "$out/status.txt" 2> /dev/null
}

block="$out/blocks"
mkdir -p "$block"

{
  echo "Last run: $(date -u '+%Y-%m-%d %H:%M UTC') on $(nproc) cores ($(uname -m)), g++ $(g++ -dumpversion)," \
    "by \`bash tests/reliability/report.sh --soak-minutes $soak_minutes --fuzz-seconds $fuzz_seconds\`" \
    "(presets: ${presets[*]}). Everything below the next heading but the catalogue is written by that command."
} > "$block/GENERATED"

{
  echo "### Operations run"
  echo
  echo "| run | build | scenarios / cycles | operations | submissions | faults injected | violations |"
  echo "|---|---|---|---|---|---|---|"
  for preset in "${presets[@]}"; do
    f="$out/figures-$preset.txt"
    echo "| randomized stress (CI size) | $preset | $(figure "$f" stress scenarios) | $(figure "$f" stress operations)" \
      "| $(figure "$f" stress submissions) | $(figure "$f" stress faults) | $(figure "$f" stress violations) |"
  done
  if [[ -f "$out/soak.log" ]]; then
    echo "| soak, $(soak_value seconds) s | release | $(soak_value scenarios) | $(soak_value operations)" \
      "| $(soak_value submissions) | $(soak_value faults) | $( [[ "$(status_of soak)" == 0 ]] && echo 0 || echo "**failed**, see below") |"
  fi
  for preset in "${presets[@]}"; do
    f="$out/figures-$preset.txt"
    echo "| stop racing submissions from 3 threads | $preset | $(figure "$f" counts "stops raced") | - |" \
      "$(figure "$f" counts submissions) | - | $( [[ "$(grep -c "^$preset|reliability_tests: counts stay exact.*|Passed$" "$results")" == 1 ]] && echo 0 || echo "**see failures**") |"
  done
  for preset in "${presets[@]}"; do
    f="$out/figures-$preset.txt"
    echo "| start/stop cycles | $preset | $(figure "$f" lifetime cycles) | - | - | - |" \
      "$( [[ "$(grep -c "^$preset|reliability_tests: thousands of start.*|Passed$" "$results")" == 1 ]] && echo 0 || echo "**see failures**") |"
  done
  if [[ -f "$out/soak.log" && "$(status_of soak)" == 0 ]]; then
    echo
    echo "Soak outcomes: $(soak_value values) values, $(soak_value own_errors) own errors, $(soak_value cancelled)" \
      "cancelled, $(soak_value abandoned) abandoned, $(soak_value rejected) refused (after the end)," \
      "$(soak_value run_timeouts) \`run()\` deadlines passed. Threads at rest: $(soak_value threads_baseline)," \
      "descriptors: $(soak_value fds_baseline), after every scenario. Resident memory:" \
      "$(soak_value rss_baseline_kib) KiB after warm-up, $(soak_value rss_peak_kib) KiB at most," \
      "$(soak_value rss_end_kib) KiB at the end."
  fi
} > "$block/OPERATIONS"

{
  echo "### Faults injected"
  echo
  echo "| fault | $(printf '%s | ' "${presets[@]}")"
  echo "|---|$(printf -- '---|%.0s' "${presets[@]}")"
  first="$out/figures-${presets[0]}.txt"
  rows=$( [[ -f "$first" ]] && awk -F'|' '$1 == "faults" { print $2 }' "$first" | sort -u)
  while IFS= read -r row; do
    [[ -n "$row" ]] || continue
    line="| $row |"
    for preset in "${presets[@]}"; do line+=" $(figure "$out/figures-$preset.txt" faults "$row") |"; done
    echo "$line"
  done <<< "$rows"
  for what in "stress|faults|faults thrown inside randomized scenarios" \
    "alloc|host-side failures injected|allocation failures on the submission path (host)" \
    "alloc|host-side failures misbehaved|... of which misbehaved" \
    "alloc|loop-side failures injected|allocation failures in a task's awaits (loop thread)" \
    "alloc|loop-side failures misbehaved|... of which misbehaved"; do
    IFS='|' read -r area name label <<< "$what"
    line="| $label |"
    for preset in "${presets[@]}"; do line+=" $(figure "$out/figures-$preset.txt" "$area" "$name") |"; done
    echo "$line"
  done
} > "$block/FAULTS"

{
  echo "### Fuzzing"
  echo
  echo "| harness | seconds | executions | corpus after the run | result |"
  echo "|---|---|---|---|---|"
  f="$out/figures-fuzz.txt"
  if [[ -f "$f" ]]; then
    for name in $(awk -F'|' '$1 == "fuzz" && $2 ~ / executions$/ { sub(/ executions$/, "", $2); print $2 }' "$f"); do
      corpus=$(find "build/fuzz/corpus/$name" -type f 2> /dev/null | wc -l)
      failures=$(figure "$f" fuzz "$name failures")
      echo "| ${name}_fuzzer | $(figure "$f" fuzz "$name seconds") | $(figure "$f" fuzz "$name executions") |" \
        "$corpus inputs | $( [[ "$failures" == 0 ]] && echo passed || echo "**failed**") |"
    done
  else
    echo "| (not run) | | | | |"
  fi
  if [[ -f "$f" ]]; then
    for name in $(awk -F'|' '$1 == "fuzz" && $2 ~ / failures$/ && $3 != 0 { sub(/ failures$/, "", $2); print $2 }' "$f"); do
      echo
      echo "\`${name}_fuzzer\` failed (log: build/fuzz/${name}.log):"
      echo
      echo '```'
      grep -E "^${name}_fuzzer: |^scenario seed|^  [a-z]|ERROR: |SUMMARY: |Test unit written to" "build/fuzz/${name}.log" |
        head -n 12 | cut -c1-300
      echo '```'
    done
  fi
  if [[ -f "$out/fuzz.log" && ! -f "$f" ]]; then
    echo
    echo "The fuzz step failed before running a harness:"
    echo
    echo '```'
    tail -n 15 "$out/fuzz.log"
    echo '```'
  fi
} > "$block/FUZZ"

{
  echo "### Leaks and lifetime"
  echo
  echo "| build | cycles | time | threads before / after | descriptors before / after | resident KiB before / after |"
  echo "|---|---|---|---|---|---|"
  for preset in "${presets[@]}"; do
    f="$out/figures-$preset.txt"
    echo "| $preset | $(figure "$f" lifetime cycles) | $(figure "$f" lifetime milliseconds) ms" \
      "| $(figure "$f" lifetime "threads before") / $(figure "$f" lifetime "threads after")" \
      "| $(figure "$f" lifetime "descriptors before") / $(figure "$f" lifetime "descriptors after")" \
      "| $(figure "$f" lifetime "resident KiB before") / $(figure "$f" lifetime "resident KiB after") |"
  done
  if [[ -f "$out/valgrind.log" ]]; then
    definitely=$(sed -nE 's/.*definitely lost: ([0-9,]+ bytes).*/\1/p' "$out/valgrind.log" | tail -n 1)
    indirectly=$(sed -nE 's/.*indirectly lost: ([0-9,]+ bytes).*/\1/p' "$out/valgrind.log" | tail -n 1)
    errors=$(sed -nE 's/.*ERROR SUMMARY: ([0-9,]+) errors.*/\1/p' "$out/valgrind.log" | tail -n 1)
    valgrind_status=$(status_of valgrind)
    case "$valgrind_status" in
      0) verdict="passed" ;;
      99) verdict="**FAILED**: memcheck found errors or leaks" ;;
      *) verdict="**FAILED**: the test itself failed under valgrind (exit status ${valgrind_status:-?}; see the log)" ;;
    esac
    echo
    echo "valgrind memcheck, 200 cycles (dev build): definitely lost ${definitely:-0 bytes}," \
      "indirectly lost ${indirectly:-0 bytes}, ${errors:-?} errors: ${verdict}." \
      "LeakSanitizer runs at the exit of every test process in the asan preset."
  fi
} > "$block/LIFETIME"

{
  echo "### The re-entrancy matrix"
  echo
  table="$out/reentrancy-${presets[0]}.txt"
  if [[ -f "$table" ]]; then
    echo "Each cell: what the call did when made from that context on the loop (pool, default loop)"
    echo "whose code it runs in; \`ok\` is a call that worked. Measured in the ${presets[0]} build; the"
    echo "other builds check the same table (see the sanitizer builds below)."
    echo
    awk -F'|' '
      !($1 in seen_context) { seen_context[$1] = 1; contexts[++nc] = $1 }
      !($2 in seen_call) { seen_call[$2] = 1; calls[++nk] = $2 }
      { cell[$2 "|" $1] = $3 }
      END {
        line = "| call |"; rule = "|---|"
        for (c = 1; c <= nc; ++c) { line = line " " contexts[c] " |"; rule = rule "---|" }
        print line; print rule
        for (k = 1; k <= nk; ++k) {
          line = "| `" calls[k] "` |"
          for (c = 1; c <= nc; ++c) line = line " " cell[calls[k] "|" contexts[c]] " |"
          print line
        }
      }' "$table"
  else
    echo "(not run)"
  fi
} > "$block/REENTRANCY"

{
  echo "### Backlog at stop"
  echo
  echo "A stop behind N queued coroutines (none may start: each settles cancelled), and a stop of N"
  echo "started coroutines parked on timers (cancelled 1,024 at a time; what the 2 s cancel deadline"
  echo "leaves is abandoned). Every handle settled and the report added up at each size."
  echo
  echo "| build | N | stop behind N queued, ms | stop of N parked, ms | of those, abandoned |"
  echo "|---|---|---|---|---|"
  for build in release "${presets[@]}"; do
    f="$out/figures-$build.txt"
    [[ -f "$f" ]] || continue
    for size in $(awk -F'|' '$1 == "backlog" && $2 ~ /^queued [0-9]+:/ { split($2, w, "[ :]"); print w[2] }' "$f" | sort -n -u); do
      echo "| $build | $size | $(figure "$f" backlog "queued $size: stop, ms") | $(figure "$f" backlog "parked $size: stop, ms")" \
        "| $(figure "$f" backlog "parked $size: abandoned") |"
    done
  done
  if [[ "$(status_of backlog)" != "" && "$(status_of backlog)" != 0 ]]; then
    echo
    echo "The release backlog run **failed** (status $(status_of backlog)):"
    echo
    echo '```'
    tail -n 15 "$out/backlog-release.log"
    echo '```'
  fi
} > "$block/BACKLOG"

{
  echo "### Sanitizer builds"
  echo
  echo "| build | what | test cases | passed | failed |"
  echo "|---|---|---|---|---|"
  for preset in "${presets[@]}"; do
    case "$preset" in
      dev) what="g++ -O0, reliability + loop + bridge tests" ;;
      uring) what="g++ -O0 on io_uring instead of epoll" ;;
      asan) what="AddressSanitizer + UBSan (LeakSanitizer at exit)" ;;
      tsan) what="ThreadSanitizer" ;;
      *) what="$preset" ;;
    esac
    total=$(grep -c "^$preset|" "$results")
    echo "| $preset | $what | $total | $(count_results "$preset" Passed) | $((total - $(count_results "$preset" Passed))) |"
  done
  if [[ -f "$out/figures-fuzz.txt" ]]; then
    echo "| fuzz | clang, libFuzzer + ASan + UBSan | $(grep -c ' executions|' "$out/figures-fuzz.txt") harness(es) | - | $( [[ "$(status_of fuzz)" == 0 ]] && echo 0 || echo "**failed**") |"
  fi
} > "$block/SANITIZERS"

{
  echo "### Failures"
  echo
  if ! grep -qv '|Passed$' "$results"; then
    echo "None: every test case passed in every build."
  else
    echo "Each failing test case, with the first lines of its failure (Catch's compact report)."
    echo "A test that fails here shows a defect; the test is the reproducer."
    echo
    for preset in "${presets[@]}"; do
      [[ -f "$out/failures-$preset.txt" ]] || continue
      awk -v p="$preset" '
        /^@@/ { if (open) print "  ```"; printf "\n- **%s**: `%s`\n\n  ```\n", p, substr($0, 3); open = 1; next }
        { print "  " $0 }
        END { if (open) print "  ```" }' "$out/failures-$preset.txt"
    done
  fi
  if [[ "$(status_of soak)" != "" && "$(status_of soak)" != 0 ]]; then
    echo
    echo "The soak failed:"
    echo
    echo '```'
    tail -n 12 "$out/soak.log"
    echo '```'
  fi
} > "$block/FAILURES"

awk -v blocks="$block" -v results="$results" '
  BEGIN {
    while ((getline line < results) > 0) {
      split(line, f, "|")
      status[f[1] ":" f[2]] = f[3]
    }
  }
  /^@[A-Z]+@$/ {
    name = substr($0, 2, length($0) - 2)
    file = blocks "/" name
    while ((getline line < file) > 0) print line
    close(file)
    next
  }
  {
    while (match($0, /@RESULT [^@]+@/)) {
      key = substr($0, RSTART + 8, RLENGTH - 9)
      s = (key in status) ? status[key] : "not run"
      mark = s == "Passed" ? "passed" : (s == "not run" ? "not run" : "**" s "**")
      $0 = substr($0, 1, RSTART - 1) mark substr($0, RSTART + RLENGTH)
    }
    print
  }' tests/reliability/reliability.md.in > docs/reliability.md

echo "wrote docs/reliability.md ($(grep -c '|Passed$' "$results") test cases passed," \
  "$(grep -vc '|Passed$' "$results") did not; details in $out)"
