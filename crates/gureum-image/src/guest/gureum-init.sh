#!/bin/sh
# gureum-init: the guest side of a gureum instance (installed by gureum; do not edit).
#
#   gureum-init boot    every boot, before sshd: hostname, login user, the key pair's public
#                       key; on the instance's first boot also SSH host keys, whose
#                       fingerprints are printed on the console the way EC2 instances do
#   gureum-init final   after sshd, on the instance's first boot only: run user-data, then
#                       write the first-boot marker (so a reboot never runs it twice)
#   gureum-init         both, in that order
#
# The host writes, before boot, into /var/lib/gureum:
#   instance.env        shell-sourceable KEY='value' lines (INSTANCE_ID, HOSTNAME,
#                       LOGIN_USER, LOCAL_IPV4, ...)
#   authorized_keys     the key pair's public key line(s)
#   user-data           raw user-data (optional; may be gzip-compressed)
# first-boot.done holds the id of the instance whose first boot completed.
# A warm guest (booted by the host ahead of any launch, with a "warm" file here and no
# instance.env) waits on the FIFO "claim" until the host has written its instance's files,
# instance.env last, then carries on as that instance's first boot.
#
# POSIX sh so it runs on any systemd-based Debian/Ubuntu-like image; python3 is needed only
# for #cloud-config (with python3-yaml) and MIME multipart user-data.
set -u
umask 022
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export PATH

STATE=/var/lib/gureum
ENV_FILE=$STATE/instance.env
KEYS_FILE=$STATE/authorized_keys
USER_DATA=$STATE/user-data
MARKER=$STATE/first-boot.done
OUTPUT_LOG=/var/log/cloud-init-output.log
case $0 in
/*) SELF=$0 ;;
*) SELF=$(pwd)/$0 ;;
esac

log() { printf 'gureum-init: %s\n' "$*"; }
CR=$(printf '\r')

INSTANCE_ID=
HOSTNAME=
LOGIN_USER=
LOCAL_IPV4=
if [ -r "$ENV_FILE" ]; then
	# shellcheck disable=SC1090
	. "$ENV_FILE"
fi
[ -n "${LOGIN_USER:-}" ] || LOGIN_USER=admin

# first_boot: whether this instance has not completed its first boot yet. The marker holds the
# instance id, so an image made from a booted instance still runs first boot on new instances.
first_boot() {
	[ -f "$MARKER" ] || return 0
	[ -n "$INSTANCE_ID" ] || return 1
	first_line "$MARKER"
	[ "$_line" != "$INSTANCE_ID" ]
}

# write_in_place FILE: replace FILE's content with stdin without replacing the inode, because
# the host may bind-mount files such as /etc/hosts and /etc/hostname.
write_in_place() {
	_tmp=$(mktemp) || return 1
	cat >"$_tmp" && cat "$_tmp" >"$1"
	_rc=$?
	rm -f "$_tmp"
	return $_rc
}

# first_line FILE: FILE's first line in $_line (empty if unreadable); a shell builtin, since
# every process costs at boot.
first_line() {
	_line=
	[ -r "$1" ] && IFS= read -r _line <"$1"
	return 0
}

# has_line FILE LINE: whether FILE has LINE exactly (builtins only).
has_line() {
	[ -r "$1" ] || return 1
	while IFS= read -r _l || [ -n "$_l" ]; do
		[ "$_l" = "$2" ] && return 0
	done <"$1"
	return 1
}

# passwd_entry USER: sets _home and _gid from /etc/passwd (builtins only; getent as fallback
# for users from other sources).
passwd_entry() {
	_home=
	_gid=
	while IFS=: read -r _n _p _uid _g _gecos _hm _sh; do
		if [ "$_n" = "$1" ]; then
			_home=$_hm
			_gid=$_g
			return 0
		fi
	done </etc/passwd
	_e=$(getent passwd "$1") || return 1
	_home=$(printf '%s\n' "$_e" | cut -d: -f6)
	_gid=$(printf '%s\n' "$_e" | cut -d: -f4)
}

set_hostname() {
	_h=$1
	[ -n "$_h" ] || return 0
	case $_h in
	*[!A-Za-z0-9.-]* | -* | .*)
		log "ignoring invalid hostname '$_h'"
		return 1
		;;
	esac
	first_line /etc/hostname
	[ "$_line" = "$_h" ] || printf '%s\n' "$_h" | write_in_place /etc/hostname
	first_line /proc/sys/kernel/hostname
	if [ "$_line" = "$_h" ]; then
		: # the container runtime set it already
	elif command -v hostname >/dev/null 2>&1; then
		hostname "$_h" || log "could not set the running hostname"
	elif [ -w /proc/sys/kernel/hostname ]; then
		printf '%s' "$_h" >/proc/sys/kernel/hostname
	fi
	# Make the name resolvable the way Debian's installer does (127.0.1.1), so that sudo and
	# friends do not complain "unable to resolve host".
	_short=${_h%%.*}
	_line="127.0.1.1	$_h"
	[ "$_short" = "$_h" ] || _line="$_line $_short"
	if [ -f /etc/hosts ]; then
		if ! has_line /etc/hosts "$_line"; then
			if grep -q '^127\.0\.1\.1[[:space:]]' /etc/hosts; then
				sed "s/^127\\.0\\.1\\.1[[:space:]].*/$_line/" /etc/hosts | write_in_place /etc/hosts
			else
				printf '%s\n' "$_line" >>/etc/hosts
			fi
		fi
	else
		printf '127.0.0.1\tlocalhost\n%s\n::1\tlocalhost ip6-localhost ip6-loopback\n' "$_line" >/etc/hosts
	fi
}

