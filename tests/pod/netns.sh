# Two pods as Linux network namespaces joined by a veth pair on a /24: what the pod test and the
# benchmark's TCP section both stand on. Source it; needs root and iproute2.

# netns_pair NS_A NS_B VETH_A VETH_B A_IP B_IP MADE: creates both namespaces, the veth pair with
# A_IP/24 and B_IP/24, and brings the links and loopbacks up. Each namespace it made is appended to
# the array named MADE, for the caller's clean-up. Returns non-zero at the first step that fails.
netns_pair() {
    local -n netns_made=$7
    ip netns add "$1" || return 1
    netns_made+=("$1")
    ip netns add "$2" || return 1
    netns_made+=("$2")
    ip link add "$3" netns "$1" type veth peer name "$4" netns "$2" &&
        ip -n "$1" addr add "$5/24" dev "$3" && ip -n "$2" addr add "$6/24" dev "$4" &&
        ip -n "$1" link set lo up && ip -n "$2" link set lo up &&
        ip -n "$1" link set "$3" up && ip -n "$2" link set "$4" up
}
