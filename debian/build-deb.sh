#!/bin/sh
# debian/build-deb.sh OUTDIR [VERSION] - `make deb`: builds esgate's binary
# package with Debian's tools (dpkg-buildpackage -b, debhelper) from a copy
# of this tree in OUTDIR/src, so that nothing is written beside the clone;
# then runs lintian on it, which must report no error.  VERSION, if given,
# is a newer version than debian/changelog's: a changelog entry is added
# to the copy (check-boot builds a second package this way to test an
# upgrade).  Prints the path of the .deb last.  LINTIAN=0: no lintian.
set -eu
cd "$(dirname "$0")/.."
out=$1
version=${2:-}

changelog_version=$(dpkg-parsechangelog -S Version)
make_version=$(sed -n 's/^VERSION ?= //p' Makefile)
if [ "$changelog_version" != "$make_version" ]; then
	echo "debian/changelog says $changelog_version, the Makefile's VERSION $make_version" >&2
	exit 1
fi

rm -rf "$out/src"
mkdir -p "$out/src"
tar --exclude=./build --exclude=./.git -cf - . | tar -xf - -C "$out/src"
if [ -n "$version" ]; then
	if ! dpkg --compare-versions "$version" gt "$changelog_version"; then
		echo "version $version is not newer than $changelog_version" >&2
		exit 1
	fi
	{
		printf 'esgate (%s) unstable; urgency=medium\n\n  * Rebuild as %s.\n\n' "$version" "$version"
		printf ' -- esgate developers <esgate@esgate.invalid>  %s\n\n' "$(date -R)"
		cat debian/changelog
	} >"$out/src/debian/changelog"
fi
v=$(cd "$out/src" && dpkg-parsechangelog -S Version)
arch=$(dpkg --print-architecture)
deb=$out/esgate_${v}_${arch}.deb
rm -f "$deb"
if ! (cd "$out/src" && dpkg-buildpackage -b -us -uc -j"$(nproc)") >"$out/build-$v.log" 2>&1; then
	tail -n 40 "$out/build-$v.log" >&2
	echo "dpkg-buildpackage failed; whole log: $out/build-$v.log" >&2
	exit 1
fi
# dpkg-buildpackage writes beside the source directory, i.e. in OUT.
[ -f "$deb" ] || { echo "no $deb" >&2; exit 1; }
rm -rf "$out/src"

# lintian: any error fails; warnings and the rest are printed.  LINTIAN=0
# skips it (check-boot's second build, the same package but its version).
if [ "${LINTIAN:-1}" = 0 ]; then
	echo "$deb"
	exit 0
fi
lint=$(lintian --fail-on error --display-info "$deb" 2>&1) || {
	printf '%s\n' "$lint" >&2
	echo "lintian reports errors on $deb" >&2
	exit 1
}
printf 'lintian %s:\n%s\n' "$(basename "$deb")" "${lint:-(nothing)}"
echo "$deb"
