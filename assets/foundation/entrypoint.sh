#!/bin/sh
# stockade's sandbox entrypoint (POSIX sh; runs on Debian, Fedora-like and busybox images alike).
#
# The container starts as the host user (uid:gid) with no capabilities. stockade handed it its
# passwd and group entries, the directories under HOME and the secrets file before start (through
# the engine's archive API), so nothing here runs as root and nothing here is a privilege boundary:
# an image that replaces this file, `sh`, `setpriv` or `gosu` gains nothing it did not have.
#
# The one exception is the opt-in `sudo = true`: the container then starts as root with the
# engine's default capabilities; the root stage below only adds the user to sudoers, then drops to
# the user and runs this script again. No configuration value reaches the root stage: the secrets
# file is sourced only by the user stage.
#
# Contract (set by stockade): STOCKADE_PATH (prepended to PATH: agent tools), STOCKADE_NEEDS (tools
# the command needs, e.g. python3; `glibc` or `musl` for a native build, `lib:NAME` for a library
# its musl build needs), the secrets file (sourced last, just before the command); with
# sudo: STOCKADE_SUDO=1, STOCKADE_UID, STOCKADE_GID, STOCKADE_USER. With no command it starts a
# login shell.
set -eu

runtime=/opt/stockade/bin

fail() {
    code="$1"
    shift
    echo "stockade: $*" >&2
    exit "$code"
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

# Root stage: only with `sudo = true`, the only case in which the container starts as root.
if [ "${STOCKADE_SUDO:-}" = 1 ] && [ "$(id -u)" = 0 ]; then
    uid="${STOCKADE_UID:?stockade: STOCKADE_UID is missing}"
    gid="${STOCKADE_GID:?stockade: STOCKADE_GID is missing}"
    name="${STOCKADE_USER:?stockade: STOCKADE_USER is missing}"
    unset STOCKADE_SUDO STOCKADE_UID STOCKADE_GID STOCKADE_USER
    if command -v sudo >/dev/null 2>&1 && [ -w /etc ]; then
        # PAM's account check wants a shadow entry: a locked password, never expiring.
        if [ -f /etc/shadow ] && ! awk -F: -v n="$name" '$1 == n { found = 1 } END { exit !found }' /etc/shadow; then
            echo "$name:*:19000:0:99999:7:::" >>/etc/shadow
        fi
        mkdir -p /etc/sudoers.d
        echo "$name ALL=(ALL:ALL) NOPASSWD: ALL" >/etc/sudoers.d/stockade
        chmod 0440 /etc/sudoers.d/stockade
    else
        echo "stockade: warning: sudo = true, but this image has no sudo (or a read-only /etc)" >&2
    fi
    if [ "$uid" != 0 ]; then
        # The bounding set is kept: sudo needs it. The user stage is this script again.
        setpriv="$(setpriv_tool)"
        if [ -n "$setpriv" ]; then
            exec "$setpriv" --reuid "$uid" --regid "$gid" --init-groups --inh-caps=-all -- "$0" "$@"
        elif [ -x "$runtime/gosu" ]; then
            exec "$runtime/gosu" "$uid:$gid" "$0" "$@"
        fi
        fail 126 "no privilege-drop tool (setpriv or $runtime/gosu) in this image"
    fi
fi

# User stage: everything below runs as the user.
unset STOCKADE_SUDO STOCKADE_UID STOCKADE_GID STOCKADE_USER
if [ -n "${STOCKADE_PATH:-}" ]; then
    PATH="$STOCKADE_PATH:$PATH"
    export PATH
fi
needs="${STOCKADE_NEEDS:-}"
unset STOCKADE_PATH STOCKADE_NEEDS

login_shell() {
    for candidate in /bin/bash /bin/sh; do
        if [ -x "$candidate" ]; then
            echo "$candidate"
            return
        fi
    done
    fail 127 "no shell (/bin/bash or /bin/sh) in this image"
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

if [ "$#" -eq 0 ]; then
    set -- "$(login_shell)" -l
fi
# glibc: a native program built for it (opencode, Claude Code) needs its dynamic loader.
has_glibc() {
    for loader in /lib64/ld-linux-*.so.* /lib/ld-linux-*.so.* /lib/*/ld-linux-*.so.*; do
        [ -e "$loader" ] && return 0
    done
    return 1
}
# musl: a native program's musl build needs musl's loader, and the libraries it names on
# musl's default path.
has_musl() {
    for loader in /lib/ld-musl-*.so.1; do
        [ -e "$loader" ] && return 0
    done
    return 1
}
has_library() {
    for dir in /lib /usr/local/lib /usr/lib; do
        [ -e "$dir/$1" ] && return 0
    done
    return 1
}
for tool in $needs; do
    case "$tool" in
        glibc)
            has_glibc ||
                fail 127 "$1 is a native program built for glibc, which this image does not have: use a glibc-based base image (see docs/agents.md)"
            ;;
        musl)
            has_musl ||
                fail 127 "$1 is a native program built for musl, which this image does not have (see docs/agents.md)"
            ;;
        lib:*)
            has_library "${tool#lib:}" ||
                fail 127 "$1 needs ${tool#lib:}, which this image does not have: add it to the base image (see docs/agents.md)"
            ;;
        *)
            command -v "$tool" >/dev/null 2>&1 ||
                fail 127 "$1 needs $tool, which this image does not have: install $tool in the base image (see docs/agents.md)"
            ;;
    esac
done

# Agent logins (docs/agents.md): STOCKADE_LOGINS holds newline-separated SHARED:TARGET pairs, a
# file in the logins store mounted at /run/stockade/logins and a login file in the per-project
# HOME. Each TARGET becomes a link to its SHARED file, so a login (or a refreshed token) reaches
# every project while nothing else of the agent's config dir does. A token the agent saved by
# rename (a regular file in place of the link) moves into the store first unless the store's
# copy is newer.
# Runs as the user, before the secrets are read: only stockade's own variable counts.
link_logins() {
    logins="${STOCKADE_LOGINS:-}"
    unset STOCKADE_LOGINS
    [ -n "$logins" ] && [ -n "${HOME:-}" ] || return 0
    saved_ifs="$IFS"
    IFS='
'
    for pair in $logins; do
        shared="${pair%%:*}"
        target="${pair#*:}"
        case "$shared" in /run/stockade/logins/*) ;; *) continue ;; esac
        case "$target" in "$HOME"/*) ;; *) continue ;; esac
        if [ -f "$target" ] && [ ! -L "$target" ]; then
            if [ ! -f "$shared" ] || [ -L "$shared" ] || [ ! "$shared" -nt "$target" ]; then
                rm -f "$shared"
                cp "$target" "$shared" && chmod 600 "$shared" && rm -f "$target"
            else
                rm -f "$target"
            fi
        fi
        if [ -d "$target" ] && [ ! -L "$target" ]; then
            echo "stockade: warning: $target is a directory; the shared login is not linked there" >&2
            continue
        fi
        mkdir -p "${target%/*}" && ln -sfn "$shared" "$target" ||
            echo "stockade: warning: cannot link $target to the shared login" >&2
    done
    IFS="$saved_ifs"
}
link_logins

# Secrets (API keys, `[sandbox] env`, proxy URLs with credentials) arrive in a file only the user
# can read, written by stockade as `export NAME='value'` lines, never in the container's
# configuration. It is kept for the container's life and sourced last: the values reach the
# command's environment and nothing else of this script.
for secrets in /.stockade-secrets /.stockade-secrets.d/env; do
    if [ -f "$secrets" ]; then
        [ -r "$secrets" ] || fail 126 "cannot read the secrets file $secrets"
        . "$secrets"
    fi
done

check_command "$1"
exec "$@"
