#!/bin/bash
# (Adapted from the project's shared bench anchors.) An isolated lab for the live bench: namespace
# bwbgenN (veth bwbtxN) joined to bwbcapN (veth bwbrxN); both ends inside the namespaces, no
# addresses, no routes, IPv6 off, MTU 9000, bwbrxN promiscuous. Sent frames go nowhere else.
# Usage: netns.sh up [N] | down [N]      (N = pair index, default 0)
set -e
N=${2:-0}; G=bwbgen$N; C=bwbcap$N
case "$1" in
up)
  ip netns add $G; ip netns add $C
  ip link add bwbtx$N netns $G type veth peer name bwbrx$N netns $C
  for ns in $G $C; do
    ip netns exec $ns sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
    ip -n $ns link set lo up
  done
  ip -n $G link set bwbtx$N mtu 9000 up
  ip -n $C link set bwbrx$N mtu 9000 up
  ip -n $C link set bwbrx$N promisc on
  ;;
down)
  ip netns del $G 2>/dev/null || true; ip netns del $C 2>/dev/null || true ;;
*) echo "usage: $0 up|down [N]"; exit 1 ;;
esac