valid_user() {
	case $1 in
	'' | -* | *[!A-Za-z0-9._-]*) return 1 ;;
	esac
	return 0
}

# ensure_user NAME: create NAME (home, bash, locked password) if missing, and give it
# passwordless sudo through /etc/sudoers.d/90-gureum, like cloud images' default user.
ensure_user() {
	_u=$1
	if ! valid_user "$_u"; then
		log "invalid login user name '$_u'"
		return 1
	fi
	if ! passwd_entry "$_u"; then
		_shell=/bin/sh
		[ -x /bin/bash ] && _shell=/bin/bash
		if command -v useradd >/dev/null 2>&1; then
			useradd --create-home --shell "$_shell" --user-group "$_u" || {
				log "could not create user $_u"
				return 1
			}
		elif command -v adduser >/dev/null 2>&1; then
			adduser -D -s "$_shell" "$_u" || {
				log "could not create user $_u"
				return 1
			}
		else
			log "no useradd or adduser: cannot create user $_u"
			return 1
		fi
		command -v passwd >/dev/null 2>&1 && passwd -l "$_u" >/dev/null 2>&1
		for _g in adm sudo wheel; do
			if getent group "$_g" >/dev/null 2>&1; then
				usermod -a -G "$_g" "$_u" 2>/dev/null || true
			fi
		done
		log "created login user $_u"
	fi
	if [ -d /etc/sudoers.d ]; then
		_rule="$_u ALL=(ALL) NOPASSWD:ALL"
		if ! has_line /etc/sudoers.d/90-gureum "$_rule"; then
			printf '%s\n' "$_rule" >>/etc/sudoers.d/90-gureum
			chmod 0440 /etc/sudoers.d/90-gureum
		fi
	else
		log "sudo is not installed: $_u has no sudo"
	fi
	return 0
}

# each_key_line FILE FUNCTION: FUNCTION LINE for every key line of FILE (carriage returns
# dropped; blank and comment lines skipped).
each_key_line() {
	while IFS= read -r _line || [ -n "$_line" ]; do
		_line=${_line%"$CR"}
		case $_line in
		'' | '#'*) continue ;;
		esac
		"$2" "$_line"
	done <"$1"
}

# For install_keys, over its $_ak: whether a key is missing; add a missing key.
note_missing() { has_line "$_ak" "$1" || _missing=1; }
append_key() { has_line "$_ak" "$1" || printf '%s\n' "$1" >>"$_ak"; }

