#!/bin/sh
# Install processkit into a temporary prefix, then build and run a
# consumer of each library (consumer.c: processkit, consumer_fakes.c:
# processkit-fakes, consumer_mock.c: processkit-mock, consumer_cassettes.c:
# processkit-cassettes) against it two ways:
#   1. CMake: find_package(processkit REQUIRED) + pk::pk, pk::fakes,
#      pk::mock, pk::cassettes (tests/consumer/CMakeLists.txt);
#   2. pkg-config: cc consumer.c $(pkg-config --cflags --libs NAME), with
#      --static when the libraries are static archives (the link order of
#      the archives is then pkg-config's, not ours).
# Exits non-zero with a message naming the failed step.
#
# usage: check.sh BUILD_DIR SOURCE_DIR [static|shared]
#   Without a third argument the libraries of BUILD_DIR are installed as
#   they were built. With one, they are first rebuilt from SOURCE_DIR with
#   that linkage (BUILD_SHARED_LIBS) in a temporary build directory, with
#   the compiler and sanitizer settings of BUILD_DIR; only what the install
#   rules name (the libraries, the pk CLI and its man page, the guardian)
#   is built, without optimisation, to keep this quick.
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

[ $# -eq 2 ] || [ $# -eq 3 ] ||
  die "usage: check.sh BUILD_DIR SOURCE_DIR [static|shared]"
build=$1
src=$2
rebuild=${3:-}
case $rebuild in
"" | static | shared) ;;
*) die "linkage must be static or shared, not '$rebuild'" ;;
esac
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
is_on() {
  case $1 in
  ON | on | TRUE | true | YES | yes | 1) return 0 ;;
  esac
  return 1
}
cc=$(cache_get CMAKE_C_COMPILER)
[ -n "$cc" ] || cc=cc
san=
is_on "$(cache_get PK_SANITIZE)" && san=-fsanitize=address,undefined
version=$(cache_get CMAKE_PROJECT_VERSION)

# ---- the libraries to install
if [ -n "$rebuild" ]; then
  shared_opt=OFF
  [ "$rebuild" = shared ] && shared_opt=ON
  lbuild=$tmp/build-$rebuild
  step "building the libraries with BUILD_SHARED_LIBS=$shared_opt in $lbuild"
  cmake -S "$src" -B "$lbuild" -DBUILD_SHARED_LIBS=$shared_opt \
    -DCMAKE_BUILD_TYPE= -DCMAKE_C_COMPILER="$cc" \
    -DPK_SANITIZE="$(cache_get PK_SANITIZE)" \
    -DPK_WERROR="$(cache_get PK_WERROR)" \
    -DPK_BUILD_TESTS=OFF -DPK_BUILD_BENCH=OFF >"$tmp/lconfig.log" 2>&1 ||
    die_log "$tmp/lconfig.log" "configuring the $rebuild libraries failed"
  cmake --build "$lbuild" -j "$(nproc 2>/dev/null || echo 2)" \
    --target pk pk_fakes pk_mock pk_cassettes pk-guardian pk-cli pk-man \
    >"$tmp/lbuild.log" 2>&1 ||
    die_log "$tmp/lbuild.log" "building the $rebuild libraries failed"
  build=$lbuild
  cache=$build/CMakeCache.txt
fi
kind=static
is_on "$(cache_get BUILD_SHARED_LIBS)" && kind=shared

step "installing $build ($kind) into $prefix"
cmake --install "$build" --prefix "$prefix" >"$tmp/install.log" 2>&1 ||
  die_log "$tmp/install.log" "cmake --install $build failed"

