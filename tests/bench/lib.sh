# Shared by the bench scripts: source it.

# rcvbuf_errors: the kernel's Udp RcvbufErrors so far (system-wide), the
# drops of datagrams no socket had room for
rcvbuf_errors() {
	awk '/^Udp:/ { if (!n) { for (i = 2; i <= NF; i++) c[$i] = i; n = 1 }
	    else { print $c["RcvbufErrors"]; exit } }' /proc/net/snmp
}
