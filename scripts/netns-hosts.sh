#!/usr/bin/env bash
# Two "hosts" on one machine, for MPI over real TCP: network namespaces NAME-a and NAME-b joined
# by a veth pair, 10.200.0.1/24 in NAME-a and 10.200.0.2/24 in NAME-b (private addresses that
# never leave the pair). Needs root. Run mpirun inside NAME-a with scripts/netns-agent.sh as
# its launcher (see README "Training on several machines" and BENCHMARKS.md).
#   scripts/netns-hosts.sh up [NAME]     (NAME defaults to ollie)
#   scripts/netns-hosts.sh down [NAME]
set -euo pipefail
name="${2:-ollie}"
case "${1:-}" in
up)
    ip netns add "$name-a"
    ip netns add "$name-b"
    ip link add "$name-va" type veth peer name "$name-vb"
    ip link set "$name-va" netns "$name-a"
    ip link set "$name-vb" netns "$name-b"
    ip -n "$name-a" addr add 10.200.0.1/24 dev "$name-va"
    ip -n "$name-b" addr add 10.200.0.2/24 dev "$name-vb"
    for side in a b; do
        ip -n "$name-$side" link set lo up
        ip -n "$name-$side" link set "$name-v$side" up
    done
    ;;
down)
    ip netns del "$name-a" 2>/dev/null || true   # deleting a namespace deletes its end of the pair, and so the pair
    ip netns del "$name-b" 2>/dev/null || true
    ;;
*)
    echo "usage: $0 up|down [NAME]" >&2
    exit 2
    ;;
esac
