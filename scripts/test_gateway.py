"""Unit tests of the egress gateway's plain-HTTP front (assets/gateway/gateway.py): how a
sandbox's request head is read, refused or passed on. The engine tests (crates/stockade/tests/
egress.rs, net.rs) prove the front in the real gateway."""

import base64
import importlib.util
import json
import os
import socket
import tempfile
import threading
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SPEC = importlib.util.spec_from_file_location(
    "gateway", os.path.join(HERE, "..", "assets", "gateway", "gateway.py"))
gateway = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(gateway)


def head(*lines):
    return "\r\n".join(lines).encode()


def login(user, password):
    return "Proxy-Authorization: Basic " + base64.b64encode(
        ("%s:%s" % (user, password)).encode()).decode()


class ParseTest(unittest.TestCase):
    def test_a_plain_http_request_is_parsed(self):
        request = gateway.Request.parse(head(
            "GET http://Example.COM.:8080/a/b?c=d#frag HTTP/1.1", "Host: example.com:8080",
            "Accept: */*"))
        self.assertEqual(
            (request.method, request.host, request.port, request.target, request.version),
            ("GET", "example.com", 8080, "/a/b?c=d", "HTTP/1.1"))

    def test_what_is_not_plain_http_goes_to_squid(self):
        for line in ("CONNECT example.com:443 HTTP/1.1", "GET https://example.com/ HTTP/1.1",
                     "GET cache_object://example.com/menu HTTP/1.0", "GET / HTTP/1.1",
                     "GET http://example.com/ HTTP/2", "get http://example.com/ HTTP/1.1",
                     "M-SEARCH http://example.com/ HTTP/1.1", "GET http://example.com/",
                     "GET  http://example.com/ HTTP/1.1"):
            self.assertIsNone(gateway.Request.parse(head(line, "Host: x")), line)
        self.assertIsNone(gateway.Request.parse("GET http://é.com/ HTTP/1.1".encode()))

    def test_a_malformed_plain_http_request_is_refused(self):
        for lines in (("GET http://example.com/ HTTP/1.1", "Host: x", " folded"),
                      ("GET http://example.com/ HTTP/1.1", "Host : x"),
                      ("GET http://example.com/ HTTP/1.1", "no colon"),
                      ("GET http://example.com/ HTTP/1.1", "X: a\x00b"),
                      ("GET http://example.com:99999/ HTTP/1.1",),
                      ("GET http://example.com:x/ HTTP/1.1",),
                      ("GET http:///path HTTP/1.1",),
                      ("GET http://exa$mple.com/ HTTP/1.1",),
                      ("GET http://example.com/\x7f HTTP/1.1",)):
            with self.assertRaises(gateway.Refused, msg=repr(lines)) as refused:
                gateway.Request.parse(head(*lines))
            self.assertEqual(refused.exception.status, 400)

    def test_credentials_are_basic_only(self):
        def credentials(*lines):
            return gateway.Request.parse(head("GET http://x/ HTTP/1.1", *lines)).credentials()

        self.assertEqual(credentials(login("sb", "t:ok")), ("sb", "t:ok"))
        self.assertIsNone(credentials())
        self.assertIsNone(credentials("Proxy-Authorization: Bearer abc"))
        self.assertIsNone(credentials("Proxy-Authorization: Basic !!!"))
        self.assertIsNone(credentials("Proxy-Authorization: Basic " +
                                      base64.b64encode(b"nocolon").decode()))
        self.assertIsNone(credentials(login("a", "b"), login("c", "d")))


class UpstreamHeadTest(unittest.TestCase):
    def test_the_destination_gets_origin_form_and_no_proxy_headers(self):
        request = gateway.Request.parse(head(
            "POST http://example.com/up?x=1 HTTP/1.1", "Host: elsewhere.example",
            login("sb", "t"), "Proxy-Connection: keep-alive", "Connection: keep-alive, X-Hop",
            "X-Hop: 1", "Content-Length: 3", "TE: trailers", "Accept: */*"))
        self.assertEqual(request.upstream_head(), head(
            "POST /up?x=1 HTTP/1.1", "Host: example.com", "Content-Length: 3", "Accept: */*",
            "Connection: close", "", ""))

    def test_a_port_and_an_ipv6_address_are_in_the_host_header(self):
        request = gateway.Request.parse(head("GET http://[2001:db8::1]:8080 HTTP/1.0"))
        self.assertEqual(request.upstream_head(), head(
            "GET / HTTP/1.0", "Host: [2001:db8::1]:8080", "Connection: close", "", ""))

    def test_an_upgrade_keeps_its_upgrade(self):
        request = gateway.Request.parse(head(
            "GET http://example.com/ws HTTP/1.1", "Connection: Upgrade", "Upgrade: websocket",
            "Sec-WebSocket-Version: 13"))
        self.assertEqual(request.upstream_head(), head(
            "GET /ws HTTP/1.1", "Host: example.com", "Sec-WebSocket-Version: 13",
            "Upgrade: websocket", "Connection: Upgrade", "", ""))


class PolicyTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.addCleanup(self.dir.cleanup)
        gateway.DENIALS = os.path.join(self.dir.name, "denials.jsonl")
        gateway.POLICY_DIR = self.dir.name
        self.policy = {
            "token_sha256": __import__("hashlib").sha256(b"secret").hexdigest(),
            "sandbox": "sb", "session": "s", "agent": None, "project": "/p",
            "rules": [{"host": "registry.npmjs.org", "ports": [80, 443]},
                      {"host": "*.example.org", "ports": [80]}],
            "private": [{"host": "10.1.2.3", "ports": [8000]}],
        }
        with open(os.path.join(self.dir.name, "sb.json"), "w") as f:
            json.dump(self.policy, f)

    def denials(self):
        try:
            with open(gateway.DENIALS) as f:
                return [(d["host"], d["port"], d["reason"]) for d in map(json.loads, f)]
        except FileNotFoundError:
            return []

    def test_credentials_name_a_sandbox_s_policy(self):
        self.assertEqual(gateway.sandbox_policy("sb", "secret")["sandbox"], "sb")
        self.assertIsNone(gateway.sandbox_policy("sb", "wrong"))
        self.assertIsNone(gateway.sandbox_policy("../sb", "secret"))
        self.assertIsNone(gateway.sandbox_policy("nobody", "secret"))

    def test_refusals_are_logged_and_say_how_to_allow(self):
        refusal = gateway.destination_refusal
        self.assertIsNone(refusal(self.policy, "10.1.2.3", 8000))
        self.assertIn("stockade net allow pypi.org`",
                      refusal(self.policy, "pypi.org", 80))
        self.assertIn("stockade net allow example.org:8080`",
                      refusal(self.policy, "example.org", 8080))
        self.assertIn("refused: name the host", refusal(self.policy, "1.1.1.1", 80))
        self.assertIn("`10.1.2.3:9000` in `[network] allow_private`",
                      refusal(self.policy, "10.1.2.3", 9000))
        self.assertEqual(self.denials(), [
            ("pypi.org", 80, "not-allowed"), ("example.org", 8080, "not-allowed"),
            ("1.1.1.1", 80, "raw-ip"), ("10.1.2.3", 9000, "private-address")])

    def test_a_name_that_resolves_to_a_private_address_is_not_connected_to(self):
        policy = dict(self.policy, rules=[{"host": "localhost", "ports": [80]}])
        with self.assertRaises(gateway.Refused) as refused:
            gateway.connect_checked(policy, "localhost", 80)
        self.assertEqual(refused.exception.status, 403)
        self.assertIn("a private address", refused.exception.message)
        self.assertEqual(self.denials(), [("localhost", 80, "private-address")])

    def test_a_refusal_is_a_complete_response(self):
        response = gateway.Refused(403, "Forbidden", "no").response()
        self.assertEqual(response, head(
            "HTTP/1.1 403 Forbidden", "Content-Type: text/plain", "Content-Length: 13",
            "Connection: close", "", "stockade: no\n"))


class PumpTest(unittest.TestCase):
    def test_bytes_go_both_ways_until_the_destination_is_done(self):
        payload = os.urandom(3 * gateway.PUMP_CHUNK + 123)
        server = socket.create_server(("127.0.0.1", 0))
        self.addCleanup(server.close)

        def destination():
            conn, _ = server.accept()
            with conn:
                request = b""
                while not request.endswith(b"!"):
                    request += conn.recv(100)
                conn.sendall(request + payload)

        thread = threading.Thread(target=destination)
        thread.start()
        front_side, client = socket.socketpair()
        upstream = socket.create_connection(server.getsockname())
        for sock in (front_side, client, upstream):
            self.addCleanup(sock.close)
        client.sendall(b"hello!")
        relay = threading.Thread(target=gateway.splice_both, args=(front_side, upstream))
        relay.start()
        received = b""
        while True:
            chunk = client.recv(1 << 16)
            if not chunk:
                break
            received += chunk
        relay.join(5)
        thread.join(5)
        self.assertFalse(relay.is_alive())
        self.assertEqual(received, b"hello!" + payload)


if __name__ == "__main__":
    unittest.main()
