#!/usr/bin/env bash
# Run a command as root in a throwaway QEMU guest whose only cgroup hierarchy
# is cgroup2, with every controller enabled at the root.  The host's / is
# visible read-only (writes land in a tmpfs overlay that dies with the guest);
# --share DIR makes DIR writable through to the host.  See README.md.
#
# Everything the guest needs is installed or built on first use and cached in
# ${BULWARK_GUEST_CACHE:-/var/cache/bulwark-v2-guest}.
set -euo pipefail

SELF_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
readonly SELF_DIR
readonly GUEST_INIT=$SELF_DIR/guest-init.sh
readonly CACHE=${BULWARK_GUEST_CACHE:-/var/cache/bulwark-v2-guest}
readonly MEMORY=${BULWARK_GUEST_MEMORY:-2048}
readonly CPUS=${BULWARK_GUEST_CPUS:-2}
readonly DEBUG=${BULWARK_GUEST_DEBUG:-0}
readonly TIMING=${BULWARK_GUEST_TIMING:-$DEBUG}
# Modules the initramfs must load before the root can be mounted.
readonly BOOT_MODULES=(virtio_mmio virtio_console 9pnet_virtio 9p overlay)

# Exit statuses of run.sh itself, distinct from the command's usual ones.
readonly EXIT_USAGE=2
readonly EXIT_TIMEOUT=124
readonly EXIT_GUEST_FAILED=125

timeout_secs=600
shares=()
command_args=()
work=""
kdir=""
kver=""
qemu_pid=""
reader_pids=()
command_started_us=""

usage() {
	cat <<'EOF'
usage: tests/v2-guest/run.sh [--timeout SECS] [--share DIR]... -- COMMAND [ARGS...]

Boots a QEMU guest with Debian's kernel and a pure cgroup2 /sys/fs/cgroup,
runs COMMAND in it as root in the host's current directory (stdin is
/dev/null), streams its stdout to stdout and its stderr to stderr, and exits
with its exit status.

  --timeout SECS  kill the guest after SECS seconds (default 600; exit 124)
  --share DIR     make host DIR writable from the guest at the same path
                  (repeatable; the rest of / is read-only with a throwaway
                  overlay on top)

Environment: BULWARK_GUEST_CACHE (cache dir), BULWARK_GUEST_MEMORY (MiB),
BULWARK_GUEST_CPUS, BULWARK_GUEST_DEBUG=1 (verbose kernel log on stderr),
BULWARK_GUEST_TIMING=1 (boot and run times on stderr).
Exit status 125: the guest failed to boot or to set itself up; 124: timeout;
127: COMMAND not found on the host's PATH; 2: bad usage.
EOF
}

die() {
	echo "v2-guest: $*" >&2
	exit "$EXIT_GUEST_FAILED"
}

usage_error() {
	echo "v2-guest: $*" >&2
	usage >&2
	exit "$EXIT_USAGE"
}

parse_args() {
	while [ $# -gt 0 ]; do
		case $1 in
		--timeout)
			[ $# -ge 2 ] || usage_error "--timeout needs a value"
			[[ $2 =~ ^[1-9][0-9]*$ ]] || usage_error "--timeout \"$2\" is not a positive number of seconds"
			timeout_secs=$2
			shift 2
			;;
		--share)
			[ $# -ge 2 ] || usage_error "--share needs a directory"
			[ -d "$2" ] || usage_error "--share \"$2\" is not a directory"
			shares+=("$(realpath "$2")")
			shift 2
			;;
		-h | --help)
			usage
			exit 0
			;;
		--)
			shift
			break
			;;
		*) usage_error "unexpected argument \"$1\" (the command goes after --)" ;;
		esac
	done
	[ $# -gt 0 ] || usage_error "no COMMAND given after --"
	command_args=("$@")
	resolve_command
}

