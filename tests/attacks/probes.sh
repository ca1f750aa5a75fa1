#!/bin/sh
# The attack suite: known container escapes and host interference, tried from inside a
# container. Each probe prints one line, `name: blocked (how)` or `name: OPEN (what got
# through)`. Every probe is harmless to the host even when it gets through: files are
# opened for writing but never written (the runtime's binary at most gets its own first
# byte back), syscalls get arguments that fail after the permission checks, mounts
# happen in the container's own mount namespace, and the fork bomb and the memory hog
# are bounded. Needs busybox and bulwark-check (/usr/bin/bulwark-check) in the image.
# Run as the container's root (uid 0 inside), with no terminal.
check=/usr/bin/bulwark-check

say() { echo "$1: $2"; }

# A syscall that must not reach the kernel: blocked when the filter or a missing
# capability answers EPERM/EACCES/ENOSYS; any other answer means the kernel ran it
# (and then refused the bad arguments).
syscall_probe() {
    name=$1; shift
    if [ "$(uname -m)" != x86_64 ]; then
        say "$name" "n/a (syscall numbers here are x86_64's)"; return
    fi
    r=$($check syscall "$@" 2>&1)
    case "$r" in
        EPERM|EACCES|ENOSYS) say "$name" "blocked ($r)" ;;
        ok*|E[A-Z0-9]*) say "$name" "OPEN (the kernel ran it: $r)" ;;
        *) say "$name" "ERROR (no answer from bulwark-check: $r)" ;;
    esac
}

# Opening a host-controlling file for writing (never written): the first of the paths
# given that this kernel has.
open_probe() {
    name=$1; shift
    for path in "$@"; do
        r=$($check open "$path" w 2>&1)
        case "$r" in
            ENOENT) continue ;;
            ok*) say "$name" "OPEN ($path opens for writing)" ;;
            E[A-Z0-9]*) say "$name" "blocked ($path: $r)" ;;
            *) say "$name" "ERROR (no answer from bulwark-check: $r)" ;;
        esac
        return
    done
    say "$name" "n/a (this kernel has none of $*)"
}

# CVE-2022-0492: mount a v1 cgroup hierarchy to set release_agent.
mkdir -p /tmp/attack-cg
if mount -t cgroup -o rdma cgroup /tmp/attack-cg 2>/dev/null || mount -t cgroup -o memory cgroup /tmp/attack-cg 2>/dev/null; then
    say release_agent "OPEN (a cgroup v1 hierarchy mounted)"; umount /tmp/attack-cg
else
    say release_agent "blocked (cgroup mount refused)"
fi
open_probe core_pattern /proc/sys/kernel/core_pattern
open_probe sysrq_trigger /proc/sysrq-trigger
open_probe proc_sys /proc/sys/kernel/modprobe /proc/sys/vm/drop_caches
open_probe writable_sys /sys/kernel/uevent_helper /sys/kernel/mm/transparent_hugepage/enabled /sys/kernel/mm/ksm/run /sys/power/state
if mount -t tmpfs attack /tmp/attack-cg 2>/dev/null; then
    say mount "OPEN (tmpfs mounted)"; umount /tmp/attack-cg
else
    say mount "blocked (refused)"
fi
# unshare(CLONE_NEWUSER) to get a full capability set again.
syscall_probe unshare_userns 272 268435456
# shocker: open_by_handle_at(-1, NULL, 0) reads host files by inode handle.
syscall_probe open_by_handle_at 304 18446744073709551615 0 0
syscall_probe keyctl 250 0 0 0 0 0
syscall_probe add_key 248 0 0 0 0 0
syscall_probe kcmp 312 0 0 0 0 0
syscall_probe perf_event_open 298 0 0 0 0 0
syscall_probe bpf 321 0 0 0
syscall_probe userfaultfd 323 4294967295
syscall_probe io_uring_setup 425 0 0
# ptrace(PTRACE_TRACEME): the way to reach any ptrace at all.
syscall_probe ptrace 101 0 0 0 0
# Raw sockets: AF_INET/SOCK_RAW/ICMP and AF_PACKET/SOCK_RAW (socket, 41); a created
# socket is closed at once.
if [ "$(uname -m)" = x86_64 ]; then
    socket_probe() {
        r=$($check syscall 41 "$2" "$3" "$4" 2>&1)
        case "$r" in
            ok*) say "$1" "OPEN ($5)" ;;
            E[A-Z0-9]*) say "$1" "blocked ($r)" ;;
            *) say "$1" "ERROR (no answer from bulwark-check: $r)" ;;
        esac
    }
    socket_probe raw_socket 2 3 1 "AF_INET SOCK_RAW"
    socket_probe packet_socket 17 3 0 "AF_PACKET"
else
    say raw_socket "n/a (x86_64 only)"; say packet_socket "n/a (x86_64 only)"
