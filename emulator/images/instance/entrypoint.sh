#!/bin/sh
# Starts the instance's inner dockerd for the emulator, and nothing else.
# Extra arguments are passed on to dockerd.
set -eu

SOCK_DIR=/run/ecsemu    # the emulator bind-mounts a per-instance host folder here
mkdir -p "$SOCK_DIR"

# A restarted instance container keeps its filesystem: stale pid files from the
# previous boot would make dockerd/containerd refuse to start.
rm -f /var/run/docker.pid /var/run/docker/containerd/containerd.pid "$SOCK_DIR/docker.sock"

# The socket's group is the host folder's (the emulator's user), not the
# image's "docker" group, whose id means something else on the host.
set -- dockerd \
    --host "unix://$SOCK_DIR/docker.sock" \
    --group "${DOCKERD_SOCKET_GID:-$(stat -c %g "$SOCK_DIR")}" \
    --data-root /var/lib/docker \
    --log-level "${DOCKERD_LOG_LEVEL:-warn}" \
    --iptables=true \
    --userland-proxy=false \
    "$@"
# --userland-proxy=false: published ports are plain DNAT rules instead of one
# docker-proxy process per port, which costs memory inside the instance's limit.

if [ -f /sys/fs/cgroup/cgroup.controllers ]; then
    # cgroup v2. Our cgroup must hold no processes once dockerd enables
    # controllers for its children ("no internal processes"), so move ourselves
    # into a leaf first. With a private cgroup namespace (--privileged) the
    # path is "/" and dockerd's containers nest under us by themselves.
    P=$(sed -n 's/^0:://p' /proc/self/cgroup)
    C="/sys/fs/cgroup${P%/}"
    mkdir -p "$C/init"
    xargs -rn1 < "$C/cgroup.procs" > "$C/init/cgroup.procs" 2>/dev/null || :
    sed -e 's/ / +/g' -e 's/^/+/' < "$C/cgroup.controllers" > "$C/cgroup.subtree_control" || :
    [ "$P" = "/" ] || set -- "$@" --cgroup-parent="${P%/}/ecs"
else
    # cgroup v1 with the host's tree mounted: put task containers under this
    # container's own cgroup so the instance's limits bound them. Never call it
    # "tasks": that is a file in every v1 cgroup and runc fails.
    P=$(sed -n 's/^[0-9]*:memory://p' /proc/self/cgroup)
    if [ -z "$P" ] || [ "$P" = "/" ]; then
        echo "ecsemu-instance: own memory cgroup not visible; task containers will not be bounded by this instance's limits" >&2
    else
        set -- "$@" --cgroup-parent="${P%/}/ecs"
    fi
fi

if [ -n "${DOCKERD_STORAGE_DRIVER:-}" ]; then
    set -- "$@" --storage-driver="$DOCKERD_STORAGE_DRIVER"
fi

# Inner bridges default to MTU 1500; the outer network may be smaller.
MTU=$(cat /sys/class/net/eth0/mtu 2>/dev/null || :)
if [ -n "$MTU" ]; then
    set -- "$@" --mtu "$MTU"
fi

exec "$@"
