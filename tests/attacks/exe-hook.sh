#!/bin/sh
# The CVE-2019-5736 probe's first half, run as a startContainer hook: inside the
# container, while its pid 1 is still the runtime, hold /proc/1/exe open; then, once no
# runtime runs that file any more, write its first byte back in place (the content
# stays the same if it gets through). probes.sh reports the verdict from /tmp/exe-verdict.
check=/usr/bin/bulwark-check
verdict() { echo "$1" > /tmp/exe-verdict.tmp && mv /tmp/exe-verdict.tmp /tmp/exe-verdict; }
: > /tmp/exe-probe
# A runtime may keep its exe from being opened at all (crun makes itself non-dumpable);
# a failed `exec 3<` would end this shell, and the hook with it.
if ! (: </proc/1/exe) 2>/dev/null; then
    verdict "/proc/1/exe cannot be opened"
    exit 0
fi
exec 3</proc/1/exe
(
    i=0
    # ETXTBSY while a runtime still runs the file (a foreground `run` does until the
    # container exits): ten seconds of tries, then ETXTBSY is the verdict.
    while [ $i -lt 100 ]; do
        r=$($check rewrite /proc/self/fd/3)
        [ "$r" != ETXTBSY ] && break
        sleep 0.1; i=$((i + 1))
    done
    verdict "$r"
) >/dev/null 2>&1 &
