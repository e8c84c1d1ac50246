#!/usr/bin/env bash
# One quick live run for A/B comparisons (alternate the binaries; single runs vary by ±20 % on a
# 2-core guest): netns pair 5 (netns.sh), `trafgen -P 1` sends PACKETS frames of CFG at top
# speed while TOOL captures; prints the CPU of all TOOL's processes and threads per packet: user
# and system (tick-split by the kernel, noisy in short runs) and run (scheduler time, exact).
# Usage, as root: benches/live/ab.sh TOOL THREADS PACKETS CFG
#   TOOL: a bwacct binary | bandwidthd | floor (floor.c, built here);  THREADS: capture.threads
#   CFG: a trafgen configuration from trafgen_cfg.py (local networks 198.51.100.0/24 and
#   2001:db8:100::/56, as run.sh makes it; run.sh also installs trafgen and BandwidthD; the floor
#   needs gcc and libpcap-dev), or a capture from gen_pcap.py (run.sh's realistic-N.pcap), which
#   `tcpreplay -K` sends instead: its first PACKETS packets, at RATE packets/s (env, default top
#   speed).  Env: GUARD=1 adds a [guard] section to bwacct's, PIN=1 sets capture.pin.
set -euo pipefail
tool=$1 threads=$2 packets=$3 cfg=$4
here=$(cd "$(dirname "$0")" && pwd)
[[ $(id -u) == 0 ]] || { echo "ab.sh: needs root (network namespaces, live capture)" >&2; exit 1; }
dir=$(mktemp -d)
cleanup() { "$here/netns.sh" down 5; rm -rf "$dir"; }
trap cleanup EXIT
"$here/netns.sh" down 5
"$here/netns.sh" up 5
case $tool in
bandwidthd)
    sed 's/@IF@/bwbrx5/' "$here/bandwidthd.conf.in" > "$dir/bandwidthd.conf"
    (cd "$dir" && exec ip netns exec bwbcap5 bandwidthd -D) > "$dir/log" 2>&1 &
    ;;
floor)
    gcc -O2 -o "$dir/floor" "$here/floor.c" -lpcap
    ip netns exec bwbcap5 "$dir/floor" bwbrx5 > "$dir/log" 2>&1 &
    ;;
*)
    cat > "$dir/bwacct.toml" <<EOT
sensor = "ab"
[capture]
interfaces = ["bwbrx5"]
threads = $threads
${PIN:+pin = true}
[accounting]
local = ["198.51.100.0/24", "2001:db8:100::/56"]
[storage]
sqlite = "$dir/bw.db"
${GUARD:+[guard]}
[service]
user = "root"
EOT
    ip netns exec bwbcap5 "$tool" run -c "$dir/bwacct.toml" > "$dir/log" 2>&1 &
    ;;
esac
main=$!
sleep 4
pids() { { echo "$main"; pgrep -P "$main" || true; pgrep -x bandwidthd || true; } | sort -u; }
cpu() { # user and system ticks, scheduler ns, over every process and thread
    local u=0 s=0 r=0 p f a b x
    for p in $(pids); do
        [[ -r /proc/$p/stat ]] || continue
        read -r a b < <(sed 's/.*) //' "/proc/$p/stat" | awk '{print $12, $13}')
        u=$((u + a)) s=$((s + b))
        for f in /proc/"$p"/task/*/schedstat; do read -r x _ < "$f" && r=$((r + x)); done
    done
    echo "$u $s $r"
}
read -r u0 s0 r0 < <(cpu)
t0=$(date +%s.%N)
if [[ $cfg == *.pcap ]]; then
    rate=--topspeed
    [[ -z ${RATE:-} ]] || rate=--pps=$RATE
    ip netns exec bwbgen5 tcpreplay -K -i bwbtx5 "$rate" --limit="$packets" "$cfg" > "$dir/sent" 2>&1
    # the preload is not sending time: the rate is tcpreplay's own figure
    t1=$(awk -v p="$packets" '/Rated:/ {printf "%.6f", p / $(NF-1)}' "$dir/sent") t0=0
else
    ip netns exec bwbgen5 trafgen --no-sock-mem --notouch-irq -o bwbtx5 -n "$packets" -c "$cfg" -P 1 -q > /dev/null 2>&1
    t1=$(date +%s.%N)
fi
sleep 1
read -r u1 s1 r1 < <(cpu)
kill -TERM $(pids) 2> /dev/null || true
wait "$main" 2> /dev/null || true
pkill -x bandwidthd || true
# bwacct's kernel statistics at the stop (drops, if any)
grep -o 'kernel received [0-9]* dropped [0-9]*' "$dir/log" | tail -1 || true
hz=$(getconf CLK_TCK)
printf '%s threads=%s packets=%s pkt/s=%.0f user_ns=%d sys_ns=%d run_ns=%d load=%s\n' \
    "$(basename "$tool")" "$threads" "$packets" "$(echo "$packets / ($t1 - $t0)" | bc -l)" \
    $(((u1 - u0) * 1000000000 / hz / packets)) $(((s1 - s0) * 1000000000 / hz / packets)) \
    $(((r1 - r0) / packets)) "$(cut -d' ' -f1 /proc/loadavg)"
