#!/bin/sh
# Like the official image: without a config file, protected mode would refuse every client that
# is not on loopback (other containers), so it is turned off; runs as the redis user.
set -e
if [ "$1" = "redis-server" ]; then
  shift
  set -- redis-server --protected-mode no "$@"
  if [ "$(id -u)" = 0 ]; then
    chown -R redis:redis /data
    exec setpriv --reuid=redis --regid=redis --init-groups "$@"
  fi
fi
exec "$@"
