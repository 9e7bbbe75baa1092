"""stockade's egress gateway (docs/egress.md): the container's entrypoint and squid's helpers.

  gateway.py run                 start squid and the plain-HTTP front, warm up, print "ready"
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

Plain HTTP (a sandbox's HTTP_PROXY, port 3130) does not go through squid: squid 5.7 writes a
plain-HTTP answer to its client 4 KiB at a time (its compile-time HTTP_REQBUF_SZ), a third of
the speed of a direct download. The front here reads one request's head, applies the same
credentials and policy as squid's helpers (the functions below), resolves the name once, refuses
a private address among the answers, connects to a checked address and then only moves bytes
(splice(2)) between the sandbox and that one destination. Anything that is not a plain-HTTP
request (CONNECT, other schemes, what does not parse) goes to squid's front as it came.
"""

import base64
import fcntl
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
HTTP_PORT = 3130


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
    threading.Thread(target=HttpFront().serve, daemon=True).start()
    open(READY, "w").close()
    print("stockade gateway ready", flush=True)
    return squid.wait()


def warm_up(squid):
    """Send CONNECTs through the front port until one is answered by the back port.

    squid marks its parent (the back port) alive only after a first connection to it, and
    answers 500 to the requests before that: sandboxes must not see it.
    """
    token = os.environ["STOCKADE_PROBE_TOKEN"]
    auth = "Basic " + base64.b64encode(
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
    """squid's basic auth helper: `user password`, each URL-escaped."""
    parts = line.split(" ")
    if len(parts) != 2:
        return "ERR"
    user, password = (urllib.parse.unquote(p) for p in parts)
    if user == PROBE_USER:
        token = os.environ.get("STOCKADE_PROBE_TOKEN", "")
        return "OK" if token and hmac.compare_digest(password, token) else "ERR"
    return "OK" if sandbox_policy(user, password) is not None else "ERR"


def sandbox_policy(user, password):
    """The policy of the sandbox these proxy credentials are, or None."""
    policy = read_policy(user)
    if policy is None or policy.get("revoked") is True:
        return None
    digest = hashlib.sha256(password.encode()).hexdigest()
    if not hmac.compare_digest(digest, str(policy.get("token_sha256", ""))):
        return None
    return policy


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


def valid_host(host):
    """A host name or an address, nothing else: what is logged is shown on terminals."""
    return bool(host) and all(c.isascii() and (c.isalnum() or c in "-._:[]") for c in host)


def squid_answer(refusal):
    return "OK" if refusal is None else "ERR message=%s" % quote(refusal)


class Policies:
    def decide(self, line):
        fields = line.split()
        if len(fields) < 5:
            return "ERR"
        user, local_port, host, port_text, sni = (urllib.parse.unquote(f) for f in fields[:5])
        host = host.lower().rstrip(".")
        if not valid_host(host):
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
            return squid_answer(sni_refusal(policy, host, port, sni))
        return squid_answer(destination_refusal(policy, host, port))


def squid_answer(refusal):
    return "OK" if refusal is None else "ERR message=%s" % quote(refusal)


def entry_for(host, port):
    """What `net allow` takes for host:port."""
    return host if port in (80, 443) else "%s:%d" % (host, port)


def destination_refusal(policy, host, port):
    """Why the sandbox may not reach host:port (logged as a denial), or None if it may."""
    rules = policy.get("rules", [])
    private = policy.get("private", [])
    literal = ip_literal(host)
    if literal is not None:
        listed = lambda rs: any(  # noqa: E731
            ip_literal(r.get("host", "")) == literal and port in r.get("ports", []) for r in rs)
        if non_public(literal):
            if listed(private):
                return None
            return deny(policy, host, port, "private-address",
                        "%s is a private address: list `%s` in `[network] allow_private` "
                        "of your global configuration" % (host, entry_for(host, port)))
        if not listed(rules + private):
            return deny(policy, host, port, "raw-ip",
                        "a connection to the IP address %s is refused: name the host "
                        "instead, or allow the address with `stockade net allow %s`"
                        % (host, entry_for(host, port)))
        return None
    if not any(matches(r, host, port) for r in rules + private):
        return deny(policy, host, port, "not-allowed",
                    "egress to %s:%d is not allowed for this sandbox. Allow it on the host "
                    "with `stockade net allow %s`" % (host, port, entry_for(host, port)))
    if not any(matches(r, host, port) for r in private):
        address = non_global_address(host)
        if address is not None:
            return private_refusal(policy, host, port, address)
    return None


def private_refusal(policy, host, port, address):
    return deny(policy, host, port, "private-address",
                "%s resolves to %s, a private address: list it in `[network] "
                "allow_private` of your global configuration" % (host, address))


def sni_refusal(policy, host, port, sni):
    """The back port's check: the TLS server name must be the CONNECT host."""
    sni = sni.lower().rstrip(".")
    if sni == host or (sni in ("", "-") and ip_literal(host) is not None):
        return None
    return deny(policy, host, port, "sni-mismatch",
                "the TLS server name %r differs from the CONNECT host" % sni)


def deny(policy, host, port, reason, message):
    """Log a refusal; returns the message that says it to the sandbox."""
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
    return message


# --- plain HTTP ------------------------------------------------------------------------------

HEAD_LIMIT = 64 * 1024
HEAD_SECONDS = 60
CONNECTIONS = 1024
CONNECTIONS_PER_SANDBOX = 128
# Hop-by-hop headers of the sandbox's request that do not go to the destination (RFC 9110
# 7.6.1), and Host, which a proxy makes from the request's URL (RFC 9112 3.2.2): the
# destination sees the name the policy allowed.
NOT_FORWARDED = {"connection", "keep-alive", "proxy-authorization", "proxy-connection", "te",
                 "trailer", "upgrade", "proxy-authenticate", "host"}
F_SETPIPE_SZ = 1031
PUMP_CHUNK = 1 << 20


class Refused(Exception):
    """An answer the front gives itself: (status, reason, message, extra header lines)."""

    def __init__(self, status, reason, message, headers=()):
        super().__init__(message)
        self.status, self.reason, self.message, self.headers = status, reason, message, headers

    def response(self):
        body = ("stockade: %s\n" % self.message).encode()
        head = ["HTTP/1.1 %d %s" % (self.status, self.reason), "Content-Type: text/plain",
                "Content-Length: %d" % len(body), "Connection: close", *self.headers]
        return ("\r\n".join(head) + "\r\n\r\n").encode() + body


class Request:
    """The head of a plain-HTTP proxy request (`GET http://host[:port]/path HTTP/1.1`), parsed
    strictly: anything else is not one (None from `parse`) and goes to squid as it came."""

    def __init__(self, method, host, port, target, version, headers):
        self.method, self.host, self.port = method, host, port
        self.target, self.version, self.headers = target, version, headers

    @staticmethod
    def parse(head):
        """`head` is the bytes before the blank line. None: not a plain-HTTP proxy request.
        Refused: a plain-HTTP request this front will not pass on."""
        try:
            text = head.decode("ascii")
        except UnicodeDecodeError:
            return None
        lines = text.split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3 or parts[2] not in ("HTTP/1.0", "HTTP/1.1"):
            return None
        method, uri, version = parts
        if not method.isalpha() or method.upper() != method or method == "CONNECT" \
                or uri[:7].lower() != "http://":
            return None
        headers = []
        for line in lines[1:]:
            name, colon, value = line.partition(":")
            # No folded lines, no space before the colon, no control characters.
            if not colon or not name or name != name.strip() or any(
                    not (c.isalnum() or c in "!#$%&'*+-.^_`|~") for c in name) or any(
                    ord(c) < 32 and c != "\t" or ord(c) == 127 for c in value):
                raise Refused(400, "Bad Request", "a malformed request header")
            headers.append((name, value.strip(" \t")))
        try:
            url = urllib.parse.urlsplit(uri)
            host, port = url.hostname, url.port or 80
        except ValueError:
            raise Refused(400, "Bad Request", "a malformed URL: %r" % uri[:200]) from None
        host = (host or "").lower().rstrip(".")
        if not valid_host(host) or not 0 < port < 65536 or any(
                ord(c) <= 32 or ord(c) == 127 for c in uri):
            raise Refused(400, "Bad Request", "a malformed URL: %r" % uri[:200])
        target = (url.path or "/") + ("?" + url.query if url.query else "")
        return Request(method, host, port, target, version, headers)

    def header(self, name):
        values = [v for n, v in self.headers if n.lower() == name]
        return values[0] if len(values) == 1 else None

    def credentials(self):
        """(user, password) from Proxy-Authorization: Basic, or None."""
        scheme, _, token = (self.header("proxy-authorization") or "").partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            user, colon, password = base64.b64decode(token.strip(), validate=True) \
                .decode("utf-8").partition(":")
        except (ValueError, UnicodeDecodeError):
            return None
        return (user, password) if colon else None

    def upstream_head(self):
        """The head the destination gets: origin-form, Host from the URL, without the proxy's
        hop-by-hop headers (and those the sandbox's Connection names). One request per
        connection (`Connection: close`), except an upgrade (WebSocket), which keeps its Upgrade
        and becomes a tunnel to this one destination."""
        connection = {t.strip().lower() for n, v in self.headers if n.lower() == "connection"
                      for t in v.split(",")}
        upgrade = self.header("upgrade") if "upgrade" in connection else None
        host = "[%s]" % self.host if ":" in self.host else self.host
        lines = ["%s %s %s" % (self.method, self.target, self.version),
                 "Host: %s" % (host if self.port == 80 else "%s:%d" % (host, self.port))]
        lines += ["%s: %s" % (n, v) for n, v in self.headers
                  if n.lower() not in NOT_FORWARDED and n.lower() not in connection]
        lines += ["Upgrade: %s" % upgrade, "Connection: Upgrade"] if upgrade else \
            ["Connection: close"]
        return ("\r\n".join(lines) + "\r\n\r\n").encode()


class HttpFront:
    """The plain-HTTP front (HTTP_PORT): see the module's doc."""

    def __init__(self):
        self.slots = threading.BoundedSemaphore(CONNECTIONS)
        self.lock = threading.Lock()
        self.per_sandbox = {}

    def serve(self):
        listener = socket.create_server(("", HTTP_PORT), backlog=128)
        while True:
            try:
                client, _ = listener.accept()
            except OSError as e:  # out of descriptors, for one: the front must go on
                sys.stderr.write("stockade gateway: plain-HTTP front: %s\n" % e)
                time.sleep(0.1)
                continue
            if not self.slots.acquire(blocking=False):
                client.close()
                continue
            try:
                threading.Thread(target=self.handle, args=(client,), daemon=True).start()
            except RuntimeError:  # no thread to be had
                client.close()
                self.slots.release()

    def handle(self, client):
        user = None
        try:
            client.settimeout(HEAD_SECONDS)
            head, rest = read_head(client)
            if head is None:
                return
            try:
                request = Request.parse(head)
                if request is None:
                    return to_squid(client, head + b"\r\n\r\n" + rest)
                user, upstream = self.open(request)
            except Refused as refused:
                answer(client, refused)
                return
            with upstream:
                upstream.sendall(request.upstream_head() + rest)
                splice_both(client, upstream)
        except OSError:
            pass
        finally:
            if user is not None:
                with self.lock:
                    self.per_sandbox[user] -= 1
            client.close()
            self.slots.release()

    def open(self, request):
        """Check the sandbox's credentials and policy, then connect to a checked address of
        the destination. Returns (user, socket)."""
        login = request.credentials()
        policy = sandbox_policy(*login) if login else None
        if policy is None:
            raise Refused(407, "Proxy Authentication Required",
                          "this gateway needs the sandbox's proxy credentials",
                          ('Proxy-Authenticate: Basic realm="stockade"',))
        user = login[0]
        with self.lock:
            if self.per_sandbox.get(user, 0) >= CONNECTIONS_PER_SANDBOX:
                raise Refused(503, "Service Unavailable",
                              "this sandbox has %d plain-HTTP connections open already"
                              % CONNECTIONS_PER_SANDBOX)
            self.per_sandbox[user] = self.per_sandbox.get(user, 0) + 1
        try:
            return user, connect_checked(policy, request.host, request.port)
        except BaseException:
            with self.lock:
                self.per_sandbox[user] -= 1
            raise


def connect_checked(policy, host, port):
    """A connection to host:port if the policy allows it, to an address checked here: the
    name is resolved once and every answer must be public unless the name is listed in
    `allow_private`, so no later resolution can point the connection elsewhere."""
    refusal = destination_refusal(policy, host, port)
    if refusal is not None:
        raise Refused(403, "Forbidden", refusal)
    literal = ip_literal(host)
    if literal is not None:
        addresses = [str(literal)]
    else:
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as e:
            raise Refused(503, "Service Unavailable", "cannot resolve %s: %s" % (host, e)) \
                from None
        addresses = list(dict.fromkeys(info[4][0].split("%")[0] for info in infos))
        if not any(matches(r, host, port) for r in policy.get("private", [])):
            for address in addresses:
                if non_public(ipaddress.ip_address(address)):
                    raise Refused(403, "Forbidden",
                                  private_refusal(policy, host, port, address))
    error = None
    for address in addresses:
        try:
            upstream = socket.create_connection((address, port), timeout=30)
            upstream.settimeout(None)
            return upstream
        except OSError as e:
            error = e
    raise Refused(502, "Bad Gateway", "cannot connect to %s:%d: %s" % (host, port, error))


def read_head(sock):
    """The bytes before the first blank line and those after it, or (None, b"") if the
    connection ends first or the head is too long."""
    data = b""
    while True:
        end = data.find(b"\r\n\r\n")
        if end >= 0:
            return data[:end], data[end + 4:]
        if len(data) > HEAD_LIMIT:
            answer(sock, Refused(431, "Request Header Fields Too Large",
                                 "the request head is longer than %d bytes" % HEAD_LIMIT))
            return None, b""
        chunk = sock.recv(65536)
        if not chunk:
            return None, b""
        data += chunk


def answer(client, refused):
    """Send the front's own answer and close without a reset: what the sandbox was still
    sending (a request body) is read and dropped for a moment, so the answer arrives."""
    client.sendall(refused.response())
    client.shutdown(socket.SHUT_WR)
    client.settimeout(1)
    deadline = time.monotonic() + 1
    while time.monotonic() < deadline and client.recv(65536):
        pass


def to_squid(client, data):
    """Hand a connection that is not a plain-HTTP request to squid's front, as it came."""
    with socket.create_connection(("127.0.0.1", int(FRONT_PORT)), timeout=30) as squid:
        squid.settimeout(None)
        squid.sendall(data)
        splice_both(client, squid)


def splice_both(a, b):
    """Move bytes both ways until the side that answers (b) is done; then both are shut."""
    a.settimeout(None)
    other = threading.Thread(target=pump, args=(a, b), daemon=True)
    other.start()
    pump(b, a)
    for sock in (a, b):
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
    other.join()


def pump(source, sink):
    """Copy source to sink until source ends, with splice(2) through a pipe (no copy through
    this process); a plain copy where splice is missing. Then sink gets an end of stream."""
    try:
        if hasattr(os, "splice"):
            read_end, write_end = os.pipe()
            try:
                try:
                    fcntl.fcntl(read_end, F_SETPIPE_SZ, PUMP_CHUNK)
                except OSError:
                    pass
                while True:
                    moved = os.splice(source.fileno(), write_end, PUMP_CHUNK)
                    if moved == 0:
                        break
                    while moved:
                        moved -= os.splice(read_end, sink.fileno(), moved)
            finally:
                os.close(read_end)
                os.close(write_end)
        else:
            buffer = bytearray(PUMP_CHUNK)
            view = memoryview(buffer)
            while True:
                count = source.recv_into(buffer)
                if count == 0:
                    break
                sink.sendall(view[:count])
    except OSError:
        pass
    try:
        sink.shutdown(socket.SHUT_WR)
    except OSError:
        pass


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
