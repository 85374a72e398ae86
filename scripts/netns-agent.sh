#!/bin/sh
# mpirun's remote launcher for the two namespace "hosts" of scripts/netns-hosts.sh, in place of
# ssh: mpirun --mca plm_rsh_agent scripts/netns-agent.sh calls it as `AGENT HOST COMMAND…` to
# start its daemon (orted) on HOST; this runs COMMAND in that host's namespace.
# OLLIE_NETNS names the pair (default ollie).
host="$1"; shift
name="${OLLIE_NETNS:-ollie}"
case "$host" in
    10.200.0.1) ns="$name-a" ;;
    10.200.0.2) ns="$name-b" ;;
    *) echo "netns-agent: no namespace for host $host (expected 10.200.0.1 or 10.200.0.2)" >&2; exit 1 ;;
esac
exec ip netns exec "$ns" sh -c "$*"
