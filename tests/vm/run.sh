#!/usr/bin/env bash
# Runs processkit test binaries inside a small QEMU VM (TCG, no KVM) whose
# only filesystem is an initramfs, so the tests run as root at the REAL
# cgroup-v2 root: the library itself enables the controllers and sets
# memory.max, pids.max and cpu.max, and the kernel enforces them.
#
#   tests/vm/run.sh --build-dir DIR [--timeout SEC] [--mem MIB] [--smp N]
#                   TEST [TEST...]
#   tests/vm/run.sh --selftest [--timeout SEC]
#
# TEST is a test executable's path relative to DIR (tests/test_group); a
# "#!/bin/sh" script there works too (busybox sh), handy for a look around
# inside the VM. The initramfs holds busybox, the requested tests, every
# other built file the tests exec or read at its absolute build path
# (DIR/fixtures, DIR/tools, DIR/lib, DIR/fakes, DIR/cassettes, any shared
# object), the tracked files of the source tree (tests read
# PK_SOURCE_DIR/...), the shared libraries of all of them (ldd) at the same
# absolute paths, and an /etc with root, nobody and nogroup. /init only
# mounts (proc, sysfs, devtmpfs, devpts, cgroup2 at /sys/fs/cgroup, tmpfs at
# /dev/shm and /run; /tmp is the initramfs's own, so a build directory under
# /tmp stays visible); it enables no cgroup controller. It runs each
# test with PK_IN_VM=1, stdin /dev/null, from the test's directory (as ctest
# does), between
#   === vm: begin TEST
#   === vm: end TEST rc=N time=Ss
# and powers off. --selftest boots without processkit and proves that the
# memory, pids and cpu controllers exist and are enforced (it enables them
# itself, which is why it is a separate boot).
#
# Exit status: 0 every test ran and exited 0; 1 a test failed or the VM did
# not finish; 2 usage; 77 skipped (no qemu/busybox/kernel and no way to get
# them), with a "vm: SKIPPED: reason" line.
#
# Needs x86_64, qemu-system-x86 and busybox-static (installed with apt-get
# when missing and running as root), and a Debian cloud kernel: the package
# linux-image-cloud-amd64 depends on is downloaded (not installed) once into
# $PK_VM_CACHE (default ${XDG_CACHE_HOME:-$HOME/.cache}/processkit-vm).
# PK_VM_KERNEL=/path/to/vmlinuz uses another kernel instead; PK_VM_CPU sets
# QEMU's -cpu (default max). TCG runs exec-heavy tests about 10x slower.
set -euo pipefail

usage() {
  sed -n '7,9p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}
log() { echo "vm: $*" >&2; }
die_usage() {
  echo "vm: usage error: $*" >&2
  usage
}
fail() {
  echo "vm: FAILED: $*" >&2
  exit 1
}
skip() {
  echo "vm: SKIPPED: $*" >&2
  exit 77
}

build_dir=""
timeout_s=600
mem_mib=512
smp=2
selftest=0
tests=()
while [ $# -gt 0 ]; do
  case "$1" in
    --build-dir) [ $# -ge 2 ] || die_usage "--build-dir needs a value"
      build_dir="$2"; shift 2 ;;
    --build-dir=*) build_dir="${1#*=}"; shift ;;
    --timeout) [ $# -ge 2 ] || die_usage "--timeout needs a value"
      timeout_s="$2"; shift 2 ;;
    --timeout=*) timeout_s="${1#*=}"; shift ;;
    --mem) [ $# -ge 2 ] || die_usage "--mem needs a value"
      mem_mib="$2"; shift 2 ;;
    --mem=*) mem_mib="${1#*=}"; shift ;;
    --smp) [ $# -ge 2 ] || die_usage "--smp needs a value"
      smp="$2"; shift 2 ;;
    --smp=*) smp="${1#*=}"; shift ;;
    --selftest) selftest=1; shift ;;
    -h | --help) usage ;;
    --) shift; tests+=("$@"); break ;;
    -*) die_usage "unknown option $1" ;;
    *) tests+=("$1"); shift ;;
  esac
done
for v in "$timeout_s" "$mem_mib" "$smp"; do
  [[ "$v" =~ ^[1-9][0-9]*$ ]] || die_usage "not a positive integer: $v"
