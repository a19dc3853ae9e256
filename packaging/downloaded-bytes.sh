#!/bin/sh
# downloaded-bytes.sh - mmdebstrap customize hook: write to ROOT/downloaded-bytes
# the summed .deb sizes (from the apt index) of every package installed in
# ROOT, which is what mmdebstrap downloaded for it.
#
# Usage (by mmdebstrap): downloaded-bytes.sh ROOT
set -eu
chroot "$1" sh -c "dpkg-query -W -f='\${Package}:\${Architecture}=\${Version}\n' |
    xargs apt-cache show 2>/dev/null | awk '/^Size:/ { s += \$2 } END { print s + 0 }'" \
    > "$1/downloaded-bytes"
