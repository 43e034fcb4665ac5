#!/bin/sh
# Install an already-built processkit into a temporary prefix, then build
# and run tests/consumer/consumer.c against it two ways:
#   1. CMake: find_package(processkit REQUIRED) + pk::pk (tests/consumer);
#   2. pkg-config: cc consumer.c $(pkg-config --cflags --libs processkit).
# Exits non-zero with a message naming the failed step.
#
# usage: check.sh BUILD_DIR SOURCE_DIR
set -u

die() {
  echo "check.sh: FAIL: $*" >&2
  exit 1
}
step() { echo "check.sh: $*"; }
# Print a log file, then fail.
die_log() {
  log=$1
  shift
  cat "$log" >&2
  die "$@"
}

[ $# -eq 2 ] || die "usage: check.sh BUILD_DIR SOURCE_DIR"
build=$1
src=$2
cache=$build/CMakeCache.txt
[ -f "$cache" ] || die "$build is not a configured build directory"
[ -f "$src/tests/consumer/consumer.c" ] || die "$src is not the source tree"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/pk-install-XXXXXX") ||
  die "cannot create a temporary directory"
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM HUP
prefix=$tmp/prefix

# Same compiler and sanitizer flags as the build: an ASan+UBSan static
# library needs the sanitizer runtimes when linked into the consumer.
cache_get() { sed -n "s/^$1:[A-Z]*=//p" "$cache" | head -n 1; }
cc=$(cache_get CMAKE_C_COMPILER)
[ -n "$cc" ] || cc=cc
san=
case $(cache_get PK_SANITIZE) in
ON | on | TRUE | true | YES | yes | 1) san=-fsanitize=address,undefined ;;
esac

step "installing $build into $prefix"
cmake --install "$build" --prefix "$prefix" >"$tmp/install.log" 2>&1 ||
  die_log "$tmp/install.log" "cmake --install $build failed"

# ---- what was installed
for h in "$src"/lib/include/pk/*.h; do
  f=$prefix/include/pk/$(basename "$h")
  [ -f "$f" ] || die "public header not installed: $f"
  cmp -s "$h" "$f" || die "installed header differs from the source: $f"
done
pcs=$(find "$prefix" -name processkit.pc -path '*/pkgconfig/*')
[ -n "$pcs" ] || die "processkit.pc not installed under $prefix"
[ "$(echo "$pcs" | wc -l)" -eq 1 ] || die "several processkit.pc: $pcs"
libdir=$(dirname "$(dirname "$pcs")")
ls "$libdir"/libprocesskit.* >/dev/null 2>&1 ||
  die "libprocesskit not installed in $libdir"
for f in processkit-config.cmake processkit-config-version.cmake \
  processkit-targets.cmake; do
  [ -f "$libdir/cmake/processkit/$f" ] ||
    die "$libdir/cmake/processkit/$f not installed"
done
shared=no
[ -e "$libdir/libprocesskit.so" ] && shared=yes
step "installed: headers, $(cd "$libdir" && ls libprocesskit.*| tr '\n' ' ')" \
  "CMake package, processkit.pc (shared: $shared)"

# ---- 1. CMake consumer
step "building the consumer with find_package(processkit)"
cbuild=$tmp/cmake-consumer
cmake -S "$src/tests/consumer" -B "$cbuild" -DCMAKE_PREFIX_PATH="$prefix" \
  -DCMAKE_C_COMPILER="$cc" -DCMAKE_C_FLAGS="$san" \
  -DCMAKE_EXE_LINKER_FLAGS="$san" >"$tmp/cmake.log" 2>&1 ||
  die_log "$tmp/cmake.log" "configuring the consumer (find_package) failed"
found=$(sed -n 's/^processkit_DIR:[A-Z]*=//p' "$cbuild/CMakeCache.txt")
[ "$found" = "$libdir/cmake/processkit" ] ||
  die "find_package(processkit) used '$found', not $libdir/cmake/processkit"
cmake --build "$cbuild" >"$tmp/build.log" 2>&1 ||
  die_log "$tmp/build.log" "building the consumer (pk::pk) failed"
"$cbuild/consumer" || die "the CMake-built consumer failed (exit $?)"

# ---- 2. pkg-config consumer
step "building the consumer with pkg-config"
PKG_CONFIG_PATH=$libdir/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}
export PKG_CONFIG_PATH
pkg-config --exists --print-errors processkit ||
  die "pkg-config cannot find processkit in $libdir/pkgconfig"
pcprefix=$(pkg-config --variable=prefix processkit)
[ "$pcprefix" = "$prefix" ] ||
  die "processkit.pc names prefix '$pcprefix', installed to $prefix"
[ "$(pkg-config --modversion processkit)" = \
  "$(sed -n 's/^CMAKE_PROJECT_VERSION:[A-Z]*=//p' "$cache")" ] ||
  die "processkit.pc version differs from the project version"
static=
[ $shared = no ] && static=--static
flags=$(pkg-config --cflags --libs $static processkit) ||
  die "pkg-config --cflags --libs processkit failed"
step "pkg-config flags: $flags"
# shellcheck disable=SC2086 # flags are words on purpose
"$cc" -std=gnu11 -Wall -Wextra -Wpedantic -Werror $san \
  -o "$tmp/consumer-pc" "$src/tests/consumer/consumer.c" $flags \
  >"$tmp/cc.log" 2>&1 ||
  die_log "$tmp/cc.log" "cc consumer.c \$(pkg-config --cflags --libs processkit) failed"
LD_LIBRARY_PATH=$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} \
  "$tmp/consumer-pc" || die "the pkg-config-built consumer failed (exit $?)"

step "ok"
