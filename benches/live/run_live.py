#!/usr/bin/env python3
"""One live run: one tool capturing on the lab's receiving veth while one sender sends at one rate.
(Adapted from the project's shared bench anchors: bwacct and the trafgen sender added, user and
system CPU kept apart.)
  run_live.py TOOL SENDER RATE INPUT TRUTH.json OUTDIR [--pair N] [--bwacct BIN] [--packets N]
TOOL: bwacct | bandwidthd | darkstat | pmacct
SENDER: tcpreplay (INPUT is a pcap; RATE packets/s or 'top' for --topspeed)
        trafgen   (INPUT is a trafgen config; RATE must be 'top'; --packets frames, -P 1)
Needs netns.sh up N. Appends one JSON line to OUTDIR/results.jsonl. The part that needs the CPU
(tool start .. measurement) holds an flock on /tmp/bwacct-live-bench.lock, so a BandwidthD run can
wait for its 200 s log interval while other runs go on."""
import sys, os, subprocess, time, json, signal, fcntl, glob, shutil, argparse, re
A = os.path.dirname(os.path.abspath(__file__))
ap = argparse.ArgumentParser()
for x in ("tool", "sender", "rate", "input", "truth", "outdir"):
    ap.add_argument(x)
ap.add_argument("--pair", default="0"); ap.add_argument("--hosts-max", default="1000000")
ap.add_argument("--bwacct", default="bwacct"); ap.add_argument("--packets", type=int, default=0)
ap.add_argument("--threads", default="")
a = ap.parse_args()
# absolute paths: the tools run with cwd = their work dir
a.input, a.truth, a.outdir = (os.path.abspath(x) for x in (a.input, a.truth, a.outdir))
if os.path.sep in a.bwacct:
    a.bwacct = os.path.abspath(a.bwacct)
G, C, TX, RX = "bwbgen" + a.pair, "bwbcap" + a.pair, "bwbtx" + a.pair, "bwbrx" + a.pair
W = os.path.join(a.outdir, "%s-%s-%s" % (a.tool, a.sender, a.rate))
shutil.rmtree(W, ignore_errors=True); os.makedirs(W); os.chmod(W, 0o777)
HZ = os.sysconf("SC_CLK_TCK")


def tree(pid):
    out, todo = [], [pid]
    while todo:
        p = todo.pop(); out.append(p)
        for t in glob.glob("/proc/%d/task/*/children" % p):
            try: todo += [int(x) for x in open(t).read().split()]
            except OSError: pass
    return out


def cpu(pids):
    """(user, system) CPU seconds of the processes, their threads included."""
    u = s = 0
    for p in pids:
        try:
            f = open("/proc/%d/stat" % p).read().rsplit(")", 1)[1].split()
            u += int(f[11]); s += int(f[12])
        except OSError: pass
    return u / HZ, s / HZ


def hwm(pids):
    r = {}
    for p in pids:
        try:
            for l in open("/proc/%d/status" % p):
                if l.startswith("VmHWM"): r[p] = int(l.split()[1])
        except OSError: pass
    return r


def veth(ns, dev):
    """(rx packets, rx dropped) of the receiving veth; the stack counts frames it has no handler
    for (QinQ, ...) as dropped after the capture taps saw them."""
    out = subprocess.run(["ip", "-n", ns, "-j", "-s", "link", "show", dev], capture_output=True, text=True).stdout
    j = json.loads(out)[0]["stats64"]["rx"]
    return j["packets"], j["dropped"]


def nsx(ns, cmd, **kw): return subprocess.Popen(["ip", "netns", "exec", ns] + cmd, **kw)


