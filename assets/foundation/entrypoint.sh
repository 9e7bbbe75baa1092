#!/bin/sh
# stockade's sandbox entrypoint (POSIX sh; runs on Debian, Fedora-like and busybox images alike).
#
# Runs as root only long enough to reproduce the host user inside the container (uid, gid, name,
# HOME), then drops privileges and execs the command. With no command it starts a login shell.
# Contract (set by stockade): STOCKADE_UID, STOCKADE_GID, STOCKADE_USER, STOCKADE_HOME; optional
# STOCKADE_PATH (prepended to PATH: agent tools), STOCKADE_HOME_DIRS (colon-separated directories
# under HOME to create and give to the user: parents of mounts inside a home volume),
# STOCKADE_NEEDS (a runtime the command needs, e.g. node), and the secrets file.
set -eu

if [ -n "${STOCKADE_PATH:-}" ]; then
    PATH="$STOCKADE_PATH:$PATH"
    export PATH
fi
home_dirs="${STOCKADE_HOME_DIRS:-}"
needs="${STOCKADE_NEEDS:-}"
unset STOCKADE_PATH STOCKADE_HOME_DIRS STOCKADE_NEEDS

uid="${STOCKADE_UID:-0}"
gid="${STOCKADE_GID:-0}"
name="${STOCKADE_USER:-root}"
home="${STOCKADE_HOME:-/root}"
unset STOCKADE_UID STOCKADE_GID STOCKADE_USER STOCKADE_HOME

runtime=/opt/stockade/bin

fail() {
    code="$1"
    shift
    echo "stockade: $*" >&2
    exit "$code"
}

login_shell() {
    for candidate in /bin/bash /bin/sh; do
        if [ -x "$candidate" ]; then
            echo "$candidate"
            return
        fi
    done
    fail 127 "no shell (/bin/bash or /bin/sh) in this image"
}

# Secrets (API keys, `[sandbox] env`) arrive in a root-only file uploaded before start, never in
# the container's configuration: read it, then delete it before anything else runs.
secrets=/.stockade-secrets
if [ -f "$secrets" ]; then
    [ -r "$secrets" ] || fail 126 "cannot read the secrets file $secrets (the entrypoint must start as root)"
    . "$secrets"
    rm -f "$secrets" || echo "stockade: warning: could not delete $secrets" >&2
fi

# Give the image's user with the host uid the host's name, group and HOME (or add one). An image
# user that already has the host's name under another uid is renamed out of the way.
map_user() {
    shell="$1"
    if ! awk -F: -v g="$gid" '$3 == g { found = 1 } END { exit !found }' /etc/group; then
        group_name="$name"
        if awk -F: -v n="$name" '$1 == n { found = 1 } END { exit !found }' /etc/group; then
            group_name="stockade-$gid"
        fi
        echo "$group_name:x:$gid:" >>/etc/group
    fi
    scratch="/etc/.passwd.stockade.$$"
    awk -F: -v OFS=: -v uid="$uid" -v gid="$gid" -v name="$name" -v home="$home" -v shell="$shell" '
        $3 == uid && !done { $1 = name; $4 = gid; $6 = home; $7 = shell; done = 1; print; next }
        $3 == uid { next }
        $1 == name { $1 = "stockade-displaced-" $3 }
        { print }
        END { if (!done) print name, "x", uid, gid, name, home, shell }
    ' /etc/passwd >"$scratch"
    cat "$scratch" >/etc/passwd
    rm -f "$scratch"
}

# 126/127 like a shell when the command cannot run.
check_command() {
    case "$1" in
        */*)
            [ -e "$1" ] || fail 127 "$1: no such file or directory"
            [ -x "$1" ] && [ ! -d "$1" ] || fail 126 "$1: permission denied"
            ;;
        *)
            command -v "$1" >/dev/null 2>&1 || fail 127 "$1: command not found"
            ;;
    esac
}

shell="$(login_shell)"
if [ "$#" -eq 0 ]; then
    set -- "$shell" -l
fi
check_command "$1"
for tool in $needs; do
    command -v "$tool" >/dev/null 2>&1 ||
        fail 127 "$1 needs $tool, which this image does not have: install $tool in the base image (see docs/agents.md)"
done

if [ "$(id -u)" != 0 ]; then
    # Started as an unprivileged user already (e.g. a rootless engine's user namespace): nothing to map.
    exec "$@"
fi

export HOME="$home" USER="$name" LOGNAME="$name"
mkdir -p "$home"

if [ "$uid" = 0 ]; then
    exec "$@"
fi

map_user "$shell"
chown "$uid:$gid" "$home" 2>/dev/null || true
if [ -n "$home_dirs" ]; then
    old_ifs="$IFS"
    IFS=:
    for dir in $home_dirs; do
        mkdir -p "$dir" && chown "$uid:$gid" "$dir" 2>/dev/null || true
    done
    IFS="$old_ifs"
fi

if [ -x "$runtime/gosu" ]; then
    exec "$runtime/gosu" "$name" "$@"
elif command -v setpriv >/dev/null 2>&1; then
    exec setpriv --reuid "$uid" --regid "$gid" --init-groups --inh-caps=-all -- "$@"
fi
fail 126 "no privilege-drop tool ($runtime/gosu or setpriv) in this image"
