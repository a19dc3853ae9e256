# series.sh - sourced by prepare.sh and export.sh: the series stamp
#
# A stamp names the exact series a libvirt tree carries (the series file and
# every patch it lists); prepare.sh rebuilds the tree when it changes.

# series_stamp PATCHDIR - print the stamp of the series in PATCHDIR
series_stamp() {
    (cd "$1" && sha256sum series $(grep -v '^#' series)) | sha256sum | cut -d' ' -f1
}
