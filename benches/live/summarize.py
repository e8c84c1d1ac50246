#!/usr/bin/env python3
"""The live bench's table (Markdown) from OUTDIR/results.jsonl (run_live.py lines).
  summarize.py OUTDIR
Per tool and sender/rate: packets sent and delivered to the capture veth, packets the tool's
capture received and the kernel dropped (its own libpcap statistics, where it prints them),
the packets it accounted (bwacct: its run summary; the others do not say),
hosts counted exactly and bytes counted over the truth (all hosts; IPv4 only), user and total
CPU per delivered packet (all the tool's processes and threads), peak resident memory (summed
over its processes), and bwacct's user CPU per packet over BandwidthD's at the same rate."""
import json, os, sys
out = sys.argv[1]
rows = [json.loads(l) for l in open(os.path.join(out, "results.jsonl"))]
ORDER = {"bwacct": 0, "bandwidthd": 1, "pmacct": 2, "darkstat": 3}
def rate_key(r):
    return (r["sender"] != "tcpreplay", r["rate_req"] == "top", int(r["rate_req"]) if r["rate_req"].isdigit() else 0)
rows.sort(key=lambda r: (rate_key(r), ORDER.get(r["tool"], 9)))
def n(v): return "–" if v is None else "{:,}".format(v)
def ratio(s, k): return "–" if not s or s.get(k) is None else "%.4f" % s[k]
print("| sender, rate asked | tool | achieved pkt/s | sent | delivered | tool received | kernel drops "
      "| packets counted | exact hosts (all) | bytes tx / rx vs truth | exact IPv4 hosts | user µs/pkt | total µs/pkt | peak RSS MiB |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
user = {}
for r in rows:
    d = r["delivered"] or 1
    a, v = r.get("all"), r.get("v4")
    u = r["cpu_user_s"] / d * 1e6
    user[(r["sender"], r["rate_req"], r["tool"])] = u
    print("| %s %s | %s | %s | %s | %s | %s | %s | %s | %s | %s / %s | %s | %.3f | %.3f | %.0f |" % (
        r["sender"], r["rate_req"], r["tool"] + (" (%d thread%s)" % (r["threads"], "s" if r["threads"] > 1 else "") if "threads" in r else ""),
        n(r["pps"]), n(r["sent"]), n(r["delivered"]), n(r.get("tool_received")), n(r.get("tool_dropped")), n(r.get("tool_counted")),
        "%d/%d" % (a["exact_hosts"], a["truth_hosts"]) if a else r.get("accuracy", "–"),
        ratio(a, "tx_ratio"), ratio(a, "rx_ratio"),
        "%d/%d" % (v["exact_hosts"], v["truth_hosts"]) if v else "–",
        u, (r["cpu_user_s"] + r["cpu_sys_s"]) / d * 1e6, r["rss_kb_sum"] / 1024))
print()
loads = [float(r["load"][0]) for r in rows]
print("One-minute load average at the runs: %.1f to %.1f (2 cores)." % (min(loads), max(loads)))
for (s, rate, tool), u in sorted(user.items()):
    if tool == "bwacct" and (s, rate, "bandwidthd") in user and user[(s, rate, "bandwidthd")] > 0:
        print("bwacct's user CPU per packet is %.2f of BandwidthD's (%s %s)." % (u / user[(s, rate, "bandwidthd")], s, rate))
