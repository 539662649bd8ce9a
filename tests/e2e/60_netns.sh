# No path back, proven: three network namespaces joined by veth pairs,
# sender -- link emulator -- receiver.  The receiver side's interface has
# ARP and IPv6 off and the link side reaches it through a static neighbour
# entry, as on a real diode.  A bundle crosses at 5% loss and is released;
# the receiver namespace's transmit counters stay at 0 throughout.
# Needs root (ip netns); skips without it.  Addresses exist only inside
# the namespaces this test creates.
. "$(dirname "$0")/lib.sh"

[ "$(id -u)" = 0 ] || { echo "needs root for ip netns"; exit 77; }
command -v ip >/dev/null || { echo "no iproute2"; exit 77; }
S=sl-snd-$$ L=sl-lnk-$$ R=sl-rcv-$$
ip netns add "$S" 2>/dev/null || { echo "cannot create network namespaces"; exit 77; }
ip netns add "$L"; ip netns add "$R"
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null;
      ip netns del "$S"; ip netns del "$L"; ip netns del "$R"; rm -rf "$T"' EXIT
nsx() { local ns=$1; shift; ip netns exec "$ns" "$@"; }

ip link add vs type veth peer name vl1 || die "veth"
ip link set vs netns "$S"; ip link set vl1 netns "$L"
ip link add vl2 type veth peer name vr
ip link set vl2 netns "$L"; ip link set vr netns "$R"
for ns in "$S" "$L" "$R"; do nsx "$ns" ip link set lo up; done
# The receiver's side transmits nothing: no ARP, no IPv6 (no DAD, no RS).
nsx "$R" sysctl -qw net.ipv6.conf.vr.disable_ipv6=1
nsx "$R" ip link set vr arp off
nsx "$S" sysctl -qw net.ipv6.conf.vs.disable_ipv6=1
nsx "$L" sysctl -qw net.ipv6.conf.vl1.disable_ipv6=1 net.ipv6.conf.vl2.disable_ipv6=1
nsx "$S" ip addr add 10.77.1.1/24 dev vs
nsx "$L" ip addr add 10.77.1.2/24 dev vl1
nsx "$L" ip addr add 10.77.2.1/24 dev vl2
nsx "$R" ip addr add 10.77.2.2/24 dev vr
for x in "$S vs" "$L vl1" "$L vl2" "$R vr"; do set -- $x; nsx "$1" ip link set "$2" up; done
rmac=$(nsx "$R" cat /sys/class/net/vr/address)
nsx "$L" ip neigh add 10.77.2.2 lladdr "$rmac" dev vl2 nud permanent
tx0=$(nsx "$R" cat /sys/class/net/vr/statistics/tx_packets)

keys sender
cat >"$T/receiver.conf" <<CONF
listen = "10.77.2.2:7700";
sender_keys = [ "sender.pub" ];
staging_dir = "staging";
store_dir = "store";
quarantine_log = "quarantine.log";
CONF
cat >"$T/sender.conf" <<CONF
destination = "10.77.1.2:7701";
key = "sender.key";
rate = "200M";
passes = 2;
CONF
rand_file "$T/bundle/w.bin" 3000000
text_file "$T/bundle/card.md" 20000
# Not through nsx: a backgrounded function is a subshell, and killing it
# would leave the daemon running.  `ip netns exec` execs, so $! is it.
ip netns exec "$R" "$RECV" -c "$T/receiver.conf" >>"$T/recv.err" 2>&1 &
PIDS+=($!)
ip netns exec "$L" "$LINK" --listen 10.77.1.2:7701 --forward 10.77.2.2:7700 \
    --loss 0.05 --seed 3 >>"$T/link.err" 2>&1 &
PIDS+=($!)
sleep 0.5
nsx "$S" "$SEND" -c "$T/sender.conf" --version 1 "$T/bundle" >>"$T/send.err" 2>&1 ||
	die "send"
wait_state RELEASED 30
assert_same_tree "$T/bundle" "$(released bundle 1)"
sleep 1
tx1=$(nsx "$R" cat /sys/class/net/vr/statistics/tx_packets)
rx1=$(nsx "$R" cat /sys/class/net/vr/statistics/rx_packets)
rxb=$(nsx "$R" cat /sys/class/net/vr/statistics/rx_bytes)
txb=$(nsx "$R" cat /sys/class/net/vr/statistics/tx_bytes)
echo "receiver interface: rx_packets=$rx1 rx_bytes=$rxb tx_packets=$tx0->$tx1 tx_bytes=$txb"
# sluice-link forwards GSO runs, which cross the veth whole, so count
# bytes: two passes of a 3 MB bundle.
[ "$rxb" -gt 6000000 ] || die "the receiver saw little traffic"
[ "$tx0" = 0 ] && [ "$tx1" = 0 ] && [ "$txb" = 0 ] ||
	die "the receiver's side transmitted"
