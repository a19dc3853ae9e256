#!/bin/sh
# Build the test guest into build/guest (see build.py for details).
exec /usr/bin/python3 "$(dirname "$0")/build.py" "$@"
