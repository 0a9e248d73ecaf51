# Sourced by scripts that install Debian packages when they are missing.

# Runs a command as root (directly, or through sudo).
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# Installs Debian packages without starting their system services: Debian starts a newly
# installed service at once (PostgreSQL on 5432, nginx on 80) unless policy-rc.d forbids it, and
# the scripts run servers of their own, so nothing they install stays running after them.
apt_install() {
    local policy=/usr/sbin/policy-rc.d made="" status=0
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' | as_root tee "$policy" >/dev/null
        as_root chmod 755 "$policy"
        made=1
    fi
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >&2 \
        || { as_root apt-get update -q >&2 && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >&2; } \
        || status=$?
    [ -z "$made" ] || as_root rm -f "$policy"
    return "$status"
}