done
if [ "$selftest" = 1 ]; then
  [ ${#tests[@]} -eq 0 ] || die_usage "--selftest takes no TEST (it enables controllers, so it boots alone)"
else
  [ -n "$build_dir" ] || die_usage "--build-dir is required"
  [ ${#tests[@]} -gt 0 ] || die_usage "no TEST given"
  [ -d "$build_dir" ] || die_usage "no such build directory: $build_dir"
  build_dir="$(cd "$build_dir" && pwd -P)"
  for t in "${tests[@]}"; do
    if ! [[ "$t" =~ ^[A-Za-z0-9._/+-]+$ ]] || [[ "$t" == /* ]]; then
      die_usage "TEST must be a relative path without spaces: $t"
    fi
    if ! [ -f "$build_dir/$t" ] || ! [ -x "$build_dir/$t" ]; then
      fail "no test executable $build_dir/$t (build it first)"
    fi
  done
fi

# --- Host tools -------------------------------------------------------------
[ "$(uname -m)" = x86_64 ] || skip "host is $(uname -m), this runner needs x86_64"

apt_install() {
  local out
  out="$(mktemp)"
  if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
    --no-install-recommends "$@" >"$out" 2>&1; then
    log "apt-get install $* failed; running apt-get update and retrying"
    if ! { DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        --no-install-recommends "$@"; } >"$out" 2>&1; then
      tail -n 20 "$out" >&2
      rm -f "$out"
      return 1
    fi
  fi
  rm -f "$out"
}

find_busybox() {
  local b
  for b in /bin/busybox /usr/bin/busybox "$(command -v busybox 2>/dev/null || true)"; do
    if [ -n "$b" ] && [ -f "$b" ] && [ -x "$b" ]; then
      echo "$b"
      return 0
    fi
  done
  return 1
}

have() { # an executable file on PATH (bash's command -v also finds others)
  local p
  p="$(command -v "$1" 2>/dev/null)" && [ -f "$p" ] && [ -x "$p" ]
}

missing=()
have qemu-system-x86_64 || missing+=(qemu-system-x86)
find_busybox >/dev/null || missing+=(busybox-static)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ] || ! have apt-get; then
    skip "missing ${missing[*]} and not root with apt-get to install them"
  fi
  log "installing ${missing[*]}"
  apt_install "${missing[@]}" || skip "could not install ${missing[*]} with apt-get"
  have qemu-system-x86_64 ||
    skip "qemu-system-x86_64 still missing after installing"
fi
busybox="$(find_busybox)" || skip "busybox still missing after installing"

# --- Kernel (cached) ----------------------------------------------------------
cache="${PK_VM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/processkit-vm}"

resolve_kernel_pkg() {
  apt-cache depends linux-image-cloud-amd64 2>/dev/null |
    awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9]/ { print $2; exit }'
}

newest_cached_kernel() {
  local k
  k="$(ls -1td "$cache"/linux-image-*/vmlinuz 2>/dev/null | head -n 1 || true)"
  [ -n "$k" ] && echo "$k"
}

# Called where set -e does not apply (k="$(download_kernel ...)" || ...):
# every step checks its own status.
download_kernel() { # PKG -> prints the cached vmlinuz
  local pkg="$1" dl deb
  mkdir -p "$cache" || return 1
  dl="$(mktemp -d "$cache/.dl.XXXXXX")" || return 1
  [ -n "$dl" ] && [ -d "$dl" ] || return 1
  local -a opt=()
  [ "$(id -u)" != 0 ] || opt=(-o APT::Sandbox::User=root)
  if ! (cd "$dl" && apt-get download -qq "${opt[@]}" "$pkg") >&2 ||
    ! deb="$(ls "$dl"/*.deb)" ||
    ! mkdir -p "$dl/x" "$dl/out" ||
    ! dpkg-deb -x "$deb" "$dl/x" ||
    ! cp "$dl"/x/boot/vmlinuz-* "$dl/out/vmlinuz"; then
    rm -rf "$dl"
    return 1
  fi
  cp "$dl"/x/boot/config-* "$dl/out/config" 2>/dev/null || true
  # Another run may have cached it meanwhile: keep either copy.
  mv -T "$dl/out" "$cache/$pkg" 2>/dev/null || true
  rm -rf "$dl"
  [ -f "$cache/$pkg/vmlinuz" ] && echo "$cache/$pkg/vmlinuz"
}

get_kernel() {
  local pkg k
  pkg="$(resolve_kernel_pkg || true)"
  if [ -z "$pkg" ]; then
    # No apt lists (a fresh image): use a cached kernel if there is one.
    if k="$(newest_cached_kernel)"; then
      echo "$k"
      return 0
    fi
    [ "$(id -u)" = 0 ] || return 1
    log "apt-get update (to resolve linux-image-cloud-amd64)"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 || return 1
    pkg="$(resolve_kernel_pkg || true)"
    [ -n "$pkg" ] || return 1
  fi
  if [ -f "$cache/$pkg/vmlinuz" ]; then
    echo "$cache/$pkg/vmlinuz"
    return 0
  fi
  log "downloading $pkg into $cache"
  if k="$(download_kernel "$pkg")"; then
    echo "$k"
    return 0
  fi
  newest_cached_kernel
}

if [ -n "${PK_VM_KERNEL:-}" ]; then
  kernel="$PK_VM_KERNEL"
  [ -f "$kernel" ] || fail "PK_VM_KERNEL=$kernel does not exist"
else
  kernel="$(get_kernel)" ||
    skip "no kernel: could not resolve or download the package linux-image-cloud-amd64 depends on"
fi

# --- Initramfs ------------------------------------------------------------------
work=""
qemu_pid=""
cleanup() {
  # timeout(1) leads its own process group (QEMU is in it): end the group.
  if [ -n "$qemu_pid" ] && kill -0 "$qemu_pid" 2>/dev/null; then
    kill -TERM -- "-$qemu_pid" 2>/dev/null || kill -TERM "$qemu_pid" 2>/dev/null || true
    for _ in 1 2 3 4 5 6 7 8 9 10; do
      kill -0 "$qemu_pid" 2>/dev/null || break
      sleep 0.5
    done
    kill -KILL -- "-$qemu_pid" 2>/dev/null || kill -KILL "$qemu_pid" 2>/dev/null || true
  fi
  [ -z "$work" ] || rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
work="$(mktemp -d "${TMPDIR:-/tmp}/pk-vm.XXXXXX")"
root="$work/root"
mkdir -p "$root"

# The host's top-level layout (merged /usr: /lib -> usr/lib), so the
# libraries land where ldd found them and ld.so looks for them.
for d in bin sbin lib lib32 lib64 libx32; do
  if [ -L "/$d" ]; then
    target="$(readlink "/$d")"
    case "$target" in
      /* | *..*) mkdir -p "$root/$d" ;;
      *) mkdir -p "$root/$target" && ln -s "$target" "$root/$d" ;;
    esac
  elif [ -d "/$d" ] || [ "$d" = bin ] || [ "$d" = sbin ] || [ "$d" = lib ]; then
    mkdir -p "$root/$d"
  fi
done
mkdir -p "$root"/{usr/bin,usr/sbin,usr/local/bin,etc,proc,sys,dev,tmp,run,root,var/tmp,vm}
chmod 1777 "$root/tmp" "$root/var/tmp"

is_elf() { [ "$(od -An -tx1 -N4 "$1" 2>/dev/null | tr -d ' \n')" = 7f454c46 ]; }

elves=()
copy_in() { # absolute host path -> same path in the initramfs
  local src="$1" dst="$root$1"
  [ -e "$dst" ] && return 0
  mkdir -p "$(dirname "$dst")"
  cp -L --preserve=mode "$src" "$dst"
  if is_elf "$src"; then elves+=("$src"); fi
}

cp -L "$busybox" "$root/bin/busybox"
is_elf "$busybox" && elves+=("$busybox")
# /bin/sh for /init; /init installs the other applet links itself.
[ -e "$root/bin/sh" ] || ln -s busybox "$root/bin/sh"

if [ "$selftest" = 0 ]; then
  # The source tree's tracked files: tests read PK_SOURCE_DIR/docs,
  # fixtures/cassettes, .clang-format...
  src="$(sed -n 's/^CMAKE_HOME_DIRECTORY:INTERNAL=//p' "$build_dir/CMakeCache.txt" 2>/dev/null || true)"
  if [ -n "$src" ] && [ -d "$src" ]; then
    mkdir -p "$root$src"
    if command -v git >/dev/null 2>&1 &&
      git -C "$src" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
      git -C "$src" ls-files -z |
        tar -C "$src" --null -T - --ignore-failed-read -cf - 2>/dev/null |
        tar -C "$root$src" -xf -
    else
      tar -C "$src" --exclude=.git --exclude=.cache \
        --exclude-tag-all=CMakeCache.txt -cf - . | tar -C "$root$src" -xf -
    fi
  fi
  # The requested tests, and what they exec or read at build paths.
  for t in "${tests[@]}"; do copy_in "$build_dir/$t"; done
  while IFS= read -r -d '' f; do copy_in "$f"; done < <(
    for sub in fixtures tools lib fakes cassettes; do
      [ -d "$build_dir/$sub" ] || continue
      find "$build_dir/$sub" -name CMakeFiles -prune -o -type f \
        ! -name '*.o' ! -name '*.a' ! -name Makefile ! -name '*.cmake' \
        ! -name '*.make' ! -name '*.in' -print0
    done
    find "$build_dir" -name CMakeFiles -prune -o -type f -name '*.so*' -print0
  )
  mkdir -p "$root$build_dir/tests"
fi

# Shared libraries of everything copied, at ldd's paths.
libs="$work/libs"
: >"$libs"
for e in "${elves[@]}"; do
  out="$(ldd "$e" 2>&1 || true)"
  if grep -q 'not found' <<<"$out"; then
    fail "ldd $e: $(grep 'not found' <<<"$out" | tr -s ' \t\n' ' ')"
  fi
  awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^\//) print $i }' <<<"$out" >>"$libs"
done
# glibc dlopens libgcc_s for pthread_exit/pthread_cancel unwinding.
ldconfig -p 2>/dev/null | awk '$1 == "libgcc_s.so.1" && /x86-64/ { print $NF; exit }' >>"$libs" || true
while IFS= read -r l; do
  [ -n "$l" ] && [ -e "$l" ] && copy_in "$l"
done < <(sort -u "$libs")

# /etc: root and nobody/nogroup for privilege-drop tests, files-only NSS.
cat >"$root/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
EOF
cat >"$root/etc/group" <<'EOF'
root:x:0:
tty:x:5:
nogroup:x:65534:
EOF
cat >"$root/etc/nsswitch.conf" <<'EOF'
passwd: files
group: files
shadow: files
hosts: files
EOF
printf '127.0.0.1\tlocalhost\n::1\tlocalhost\n' >"$root/etc/hosts"
echo pk-vm >"$root/etc/hostname"

if [ "$selftest" = 1 ]; then
  echo selftest >"$root/vm/tests"
else
  printf '%s\n' "${tests[@]}" >"$root/vm/tests"
fi
printf '%s\n' "$build_dir" >"$root/vm/build_dir"

cat >"$root/init" <<'EOF'
#!/bin/sh
# processkit VM /init (busybox sh). Mounts, runs /vm/tests, powers off.
# It never enables cgroup controllers: that is the library's job.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root PK_IN_VM=1
unset TERM
off() {
  sync
  /bin/busybox poweroff -f
  /bin/busybox sleep 5
  echo o >/proc/sysrq-trigger
  exit 1 # init exits: the kernel panics, panic=-1 reboots, QEMU exits
}
must() {
  "$@" || { echo "=== vm: setup failed: $*"; off; }
}
echo "=== vm: init started"
must /bin/busybox mount -t proc -o nosuid,nodev,noexec proc /proc
/bin/busybox --install -s # applet links (mount, poweroff...); needs /proc
must mount -t sysfs -o nosuid,nodev,noexec sysfs /sys
must mount -t devtmpfs -o nosuid,mode=0755 devtmpfs /dev
mkdir -p /dev/pts /dev/shm
must mount -t devpts -o nosuid,noexec,gid=5,mode=0620,ptmxmode=0666 devpts /dev/pts
must mount -t tmpfs -o nosuid,nodev,mode=1777 tmpfs /dev/shm
# /tmp stays the initramfs's own (writable, mode 1777): a tmpfs there
# would hide a build directory that lives under /tmp (a CI clone in
# mktemp -d, say).
must mount -t tmpfs -o nosuid,nodev,mode=0755 tmpfs /run
must mount -t cgroup2 -o nosuid,nodev,noexec cgroup2 /sys/fs/cgroup
[ -e /dev/fd ] || ln -s /proc/self/fd /dev/fd
[ -e /dev/stdin ] || ln -s /proc/self/fd/0 /dev/stdin
[ -e /dev/stdout ] || ln -s /proc/self/fd/1 /dev/stdout
[ -e /dev/stderr ] || ln -s /proc/self/fd/2 /dev/stderr
# Kernel messages (OOM kills...) would interleave with test output on the
# console: keep only emergencies there; failures print the dmesg tail.
echo 1 >/proc/sys/kernel/printk
hostname pk-vm
ip link set lo up 2>/dev/null || ifconfig lo 127.0.0.1 up 2>/dev/null
echo "=== vm: kernel $(uname -r), $(nproc) cpus, $(awk '/MemTotal/ { print $2 / 1024 " MiB" }' /proc/meminfo)"
echo "=== vm: cgroup.controllers: $(cat /sys/fs/cgroup/cgroup.controllers)"
echo "=== vm: subtree_control: '$(cat /sys/fs/cgroup/cgroup.subtree_control)', /proc/self/cgroup: $(cat /proc/self/cgroup)"

selftest() {
  cg=/sys/fs/cgroup
  ok=0
  for c in memory pids cpu; do
    grep -qw "$c" $cg/cgroup.controllers || { echo "selftest: no $c controller"; ok=1; }
  done
  [ $ok = 0 ] || return 1
  echo "+memory +pids +cpu" >$cg/cgroup.subtree_control || return 1
  # pids.max=4: a shell starting 8 sleeps hits it.
  mkdir $cg/pids && echo 4 >$cg/pids/pids.max || return 1
  sh -c "echo \$\$ >$cg/pids/cgroup.procs; for i in 1 2 3 4 5 6 7 8; do sleep 1 & done; wait" 2>/dev/null
  max=$(awk '$1 == "max" { print $2 }' $cg/pids/pids.events)
  echo "selftest: pids.max=4, fork failures (pids.events max) = $max"
  [ "${max:-0}" -gt 0 ] || { echo "selftest: pids.max not enforced"; ok=1; }
  # memory.max=16M: dd with a 48 MiB buffer is OOM-killed.
  mkdir $cg/mem && echo 16M >$cg/mem/memory.max && echo 0 >$cg/mem/memory.swap.max 2>/dev/null
  sh -c "echo \$\$ >$cg/mem/cgroup.procs; exec dd if=/dev/zero of=/dev/null bs=48M count=1" 2>/dev/null
  rc=$?
  kills=$(awk '$1 == "oom_kill" { print $2 }' $cg/mem/memory.events)
  echo "selftest: memory.max=16M, dd bs=48M rc=$rc, oom_kill=$kills"
  [ "${kills:-0}" -gt 0 ] || { echo "selftest: memory.max not enforced"; ok=1; }
  # cpu.max 20%: a 2 s spinner gets about 0.4 s and is throttled.
  mkdir $cg/cpu && echo "20000 100000" >$cg/cpu/cpu.max || return 1
  sh -c "echo \$\$ >$cg/cpu/cgroup.procs; exec timeout 2 sh -c 'while :; do :; done'" 2>/dev/null
  usage=$(awk '$1 == "usage_usec" { print $2 }' $cg/cpu/cpu.stat)
  thr=$(awk '$1 == "nr_throttled" { print $2 }' $cg/cpu/cpu.stat)
  echo "selftest: cpu.max=20000/100000, 2 s spinner used ${usage}us, throttled $thr times"
  [ "${thr:-0}" -gt 0 ] && [ "${usage:-0}" -lt 1000000 ] || { echo "selftest: cpu.max not enforced"; ok=1; }
  return $ok
}

build_dir=$(cat /vm/build_dir)
failed=0
while IFS= read -r t; do
  [ -n "$t" ] || continue
  echo "=== vm: begin $t"
  start=$(cut -d. -f1 /proc/uptime)
  if [ "$t" = selftest ]; then
    selftest </dev/null
  else
    (cd "$(dirname "$build_dir/$t")" && exec "$build_dir/$t") </dev/null
  fi
  rc=$?
  end=$(cut -d. -f1 /proc/uptime)
  echo "=== vm: end $t rc=$rc time=$((end - start))s"
  if [ $rc != 0 ]; then
    failed=1
    echo "=== vm: dmesg tail after $t"
    dmesg | tail -n 30
    echo "=== vm: end of dmesg"
  fi
done </vm/tests
echo "=== vm: root cgroup.subtree_control after the tests: '$(cat /sys/fs/cgroup/cgroup.subtree_control)'"
echo "=== vm: all done failed=$failed"
off
EOF
chmod 755 "$root/init"

initrd="$work/initramfs.cpio"
(cd "$root" && find . -print0 | "$busybox" cpio -o -H newc -0 -R 0:0 >"$initrd" 2>/dev/null) ||
  fail "could not write the initramfs"
log "kernel $kernel, initramfs $(($(stat -c %s "$initrd") / 1024 / 1024)) MiB, ${#elves[@]} ELF files"

# --- Boot -----------------------------------------------------------------------
console="$work/console.log"
qemu_out="$work/qemu.log"
: >"$console"
t0="$(date +%s)"
# TCG only: /dev/kvm may exist and not work (the guest dies with a KVM
# emulation failure and QEMU pauses instead of exiting). timeout(1) ends a
# hung or paused QEMU; -no-reboot and panic=-1 turn a guest panic into exit.
timeout --kill-after=10 "$timeout_s" qemu-system-x86_64 \
  -accel tcg -cpu "${PK_VM_CPU:-max}" -m "$mem_mib" -smp "$smp" \
  -nodefaults -no-user-config -display none -no-reboot \
  -monitor none -serial "file:$console" \
  -kernel "$kernel" -initrd "$initrd" \
  -append "console=ttyS0 panic=-1 quiet loglevel=3 mitigations=off" \
  </dev/null >"$qemu_out" 2>&1 &
qemu_pid=$!
# Show the console as it comes (tail stops when QEMU has ended).
tail -n +1 -s 0.5 -f --pid="$qemu_pid" "$console" | tr -d '\r' &
tail_pid=$!
qemu_rc=0
wait "$qemu_pid" || qemu_rc=$?
qemu_pid=""
wait "$tail_pid" 2>/dev/null || true
elapsed=$(($(date +%s) - t0))

out="$(tr -d '\r' <"$console")"
if [ -s "$qemu_out" ]; then
  log "qemu said:"
  sed 's/^/vm: qemu: /' "$qemu_out" >&2
fi

bad=0
for t in "${tests[@]:-selftest}"; do
  line="$(awk -v t="$t" '$1 == "===" && $2 == "vm:" && $3 == "end" && $4 == t { print; exit }' <<<"$out")"
  if [ -z "$line" ]; then
    log "$t: did not finish"
    bad=1
  elif [[ "$line" =~ \ rc=0\  ]]; then
    log "$t: passed (${line##* time=})"
  else
    log "$t: FAILED (${line#* end "$t" })"
    bad=1
  fi
done
log "boot+run took ${elapsed}s wall"
if [ "$qemu_rc" = 124 ] || [ "$qemu_rc" = 137 ]; then
  last="$(awk '$1 == "===" && $2 == "vm:" && $3 == "begin" { t = $4 } $1 == "===" && $2 == "vm:" && $3 == "end" { t = "" } END { print t }' <<<"$out")"
  fail "VM did not finish within $timeout_s s${last:+ (still running: $last)}"
fi
grep -q '^=== vm: init started' <<<"$out" ||
  fail "the VM never reached /init (qemu exit status $qemu_rc)"
grep -q '^=== vm: all done' <<<"$out" ||
  fail "the VM stopped before the end marker (qemu exit status $qemu_rc)"
[ "$bad" = 0 ] || fail "a test failed inside the VM"
[ "$qemu_rc" = 0 ] || fail "qemu exited with status $qemu_rc"
log "all passed"
