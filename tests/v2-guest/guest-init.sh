#!/bin/busybox sh
# Init of the pure-cgroup-v2 test guest started by tests/v2-guest/run.sh.
#
# Stage 1 runs as PID 1 in the initramfs: it loads the virtio/9p/overlay
# modules, builds the new root (host / over 9p, read-only, under a tmpfs
# overlay so the guest can write) and switch_roots into it.  An initramfs
# cannot be pivot_root'ed away, and moving the new root over it keeps
# pivot_root usable for the container runtimes under test.
#
# Stage 2 runs as PID 1 in that root: it mounts cgroup2 with every
# controller enabled at the root, runs the command with its stdout and
# stderr on two virtio-serial ports (streamed by run.sh) and reports the exit
# status on the console (ttyS0) as BULWARK-GUEST-EXIT=<n>, then powers off.
#
# Only busybox applets are used, so the script does not depend on the
# host's userland being runnable in the guest.

# run.conf, written by run.sh, sets cwd, path, lang, modules_dir,
# share_count and share_<n>.
# shellcheck disable=SC2154

GUEST_DIR=/run/bulwark-guest
MSIZE=262144

# Every setup failure ends the same way, so run.sh can tell it apart from
# the command's own exit status.
fail() {
	echo "BULWARK-GUEST-FAIL: $*" >/dev/console
	sync
	poweroff -f
	reboot -f
	sleep 3600
}

mount_kernel_fs() {
	mount -t proc -o nosuid,nodev,noexec proc /proc || fail "mount /proc"
	mount -t sysfs -o nosuid,nodev,noexec sysfs /sys || fail "mount /sys"
	mount -t devtmpfs -o nosuid,mode=0755 devtmpfs /dev || fail "mount /dev"
}

# /bulwark/modules.load lists the modules in dependency order.
load_modules() {
	while read -r module; do
		[ -n "$module" ] || continue
		insmod "/lib/modules/$module" || fail "insmod $module"
	done </bulwark/modules.load
}

# The 9p devices bind asynchronously after the driver loads, so retry briefly.
mount_9p() { # tag dir options
	tries=0
	until mount -t 9p -o "trans=virtio,version=9p2000.L,msize=$MSIZE,$3" "$1" "$2" 2>/dev/null; do
		tries=$((tries + 1))
		[ "$tries" -lt 50 ] || fail "mount 9p tag $1 on $2"
		usleep 100000
	done
}

assemble_root() {
	mkdir -p /mnt/host /mnt/rw /newroot
	mount_9p hostroot /mnt/host "ro,cache=loose"
	mount -t tmpfs -o mode=0755 scratch /mnt/rw || fail "mount scratch tmpfs"
	mkdir -p /mnt/rw/upper /mnt/rw/work
	mount -t overlay -o lowerdir=/mnt/host,upperdir=/mnt/rw/upper,workdir=/mnt/rw/work \
		guestroot /newroot || fail "mount overlay root"

	for dir in proc sys dev; do
		mkdir -p "/newroot/$dir"
		mount --move "/$dir" "/newroot/$dir" || fail "move /$dir"
	done
	mount -t tmpfs -o nosuid,nodev,mode=0755 run /newroot/run || fail "mount /run"
	mount -t tmpfs -o nosuid,nodev,mode=1777 tmp /newroot/tmp || fail "mount /tmp"

	mkdir -p "/newroot$GUEST_DIR"
	cp /bin/busybox /init /bulwark/run.conf /bulwark/cmd "/newroot$GUEST_DIR/" || fail "copy guest files"
}

stage1() {
	export PATH=/bin
	mount_kernel_fs
	load_modules
	assemble_root
	# shellcheck disable=SC2093 # fail runs only if switch_root cannot run
	exec switch_root /newroot "$GUEST_DIR/busybox" sh "$GUEST_DIR/init" bulwark-stage2
	fail "switch_root"
}

mount_guest_fs() {
	mkdir -p /dev/pts /dev/shm /dev/mqueue
	mount -t devpts -o nosuid,noexec,newinstance,ptmxmode=0666,mode=0620,gid=5 devpts /dev/pts ||
		fail "mount /dev/pts"
	mount -t tmpfs -o nosuid,nodev,mode=1777 shm /dev/shm || fail "mount /dev/shm"
	mount -t mqueue -o nosuid,nodev,noexec mqueue /dev/mqueue || fail "mount /dev/mqueue"
	# The kernel's full module tree (from run.sh's cache) so tests can
	# modprobe veth, bridge, nf_tables and the like with the host's kmod.
	if [ -n "$modules_dir" ] && [ -d "$modules_dir" ]; then
		mkdir -p /lib/modules
		mount --bind "$modules_dir" /lib/modules || fail "bind $modules_dir on /lib/modules"
	fi
}

mount_cgroup2() {
	cg=/sys/fs/cgroup
	mount -t cgroup2 -o nosuid,nodev,noexec,nsdelegate,memory_recursiveprot cgroup2 "$cg" ||
		fail "mount cgroup2 on $cg"
	read -r controllers <"$cg/cgroup.controllers"
	for controller in $controllers; do
		echo "+$controller" >"$cg/cgroup.subtree_control" ||
			fail "enable controller $controller in $cg/cgroup.subtree_control"
	done
}

mount_shares() {
	i=0
	while [ "$i" -lt "$share_count" ]; do
		eval "dir=\$share_$i"
		mkdir -p "$dir"
		mount_9p "share$i" "$dir" "cache=none"
		i=$((i + 1))
	done
}

# The host side of the command's stdout and stderr is a virtio-serial port
# each, found by name; the ports show up shortly after the driver loads.
port_device() { # name
	tries=0
	while [ "$tries" -lt 50 ]; do
		for port in /sys/class/virtio-ports/*; do
			if [ "$(cat "$port/name" 2>/dev/null)" = "$1" ]; then
				echo "/dev/${port##*/}"
				return 0
			fi
		done
		tries=$((tries + 1))
		usleep 100000
	done
	fail "virtio-serial port $1 not found"
}

# A blocking write to a virtio-serial port returns only once QEMU has
# passed the data on, so nothing is left in flight when the command exits.
run_command() {
	stdout_dev=$(port_device bulwark.stdout) || exit
	stderr_dev=$(port_device bulwark.stderr) || exit
	cd "$cwd" 2>/dev/null || cd /
	env -i PATH="$path" HOME=/root USER=root LOGNAME=root TERM=dumb LANG="$lang" \
		BULWARK_V2_GUEST=1 "$GUEST_DIR/busybox" sh "$GUEST_DIR/cmd" \
		</dev/null >"$stdout_dev" 2>"$stderr_dev"
	status=$?
}

stage2() {
	export PATH="$GUEST_DIR/bin"
	mkdir -p "$GUEST_DIR/bin"
	"$GUEST_DIR/busybox" --install -s "$GUEST_DIR/bin"
	# shellcheck source=/dev/null
	. "$GUEST_DIR/run.conf"
	mount_guest_fs
	mount_cgroup2
	mount_shares
	hostname bulwark-v2-guest
	ip link set lo up 2>/dev/null
	read -r uptime _ </proc/uptime
	echo "BULWARK-GUEST-START uptime=$uptime" >/dev/console
	run_command
	sync
	echo "BULWARK-GUEST-EXIT=$status" >/dev/console
	# tcsetattr(TCSADRAIN), which stty uses, returns once the UART is empty.
	stty -F /dev/console -echo 2>/dev/null
	poweroff -f
	reboot -f
}

case "${1:-stage1}" in
bulwark-stage2) stage2 ;;
*) stage1 ;;
esac
