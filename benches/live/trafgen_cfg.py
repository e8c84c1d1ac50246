#!/usr/bin/env python3
"""A trafgen packet configuration for the live bench, and its truth.
  trafgen_cfg.py OUT.cfg TRUTH.json PACKETS [--templates K]
K static frames (default 2000) that trafgen sends round robin, PACKETS in all (a multiple of K):
IPv4 and IPv6, TCP and UDP, untagged, 802.1Q and QinQ (0x88a8 + 0x8100), mostly minimum-size
frames, between local hosts (198.51.100.0/24: 254 addresses; 2001:db8:100::/56: 300) and remote
ones (203.0.113.0/24, 2001:db8:ff00::/40), a few local to local. Destination MACs are nobody's, so
the receiving stack drops every frame after the capture taps. The truth JSON has the layer-3 bytes
and packets per local host ({"hosts": {ip: {tx_bytes, rx_bytes, tx_packets, rx_packets}}}), the
shape compare.py reads."""
import argparse, ipaddress, json, struct

ap = argparse.ArgumentParser()
ap.add_argument("cfg"); ap.add_argument("truth"); ap.add_argument("packets", type=int)
ap.add_argument("--templates", type=int, default=2000)
a = ap.parse_args()
K = a.templates
if a.packets % K:
    raise SystemExit("PACKETS must be a multiple of the number of templates (%d)" % K)
REPS = a.packets // K
SIZES = [60, 60, 60, 60, 60, 60, 128, 590]   # frame sizes before VLAN tags, cycled


def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def v4(n): return ipaddress.IPv4Address(n)
def v6(n): return ipaddress.IPv6Address(n)


LOCAL4 = int(v4("198.51.100.0")); REMOTE4 = int(v4("203.0.113.0"))
LOCAL6 = int(v6("2001:db8:100::")); REMOTE6 = int(v6("2001:db8:ff00::"))
hosts = {}


def count(ip, direction, l3):
    h = hosts.setdefault(str(ip), {"tx_bytes": 0, "rx_bytes": 0, "tx_packets": 0, "rx_packets": 0})
    h[direction + "_bytes"] += l3 * REPS
    h[direction + "_packets"] += REPS


def frame(t):
    kind = t % 10                     # 0-4 IPv4, 5-6 IPv6, 7 IPv4 802.1Q, 8 IPv4 QinQ, 9 IPv6 QinQ
    six = kind in (5, 6, 9)
    tags = {7: [(0x8100, 100 + t % 50)], 8: [(0x88A8, 200 + t % 7), (0x8100, 300 + t % 11)],
            9: [(0x88A8, 200 + t % 7), (0x8100, 300 + t % 11)]}.get(kind, [])
    outbound = (t // 10) % 2 == 0
    local_to_local = t % 50 == 49
    tcp = t % 3 != 0
    size = SIZES[t % len(SIZES)]
    if six:
        local = LOCAL6 + ((t % 1000) // 4 << 64) + 0x10 + t % 1000
        remote = REMOTE6 + ((t % 64) << 80) + 7
        other = LOCAL6 + (0xFF << 64) + 1 if local_to_local else remote
        src, dst = (local, other) if outbound else (other, local)
        head = 40
    else:
        local = LOCAL4 + 1 + (t * 7) % 254
        remote = REMOTE4 + 1 + t % 254
        other = LOCAL4 + 1 + (t * 7 + 1) % 254 if local_to_local else remote
        src, dst = (local, other) if outbound else (other, local)
        head = 20
    l4 = 20 if tcp else 8
    l3 = max(size - 14, head + l4)
    sport, dport = (40000 + t % 20000, (443, 80, 53, 25, 6881)[t % 5])
    if tcp:
        seg = struct.pack("!HHIIBBHHH", sport, dport, t, 0, 0x50, 0x10, 64240, 0, 0)
    else:
        seg = struct.pack("!HHHH", sport, dport, l3 - head, 0)
    if six:
        ip = struct.pack("!IHBB", 0x60000000, l3 - 40, 6 if tcp else 17, 64) + \
            v6(src).packed + v6(dst).packed
    else:
        h = struct.pack("!BBHHHBBH", 0x45, 0, l3, t & 0xFFFF, 0x4000, 64, 6 if tcp else 17, 0) + \
            v4(src).packed + v4(dst).packed
        ip = h[:10] + struct.pack("!H", csum(h)) + h[12:]
    eth = bytes([0x02, 0, 0x5E, 0, 1, t % 256, 0x02, 0, 0x5E, 0, 2, t % 256])
    for tpid, vid in tags:
        eth += struct.pack("!HH", tpid, vid)
    eth += struct.pack("!H", 0x86DD if six else 0x0800)
    head_bytes = eth + ip + seg
    fill = l3 - len(ip) - len(seg)
    pad = max(0, 60 - (len(eth) + l3))      # Ethernet padding, never counted
    for ip_, d in ((src, "tx"), (dst, "rx")):
        addr = v6(ip_) if six else v4(ip_)
        if any(addr in n for n in LOCAL):
            count(addr, d, l3)
    body = ", ".join("0x%02x" % b for b in head_bytes)
    zeros = fill + pad
    return "{ %s%s }" % (body, ", fill(0x00, %d)" % zeros if zeros else "")


LOCAL = [ipaddress.ip_network("198.51.100.0/24"), ipaddress.ip_network("2001:db8:100::/56")]
with open(a.cfg, "w") as f:
    f.write("/* bwacct live bench: %d frames sent round robin */\n" % K)
    for t in range(K):
        f.write(frame(t) + "\n")
json.dump({"source": "trafgen_cfg.py", "packets": a.packets, "templates": K, "hosts": hosts},
          open(a.truth, "w"), indent=0)
print("%d templates, %d packets, %d local hosts" % (K, a.packets, len(hosts)))