# The guest starts the command from busybox, which would run its own applet
# for a bare name like "sh" or "stat"; an absolute path gets the host's
# program.  The guest sees the host's files, so the host's PATH lookup holds.
resolve_command() {
	local name=${command_args[0]} path
	case $name in */*) return 0 ;; esac
	path=$(type -P -- "$name") || {
		echo "v2-guest: $name: command not found in PATH" >&2
		exit 127
	}
	command_args[0]=$path
}

# The guest mounts its own empty /tmp and /run over the host's.
warn_hidden_paths() {
	local what path
	for what in "working directory:$PWD" "command:${command_args[0]}"; do
		path=${what#*:}
		case $path in
		/tmp | /tmp/* | /run | /run/*)
			echo "v2-guest: warning: ${what%%:*} $path is under /tmp or /run, which the guest replaces with an empty tmpfs" >&2
			;;
		esac
	done
}

# ---- host preparation (idempotent, serialised by a lock in the cache) ----

apt_updated=0
apt_update_once() {
	if [ "$apt_updated" = 0 ]; then
		apt-get update -qq >&2 || die "apt-get update failed"
		apt_updated=1
	fi
}

# Installs Debian packages; refreshes the package lists once if they are
# stale.  apt's chatter is shown only when it fails.
apt_install() {
	echo "v2-guest: installing $*" >&2
	local log
	log=$(mktemp /tmp/bulwark-v2-guest-apt.XXXXXX)
	local -a cmd=(env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@")
	if ! "${cmd[@]}" >"$log" 2>&1; then
		apt_update_once
		if ! "${cmd[@]}" >"$log" 2>&1; then
			cat "$log" >&2
			rm -f "$log"
			die "apt-get install $* failed"
		fi
	fi
	rm -f "$log"
}

package_installed() {
	[ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]
}

ensure_host_packages() {
	local -a missing=()
	command -v qemu-system-x86_64 >/dev/null || missing+=(qemu-system-x86)
	package_installed busybox-static || missing+=(busybox-static)
	command -v cpio >/dev/null || missing+=(cpio)
	command -v depmod >/dev/null || missing+=(kmod)
	command -v xz >/dev/null || missing+=(xz-utils)
	if [ ${#missing[@]} -gt 0 ]; then
		apt_install "${missing[@]}"
	fi
}

# Prints the versioned package that linux-image-amd64 depends on.
resolve_kernel_package() {
	local pkg
	pkg=$(apt-cache depends linux-image-amd64 2>/dev/null |
		awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9]/ { print $2; exit }')
	if [ -z "$pkg" ]; then
		apt_update_once
		pkg=$(apt-cache depends linux-image-amd64 2>/dev/null |
			awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9]/ { print $2; exit }')
	fi
	[ -n "$pkg" ] || die "cannot resolve the kernel package behind linux-image-amd64 (apt-cache depends)"
	echo "$pkg"
}

fetch_kernel() { # kdir package
	local kdir=$1 pkg=$2 debs=$1/debs
	rm -rf "$debs" "$kdir/root"
	mkdir -p "$debs"
	echo "v2-guest: downloading linux-image-amd64 and $pkg" >&2
	local -a download=(apt-get download -qq -o APT::Sandbox::User=root linux-image-amd64 "$pkg")
	if ! (cd "$debs" && "${download[@]}") >&2; then
		apt_update_once
		(cd "$debs" && "${download[@]}") >&2 || die "apt-get download $pkg failed"
	fi
	dpkg-deb -x "$debs/${pkg}_"*.deb "$kdir/root" || die "dpkg-deb -x $pkg failed"
	rm -rf "$debs"
}

# Finds the compressed kernel inside a bzImage by the magic bytes of each
# format the tools here can decompress, and keeps the first candidate that
# decompresses to an ELF file.
extract_vmlinux() { # vmlinuz output
	local image=$1 out=$2 magic tool offset i
	local -a formats=(
		'\x1f\x8b\x08' 'gzip -dc'
		'\xfd7zXZ\x00' 'xz -dc'
		'\x28\xb5\x2f\xfd' 'zstd -dc'
		'BZh' 'bzip2 -dc'
		'\x02\x21\x4c\x18' 'lz4 -dc'
		'\x5d\x00\x00\x00' 'xz -dc --format=lzma'
	)
	for ((i = 0; i < ${#formats[@]}; i += 2)); do
		magic=${formats[i]} tool=${formats[i + 1]}
		command -v "${tool%% *}" >/dev/null || continue
		for offset in $(LC_ALL=C grep -obUaP "$magic" "$image" | cut -d: -f1 || true); do
			tail -c "+$((offset + 1))" "$image" | $tool >"$out" 2>/dev/null || true
			if [ "$(head -c 4 "$out" | od -An -c | tr -d ' ')" = '177ELF' ]; then
				return 0
			fi
		done
	done
	rm -f "$out"
	die "no compressed ELF kernel found in $image"
}

# Copies the boot modules and their dependencies into the initramfs tree and
# writes their load order (dependencies first) and a matching modules.dep.
collect_boot_modules() { # moddir kver dest
	local moddir=$1 kver=$2 dest=$3 line path name
	local -A dep_of=() path_of=() seen=()
	local -a order=()
	while IFS= read -r line; do
		path=${line%%:*}
		dep_of[$path]=${line#*:}
		name=${path##*/}
		name=${name%%.ko*}
		path_of[${name//-/_}]=$path
	done <"$moddir/modules.dep"

	visit() {
		local p=$1 d
		[ -z "${seen[$p]:-}" ] || return 0
		seen[$p]=1
		for d in ${dep_of[$p]}; do visit "$d"; done
		order+=("$p")
	}
	for name in "${BOOT_MODULES[@]}"; do
		path=${path_of[${name//-/_}]:-}
		if [ -n "$path" ]; then
			visit "$path"
		elif ! grep -q "/${name}.ko" "$moddir/modules.builtin"; then
			die "kernel module $name not found in $moddir"
		fi
	done

	local out=$dest/lib/modules/$kver plain
	mkdir -p "$out"
	: >"$dest/bulwark/modules.load"
	: >"$out/modules.dep"
	for path in "${order[@]}"; do
		plain=${path%.ko*}.ko
		mkdir -p "$out/$(dirname "$plain")"
		case $path in
		*.ko.xz) xz -dc "$moddir/$path" >"$out/$plain" ;;
		*.ko.zst) zstd -qdc "$moddir/$path" >"$out/$plain" ;;
		*.ko.gz) gzip -dc "$moddir/$path" >"$out/$plain" ;;
		*) cp "$moddir/$path" "$out/$plain" ;;
		esac
		echo "$kver/$plain" >>"$dest/bulwark/modules.load"
		local deps="" d
		for d in ${dep_of[$path]}; do deps+=" ${d%.ko*}.ko"; done
		echo "$plain:$deps" >>"$out/modules.dep"
	done
}

