"""stockade's egress gateway (docs/egress.md): the container's entrypoint and squid's helpers.

  gateway.py run                 start squid, warm it up, print "ready", forward signals
  gateway.py ready [SECONDS]     wait until `run` is ready (stockade execs this)
  gateway.py auth                squid's basic auth helper: a sandbox's proxy credentials
  gateway.py policy              squid's external ACL helper: a sandbox's allowlist, the SNI check
  gateway.py forward P/tcp=HOST:Q..  inbound forwarder: published port P to HOST:Q (ports)

State, in the gateway's volume: /run/stockade-gateway/policy/<user>.json, one per sandbox,
written by stockade (a sandbox that is gone leaves a tombstone, `{"revoked": true}`, swept
away here); /run/stockade-gateway/log/denials.jsonl, one JSON line per refusal, written
here (rotated to denials.jsonl.1 at 4 MiB). The `allow_private` names come in the environment
(STOCKADE_PRIVATE_NAMES), which is part of the container stockade made.

Everything a helper reads from squid comes from a sandbox, which is hostile: it is split on
whitespace, never passed to a shell, and only compared with the policy.
"""

import hashlib
import hmac
import ipaddress
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse

STATE = "/run/stockade-gateway"
POLICY_DIR = STATE + "/policy"
DENIALS = STATE + "/log/denials.jsonl"
DENIALS_ROTATE = 4 * 1024 * 1024
RUN = "/tmp/stockade-gateway"
READY = RUN + "/ready"
PROBE_USER = "stockade-probe"
PROBE_HOST = "probe.stockade.invalid"
# Where a sandbox must not reach through the gateway: this host and its networks, cloud
# metadata (link-local), carrier-grade NAT, multicast and reserved space. squid's own `dst`
# backstop is made from the same list.
NON_PUBLIC = [ipaddress.ip_network(n) for n in (
    "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
    "172.16.0.0/12", "192.0.0.0/24", "192.168.0.0/16", "198.18.0.0/15", "224.0.0.0/3",
    "::/128", "::1/128", "::ffff:0:0/96", "64:ff9b::/96", "fc00::/7", "fe80::/10", "ff00::/8")]
# Prefixes that embed IPv4 addresses: squid reads them as all of IPv4, so only the helper
# checks them (it looks at the embedded address).
V4_IN_V6 = [ipaddress.ip_network(n) for n in ("::ffff:0:0/96", "64:ff9b::/96")]
FRONT_PORT = "3128"
BACK_PORT = "3129"


def main():
    mode = sys.argv[1] if len(sys.argv) > 1 else "run"
    if mode == "run":
        return run()
    if mode == "ready":
        return ready(float(sys.argv[2]) if len(sys.argv) > 2 else 30.0)
    if mode == "auth":
        return serve_lines(authenticate)
    if mode == "policy":
        return serve_lines(Policies().decide)
    if mode == "forward":
        return forward(sys.argv[2:])

    sys.stderr.write("gateway.py: unknown mode %r\n" % mode)
    return 2


# --- run -----------------------------------------------------------------------------------


def run():
    os.makedirs(RUN, exist_ok=True)
    for stale in (READY,):
        if os.path.exists(stale):
            os.unlink(stale)
    # The CA an ssl-bump port requires. Nothing is ever signed with it (the back port only
    # peeks and splices or terminates) and no sandbox trusts it; it dies with the container.
    key, cert = RUN + "/ca.key", RUN + "/ca.crt"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-days", "3650", "-subj", "/CN=stockade gateway (never trusted)",
         "-keyout", key, "-out", cert],
        check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    with open(RUN + "/ca.pem", "w") as pem:
        pem.write(open(cert).read() + open(key).read())
    # squid writes subdomains as `.example.com`.
    names = [n[1:] if n.startswith("*.") else n for n in private_names()]
    acl = ("acl private_names dstdomain " + " ".join(names)) if names else \
        "acl private_names dstdomain " + PROBE_HOST
    template = open("/usr/lib/stockade-gateway/squid.conf").read()
    with open(RUN + "/squid.conf", "w") as conf:
        conf.write(template.replace("@PRIVATE_NAMES@", acl).replace(
            "@NON_PUBLIC@", " ".join(str(n) for n in NON_PUBLIC if n not in V4_IN_V6)))
    # The warm-up's credentials: known to this process and squid's helpers (its children) only.
    os.environ["STOCKADE_PROBE_TOKEN"] = secrets.token_urlsafe(24)
    squid = subprocess.Popen(["squid", "-N", "-f", RUN + "/squid.conf"])

    def stop(signum, _frame):
        squid.send_signal(signum)

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, stop)
    warm_up(squid)
    if squid.poll() is not None:
        sys.stderr.write("stockade gateway: squid ended (%s) before it was ready\n" % squid.returncode)
        return squid.returncode or 1
    threading.Thread(target=sweep, daemon=True).start()
    open(READY, "w").close()
    print("stockade gateway ready", flush=True)
    return squid.wait()


