#!/bin/sh
# The Redis stand-in's entrypoint, as the official image's does it: run with no config
# file, Redis refuses every client but loopback (protected mode); in a container the
# clients come over the network.
set -e
if [ "$1" = redis-server ]; then
  shift
  set -- redis-server "$@" --protected-mode no
fi
exec "$@"
