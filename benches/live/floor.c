/* The live floor: what libpcap costs a reader with bwacct's capture settings (TPACKET_V3 ring of
 * 64 MiB, snaplen 128, 100 ms block timeout, immediate mode off, the IP filter in the kernel)
 * that touches each packet's addresses and adds its length into a plain table. ab.sh builds and
 * runs it ("floor") beside bwacct and BandwidthD.  Usage: floor IFACE (stops on SIGTERM). */
#include <pcap.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>

static pcap_t *cap;
static volatile sig_atomic_t stop;
static uint64_t table[65536][2], frames;

static void on_signal(int s) { (void)s; stop = 1; pcap_breakloop(cap); }

static void on_packet(u_char *user, const struct pcap_pkthdr *h, const u_char *p) {
    (void)user;
    frames++;
    if (h->caplen < 54) return;
    unsigned off = 12, type = p[12] << 8 | p[13];
    while ((type == 0x8100 || type == 0x88a8) && off + 8 <= h->caplen) {
        off += 4;
        type = p[off] << 8 | p[off + 1];
    }
    const u_char *ip = p + off + 2;
    if (type == 0x0800 && off + 22 <= h->caplen) {
        table[ip[14] << 8 | ip[15]][0] += h->len;
        table[ip[18] << 8 | ip[19]][1] += h->len;
    } else if (type == 0x86dd && off + 42 <= h->caplen) {
        table[ip[22] << 8 | ip[23]][0] += h->len;
        table[ip[38] << 8 | ip[39]][1] += h->len;
    }
}

int main(int argc, char **argv) {
    char err[PCAP_ERRBUF_SIZE];
    struct bpf_program prog;
    if (argc != 2) { fprintf(stderr, "usage: %s IFACE\n", argv[0]); return 2; }
    cap = pcap_create(argv[1], err);
    if (!cap) { fprintf(stderr, "%s\n", err); return 1; }
    pcap_set_snaplen(cap, 128);
    pcap_set_buffer_size(cap, 64 << 20);
    pcap_set_timeout(cap, 100);
    pcap_set_immediate_mode(cap, 0);
    pcap_set_promisc(cap, 1);
    if (pcap_activate(cap) < 0) { fprintf(stderr, "%s\n", pcap_geterr(cap)); return 1; }
    if (pcap_compile(cap, &prog, "ip or ip6 or (vlan and (ip or ip6)) or (vlan and vlan and (ip or ip6))", 1, 0) < 0
        || pcap_setfilter(cap, &prog) < 0) {
        fprintf(stderr, "%s\n", pcap_geterr(cap));
        return 1;
    }
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    while (!stop) pcap_dispatch(cap, -1, on_packet, NULL);
    uint64_t bytes = 0;
    for (int i = 0; i < 65536; i++) bytes += table[i][0];
    fprintf(stderr, "frames %llu bytes %llu\n", (unsigned long long)frames, (unsigned long long)bytes);
    return 0;
}
