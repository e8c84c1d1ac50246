#!/usr/bin/env python3
"""(Copied from the project's shared bench anchors, with a bwacct reader added.)
Normalise tool output into {ip: {"tx": bytes, "rx": bytes}} for LOCAL hosts only.
  parse_results.py darkstat EXPORT_FILE            (darkstat --export binary db, host ver3/ver4)
  parse_results.py pmacct   CSV [CSV...]           (print plugin csv; SRC_IP,DST_IP[,..],PACKETS,BYTES)
  parse_results.py bandwidthd CDF [CDF...]         (log.1.0.cdf lines: ip,ts,8 send,8 recv stats)
  parse_results.py bwacct   REPORT.json            (`bwacct report --format json`)
Writes JSON to stdout. Local nets: 198.51.100.0/24, 2001:db8:100::/56 (override with env LOCAL_NETS)."""
import sys, struct, json, csv, os, ipaddress
NETS = [ipaddress.ip_network(n) for n in os.environ.get("LOCAL_NETS", "198.51.100.0/24,2001:db8:100::/56").split(",")]
def local(ip):
    try: a = ipaddress.ip_address(ip)
    except ValueError: return False
    return any(a.version == n.version and a in n for n in NETS)
res = {}
def add(ip, tx, rx):
    ip = str(ipaddress.ip_address(ip))
    h = res.setdefault(ip, {"tx": 0, "rx": 0}); h["tx"] += tx; h["rx"] += rx

def darkstat(fn):
    b = open(fn, "rb").read(); p = 0
    def rd(n):
        nonlocal p; v = b[p:p + n]; p += n; return v
    def u(n): return int.from_bytes(rd(n), "big")
    assert u(4) == 0xDA314159
    assert rd(4) == b"\xdaHS\x01"
    count = u(4)
    for _ in range(count):
        tag = rd(4); assert tag[:3] == b"HST", tag
        ver = tag[3]
        if ver >= 3:
            fam = u(1); ip = ipaddress.ip_address(rd(4 if fam == 4 else 16))
        else:
            ip = ipaddress.ip_address(rd(4))
        if ver >= 2: u(8)            # last_seen
        rd(6)                         # mac
        hl = u(1); rd(hl)             # hostname
        inb = u(8); outb = u(8)
        assert rd(1) == b"P"; n = u(1); rd(n * 17)
        while p < len(b) and b[p:p + 1] in (b"T", b"U", b"t", b"u"):
            t = rd(1); n = u(2)
            rd(n * (26 if t in (b"T", b"t") else 18))
        if local(str(ip)): add(str(ip), outb, inb)

def pmacct(fns):
    for fn in fns:
        r = csv.DictReader(open(fn))
        for row in r:
            by = int(row["BYTES"])
            s = row.get("SRC_IP"); d = row.get("DST_IP")
            if s and local(s): add(s, by, 0)
            if d and local(d): add(d, 0, by)

def bandwidthd(fns):
    for fn in fns:
        for line in open(fn):
            f = line.strip().split(",")
            if len(f) < 18 or not local(f[0]): continue
            add(f[0], int(f[2]), int(f[10]))

def bwacct(fn):
    for row in json.load(open(fn))["rows"]:
        if local(row["ip"]): add(row["ip"], row["tx_bytes"], row["rx_bytes"])

kind = sys.argv[1]
if kind == "darkstat": darkstat(sys.argv[2])
elif kind == "pmacct": pmacct(sys.argv[2:])
elif kind == "bandwidthd": bandwidthd(sys.argv[2:])
elif kind == "bwacct": bwacct(sys.argv[2])
else: sys.exit("unknown kind")
json.dump(res, sys.stdout)