def warm_up(squid):
    """Send CONNECTs through the front port until one is answered by the back port.

    squid marks its parent (the back port) alive only after a first connection to it, and
    answers 500 to the requests before that: sandboxes must not see it.
    """
    token = os.environ["STOCKADE_PROBE_TOKEN"]
    auth = "Basic " + __import__("base64").b64encode(
        ("%s:%s" % (PROBE_USER, token)).encode()).decode()
    request = ("CONNECT %s:443 HTTP/1.1\r\nHost: %s:443\r\nProxy-Authorization: %s\r\n\r\n"
               % (PROBE_HOST, PROBE_HOST, auth)).encode()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and squid.poll() is None:
        try:
            with socket.create_connection(("127.0.0.1", int(FRONT_PORT)), timeout=5) as s:
                s.sendall(request)
                status = s.recv(256).split(b"\r\n", 1)[0]
            # Through the back port, the name does not resolve: 503. Anything but a 500 (no
            # parent yet) or no answer means the path is up.
            if status.startswith(b"HTTP/") and b" 500 " not in status:
                return
        except OSError:
            pass
        time.sleep(0.05)


def ready(seconds):
    deadline = time.monotonic() + seconds
    while not os.path.exists(READY):
        if time.monotonic() >= deadline:
            break
        time.sleep(0.02)
    else:
        return 0
    sys.stderr.write("the gateway did not become ready in %.0f s\n" % seconds)
    return 1


def private_names():
    names = os.environ.get("STOCKADE_PRIVATE_NAMES", "").split()
    return [name.lower() for name in names if valid_name(name)]


def sweep():
    """Remove the tombstones stockade leaves for sandboxes that are gone (`{"revoked": true}`),
    now and then."""
    while True:
        try:
            for name in os.listdir(POLICY_DIR):
                path = os.path.join(POLICY_DIR, name)
                try:
                    with open(path) as f:
                        revoked = json.load(f).get("revoked") is True
                    if revoked and time.time() - os.path.getmtime(path) > 60:
                        os.unlink(path)
                except (OSError, ValueError, AttributeError):
                    pass
        except OSError:
            pass
        time.sleep(300)


def valid_name(name):
    name = name[2:] if name.startswith("*.") else name
    return bool(name) and len(name) <= 253 and all(
        label and len(label) <= 63 and all(c.isalnum() or c in "-_" for c in label)
        for label in name.split("."))


# --- helpers ---------------------------------------------------------------------------------


def serve_lines(answer):
    """squid's helper protocol: one request per line in, one answer per line out."""
    for line in sys.stdin:
        try:
            reply = answer(line.rstrip("\n"))
        except Exception as e:  # a helper that dies takes squid's requests with it
            reply = "BH message=%s" % quote("stockade gateway helper error: %s" % e)
        sys.stdout.write(reply + "\n")
        sys.stdout.flush()
    return 0


def quote(text):
    """A value squid reads back from a helper's `key=value`."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def policy_path(user):
    """Where a sandbox's policy is: a user name is a file name only when it is safe."""
    if not user or len(user) > 128 or not all(c.isalnum() or c in "-_." for c in user) \
            or user.startswith("."):
        return None
    return os.path.join(POLICY_DIR, user + ".json")


def read_policy(user):
    """The sandbox's policy, or None. stockade replaces a file by writing it over: one caught
    half-written is read again a moment later."""
    path = policy_path(user)
    if path is None:
        return None
    for attempt in range(3):
        try:
            with open(path) as f:
                return json.load(f)
        except ValueError:
            time.sleep(0.02 * (attempt + 1))
        except OSError:
            return None
    return None


def authenticate(line):
    parts = line.split(" ")
    if len(parts) != 2:
        return "ERR"
    user, password = (urllib.parse.unquote(p) for p in parts)
    if user == PROBE_USER:
        token = os.environ.get("STOCKADE_PROBE_TOKEN", "")
        return "OK" if token and hmac.compare_digest(password, token) else "ERR"
    policy = read_policy(user)
    if policy is None:
        return "ERR"
    digest = hashlib.sha256(password.encode()).hexdigest()
    return "OK" if hmac.compare_digest(digest, str(policy.get("token_sha256", ""))) else "ERR"


def matches(rule, host, port):
    if port not in rule.get("ports", []):
        return False
    pattern = str(rule.get("host", "")).lower()
    if pattern.startswith("*."):
        return host.endswith(pattern[1:]) and len(host) > len(pattern) - 1
    return host == pattern


def ip_literal(host):
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def non_public(address):
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        elif address in V4_IN_V6[1]:
            address = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return any(address in network for network in NON_PUBLIC if
               network.version == address.version)