build_base_initramfs() { # kdir kver
	local kdir=$1 kver=$2 tree=$1/initramfs.tree
	rm -rf "$tree"
	mkdir -p "$tree"/{bin,bulwark,dev,proc,sys,mnt,newroot,run,tmp}
	cp /bin/busybox "$tree/bin/busybox"
	for applet in $("$tree/bin/busybox" --list); do
		[ "$applet" = busybox ] || ln -s busybox "$tree/bin/$applet"
	done
	install -m 0755 "$GUEST_INIT" "$tree/init"
	collect_boot_modules "$kdir/root/lib/modules/$kver" "$kver" "$tree"
	# The kernel wants each appended archive to start on a 4-byte boundary.
	(cd "$tree" && find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet | gzip -9n) >"$kdir/initramfs.tmp"
	local size
	size=$(stat -c %s "$kdir/initramfs.tmp")
	if ((size % 4)); then
		head -c $((4 - size % 4)) /dev/zero >>"$kdir/initramfs.tmp"
	fi
	mv "$kdir/initramfs.tmp" "$kdir/initramfs.cpio.gz"
	rm -rf "$tree"
}

# Everything that changes the base initramfs; a change triggers a rebuild.
initramfs_stamp() {
	{
		cat "$GUEST_INIT"
		echo "${BOOT_MODULES[*]}"
		sha256sum </bin/busybox
	} | sha256sum | cut -d' ' -f1
}

# Sets kdir and kver to a ready kernel: vmlinux, base initramfs, module tree.
prepare_kernel() {
	mkdir -p "$CACHE"
	exec 9>"$CACHE/.lock"
	flock 9
	ensure_host_packages

	local pkg
	if [ -s "$CACHE/current" ]; then
		pkg=$(cat "$CACHE/current")
	else
		pkg=$(resolve_kernel_package)
	fi
	kdir=$CACHE/$pkg

	if [ ! -e "$kdir/kernel.done" ]; then
		fetch_kernel "$kdir" "$pkg"
		kver=$(ls "$kdir/root/lib/modules")
		if [ -z "$kver" ] || [ ! -f "$kdir/root/boot/vmlinuz-$kver" ]; then
			die "unexpected layout in $pkg: no lib/modules/<version> with a matching boot/vmlinuz"
		fi
		depmod -b "$kdir/root" "$kver" || die "depmod for $kver failed"
		extract_vmlinux "$kdir/root/boot/vmlinuz-$kver" "$kdir/vmlinux"
		echo "$kver" >"$kdir/kver"
		touch "$kdir/kernel.done"
	fi
	kver=$(cat "$kdir/kver")

	local stamp
	stamp=$(initramfs_stamp)
	if [ "$(cat "$kdir/initramfs.stamp" 2>/dev/null)" != "$stamp" ]; then
		build_base_initramfs "$kdir" "$kver"
		echo "$stamp" >"$kdir/initramfs.stamp"
	fi
	[ "$(cat "$CACHE/current" 2>/dev/null)" = "$pkg" ] || echo "$pkg" >"$CACHE/current"
	flock -u 9
	exec 9>&-
}