# install_keys USER FILE: add FILE's key lines to USER's authorized_keys (0700 ~/.ssh, 0600
# file, owned by USER) without duplicating lines already there.
install_keys() {
	_u=$1
	_src=$2
	[ -s "$_src" ] || return 0
	passwd_entry "$_u"
	if [ -z "$_home" ] || [ ! -d "$_home" ]; then
		log "user $_u has no home directory: keys not installed"
		return 1
	fi
	# This runs as root over a directory its user controls: never follow a link planted
	# there (it could point authorized_keys at /etc/shadow).
	if [ -L "$_home/.ssh" ] || [ -L "$_home/.ssh/authorized_keys" ]; then
		log "$_home/.ssh or its authorized_keys is a symlink: keys not installed"
		return 1
	fi
	_ak=$_home/.ssh/authorized_keys
	# Already there (every boot after the first): nothing to do, no process started.
	_missing=
	each_key_line "$_src" note_missing
	[ -n "$_missing" ] || return 0
	_group=$_gid
	mkdir -p "$_home/.ssh"
	chmod 0700 "$_home/.ssh"
	chown "$_u:$_group" "$_home/.ssh"
	[ -f "$_ak" ] || : >"$_ak"
	# Keep the file newline-terminated before appending.
	if [ -s "$_ak" ] && [ -n "$(tail -c 1 "$_ak")" ]; then
		echo >>"$_ak"
	fi
	each_key_line "$_src" append_key
	chmod 0600 "$_ak"
	chown "$_u:$_group" "$_ak"
}

host_keys() {
	if ! command -v ssh-keygen >/dev/null 2>&1; then
		log "ssh-keygen not found: no SSH host keys"
		return 0
	fi
	if first_boot && [ -f "$MARKER" ]; then
		# An image made from another instance: its host keys are not this instance's.
		rm -f /etc/ssh/ssh_host_*
	fi
	[ -d /etc/ssh ] || mkdir -p /etc/ssh
	# Keys the host made ahead of time (first boot only): one mv, no key generation here.
	for _f in "$STATE"/ssh_host_*_key; do
		if [ -f "$_f" ]; then
			mv -f "$STATE"/ssh_host_*_key "$STATE"/ssh_host_*_key.pub /etc/ssh/
		fi
		break
	done
	# The fast key types only: sshd starts with them. The RSA key costs about a second of
	# CPU, so without one from the host the final stage makes it after sshd is up
	# (rsa_host_key) instead of on the critical path to SSH.
	for _t in ed25519 ecdsa; do
		[ -f "/etc/ssh/ssh_host_${_t}_key" ] ||
			ssh-keygen -q -t "$_t" -N '' -f "/etc/ssh/ssh_host_${_t}_key" >/dev/null 2>&1 ||
			log "ssh-keygen -t $_t failed"
	done
}

# The RSA host key, made late and at low priority.
rsa_host_key() {
	command -v ssh-keygen >/dev/null 2>&1 || return 0
	[ -f /etc/ssh/ssh_host_rsa_key ] && return 0
	nice -n 19 ssh-keygen -q -t rsa -b 3072 -N '' -f /etc/ssh/ssh_host_rsa_key >/dev/null 2>&1 ||
		log "ssh-keygen -t rsa failed"
	# sshd is not reloaded for it: a reload re-executes sshd and can drop a connection being
	# set up at that moment. The running sshd offers the ed25519 and ECDSA keys (what every
	# current client prefers); the RSA key is served from the next boot on.
}

# The console block EC2 instances print, which tools read back from GetConsoleOutput to verify
# a host key before the first SSH connection.
print_fingerprints() {
	echo "-----BEGIN SSH HOST KEY FINGERPRINTS-----"
	# The host's block for the keys it made for this instance (first line: the instance id),
	# or ssh-keygen's for keys made here.
	_fp=$STATE/host-key-fingerprints
	first_line "$_fp"
	if [ -n "$INSTANCE_ID" ] && [ "$_line" = "# $INSTANCE_ID" ]; then
		while IFS= read -r _l || [ -n "$_l" ]; do
			case $_l in '#'*) ;; *) printf '%s\n' "$_l" ;; esac
		done <"$_fp"
	else
		for _f in /etc/ssh/ssh_host_*key.pub; do
			[ -f "$_f" ] && ssh-keygen -l -f "$_f"
		done
	fi
	echo "-----END SSH HOST KEY FINGERPRINTS-----"
	echo "-----BEGIN SSH HOST KEY KEYS-----"
	for _f in /etc/ssh/ssh_host_*key.pub; do
		[ -f "$_f" ] || continue
		while IFS= read -r _l || [ -n "$_l" ]; do
			printf '%s\n' "$_l"
		done <"$_f"
	done
	echo "-----END SSH HOST KEY KEYS-----"
}