# ---- what was installed
for h in "$src"/lib/include/pk/*.h "$src"/fakes/include/pk/*.h \
  "$src"/cassettes/include/pk/*.h; do
  f=$prefix/include/pk/$(basename "$h")
  [ -f "$f" ] || die "public header not installed: $f"
  cmp -s "$h" "$f" || die "installed header differs from the source: $f"
done
pcs=$(find "$prefix" -name processkit.pc -path '*/pkgconfig/*')
[ -n "$pcs" ] || die "processkit.pc not installed under $prefix"
[ "$(echo "$pcs" | wc -l)" -eq 1 ] || die "several processkit.pc: $pcs"
libdir=$(dirname "$(dirname "$pcs")")
libs="processkit processkit-fakes processkit-mock processkit-cassettes"
for l in $libs; do
  [ -f "$libdir/pkgconfig/$l.pc" ] || die "$l.pc not installed in $libdir"
  if [ $kind = shared ]; then
    [ -L "$libdir/lib$l.so" ] && [ -f "$libdir/lib$l.so.0" ] ||
      die "lib$l.so (with its soname link lib$l.so.0) not installed"
    [ ! -e "$libdir/lib$l.a" ] || die "a shared build installed lib$l.a"
  else
    [ -f "$libdir/lib$l.a" ] || die "lib$l.a not installed in $libdir"
    [ ! -e "$libdir/lib$l.so" ] || die "a static build installed lib$l.so"
  fi
done
cmakefiles="processkit-config.cmake processkit-config-version.cmake
  processkit-targets.cmake processkit-mock-targets.cmake"
# The pk_cassette_dir() helper, once the source tree has it.
[ -f "$src/cmake/processkit-cassettes.cmake" ] &&
  cmakefiles="$cmakefiles processkit-cassettes.cmake"
for f in $cmakefiles; do
  [ -f "$libdir/cmake/processkit/$f" ] ||
    die "$libdir/cmake/processkit/$f not installed"
done
step "installed: headers, $(cd "$libdir" && ls libprocesskit* | tr '\n' ' ')" \
  "CMake package, $(cd "$libdir/pkgconfig" && ls | tr '\n' ' ')"

# Shared libraries: each links the one below it (a private copy of
# libprocesskit inside -fakes would split its state in two), and only the
# API (pk_*, and the pk__* internals the libraries above use) is exported.
needed() { readelf -d "$1" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'; }
if [ $kind = shared ]; then
  needed "$libdir/libprocesskit-fakes.so" | grep -qx 'libprocesskit\.so\.0' ||
    die "libprocesskit-fakes.so does not link libprocesskit.so.0"
  needed "$libdir/libprocesskit-mock.so" |
    grep -qx 'libprocesskit-fakes\.so\.0' ||
    die "libprocesskit-mock.so does not link libprocesskit-fakes.so.0"
  needed "$libdir/libprocesskit-cassettes.so" |
    grep -qx 'libprocesskit-fakes\.so\.0' ||
    die "libprocesskit-cassettes.so does not link libprocesskit-fakes.so.0"
  for l in $libs; do
    # The cassette layer's internals are pkc_*, exported (PK_EXTERN in
    # cassettes/src/model.h) for its format tests and fuzz targets, as
    # libprocesskit exports its pk__* internals.
    ok='^pk_'
    [ "$l" = processkit-cassettes ] && ok='^pkc?_'
    leaked=$(nm -D --defined-only "$libdir/lib$l.so" | awk -v ok="$ok" \
      '$3 !~ ok && $3 !~ /^_(init|fini)$/ { print $3 }')
    [ -z "$leaked" ] ||
      die "lib$l.so exports non-pk symbols: $(echo $leaked | head -c 300)"
  done
fi

# Run a consumer; with shared libraries from the temporary prefix.
run() {
  LD_LIBRARY_PATH=$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} "$@"
}
# A consumer linked as it should be: the processkit libraries dynamically
# in a shared install, not at all (statically) in a static one.
check_linkage() {
  n=$(needed "$1" | grep -c '^libprocesskit')
  if [ $kind = shared ]; then
    [ "$n" -gt 0 ] || die "$1 does not link the shared libprocesskit*"
  else
    [ "$n" -eq 0 ] || die "$1 links a shared libprocesskit* in a static install"
  fi
}

# ---- 1. CMake consumers
step "building the consumers with find_package(processkit)"
cbuild=$tmp/cmake-consumer
cmake -S "$src/tests/consumer" -B "$cbuild" -DCMAKE_PREFIX_PATH="$prefix" \
  -DCMAKE_C_COMPILER="$cc" -DCMAKE_C_FLAGS="$san" \
  -DCMAKE_EXE_LINKER_FLAGS="$san" >"$tmp/cmake.log" 2>&1 ||
  die_log "$tmp/cmake.log" "configuring the consumer (find_package) failed"
found=$(sed -n 's/^processkit_DIR:[A-Z]*=//p' "$cbuild/CMakeCache.txt")
[ "$found" = "$libdir/cmake/processkit" ] ||
  die "find_package(processkit) used '$found', not $libdir/cmake/processkit"
cmake --build "$cbuild" >"$tmp/build.log" 2>&1 ||
  die_log "$tmp/build.log" \
    "building the consumers (pk::pk, pk::fakes, pk::mock, pk::cassettes) failed"
for c in consumer consumer_fakes consumer_mock consumer_cassettes; do
  check_linkage "$cbuild/$c"
  run "$cbuild/$c" || die "the CMake-built $c failed (exit $?)"
done

# ---- 2. pkg-config consumers
step "building the consumers with pkg-config"
PKG_CONFIG_PATH=$libdir/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}
export PKG_CONFIG_PATH
static=
[ $kind = static ] && static=--static
for l in $libs; do
  case $l in
  processkit) c=consumer ;;
  processkit-fakes) c=consumer_fakes ;;
  processkit-mock) c=consumer_mock ;;
  processkit-cassettes) c=consumer_cassettes ;;
  esac
  pkg-config --exists --print-errors "$l" ||
    die "pkg-config cannot find $l in $libdir/pkgconfig"
  pcprefix=$(pkg-config --variable=prefix "$l")
  [ "$pcprefix" = "$prefix" ] ||
    die "$l.pc names prefix '$pcprefix', installed to $prefix"
  [ "$(pkg-config --modversion "$l")" = "$version" ] ||
    die "$l.pc version differs from the project version $version"
  flags=$(pkg-config --cflags --libs $static "$l") ||
    die "pkg-config --cflags --libs $static $l failed"
  step "pkg-config --cflags --libs${static:+ $static} $l: $flags"
  # shellcheck disable=SC2086 # flags are words on purpose
  "$cc" -std=gnu11 -Wall -Wextra -Wpedantic -Werror $san \
    -o "$tmp/$c-pc" "$src/tests/consumer/$c.c" $flags \
    >"$tmp/cc.log" 2>&1 ||
    die_log "$tmp/cc.log" "cc $c.c \$(pkg-config --cflags --libs $static $l) failed"
  check_linkage "$tmp/$c-pc"
  run "$tmp/$c-pc" || die "the pkg-config-built $c failed (exit $?)"
done

step "ok ($kind)"