# ---- one run ----

shell_quote() {
	local s=${1//\'/\'\\\'\'}
	printf "'%s'" "$s"
}

# The per-run part of the initramfs: the command and where to run it.
build_run_initrd() {
	local tree=$work/run.tree i
	mkdir -p "$tree/bulwark"
	{
		echo "cwd=$(shell_quote "$PWD")"
		echo "path=$(shell_quote "$PATH")"
		echo "lang=$(shell_quote "${LANG:-C.UTF-8}")"
		echo "modules_dir=$(shell_quote "$kdir/root/lib/modules")"
		echo "share_count=${#shares[@]}"
		for i in "${!shares[@]}"; do
			echo "share_$i=$(shell_quote "${shares[i]}")"
		done
	} >"$tree/bulwark/run.conf"
	{
		printf 'exec'
		for arg in "${command_args[@]}"; do printf ' %s' "$(shell_quote "$arg")"; done
		printf '\n'
	} >"$tree/bulwark/cmd"
	(cd "$tree" && find . | cpio -o -H newc -R 0:0 --quiet) >"$work/run.cpio"
	cat "$kdir/initramfs.cpio.gz" "$work/run.cpio" >"$work/initrd"
}

kernel_cmdline() {
	local khz args
	args="console=ttyS0 panic=-1 cgroup_no_v1=all mitigations=off tsc=reliable no_timer_check"
	khz=$(awk -F: '/^cpu MHz/ { printf "%d", $2 * 1000; exit }' /proc/cpuinfo)
	[ -z "$khz" ] || args+=" tsc_early_khz=$khz"
	if [ "$DEBUG" = 1 ]; then args+=" loglevel=7"; else args+=" quiet"; fi
	echo "$args"
}

start_guest() {
	# shellcheck disable=SC2054 # the commas are QEMU's option syntax
	local -a qemu=(
		qemu-system-x86_64 -M microvm -accel tcg -cpu max -smp "$CPUS" -m "$MEMORY"
		-nodefaults -no-user-config -display none -no-reboot
		-kernel "$kdir/vmlinux" -initrd "$work/initrd" -append "$(kernel_cmdline)"
		-chardev "file,id=console,path=$work/console.log" -serial chardev:console
		-device virtio-serial-device
		-chardev "file,id=stdout,path=$work/stdout" -device virtserialport,chardev=stdout,name=bulwark.stdout
		-chardev "file,id=stderr,path=$work/stderr" -device virtserialport,chardev=stderr,name=bulwark.stderr
		-fsdev "local,id=hostroot,path=/,security_model=passthrough,readonly=on,multidevs=remap"
		-device virtio-9p-device,fsdev=hostroot,mount_tag=hostroot
	)
	local i
	for i in "${!shares[@]}"; do
		qemu+=(-fsdev "local,id=share$i,path=${shares[i]},security_model=passthrough,multidevs=remap"
			-device "virtio-9p-device,fsdev=share$i,mount_tag=share$i")
	done
	"${qemu[@]}" </dev/null >"$work/qemu.log" 2>&1 &
	qemu_pid=$!
}

now_us() {
	echo "${EPOCHREALTIME/./}"
}

# Waits for QEMU, killing it after the timeout; returns 0 unless it timed out.
# With BULWARK_GUEST_TIMING=1 it also notes when the command started.
wait_guest() {
	local deadline=$(($(now_us) + timeout_secs * 1000000))
	while kill -0 "$qemu_pid" 2>/dev/null; do
		if [ "$TIMING" = 1 ] && [ -z "$command_started_us" ] &&
			grep -q BULWARK-GUEST-START "$work/console.log"; then
			command_started_us=$(now_us)
		fi
		if (($(now_us) >= deadline)); then
			kill "$qemu_pid" 2>/dev/null || true
			wait "$qemu_pid" 2>/dev/null || true
			qemu_pid=""
			return 1
		fi
		sleep 0.1
	done
	wait "$qemu_pid" 2>/dev/null || true
	qemu_pid=""
}

report_timing() { # started_us
	local end_us uptime
	end_us=$(now_us)
	uptime=$(tr -d '\r' <"$work/console.log" | sed -n 's/.*BULWARK-GUEST-START uptime=\([0-9.]*\).*/\1/p')
	awk -v s="$1" -v c="${command_started_us:-0}" -v e="$end_us" -v u="${uptime:-?}" 'BEGIN {
		printf "v2-guest: timing: command started %.2fs after QEMU (guest kernel uptime %ss), guest ran %.2fs\n",
			c ? (c - s) / 1e6 : -1, u, (e - s) / 1e6 }' >&2
}