# wait_for_instance: in a warm guest, block until the host hands over the instance. The FIFO
# is held open read-write, so the host's non-blocking write always finds a reader, and
# instance.env is checked before each wait, so a hand-over that came first is not missed.
wait_for_instance() {
	[ -f "$STATE/warm" ] || return 0
	if [ ! -f "$ENV_FILE" ]; then
		log "warm: waiting for an instance"
		if [ -p "$STATE/claim" ] || mkfifo -m 0600 "$STATE/claim"; then
			exec 3<>"$STATE/claim"
			while [ ! -f "$ENV_FILE" ]; do
				IFS= read -r _x <&3 || break
			done
			exec 3<&-
		else
			# No FIFO: look every second instead.
			while [ ! -f "$ENV_FILE" ]; do sleep 1; done
		fi
	fi
	# Read it again even if it was there already: it may have come after the script started.
	# shellcheck disable=SC1090
	. "$ENV_FILE"
	[ -n "${LOGIN_USER:-}" ] || LOGIN_USER=admin
}

boot_stage() {
	[ -d "$STATE" ] || mkdir -p "$STATE"
	chmod 0700 "$STATE" 2>/dev/null
	wait_for_instance
	set_hostname "${HOSTNAME:-}"
	ensure_user "$LOGIN_USER" && install_keys "$LOGIN_USER" "$KEYS_FILE"
	host_keys
}

# run_script FILE: a #! user-data script, as root, from /.
run_script() {
	cp "$1" "$WORK/script" && chmod 0700 "$WORK/script" || return 1
	log "running user-data script"
	(cd / && "$WORK/script" </dev/null)
	_rc=$?
	log "user-data script exited with status $_rc"
	return $_rc
}

run_user_data() {
	if [ ! -s "$USER_DATA" ]; then
		log "no user-data"
		return 0
	fi
	_ud=$USER_DATA
	if [ "$(head -c 2 "$_ud" | od -An -tx1 | tr -d ' \n')" = "1f8b" ]; then
		if ! gzip -dc <"$_ud" >"$WORK/user-data"; then
			log "user-data looks gzip-compressed but does not decompress; skipped"
			return 1
		fi
		_ud=$WORK/user-data
	fi
	_first=$(head -n 1 "$_ud" | tr -d '\r')
	case $_first in
	'#!'*)
		run_script "$_ud"
		return
		;;
	esac
	if command -v python3 >/dev/null 2>&1; then
		LOGIN_USER=$LOGIN_USER python3 - "$_ud" "$WORK" "$SELF" <<'PYTHON'
# gureum-init's user-data handler: #cloud-config (a subset), MIME multipart, #! parts.
import base64, email, gzip, os, shlex, subprocess, sys

ud_path, work, self_path = sys.argv[1], sys.argv[2], sys.argv[3]
login_user = os.environ.get("LOGIN_USER") or "admin"
status = 0


def log(msg):
    print("gureum-init: " + msg, flush=True)


def sniff(data):
    first = data.lstrip(b"\xef\xbb\xbf").split(b"\n", 1)[0].strip().lower()
    for prefix, ctype in (
        (b"#!", "text/x-shellscript"),
        (b"#cloud-config-archive", "text/cloud-config-archive"),
        (b"#cloud-config", "text/cloud-config"),
        (b"#include", "text/x-include-url"),
        (b"#cloud-boothook", "text/cloud-boothook"),
        (b"#part-handler", "text/part-handler"),
        (b"## template: jinja", "text/jinja2"),
        (b"content-type:", "multipart"),
        (b"mime-version:", "multipart"),
    ):
        if first.startswith(prefix):
            return ctype
    return "text/plain"


def parts(data):
    """(content type, payload) for each part of the user-data, in order."""
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    if sniff(data) != "multipart":
        yield sniff(data), data
        return
    msg = email.message_from_bytes(data)
    for part in msg.walk():
        if part.is_multipart():
            continue
        payload = part.get_payload(decode=True) or b""
        if payload[:2] == b"\x1f\x8b":
            payload = gzip.decompress(payload)
        ctype = part.get_content_type()
        if ctype in ("text/plain", "application/octet-stream", "text/x-not-multipart"):
            ctype = sniff(payload)
        yield ctype, payload