lock = open("/tmp/bwacct-live-bench.lock", "w"); fcntl.flock(lock, fcntl.LOCK_EX)
log = open(os.path.join(W, "tool.log"), "w")
if a.tool == "darkstat":
    cmd = ["darkstat", "-i", RX, "--no-daemon", "--no-dns", "--verbose", "--chroot", W, "--export", "export.db",
           "--hosts-max", a.hosts_max, "--hosts-keep", str(int(a.hosts_max) // 2), "-b", "127.0.0.1", "-p", "6670"]
elif a.tool == "pmacct":
    conf = open(os.path.join(A, "pmacctd-live.conf.in")).read().replace("@IF@", RX).replace("@OUT@", W) \
        .replace("@NETS@", os.path.join(A, "pmacct-networks.lst"))
    open(os.path.join(W, "pmacctd.conf"), "w").write(conf)
    cmd = ["pmacctd", "-f", os.path.join(W, "pmacctd.conf")]
elif a.tool == "bandwidthd":
    conf = open(os.path.join(A, "bandwidthd.conf.in")).read().replace("@IF@", RX)
    open(os.path.join(W, "bandwidthd.conf"), "w").write(conf)
    for f in glob.glob("/var/lib/bandwidthd/log.*.cdf"): os.unlink(f)
    cmd = ["bandwidthd", "-D"]
elif a.tool == "bwacct":
    conf = open(os.path.join(A, "bwacct.toml.in")).read().replace("@IF@", RX).replace("@OUT@", W) \
        .replace("@THREADS@", "threads = %s" % a.threads if a.threads else "")
    open(os.path.join(W, "bwacct.toml"), "w").write(conf)
    cmd = [a.bwacct, "-c", os.path.join(W, "bwacct.toml"), "--log", "info", "run"]
else:
    sys.exit("unknown tool " + a.tool)
p = nsx(C, cmd, stdout=log, stderr=subprocess.STDOUT, cwd=W)
t_start = time.time()
time.sleep(4)
pids = tree(p.pid); c0 = cpu(pids)
if a.sender == "tcpreplay":
    send = ["tcpreplay", "-K", "-i", TX] + (["--topspeed"] if a.rate == "top" else ["--pps=%s" % a.rate]) + [a.input]
elif a.sender == "trafgen":
    if a.rate != "top" or not a.packets:
        sys.exit("trafgen runs at top speed with --packets N")
    send = ["trafgen", "--no-sock-mem", "--notouch-irq", "-o", TX, "-n", str(a.packets), "-c", a.input, "-P", "1", "-q"]
else:
    sys.exit("unknown sender " + a.sender)
v0 = veth(C, RX)
t0 = time.time()
r = subprocess.run(["timeout", "300", "ip", "netns", "exec", G] + send, capture_output=True, text=True)
t1 = time.time()
time.sleep(3)  # let the tool empty its ring
pids = tree(p.pid); c1 = cpu(pids); mem = hwm(pids); v1 = veth(C, RX)
open(os.path.join(W, "sender.out"), "w").write(r.stdout + r.stderr)
sent = None; rate = None
for l in r.stdout.splitlines():
    if l.strip().startswith("Actual:"): sent = int(l.split()[1])
    if l.strip().startswith("Rated:"): rate = float(l.split()[-2])
delivered = v1[0] - v0[0]
if a.sender == "trafgen":
    sent = a.packets
    rate = delivered / (t1 - t0)
res = dict(tool=a.tool, sender=a.sender, rate_req=a.rate, sent=sent, sender_rc=r.returncode, pps=round(rate or 0),
           send_s=round(t1 - t0, 2), delivered=delivered, veth_rx_dropped=v1[1] - v0[1],
           cpu_user_s=round(c1[0] - c0[0], 2), cpu_sys_s=round(c1[1] - c0[1], 2),
           rss_kb_sum=sum(mem.values()), nproc=len(mem), load=open("/proc/loadavg").read().split()[:3])
if a.tool == "bandwidthd":
    fcntl.flock(lock, fcntl.LOCK_UN)   # its wait for the 200 s interval needs no CPU
    cdf = "/var/lib/bandwidthd/log.1.0.cdf"
    while time.time() - t_start < 260 and not (os.path.exists(cdf) and os.path.getsize(cdf) > 0): time.sleep(2)
    time.sleep(2)
    res["waited_s"] = round(time.time() - t_start, 1)
    for f in glob.glob("/var/lib/bandwidthd/log.*.cdf"): shutil.copy(f, W)
os.kill(p.pid, signal.SIGINT if a.tool == "pmacct" else signal.SIGTERM)
try: p.wait(60)
except subprocess.TimeoutExpired: os.kill(p.pid, signal.SIGKILL); p.wait()
log.close()
txt = open(os.path.join(W, "tool.log")).read()
if a.tool == "darkstat":
    m = re.search(r"(\d+) packets received, (\d+) packets dropped", txt)
    if m: res["tool_received"], res["tool_dropped"] = int(m.group(1)), int(m.group(2))
    kind, files = "darkstat", [os.path.join(W, "export.db")]
elif a.tool == "pmacct":
    m = re.search(r"received_packets=(\d+) dropped_packets=(\d+)", txt)
    if m: res["tool_received"], res["tool_dropped"] = int(m.group(1)), int(m.group(2))
    kind, files = "pmacct", [os.path.join(W, "hosts.csv")]
elif a.tool == "bwacct":
    m = re.search(r"kernel received (\d+) dropped (\d+)", txt)
    if m: res["tool_received"], res["tool_dropped"] = int(m.group(1)), int(m.group(2))
    m = re.search(r"^packets (\d+) accounted (\d+)", txt, re.M)
    if m: res["tool_counted"] = int(m.group(2))
    res["threads"] = len(re.findall(r"^  thread \d+:", txt, re.M)) or 1
    report = os.path.join(W, "report.json")
    with open(report, "w") as out:
        subprocess.run([a.bwacct, "-c", os.path.join(W, "bwacct.toml"), "report", "--from", "1970-01-01",
                        "--to", "2200-01-01", "--format", "json"], stdout=out, check=True)
    kind, files = "bwacct", [report]
else:
    kind, files = "bandwidthd", glob.glob(os.path.join(W, "log.1.0.cdf"))
try:
    out = subprocess.run([sys.executable, os.path.join(A, "parse_results.py"), kind] + files,
                         capture_output=True, text=True, check=True).stdout
    open(os.path.join(W, "result.json"), "w").write(out)
    for scope, extra in (("all", []), ("v4", ["--v4only"])):
        c = subprocess.run([sys.executable, os.path.join(A, "compare.py"), a.truth, os.path.join(W, "result.json")] + extra,
                           capture_output=True, text=True).stdout.splitlines()
        st = json.loads(c[1])["ip"]
        res[scope] = {k: st[k] for k in ("exact_hosts", "truth_hosts", "missing", "tx_ratio", "rx_ratio",
                                         "tx_truth", "tx_tool", "rx_truth", "rx_tool")}
except Exception as e:
    res["accuracy"] = "PARSE FAILED: %s" % e
open(os.path.join(a.outdir, "results.jsonl"), "a").write(json.dumps(res) + "\n")
print(json.dumps(res), flush=True)