show_guest_log() {
	{
		echo "---- guest console (last 40 lines) ----"
		tail -n 40 "$work/console.log" 2>/dev/null | tr -d '\r'
		if [ -s "$work/qemu.log" ]; then
			echo "---- qemu ----"
			cat "$work/qemu.log"
		fi
		[ "$DEBUG" = 1 ] || echo "---- rerun with BULWARK_GUEST_DEBUG=1 for the full kernel log ----"
	} >&2
}

# QEMU writes the guest's stdout and stderr into regular files, which never
# push back: a full pipe would make QEMU hold the guest's data back, and the
# guest's virtio-serial writes do not wait for it, so a tail still held back
# at power-off would be lost.  tail streams the files to ours and, with
# --pid, reads them to the end after QEMU exits before it stops.
start_readers() {
	tail -c +1 -s 0.05 --pid="$qemu_pid" -f "$work/stdout" &
	reader_pids+=($!)
	tail -c +1 -s 0.05 --pid="$qemu_pid" -f "$work/stderr" >&2 &
	reader_pids+=($!)
	if [ "$DEBUG" = 1 ]; then
		tail -n +1 -s 0.05 --pid="$qemu_pid" -f "$work/console.log" >&2 &
		reader_pids+=($!)
	fi
}

# Waits for the readers to copy everything; on an interrupt, stops them.
finish_readers() { # kill|wait
	[ ${#reader_pids[@]} -gt 0 ] || return 0
	[ "$1" = wait ] || kill "${reader_pids[@]}" 2>/dev/null || true
	wait "${reader_pids[@]}" 2>/dev/null || true
	reader_pids=()
}

# shellcheck disable=SC2317 # run from the EXIT trap
cleanup() {
	[ -z "$qemu_pid" ] || kill "$qemu_pid" 2>/dev/null || true
	finish_readers kill
	[ -z "$work" ] || rm -rf "$work"
}

main() {
	parse_args "$@"
	warn_hidden_paths
	[ "$(id -u)" = 0 ] || die "must run as root (it installs packages and shares / with the guest)"
	prepare_kernel

	work=$(mktemp -d /tmp/bulwark-v2-guest.XXXXXX)
	trap cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	build_run_initrd
	: >"$work/console.log"
	: >"$work/stdout"
	: >"$work/stderr"

	local started_us timed_out=0
	started_us=$(now_us)
	start_guest
	start_readers
	wait_guest || timed_out=1
	finish_readers wait
	[ "$TIMING" != 1 ] || report_timing "$started_us"

	local status
	status=$(tr -d '\r' <"$work/console.log" | sed -n 's/.*BULWARK-GUEST-EXIT=\([0-9]*\).*/\1/p' | tail -n 1)
	if [ -n "$status" ]; then
		exit "$status"
	fi
	if [ "$timed_out" = 1 ]; then
		echo "v2-guest: timed out after ${timeout_secs}s; guest killed (command: ${command_args[*]})" >&2
		show_guest_log
		exit "$EXIT_TIMEOUT"
	fi
	local reason
	reason=$(tr -d '\r' <"$work/console.log" | sed -n 's/.*BULWARK-GUEST-FAIL: //p' | head -n 1)
	if [ -n "$reason" ]; then
		echo "v2-guest: guest setup failed: $reason" >&2
	elif grep -q 'BULWARK-GUEST-START' "$work/console.log"; then
		echo "v2-guest: guest stopped before the command finished (kernel panic or reset?)" >&2
	else
		echo "v2-guest: guest failed to boot (QEMU exited without starting the command)" >&2
	fi
	show_guest_log
	exit "$EXIT_GUEST_FAILED"
}

main "$@"