def run(argv, what):
    sys.stdout.flush()
    try:
        rc = subprocess.call(argv, stdin=subprocess.DEVNULL, cwd="/")
    except OSError as e:
        log("%s: %s" % (what, e))
        return 127
    if rc != 0:
        log("%s exited with status %d" % (what, rc))
    return rc


def as_list(v):
    if v is None:
        return []
    if isinstance(v, (list, tuple)):
        return list(v)
    return [v]


def write_file(spec):
    path = spec.get("path")
    if not path:
        log("write_files entry without path; skipped")
        return
    content = spec.get("content", "")
    if isinstance(content, str):
        content = content.encode()
    enc = str(spec.get("encoding", "text")).lower()
    try:
        if enc in ("b64", "base64", "gz+b64", "gzip+base64", "gz+base64", "gzip+b64"):
            content = base64.b64decode(content)
        if enc in ("gz", "gzip", "gz+b64", "gzip+base64", "gz+base64", "gzip+b64"):
            content = gzip.decompress(content)
    except Exception as e:
        log("write_files %s: bad %s content: %s" % (path, enc, e))
        return
    perms = spec.get("permissions", 0o644)
    try:
        mode = int(perms, 8) if isinstance(perms, str) else int(perms)
    except ValueError:
        log("write_files %s: bad permissions %r; using 0644" % (path, perms))
        mode = 0o644
    os.makedirs(os.path.dirname(path) or "/", exist_ok=True)
    with open(path, "ab" if spec.get("append") else "wb") as f:
        f.write(content)
    os.chmod(path, mode)
    owner = spec.get("owner", "root:root")
    if owner and owner != "root:root":
        user, _, group = str(owner).partition(":")
        if subprocess.call(["chown", "%s:%s" % (user, group) if group else user, path]) != 0:
            log("write_files %s: could not chown to %s" % (path, owner))
    log("wrote %s" % path)


def install_keys(user, keys):
    keys = [str(k).strip() for k in as_list(keys) if str(k).strip()]
    if not keys:
        return
    tmp = os.path.join(work, "keys")
    with open(tmp, "w") as f:
        f.write("\n".join(keys) + "\n")
    run(["sh", self_path, "keys", user, tmp], "installing keys for %s" % user)


