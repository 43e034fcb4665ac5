#!/usr/bin/env bash
# Cross-builds processkit's dependencies for 64-bit Windows from Debian's
# own source packages (libuv1, libyaml, cmocka, nettle) with mingw-w64,
# into a prefix that is reused while this script and the package versions
# stay the same. Prints the prefix on stdout; progress goes to stderr.
#
#   tools/win/deps.sh            build (or reuse) and print the prefix
#
# apt-get uses a private deb-src list and state directory, so /etc/apt is
# never touched. Debian's patches are applied (dpkg-source -x), except for
# nettle, whose only patch adds -fPIC for ELF and would make its build
# regenerate configure (autotools are not needed otherwise).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cache=${PK_WIN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/processkit-win}
key=$(cat "$0" "$root/cmake/mingw-w64.cmake" | sha256sum | cut -c1-12)
prefix=$cache/deps-$key
jobs=$(nproc 2>/dev/null || echo 2)
log() { echo "win-deps: $*" >&2; }

if [ -f "$prefix/.complete" ]; then
  echo "$prefix"
  exit 0
fi
work=$cache/work-$key
rm -rf "$work" "$prefix"
mkdir -p "$work/apt/lists/partial" "$work/apt/cache" "$work/apt/parts" "$work/src"
cat >"$work/apt/parts/deb-src.sources" <<'EOF'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
apt_opts=(-o Dir::Etc::SourceList=/dev/null -o "Dir::Etc::SourceParts=$work/apt/parts"
          -o "Dir::State::Lists=$work/apt/lists" -o "Dir::Cache=$work/apt/cache"
          -o APT::Sandbox::User=root)
log "fetching Debian source packages"
apt-get "${apt_opts[@]}" update -qq >&2
(cd "$work/src" &&
  apt-get "${apt_opts[@]}" source --download-only -qq libuv1 libyaml cmocka nettle >&2)
cd "$work/src"
# (apt verified the files against the signed Release; dpkg-source's own
# gpgv check of the .dsc has no keyring here and only warns.)
for dsc in libuv1_*.dsc libyaml_*.dsc cmocka_*.dsc; do
  dpkg-source -q -x "$dsc" >>"$work/dpkg-source.log" 2>&1 ||
    { cat "$work/dpkg-source.log" >&2; exit 1; }
done
tar xzf nettle_*.orig.tar.gz

tc=$root/cmake/mingw-w64.cmake
cm() { # cm SRC [cmake args...]
  local src=$1; shift
  log "building $src"
  cmake -S "$src" -B "$work/b-$src" -DCMAKE_TOOLCHAIN_FILE="$tc" \
    -DCMAKE_INSTALL_PREFIX="$prefix" -DCMAKE_BUILD_TYPE=Release "$@" >"$work/b-$src.log" 2>&1 ||
    { cat "$work/b-$src.log" >&2; exit 1; }
  cmake --build "$work/b-$src" -j "$jobs" >>"$work/b-$src.log" 2>&1 ||
    { tail -40 "$work/b-$src.log" >&2; exit 1; }
  cmake --install "$work/b-$src" >>"$work/b-$src.log" 2>&1
}
cm libuv1-* -DLIBUV_BUILD_TESTS=OFF -DLIBUV_BUILD_BENCH=OFF
cm libyaml-* -DBUILD_SHARED_LIBS=ON -DBUILD_TESTING=OFF
cm cmocka-* -DWITH_EXAMPLES=OFF -DUNIT_TESTING=OFF

log "building nettle (sha256 and base64 only: no public key, no assembler)"
(cd nettle-*/ &&
  ./configure --host=x86_64-w64-mingw32 --prefix="$prefix" --disable-public-key \
    --disable-documentation --disable-openssl --disable-assembler --disable-shared \
    >"$work/nettle.log" 2>&1 &&
  make -j "$jobs" libnettle.a >>"$work/nettle.log" 2>&1 &&
  make install-headers install-static install-pkgconfig >>"$work/nettle.log" 2>&1) ||
  { tail -40 "$work/nettle.log" >&2; exit 1; }

# libyaml's CMake build installs no pkg-config file.
ver=$(ls -d libyaml-*/ | sed 's/libyaml-//; s,/,,')
cat >"$prefix/lib/pkgconfig/yaml-0.1.pc" <<EOF
prefix=$prefix
libdir=\${prefix}/lib
includedir=\${prefix}/include
Name: LibYAML
Description: Library to parse and emit YAML
Version: $ver
Cflags: -I\${includedir}
Libs: -L\${libdir} -lyaml
EOF
# The runtime DLLs the tests load, beside the others.
for dll in libgcc_s_seh-1.dll libwinpthread-1.dll; do
  f=$(x86_64-w64-mingw32-gcc -print-file-name="$dll")
  [ -f "$f" ] && cp "$f" "$prefix/bin/"
done
cd /
rm -rf "$work"
touch "$prefix/.complete"
# Prefixes of other script or toolchain versions are not used again.
for old in "$cache"/deps-*; do
  [ "$old" = "$prefix" ] || rm -rf "$old"
done
log "done: $prefix"
echo "$prefix"