def non_global_address(host):
    """An address the name resolves to that is not on the internet (loopback, private,
    link-local, metadata, shared: `NON_PUBLIC`), or None. A name that does not resolve is left to
    squid, which answers it as a DNS failure."""
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except OSError:
        return None
    for info in infos:
        address = ipaddress.ip_address(info[4][0].split("%")[0])
        if non_public(address):
            return str(address)
    return None


class Policies:
    def decide(self, line):
        fields = line.split()
        if len(fields) < 5:
            return "ERR"
        user, local_port, host, port_text, sni = (urllib.parse.unquote(f) for f in fields[:5])
        host = host.lower().rstrip(".")
        # A host name or an address, nothing else: what is logged is shown on terminals.
        if not host or not all(c.isascii() and (c.isalnum() or c in "-._:[]") for c in host):
            return "ERR message=%s" % quote("not a host name: %r" % host)
        try:
            port = int(port_text)
        except ValueError:
            return "ERR"
        if user == PROBE_USER:
            return "OK" if host == PROBE_HOST and local_port == FRONT_PORT else "ERR"
        policy = read_policy(user)
        if policy is None:
            return "ERR"
        if local_port == BACK_PORT:
            return self.sni(policy, host, port, sni)
        return self.destination(policy, host, port)

    def destination(self, policy, host, port):
        rules = policy.get("rules", [])
        private = policy.get("private", [])
        literal = ip_literal(host)
        if literal is not None:
            entry = host if port in (80, 443) else "%s:%d" % (host, port)
            if non_public(literal):
                if any(ip_literal(r.get("host", "")) == literal and port in r.get("ports", [])
                       for r in private):
                    return "OK"
                return deny(policy, host, port, "private-address",
                            "%s is a private address: list `%s` in `[network] allow_private` "
                            "of your global configuration" % (host, entry))
            if not any(ip_literal(r.get("host", "")) == literal and port in r.get("ports", [])
                       for r in rules + private):
                return deny(policy, host, port, "raw-ip",
                            "a connection to the IP address %s is refused: name the host "
                            "instead, or allow the address with `stockade net allow %s`"
                            % (host, entry))
            return "OK"
        if not any(matches(r, host, port) for r in rules + private):
            entry = host if port in (80, 443) else "%s:%d" % (host, port)
            return deny(policy, host, port, "not-allowed",
                        "egress to %s:%d is not allowed for this sandbox. Allow it on the host "
                        "with `stockade net allow %s`" % (host, port, entry))
        if not any(matches(r, host, port) for r in private):
            address = non_global_address(host)
            if address is not None:
                return deny(policy, host, port, "private-address",
                            "%s resolves to %s, a private address: list it in `[network] "
                            "allow_private` of your global configuration" % (host, address))
        return "OK"

    def sni(self, policy, host, port, sni):
        sni = sni.lower().rstrip(".")
        if sni == host or (sni in ("", "-") and ip_literal(host) is not None):
            return "OK"
        deny(policy, host, port, "sni-mismatch",
             "the TLS server name %r differs from the CONNECT host" % sni)
        return "ERR"


def deny(policy, host, port, reason, message):
    record = {
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "sandbox": policy.get("sandbox"),
        "session": policy.get("session"),
        "agent": policy.get("agent"),
        "project": policy.get("project"),
        "host": host,
        "port": port,
        "reason": reason,
    }
    try:
        if os.path.getsize(DENIALS) > DENIALS_ROTATE:
            os.replace(DENIALS, DENIALS + ".1")
    except OSError:
        pass
    try:
        fd = os.open(DENIALS, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        with os.fdopen(fd, "a") as log:
            log.write(json.dumps(record, sort_keys=True) + "\n")
    except OSError as e:
        sys.stderr.write("stockade gateway: cannot log a denial: %s\n" % e)
    return "ERR message=%s" % quote(message)


# --- forward ---------------------------------------------------------------------------------


def forward(pairs):
    """One socat per published port; the container ends when any of them does."""
    children = []
    for pair in pairs:
        listen, _, target = pair.partition("=")
        listen, _, protocol = listen.partition("/")
        host, _, port = target.rpartition(":")
        kind = {"tcp": "TCP", "udp": "UDP"}.get(protocol or "tcp")
        if not (listen.isdigit() and port.isdigit() and valid_name(host) and kind):
            sys.stderr.write("forward: bad pair %r\n" % pair)
            return 2
        children.append(subprocess.Popen(
            ["socat", "%s-LISTEN:%s,fork,reuseaddr" % (kind, listen),
             "%s:%s:%s" % (kind, host, port)]))

    def stop(signum, _frame):
        for child in children:
            child.send_signal(signal.SIGTERM)

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, stop)
    print("stockade forwarder ready", flush=True)
    _, status = os.wait()
    stop(signal.SIGTERM, None)
    return os.waitstatus_to_exitcode(status)


if __name__ == "__main__":
    sys.exit(main())