def add_user(spec):
    if spec == "default":
        return
    if isinstance(spec, str):
        spec = {"name": spec}
    name = spec.get("name")
    if not name:
        log("users entry without name; skipped")
        return
    if subprocess.call(["id", name], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) != 0:
        argv = ["useradd", "--create-home", "--user-group"]
        argv += ["--shell", spec.get("shell") or "/bin/bash"]
        if spec.get("gecos"):
            argv += ["--comment", str(spec["gecos"])]
        if spec.get("homedir"):
            argv += ["--home-dir", str(spec["homedir"])]
        if spec.get("system"):
            argv += ["--system"]
        run(argv + [name], "useradd %s" % name)
    elif spec.get("shell"):
        run(["usermod", "--shell", spec["shell"], name], "usermod %s" % name)
    groups = spec.get("groups")
    if isinstance(groups, str):
        groups = [g.strip() for g in groups.split(",")]
    for g in as_list(groups):
        if subprocess.call(["getent", "group", g], stdout=subprocess.DEVNULL) != 0:
            run(["groupadd", g], "groupadd %s" % g)
        run(["usermod", "-a", "-G", g, name], "adding %s to %s" % (name, g))
    for rule in as_list(spec.get("sudo")):
        if rule is False or rule is None:
            continue
        if os.path.isdir("/etc/sudoers.d"):
            line = "%s %s\n" % (name, rule)
            path = "/etc/sudoers.d/90-gureum-users"
            existing = open(path).read() if os.path.exists(path) else ""
            if line not in existing:
                with open(path, "a") as f:
                    f.write(line)
            os.chmod(path, 0o440)
    if spec.get("lock_passwd", True):
        subprocess.call(["passwd", "-l", name], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    install_keys(name, spec.get("ssh_authorized_keys"))
    log("user %s ready" % name)


SUPPORTED = {
    "runcmd", "write_files", "users", "ssh_authorized_keys", "hostname", "fqdn",
    "packages", "package_update", "package_upgrade", "apt_update", "apt_upgrade",
    "preserve_hostname", "manage_etc_hosts",
}
LISTS = ("runcmd", "write_files", "users", "ssh_authorized_keys", "packages")


def load_configs(docs):
    try:
        import yaml
    except ImportError:
        log("#cloud-config needs python3-yaml, which this image lacks; skipped")
        return None
    merged = {}
    for doc in docs:
        try:
            cfg = yaml.safe_load(doc)
        except yaml.YAMLError as e:
            log("#cloud-config is not valid YAML; skipped: %s" % e)
            continue
        except RecursionError:
            # PyYAML builds nested collections recursively: `[[[[…` a few hundred deep
            # would otherwise end the whole handler with a traceback.
            log("#cloud-config is nested too deeply; skipped")
            continue
        if cfg is None:
            continue
        if not isinstance(cfg, dict):
            log("#cloud-config is not a mapping; skipped")
            continue
        # Lists accumulate across parts (runcmd from two parts both run); other keys: the
        # last part wins.
        for k, v in cfg.items():
            if k in LISTS and k in merged:
                merged[k] = as_list(merged[k]) + as_list(v)
            else:
                merged[k] = v
    return merged


def apply_config(cfg):
    ignored = sorted(k for k in cfg if k not in SUPPORTED)
    if ignored:
        log("cloud-config keys not supported by gureum (ignored): " + ", ".join(map(str, ignored)))
    name = cfg.get("fqdn") or cfg.get("hostname")
    if name and not cfg.get("preserve_hostname"):
        run(["sh", self_path, "hostname", str(name)], "setting hostname")
    deferred = []
    for spec in as_list(cfg.get("write_files")):
        if isinstance(spec, dict) and spec.get("defer"):
            deferred.append(spec)
        elif isinstance(spec, dict):
            write_file(spec)
    for spec in as_list(cfg.get("users")):
        add_user(spec)
    install_keys(login_user, cfg.get("ssh_authorized_keys"))
    pkgs = []
    for p in as_list(cfg.get("packages")):
        pkgs.append("=".join(map(str, p)) if isinstance(p, (list, tuple)) else str(p))
    update = cfg.get("package_update") or cfg.get("apt_update") or pkgs
    upgrade = cfg.get("package_upgrade") or cfg.get("apt_upgrade")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    if update or upgrade:
        sys.stdout.flush()
        # Allowed to fail: the instance may not reach a mirror.
        if subprocess.call(["apt-get", "update"], stdin=subprocess.DEVNULL, env=env) != 0:
            log("apt-get update failed; continuing")
    if upgrade:
        if subprocess.call(["apt-get", "-y", "upgrade"], stdin=subprocess.DEVNULL, env=env) != 0:
            log("apt-get upgrade failed; continuing")
    if pkgs:
        sys.stdout.flush()
        if subprocess.call(["apt-get", "install", "-y"] + pkgs, stdin=subprocess.DEVNULL, env=env) != 0:
            log("apt-get install %s failed; continuing" % " ".join(pkgs))
    for spec in deferred:
        write_file(spec)
    return as_list(cfg.get("runcmd"))


def run_script(n, payload):
    path = os.path.join(work, "part-%03d" % n)
    with open(path, "wb") as f:
        f.write(payload)
    os.chmod(path, 0o700)
    log("running user-data script part %d" % n)
    argv = [path] if payload.startswith(b"#!") else ["sh", path]
    return run(argv, "user-data script part %d" % n)


def read_user_data(data):
    """(merged cloud-config or None, scripts) from the raw user-data, or None if it cannot
    be parsed. Never raises: fuzz/userdata.py holds it to that."""
    configs, scripts = [], []
    try:
        for ctype, payload in parts(data):
            if ctype == "text/cloud-config":
                configs.append(payload)
            elif ctype == "text/x-shellscript":
                scripts.append(payload)
            elif ctype == "text/x-include-url":
                log("#include user-data is not supported by gureum; skipped")
            else:
                log("user-data of type %s is not supported by gureum; skipped" % ctype)
    except Exception as e:
        log("user-data could not be parsed: %s" % e)
        return None
    cfg = load_configs(configs) if configs else None
    return cfg, scripts


def main():
    global status
    with open(ud_path, "rb") as f:
        data = f.read()
    read = read_user_data(data)
    if read is None:
        return 1
    cfg, scripts = read
    runcmd = []
    if cfg is not None:
        runcmd = apply_config(cfg)
    # Like cloud-init's scripts-user stage: user-data scripts in order, then runcmd as one
    # shell script (strings verbatim, argv lists quoted), so one failing command does not stop
    # the others.
    for n, payload in enumerate(scripts, 1):
        if run_script(n, payload) != 0:
            status = 1
    if runcmd:
        lines = ["#!/bin/sh"]
        for cmd in runcmd:
            if isinstance(cmd, (list, tuple)):
                lines.append(" ".join(shlex.quote(str(a)) for a in cmd))
            else:
                lines.append(str(cmd))
        path = os.path.join(work, "runcmd")
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")
        os.chmod(path, 0o700)
        log("running runcmd")
        if run(["sh", path], "runcmd") != 0:
            status = 1
    return status


sys.exit(main())
PYTHON
		return
	fi
	case $_first in
	'#cloud-config'* | [Cc]ontent-[Tt]ype:* | [Mm][Ii][Mm][Ee]-[Vv]ersion:*)
		log "this user-data needs python3, which this image lacks; skipped"
		;;
	*)
		log "unsupported user-data (not a #! script); skipped"
		;;
	esac
	return 1
}

