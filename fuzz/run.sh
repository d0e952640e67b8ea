#!/usr/bin/env bash
# Runs every cargo-fuzz target of this crate for <seconds-per-target> seconds each.
# Exits non-zero if any target finds a crash (the input is saved under fuzz/artifacts/<target>/).
#
#   fuzz/run.sh 60                      # one minute per target, AddressSanitizer
#   FUZZ_SANITIZER=none fuzz/run.sh 60  # without a sanitizer (faster)
#
# There is no nightly toolchain here: cargo-fuzz needs nightly-only rustc flags
# (-Zsanitizer, -Cpasses=sancov-module), which RUSTC_BOOTSTRAP=1 unlocks on stable.
# AddressSanitizer works on stable x86_64 Linux (rustup ships librustc-stable_rt.asan.a).
set -euo pipefail

seconds=${1:?usage: fuzz/run.sh <seconds-per-target>}
sanitizer=${FUZZ_SANITIZER:-address}
cd "$(dirname "$0")"

if ! command -v cargo-fuzz >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi
export RUSTC_BOOTSTRAP=1

status=0
for target in $(cargo fuzz list); do
    echo "=== fuzzing $target for ${seconds}s (sanitizer: $sanitizer)"
    mkdir -p "corpus/$target"
    # New inputs land in corpus/<target>/ (git ignores all but the committed seeds).
    if ! cargo fuzz run --sanitizer "$sanitizer" "$target" "corpus/$target" -- \
        -max_total_time="$seconds" -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1; then
        echo "=== $target FAILED: see fuzz/artifacts/$target/" >&2
        status=1
    fi
done
exit $status
