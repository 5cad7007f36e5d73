#!/bin/sh
# Entry point of the webserver and daemon containers (Dockerfile.dagster).
#
# Both talk to the Docker engine through /var/run/docker.sock: the daemon starts a container per
# run, the webserver stops one when a run is terminated from the UI. The group owning the socket
# differs between hosts (docker's gid on Linux, root on Docker Desktop), so it cannot be baked into
# the image. Started as root, this script adds that group to the unprivileged `dagster` user and
# execs the command as that user. Started as any other user, it just execs the command.
set -eu

sock=${DOCKER_SOCKET_PATH:-/var/run/docker.sock}

if [ "$(id -u)" != 0 ]; then
  exec "$@"
fi

groups=dagster
if [ -S "$sock" ]; then
  gid=$(stat -c %g "$sock")
  groups="dagster,$gid"
  if [ "$(stat -c %a "$sock" | cut -c2)" -lt 6 ] 2>/dev/null; then
    echo "dagster-entrypoint: $sock (mode $(stat -c %a "$sock")) is not group-writable;" \
         "the dagster user cannot use it, runs will fail to launch" >&2
  fi
fi
export HOME=/home/dagster USER=dagster
exec setpriv --reuid=dagster --regid=dagster --groups="$groups" --inh-caps=-all -- "$@"