final_stage() {
	# A warm guest's traces, once it is an instance (here, off the path to SSH).
	if [ -f "$ENV_FILE" ] && { [ -e "$STATE/warm" ] || [ -e "$STATE/claim" ]; }; then
		rm -f "$STATE/warm" "$STATE/claim"
	fi
	rsa_host_key
	if first_boot; then
		print_fingerprints
	fi
	if ! first_boot; then
		log "user-data already ran for this instance"
		return 0
	fi
	if [ ! -s "$USER_DATA" ]; then
		# Nothing to run: say so in the log and mark the first boot done, with shell builtins
		# only (this runs while other instances may still be booting).
		umask 077
		log "no user-data for instance ${INSTANCE_ID:-unknown}" >>"$OUTPUT_LOG"
		umask 022
		log "no user-data for instance ${INSTANCE_ID:-unknown}"
		printf '%s\n' "$INSTANCE_ID" >"$MARKER"
		return 0
	fi
	WORK=$STATE/user-data.d
	rm -rf "$WORK"
	mkdir -p "$WORK" && chmod 0700 "$WORK"
	touch "$OUTPUT_LOG"
	if getent group adm >/dev/null 2>&1; then
		chgrp adm "$OUTPUT_LOG" && chmod 0640 "$OUTPUT_LOG"
	else
		chmod 0600 "$OUTPUT_LOG"
	fi
	# Output goes to the log and, through our stdout, to the console (as cloud-init does).
	# tee reads a FIFO instead of a pipe so that a daemon started by user-data, which keeps
	# the output open, does not keep this stage (and the marker) waiting.
	mkfifo "$WORK/output"
	tee -a "$OUTPUT_LOG" <"$WORK/output" &
	_tee=$!
	{
		log "running user-data for instance ${INSTANCE_ID:-unknown} at $(date -u '+%Y-%m-%d %H:%M:%S') UTC"
		run_user_data
		log "user-data finished with status $?"
	} >"$WORK/output" 2>&1
	printf '%s\n' "$INSTANCE_ID" >"$MARKER"
	# Give tee a moment to drain so the log is complete when we return.
	_i=0
	while kill -0 "$_tee" 2>/dev/null && [ $_i -lt 50 ]; do
		sleep 0.1
		_i=$((_i + 1))
	done
	rm -f "$WORK/output"
}

case ${1:-all} in
boot) boot_stage ;;
final) final_stage ;;
all)
	boot_stage
	final_stage
	;;
hostname) set_hostname "${2:-}" ;;
keys) install_keys "${2:-}" "${3:-}" ;;
user) ensure_user "${2:-}" ;;
*)
	echo "usage: gureum-init [boot|final]" >&2
	exit 2
	;;
esac
exit 0
