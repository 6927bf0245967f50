#!/usr/bin/env bash
# Seeds the fuzz corpora (corpus/<target>/, not committed) with real data: a bundle of
# this machine for `entry`, and ../shared/corpus's captures, listings and kernel logs
# for `pcap` and `listings`. Run from fuzz/, as root for a complete bundle:
#   bash seeds.sh && cargo +nightly fuzz run -O entry -- -max_total_time=600 -detect_leaks=0
# (-detect_leaks=0: the archive reader's decompression thread is a scoped thread whose
# std bookkeeping LeakSanitizer reports when it checks before the thread's exit is done.)
set -euo pipefail
cd "$(dirname "$0")"
shared=${SHARED_CORPUS:-../../shared/corpus}
mkdir -p corpus/entry corpus/pcap corpus/listings
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# entry: one seed per entry the target knows, from a fresh 1-second collection.
(cd .. && cargo build -q --release)
../target/release/snap collect --window 1 --capture-seconds 1 --quiet -o "$work/b.tar.zst" >/dev/null
mkdir "$work/b" && tar --zstd -xf "$work/b.tar.zst" -C "$work/b"
pid=$(ls "$work/b/proc" | grep -E '^[0-9]+$' | head -1)
python3 - "$work/b" "$pid" fuzz_targets/entry.rs corpus/entry <<'PY'
import os, re, sys
root, pid, src, out = sys.argv[1:]
names = re.findall(r'^    "([^"]+)",$', open(src).read().split("pub const NAMES")[1].split("];")[0], re.M)
for i, name in enumerate(names):
    real = name.replace("proc/1/", f"proc/{pid}/")
    path = os.path.join(root, real)
    if os.path.isfile(path):
        data = open(path, "rb").read()[:1 << 20]
        open(os.path.join(out, f"{i:02d}-{name.replace('/', '_')}"), "wb").write(bytes([i]) + data)
# Several entries in one input, separated by 0x1e (text entries only, cut to 4 KiB):
# all of them, and the manifest with each entry, so that rules meet entries together.
texts = []
for i, name in enumerate(names):
    path = os.path.join(root, name.replace("proc/1/", f"proc/{pid}/"))
    if os.path.isfile(path):
        data = open(path, "rb").read()[:4096]
        if 0x1e not in data:
            texts.append(bytes([i]) + data)
open(os.path.join(out, "all"), "wb").write(b"\x1e".join(texts))
for k, t in enumerate(texts[1:]):
    open(os.path.join(out, f"with-manifest-{k:02d}"), "wb").write(texts[0] + b"\x1e" + t)
PY

# pcap: the shared corpus's captures.
find "$shared/pcap" -type f \( -name '*.pcap' -o -name '*.pcapng' \) -size -2M -exec cp {} corpus/pcap/ \;

# listings: selector byte (see fuzz_targets/listings.rs) + text.
seed() { local n=0; while read -r f; do printf "\\x$(printf %02x "$1")" | cat - "$f" > "corpus/listings/$1-$n"; n=$((n+1)); done; }
find "$shared/lsof" -type f ! -name '*.md' | head -50 | seed 0
find "$shared/netstat" -type f ! -name '*.md' | head -50 | seed 1
find "$shared/netstat" -type f ! -name '*.md' | head -50 | seed 2
find "$shared/df" -type f ! -name '*.md' | head -50 | seed 3
find "$shared/df" -type f ! -name '*.md' | head -50 | seed 4
find "$shared/sosreport" -path '*process/ps_*' -type f | head -20 | seed 5
find "$shared/sosreport" -name 'uptime' -type f | head -10 | seed 6
find "$shared/sosreport" -name 'free' -type f | head -10 | seed 7
find "$shared/dmesg" -type f ! -name '*.md' -size -1M | head -50 | seed 8
find "$shared/proc" -name mountinfo -type f | head -20 | seed 9
for t in entry pcap listings; do echo "$t: $(ls corpus/$t | wc -l) seeds"; done
