#!/usr/bin/env bash
# The side-by-side live benchmark: bwacct, BandwidthD, pmacctd and darkstat each capture in turn
# on the receiving end of a veth pair between two network namespaces (made and removed here),
# while tcpreplay replays a generated capture at fixed rates and at top speed, and trafgen
# (-P 1) sends its own frames at top speed. Prints the table (also OUTDIR/table.md).
# Usage, as root, from anywhere:  benches/live/run.sh [OUTDIR]        (default /var/tmp/bwacct-live-bench)
# Env: PACKETS (2000000, the replayed capture), RATES ("100000 300000 top", tcpreplay),
#      TRAFGEN_PACKETS (6000000; 0 skips trafgen), TOOLS ("bwacct bandwidthd pmacct darkstat"),
#      GEN (the capture generator, default ../shared/tools/gen_pcap.py beside the repository),
#      BWACCT_THREADS (capture.threads; default: bwacct's, one per core).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
out=$(mkdir -p "${1:-/var/tmp/bwacct-live-bench}" && cd "${1:-/var/tmp/bwacct-live-bench}" && pwd)
PACKETS=${PACKETS:-2000000}
RATES=${RATES:-"100000 300000 top"}
TRAFGEN_PACKETS=${TRAFGEN_PACKETS:-6000000}
TOOLS=${TOOLS:-"bwacct bandwidthd pmacct darkstat"}
GEN=${GEN:-$repo/../shared/tools/gen_pcap.py}
[[ $(id -u) == 0 ]] || { echo "run.sh: needs root (network namespaces, live capture)" >&2; exit 1; }

pkgs=(bandwidthd darkstat pmacct tcpreplay netsniff-ng python3-numpy)
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
# the packages' own services, if they started, would capture elsewhere: stop them
for svc in bandwidthd darkstat pmacctd; do
    systemctl stop "$svc" 2>/dev/null || service "$svc" stop 2>/dev/null || true
done

(cd "$repo" && cargo build --release -q)
# a copy: the repository may be rebuilt while the bench runs
cp "$repo/target/release/bwacct" "$out/bwacct"
bwacct=$out/bwacct

pcap=$out/realistic-$PACKETS.pcap
if [[ ! -s $pcap.truth.json ]]; then
    /usr/bin/python3 "$GEN" --packets "$PACKETS" --seed 7 --mix realistic --out "$pcap"
fi
if ((TRAFGEN_PACKETS)); then
    python3 "$here/trafgen_cfg.py" "$out/trafgen.cfg" "$out/trafgen.truth.json" "$TRAFGEN_PACKETS"
fi

cleanup() {
    "$here/netns.sh" down 0
    "$here/netns.sh" down 1
}
trap cleanup EXIT
cleanup
"$here/netns.sh" up 0
"$here/netns.sh" up 1
: > "$out/results.jsonl"
uptime | tee "$out/load-before.txt"

rows=()
for r in $RATES; do rows+=("tcpreplay $r $pcap $pcap.truth.json"); done
if ((TRAFGEN_PACKETS)); then rows+=("trafgen top $out/trafgen.cfg $out/trafgen.truth.json"); fi
one() { # TOOL PAIR SENDER RATE INPUT TRUTH
    python3 "$here/run_live.py" "$1" "$3" "$4" "$5" "$6" "$out" --pair "$2" --bwacct "$bwacct" \
        --packets "$TRAFGEN_PACKETS" ${BWACCT_THREADS:+--threads "$BWACCT_THREADS"}
}
bg=
if [[ " $TOOLS " == *" bandwidthd "* ]]; then
    # BandwidthD writes its log only every 200 s: its series waits on pair 1, the CPU lock is
    # released while it waits, the other tools run on pair 0
    ( for row in "${rows[@]}"; do one bandwidthd 1 $row; done ) > "$out/bandwidthd.series.log" 2>&1 &
    bg=$!
    sleep 1
fi
for tool in $TOOLS; do
    [[ $tool == bandwidthd ]] && continue
    for row in "${rows[@]}"; do one "$tool" 0 $row; done
done
if [[ -n $bg ]]; then wait "$bg"; fi
uptime | tee "$out/load-after.txt"
python3 "$here/summarize.py" "$out" | tee "$out/table.md"
