# series.sh - sourced by the fork scripts: which series, where its files live
#
# libvirt/ carries one series per libvirt release, each in a directory named
# after the release: upstream.env (the pinned tarball) and patches/ (the
# series and its cover letter).  11.3.0 is the primary series, where new
# work lands first; 9.0.0 is the Debian 12 backport.  Every script takes the
# release as its last argument and defaults to the primary.

LIBVIRT_PRIMARY=11.3.0

# series_select TOP VERSION - set the paths of series VERSION, or fail
#
# Sets series_dir, patches, tree (the git tree), builddir, prefix and
# downloads, and sources the series' upstream.env.
series_select() {
    local top=$1 version=${2:-$LIBVIRT_PRIMARY}

    series_dir=$top/libvirt/$version
    if [ ! -f "$series_dir/upstream.env" ]; then
        echo "unknown libvirt series '$version' (known: $(series_list "$top"))" >&2
        return 1
    fi
    # shellcheck source=11.3.0/upstream.env
    . "$series_dir/upstream.env"
    patches=$series_dir/patches
    tree=$top/build/libvirt-$version
    builddir=$top/build/libvirt-$version-build
    prefix=$top/build/root-$version
    downloads=$top/build/downloads
}

# series_list TOP - print the known series, space separated
series_list() {
    local d names=()
    for d in "$1"/libvirt/*/upstream.env; do
        [ -e "$d" ] && names+=("$(basename "$(dirname "$d")")")
    done
    echo "${names[*]}"
}

# series_stamp PATCHDIR - print the stamp of the series in PATCHDIR
#
# A stamp names the exact series a libvirt tree carries (the series file and
# every patch it lists); prepare.sh rebuilds the tree when it changes.
series_stamp() {
    (cd "$1" && sha256sum series $(grep -v '^#' series)) | sha256sum | cut -d' ' -f1
}
