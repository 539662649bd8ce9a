# capture_interface: the receiver reads the link with libpcap from an
# interface that has no address at all (no IPv4, IPv6 off, ARP off): two
# network namespaces joined by a veth pair, the sender reaching the
# receiver's end through a static neighbour entry, as across a diode.  A
# bundle is released bit-exact, and the receiver's interface counters show
# 0 packets transmitted.  Needs root (ip netns); skips without it.
# Addresses exist only inside the namespaces this test creates.
. "$(dirname "$0")/lib.sh"

[ "$(id -u)" = 0 ] || { echo "needs root for ip netns"; exit 77; }
command -v ip >/dev/null || { echo "no iproute2"; exit 77; }
S=sl-csnd-$$ R=sl-crcv-$$
ip netns add "$S" 2>/dev/null || { echo "cannot create network namespaces"; exit 77; }
ip netns add "$R"
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null;
      ip netns del "$S"; ip netns del "$R"; rm -rf "$T"' EXIT
nsx() { local ns=$1; shift; ip netns exec "$ns" "$@"; }

ip link add cs type veth peer name cr || die "veth"
ip link set cs netns "$S"; ip link set cr netns "$R"
for ns in "$S" "$R"; do nsx "$ns" ip link set lo up; done
nsx "$R" sysctl -qw net.ipv6.conf.cr.disable_ipv6=1
nsx "$R" ip link set cr arp off
nsx "$S" sysctl -qw net.ipv6.conf.cs.disable_ipv6=1
nsx "$S" ip addr add 10.78.1.1/24 dev cs
nsx "$S" ip link set cs up
nsx "$R" ip link set cr up
rmac=$(nsx "$R" cat /sys/class/net/cr/address)
nsx "$S" ip neigh add 10.78.1.2 lladdr "$rmac" dev cs nud permanent
[ -z "$(nsx "$R" ip -o addr show dev cr)" ] ||
	die "the receiver's interface has an address"
tx0=$(nsx "$R" cat /sys/class/net/cr/statistics/tx_packets)

keys sender
cat >"$T/receiver.conf" <<CONF
listen = "0.0.0.0:7700";
capture_interface = "cr";
capture_buffer = "32M";
sender_keys = [ "sender.pub" ];
staging_dir = "staging";
store_dir = "store";
quarantine_log = "quarantine.log";
CONF
cat >"$T/sender.conf" <<CONF
destination = "10.78.1.2:7700";
key = "sender.key";
rate = "200M";
passes = 1;
CONF
rand_file "$T/bundle/w.bin" 3000000
text_file "$T/bundle/card.md" 20000
ip netns exec "$R" "$RECV" -c "$T/receiver.conf" >>"$T/recv.err" 2>&1 &
PIDS+=($!)
wait_until 10 grep -q "listening on cr with libpcap" "$T/recv.err" ||
	die "the receiver did not start: $(cat "$T/recv.err")"
nsx "$S" "$SEND" -c "$T/sender.conf" --version 1 "$T/bundle" \
    >>"$T/send.err" 2>&1 || die "send"
wait_state RELEASED 30
assert_same_tree "$T/bundle" "$(released bundle 1)"
sleep 1
tx1=$(nsx "$R" cat /sys/class/net/cr/statistics/tx_packets)
rxb=$(nsx "$R" cat /sys/class/net/cr/statistics/rx_bytes)
echo "receiver interface: rx_bytes=$rxb tx_packets=$tx0->$tx1"
[ "$rxb" -gt 3000000 ] || die "the receiver saw little traffic"
[ "$tx0" = 0 ] && [ "$tx1" = 0 ] || die "the receiver's side transmitted"
echo "capture interface ok"
