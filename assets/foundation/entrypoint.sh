#!/bin/sh
# stockade's sandbox entrypoint (POSIX sh; runs on Debian, Fedora-like and busybox images alike).
#
# Runs as root only long enough to reproduce the host user inside the container (uid, gid, name,
# HOME), then drops privileges and execs the command. With no command it starts a login shell.
# Contract (set by stockade): STOCKADE_UID, STOCKADE_GID, STOCKADE_USER, STOCKADE_HOME; optional
# STOCKADE_PATH (prepended to PATH: agent tools), STOCKADE_HOME_DIRS (colon-separated directories
# under HOME to create and give to the user: parents of mounts inside a home volume),
# STOCKADE_NEEDS (a runtime the command needs, e.g. node), the secrets file,
# STOCKADE_SUDO=1 (passwordless sudo) and STOCKADE_GROUPS (extra gids, space-separated).
#
# The command runs with no capabilities: setpriv empties the bounding and inheritable sets
# (the bounding set is kept only with sudo, which needs it), so even a root host user's command
# has CapEff 0.
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
sudo_wanted="${STOCKADE_SUDO:-}"
extra_groups="${STOCKADE_GROUPS:-}"
unset STOCKADE_UID STOCKADE_GID STOCKADE_USER STOCKADE_HOME STOCKADE_SUDO STOCKADE_GROUPS

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
# (With a read-only root it sits in a small volume of its own.)
for secrets in /.stockade-secrets /.stockade-secrets.d/env; do
    if [ -f "$secrets" ]; then
        [ -r "$secrets" ] || fail 126 "cannot read the secrets file $secrets (the entrypoint must start as root)"
        . "$secrets"
        rm -f "$secrets" || echo "stockade: warning: could not delete $secrets" >&2
    fi
done

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

# Add the user to the groups with the given gids (e.g. the engine socket's), creating them.
add_groups() {
    for g in $extra_groups; do
        scratch="/etc/.group.stockade.$$"
        awk -F: -v OFS=: -v g="$g" -v name="$name" '
            $3 == g { found = 1; if ($4 == "") $4 = name; else if (("," $4 ",") !~ ("," name ",")) $4 = $4 "," name }
            { print }
            END { if (!found) print "stockade-" g, "x", g, name }
        ' /etc/group >"$scratch"
        cat "$scratch" >/etc/group
        rm -f "$scratch"
    done
}

enable_sudo() {
    if ! command -v sudo >/dev/null 2>&1; then
        echo "stockade: warning: sudo = true, but this image has no sudo" >&2
        return
    fi
    # PAM's account check wants a shadow entry: a locked password, never expiring.
    if [ -f /etc/shadow ] && ! awk -F: -v n="$name" '$1 == n { found = 1 } END { exit !found }' /etc/shadow; then
        echo "$name:*:19000:0:99999:7:::" >>/etc/shadow
    fi
    mkdir -p /etc/sudoers.d
    echo "$name ALL=(ALL:ALL) NOPASSWD: ALL" >/etc/sudoers.d/stockade
    chmod 0440 /etc/sudoers.d/stockade
}

# util-linux's setpriv (busybox's applet has neither --reuid nor --bounding-set).
setpriv_tool() {
    for candidate in "$runtime/setpriv" /usr/bin/setpriv /bin/setpriv; do
        if [ -x "$candidate" ]; then
            case "$("$candidate" --help 2>&1)" in
                *--bounding-set*)
                    echo "$candidate"
                    return
                    ;;
            esac
        fi
    done
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
setpriv="$(setpriv_tool)"
if [ -n "$sudo_wanted" ]; then
    caps="--inh-caps=-all"
else
    caps="--inh-caps=-all --bounding-set=-all"
fi

if [ "$uid" = 0 ]; then
    # Root on the host is root here, but without capabilities (unless sudo was asked for).
    if [ -n "$sudo_wanted" ]; then
        exec "$@"
    elif [ -n "$setpriv" ]; then
        # shellcheck disable=SC2086
        exec "$setpriv" $caps -- "$@"
    fi
    echo "stockade: warning: no setpriv in this image: the command keeps the entrypoint's capabilities" >&2
    exec "$@"
fi

# A read-only root (read_only_root = true) leaves /etc alone: the uid runs without a name.
mapped=""
if [ -w /etc/passwd ] && [ -w /etc/group ]; then
    map_user "$shell"
    add_groups
    mapped=1
    [ -z "$sudo_wanted" ] || enable_sudo
fi
chown "$uid:$gid" "$home" 2>/dev/null || true
if [ -n "$home_dirs" ]; then
    old_ifs="$IFS"
    IFS=:
    for dir in $home_dirs; do
        mkdir -p "$dir" && chown "$uid:$gid" "$dir" 2>/dev/null || true
    done
    IFS="$old_ifs"
fi

if [ -n "$setpriv" ]; then
    if [ -n "$mapped" ]; then
        groups="--init-groups"
    elif [ -n "$extra_groups" ]; then
        groups="--groups=$(echo $extra_groups | tr ' ' ',')"
    else
        groups="--clear-groups"
    fi
    # shellcheck disable=SC2086
    exec "$setpriv" --reuid "$uid" --regid "$gid" "$groups" $caps -- "$@"
elif [ -x "$runtime/gosu" ]; then
    # gosu clears the capabilities on the switch to a non-zero uid (the bounding set stays).
    if [ -n "$mapped" ]; then
        exec "$runtime/gosu" "$name" "$@"
    fi
    exec "$runtime/gosu" "$uid:$gid" "$@"
fi
fail 126 "no privilege-drop tool (setpriv or $runtime/gosu) in this image"