fi
# A setuid-root binary run by an unprivileged user: with no_new_privs the kernel ignores
# the setuid bit. The copy of bulwark-check reports its effective uid (geteuid, 107).
mkdir -p /tmp/attack-suid && cp $check /tmp/attack-suid/check && chmod 4755 /tmp/attack-suid/check
r="not x86_64"
[ "$(uname -m)" = x86_64 ] && r=$(su -s /bin/sh bulwark -c "/tmp/attack-suid/check syscall 107" 2>&1)
case "$r" in
    "ok 0") say setuid_escalation "OPEN (euid 0 from a setuid binary)" ;;
    "ok "*) say setuid_escalation "blocked (euid stays ${r#ok })" ;;
    "not x86_64") say setuid_escalation "n/a (x86_64 only)" ;;
    *) say setuid_escalation "ERROR (the setuid copy did not report: $r)" ;;
esac
rm -rf /tmp/attack-suid
# A bounded fork bomb: 5000 forks at most (the hardened pids.max is 4096).
r=$($check forks 5000)
case "$r" in
    "forked 5000"*) say fork_bomb "OPEN ($r)" ;;
    "forked "*) say fork_bomb "blocked ($r)" ;;
    *) say fork_bomb "ERROR (no count from bulwark-check: $r)" ;;
esac
# A bounded memory hog: 3/8 of the memory the container sees (at most 3 GiB), every page
# touched. A limit below that ends it (the OOM killer's SIGKILL, or a failed allocation);
# the hardened default allows a quarter, at most 2 GiB.
total_mib=$(awk '/^MemTotal:/ {print int($2 / 1024)}' /proc/meminfo)
want=$((total_mib * 3 / 8)); [ "$want" -gt 3072 ] && want=3072
r=$($check alloc "$want" 2>&1); status=$?
case "$r" in
    "allocated $want MiB") say memory_hog "OPEN (allocated $want MiB)" ;;
    "stopped at"*) say memory_hog "blocked (allocation failed: ${r#stopped at })" ;;
    *) [ "$status" = 137 ] && say memory_hog "blocked (OOM-killed before $want MiB)" || say memory_hog "ERROR (exit $status: $r)" ;;
esac
# CVE-2019-5736: overwrite the runtime's binary through /proc/<pid>/exe. The caller's
# config runs exe-hook.sh as a startContainer hook, which holds the runtime's exe and
# tries the write once the runtime is gone; its verdict comes here.
if [ -e /tmp/exe-probe ]; then
    # The hook tries for ten seconds; this deadline only catches a hook that hung.
    i=0; while [ ! -e /tmp/exe-verdict ] && [ $i -lt 1200 ]; do sleep 0.1; i=$((i + 1)); done
    r=$(cat /tmp/exe-verdict 2>/dev/null)
    case "$r" in
        ok) say runtime_exe_overwrite "OPEN (the runtime's binary took a write)" ;;
        "") say runtime_exe_overwrite "ERROR (no verdict from the hook)" ;;
        *) say runtime_exe_overwrite "blocked ($r)" ;;
    esac
else
    say runtime_exe_overwrite "n/a (run without exe-hook.sh as a startContainer hook)"
fi
# Leaked fds (CVE-2024-21626 class): anything open beyond stdio and this script's own.
leaked=$(ls /proc/self/fd | grep -v -x -e 0 -e 1 -e 2 -e 10 -e 255 | wc -l)
[ "$leaked" -le 1 ] && say leaked_fds "blocked (stdio only)" || say leaked_fds "OPEN ($leaked extra fds: $(ls -l /proc/self/fd | tail -n +2 | tr -s ' ' | cut -d' ' -f9- | tr '\n' ' '))"
# Masked paths: kernel memory and host keys.
for path in /proc/kcore /proc/keys /proc/timer_list; do
    if [ ! -e "$path" ]; then
        say "masked_${path##*/}" "n/a (this kernel has no $path)"; continue
    fi
    bytes=$(head -c 16 "$path" 2>/dev/null | wc -c)
    [ "$bytes" = 0 ] && say "masked_${path##*/}" "blocked (reads empty)" || say "masked_${path##*/}" "OPEN ($path readable)"
done
r=$($check tiocsti 2>&1)
case "$r" in
    ok*) say tiocsti "OPEN (input pushed)" ;;
    ENOTTY) say tiocsti "n/a (stdin is not a terminal; see the safety test)" ;;
    E[A-Z0-9]*) say tiocsti "blocked ($r)" ;;
    *) say tiocsti "ERROR (no answer from bulwark-check: $r)" ;;
esac
# Host processes: with the host's pid namespace many more than ours would show.
count=$(ls /proc | grep -c '^[0-9][0-9]*$')
[ "$count" -lt 20 ] && say host_processes "blocked ($count pids visible)" || say host_processes "OPEN ($count pids visible)"
# Host paths in mountinfo: the bundle's path (given in $BUNDLE by the caller).
if [ -n "$BUNDLE" ] && grep -q "$BUNDLE" /proc/self/mountinfo; then
    say host_paths_in_mountinfo "OPEN ($(grep -c "$BUNDLE" /proc/self/mountinfo) lines name $BUNDLE)"
else
    say host_paths_in_mountinfo "blocked"
fi
# Container root is host root?
host_uid=$(awk '$1 == 0 {print $2}' /proc/self/uid_map)
[ "$host_uid" = 0 ] && say root_is_host_root "OPEN (uid 0 is host uid 0)" || say root_is_host_root "blocked (uid 0 is host uid $host_uid)"
