//! Egress control against the real engine (docs/egress.md): the default allowlist through the
//! gateway, a refused host's 403 and its denial, and the ways around the gateway an agent would
//! try: no proxy, its own DNS, raw IPs, a name that resolves to a private address, an SNI that
//! differs from the CONNECT host, another sandbox, the host's bridge. Hosts reached: the package
//! registries (allowed); every other destination is a container or address this test made, and
//! a refused one is never connected to.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

mod common;

use std::time::Duration;

use common::{Env, docker, docker_stdout, poll};
use serde_json::Value;

/// The gateway container of the test namespace.
fn gateway(env: &Env) -> String {
    format!("{}-stockade-gateway", env.namespace)
}

/// The denials the gateway logged for sandboxes of this project.
fn denials(env: &Env) -> Vec<Value> {
    let log = docker(&[
        "exec",
        &gateway(env),
        "cat",
        "/run/stockade-gateway/log/denials.jsonl",
    ]);
    String::from_utf8_lossy(&log.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|d| d["project"] == env.project.display().to_string())
        .collect()
}

/// Run `script` in a sandbox of `env` and return what it printed (it must succeed).
fn inside(env: &Env, args: &[&str], script: &str) -> String {
    let mut all = vec!["exec"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--", "sh", "-c", script]);
    let run = env.run(&all);
    assert!(run.ok(), "{}\n{}", run.stdout(), run.stderr());
    run.stdout()
}

#[test]
fn the_default_allowlist_reaches_the_registries_and_refuses_the_rest_with_a_403() {
    let env = Env::new();
    let out = inside(
        &env,
        &[],
        r#"
        curl -sS -o /dev/null -w 'npm %{http_code}\n' https://registry.npmjs.org/react
        python3 -c 'import urllib.request; print("python", urllib.request.urlopen("https://registry.npmjs.org/react").status)' 2>&1
        python3 -m venv /tmp/venv && /tmp/venv/bin/pip download --quiet --no-deps --dest /tmp/dl six==1.16.0 2>&1 && ls /tmp/dl | sed 's/^/pip /'
        curl -sS -o /dev/null -w 'example %{http_code}\n' http://example.com/ 2>&1
        grep -E '^CapEff' /proc/self/status
        "#,
    );
    insta::assert_snapshot!(out, @r"
    npm 200
    python 200
    pip six-1.16.0-py2.py3-none-any.whl
    example 403
    CapEff:	0000000000000000
    ");
    let refused: Vec<(String, String)> = denials(&env)
        .iter()
        .map(|d| (d["host"].to_string(), d["reason"].to_string()))
        .collect();
    assert_eq!(
        refused,
        [(r#""example.com""#.to_owned(), r#""not-allowed""#.to_owned())]
    );
}

#[test]
fn a_host_outside_a_narrowed_list_gets_a_403_and_is_logged_with_its_sandbox() {
    let env = Env::new();
    // The project narrows the defaults (no approval needed): no git hosts, no PyPI.
    env.write(
        ".stockade/config.toml",
        "[network]\npresets = [\"!git-hosts\"]\nallow = [\"!pypi.org\", \"!files.pythonhosted.org\"]\n",
    );
    let out = inside(
        &env,
        &["--name", "narrow"],
        r#"
        curl -sS -o /dev/null -w 'npm %{http_code}\n' https://registry.npmjs.org/react
        curl -sS -o /dev/null -w 'pypi %{http_connect}\n' https://pypi.org/simple/six/ 2>&1
        curl -sS -w ' %{http_code}\n' http://pypi.org/simple/six/
        "#,
    );
    insta::assert_snapshot!(out, @r"
    npm 200
    curl: (56) CONNECT tunnel failed, response 403
    pypi 403
    stockade: egress to pypi.org:80 is not allowed for this sandbox. Allow it on the host with `stockade net allow pypi.org`
     403
    ");
    let logged: Vec<String> = denials(&env)
        .iter()
        .map(|d| {
            format!(
                "{} {} {} {}",
                d["session"].as_str().unwrap(),
                d["host"].as_str().unwrap(),
                d["port"],
                d["reason"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        logged,
        [
            "narrow pypi.org 443 not-allowed",
            "narrow pypi.org 80 not-allowed"
        ]
    );
}

#[test]
fn there_is_no_way_around_the_gateway() {
    let env = Env::new();
    // An allowed name the gateway resolves to a private address (a hosts entry on the
    // gateway's side, as a DNS answer could give).
    let private_name = format!("private-{}.stockade.test", std::process::id());
    env.write(
        ".stockade/config.toml",
        &format!("[network]\nallow = [\"{private_name}\"]\n"),
    );
    // Another project's sandbox, serving HTTP on its own network.
    let other = Env::new();
    let started = other.run(&[
        "exec",
        "-d",
        "--name",
        "server",
        "--",
        "python3",
        "-m",
        "http.server",
        "8000",
    ]);
    assert!(started.ok(), "{}", started.stderr());
    // It joined its project network's holder: the holder's address is the sandbox's.
    let other_holder = format!(
        "{}-stockade-egress-{}-holder",
        other.namespace,
        common::project_id(&other.project)
    );
    let other_ip = docker_stdout(&[
        "inspect",
        "--format",
        "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
        &other_holder,
    ]);
    assert!(!other_ip.is_empty());
    // The first sandbox must run (and so the gateway) before its hosts file can be edited.
    inside(&env, &["--trust"], "true");
    let hosts = docker(&[
        "exec",
        "-u",
        "0",
        &gateway(&env),
        "sh",
        "-c",
        &format!("echo '10.123.45.67 {private_name}' >> /etc/hosts"),
    ]);
    assert!(hosts.status.success());
    // A service of the host, listening on every address: reachable at docker0's address
    // from the host, and from the project network's first address were the host on it.
    let bridge = docker_stdout(&[
        "network",
        "inspect",
        "bridge",
        "--format",
        "{{(index .IPAM.Config 0).Gateway}}",
    ]);
    let subnet = docker_stdout(&[
        "network",
        "inspect",
        &format!(
            "{}-stockade-egress-{}",
            env.namespace,
            common::project_id(&env.project)
        ),
        "--format",
        "{{(index .IPAM.Config 0).Subnet}}",
    ]);
    let network_first = subnet
        .split('/')
        .next()
        .unwrap()
        .rsplit_once('.')
        .map(|(net, _)| format!("{net}.1"))
        .unwrap();
    let host_port = 40000 + (std::process::id() % 20000) as u16;
    let mut host_service = std::process::Command::new("python3")
        .args([
            "-m",
            "http.server",
            &host_port.to_string(),
            "--bind",
            "0.0.0.0",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let host_url = format!("http://{bridge}:{host_port}/");
    let listening = poll(Duration::from_secs(10), || {
        let out = std::process::Command::new("curl")
            .args([
                "-sS",
                "-m",
                "1",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                &host_url,
            ])
            .output()
            .ok()?;
        (out.stdout == b"200").then_some(())
    });
    assert!(listening.is_some(), "the host service never answered");
    let script = format!(
        r#"
        say() {{ if "$@" >/dev/null 2>&1; then echo reached; else echo refused; fi; }}
        echo "no proxy: $(say curl -sS -m 5 --noproxy '*' https://registry.npmjs.org/)"
        echo "own DNS: $(say getent hosts registry.npmjs.org)"
        echo "raw IP: $(curl -sS -m 5 -o /dev/null -w '%{{http_connect}}' https://1.1.1.1/ 2>/dev/null)"
        echo "private name: $(curl -sS -m 5 -o /dev/null -w '%{{http_connect}}' https://{private_name}/ 2>/dev/null)"
        echo "private name over HTTP: $(curl -sS -m 5 -o /dev/null -w '%{{http_code}}' http://{private_name}/ 2>/dev/null)"
        echo "SNI differs: $(say curl -sS -m 5 --connect-to pypi.org:443:registry.npmjs.org:443 https://pypi.org/)"
        echo "other sandbox direct: $(say curl -sS -m 5 --noproxy '*' http://{other_ip}:8000/)"
        echo "other sandbox by proxy: $(curl -sS -m 5 -o /dev/null -w '%{{http_code}}' http://{other_ip}:8000/ 2>/dev/null)"
        echo "host bridge: $(say curl -sS -m 5 --noproxy '*' http://{bridge}:{host_port}/)"
        echo "host on the network: $(say curl -sS -m 5 --noproxy '*' http://{network_first}:{host_port}/)"
        echo "IPv6: $(cat /proc/sys/net/ipv6/conf/all/disable_ipv6)"
        echo "cache manager: $(python3 -c "$MANAGER")"
        "#
    );
    // squid's cache manager, asked with the sandbox's own credentials for a host it may reach:
    // it would list the other sandboxes' connections.
    let manager = r#"
import base64, os, socket, urllib.parse
proxy = urllib.parse.urlsplit(os.environ["HTTPS_PROXY"])
login = base64.b64encode(f"{proxy.username}:{proxy.password}".encode()).decode()
s = socket.create_connection((proxy.hostname, proxy.port))
s.sendall(f"GET cache_object://registry.npmjs.org:443/menu HTTP/1.0\r\nProxy-Authorization: Basic {login}\r\n\r\n".encode())
print(s.recv(200).split(b"\r\n")[0].decode())
"#;
    let out = inside(
        &env,
        &["--trust", "-e", &format!("MANAGER={manager}")],
        &script,
    );
    let _ = host_service.kill();
    let _ = host_service.wait();
    insta::assert_snapshot!(out, @r"
    no proxy: refused
    own DNS: refused
    raw IP: 403
    private name: 403
    private name over HTTP: 403
    SNI differs: refused
    other sandbox direct: refused
    other sandbox by proxy: 403
    host bridge: refused
    host on the network: refused
    IPv6: 1
    cache manager: HTTP/1.1 403 Forbidden
    ");
    let mut reasons: Vec<String> = denials(&env)
        .iter()
        .map(|d| {
            format!(
                "{} {}",
                d["host"].as_str().unwrap(),
                d["reason"].as_str().unwrap()
            )
        })
        .collect();
    reasons.sort();
    let mut expected = vec![
        "1.1.1.1 raw-ip".to_owned(),
        format!("{private_name} private-address"),
        format!("{private_name} private-address"),
        "registry.npmjs.org sni-mismatch".to_owned(),
        format!("{other_ip} private-address"),
    ];
    expected.sort();
    assert_eq!(reasons, expected);
    other.run(&["stop", "server"]).expect_code(0);
}

#[test]
fn published_ports_answer_on_loopback_under_the_allowlist() {
    let env = Env::new();
    let port = 20000 + (std::process::id() % 20000) as u16;
    let publish = format!("{port}:8080");
    let started = env.run(&[
        "exec",
        "-d",
        "--name",
        "web",
        "-p",
        &publish,
        "--",
        "python3",
        "-m",
        "http.server",
        "8080",
    ]);
    assert!(started.ok(), "{}", started.stderr());
    let url = format!("http://127.0.0.1:{port}/");
    let answered = poll(Duration::from_secs(30), || {
        let out = std::process::Command::new("curl")
            .args([
                "-sS",
                "-m",
                "2",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                &url,
            ])
            .output()
            .ok()?;
        (out.stdout == b"200").then_some(())
    });
    assert!(answered.is_some(), "the published port never answered");
    let ps = env.run(&["ps", "--json"]);
    let listed: Value = serde_json::from_str(&ps.stdout()).unwrap();
    assert_eq!(
        listed[0]["ports"],
        serde_json::json!([format!("127.0.0.1:{port}->8080/tcp")])
    );
    env.run(&["stop", "web"]).expect_code(0);
    // The forwarder goes with its sandbox.
    let forwarder = format!(
        "{}-stockade-project-{}-web-ports",
        env.namespace,
        &common::project_id(&env.project)[..6]
    );
    assert_eq!(
        docker_stdout(&["ps", "-a", "-q", "--filter", &format!("name=^{forwarder}$")]),
        ""
    );
}

#[test]
fn a_project_that_widens_the_list_is_refused_until_trusted() {
    let env = Env::new();
    env.write(
        ".stockade/config.toml",
        "[network]\nallow = [\"example.org\"]\npresets = [\"agent\"]\negress = \"open\"\n",
    );
    let run = env.run(&["exec", "--", "true"]);
    run.expect_code(1);
    let settings = common::snapshot_settings(&env);
    settings.bind(|| {
        insta::assert_snapshot!(run.stderr(), @r#"
        The project configuration of [ROOT]/project adds to the sandbox:
          - allows egress to example.org ([ROOT]/project/.stockade/config.toml:2:10)
          - adds the egress preset agent ([ROOT]/project/.stockade/config.toml:3:12)
          - loosens network.egress to "open" (your configuration and the defaults give "allowlist") ([ROOT]/project/.stockade/config.toml:4:10)
          x this project's .stockade configuration is new or changed and not approved
          help: review it, then run `stockade trust` (or pass --trust for this run only)
        "#);
    });
    env.run(&["exec", "--trust", "--", "true"]).expect_code(0);
}

#[test]
fn the_allowlist_holds_or_refuses_to_start() {
    let env = Env::new();
    let run = env.run(&[
        "exec",
        "--egress",
        "allowlist",
        "--",
        "sh",
        "-c",
        "echo $STOCKADE_EGRESS",
    ]);
    if common::engine_is_podman() {
        // Podman's internal networks carry nothing between containers here: the sandbox does
        // not start rather than run open.
        run.expect_code(1);
        insta::assert_snapshot!(run.stderr(), @r"
        x the egress allowlist does not work on Podman yet: Podman 4.3's internal networks carry no traffic between containers, so a sandbox cannot reach the gateway
        help: choose for yourself: `--egress open` (anywhere) or `--egress none` (no network), or set `[network] egress` in your global configuration (docs/podman.md)
        ");
        assert!(env.containers().is_empty());
    } else {
        run.expect_code(0);
        assert_eq!(run.stdout(), "allowlist\n");
    }
}

#[test]
fn ssh_reaches_an_allowed_host_port_through_the_gateway_and_no_other() {
    // A namespace of its own: `allow_private` (global only) shapes its gateway.
    let env = Env::layered("ssh");
    // An SSH-speaking server on the engine's bridge (a banner is all ssh needs to show it got
    // through), at a private address: allowed by address and port.
    let (ip, _server) = server_on_the_bridge(
        &env,
        "sshd",
        "import socket\ns=socket.socket()\ns.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n\
         s.bind(('0.0.0.0', 2222))\ns.listen()\nwhile True:\n    c, _ = s.accept()\n    \
         c.sendall(b'SSH-2.0-stockade_test\\r\\n')\n    c.close()\n",
        2222,
    );
    let out = inside(
        &env,
        &[],
        &format!(
            "ssh -v -o BatchMode=yes -o StrictHostKeyChecking=no -o ConnectTimeout=10 -p 2222 \
             git@{ip} true 2>&1 | grep -o 'remote software version stockade_test'; \
             ssh -o BatchMode=yes -o ConnectTimeout=10 -p 2223 git@{ip} true 2>&1 | head -1"
        ),
    );
    insta::assert_snapshot!(out.replace(&ip, "[IP]"), @r"
    remote software version stockade_test
    stockade: the egress gateway refused [IP]:2223 (HTTP/1.1 403 Forbidden): stockade: [IP] is a private address: list `[IP]:2223` in `[network] allow_private` of your global configuration
    ");
}

/// A file server on the engine's bridge that answers `/big` with 20 MB ("stockade\n" 2222222
/// times) and anything else with the request it received, head and body, as its body.
const ECHO_SERVER: &str = r#"
import socketserver
class Echo(socketserver.StreamRequestHandler):
    def handle(self):
        head = b""
        while not head.endswith(b"\r\n\r\n"):
            line = self.rfile.readline()
            if not line:
                return
            head += line
        length = [int(l.split(b":")[1]) for l in head.split(b"\r\n") if l.lower().startswith(b"content-length:")]
        body = self.rfile.read(length[0]) if length else b""
        if head.startswith(b"GET /big "):
            self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Length: 19999998\r\n\r\n")
            for _ in range(2222):
                self.wfile.write(b"stockade\n" * 1000)
            self.wfile.write(b"stockade\n" * 222)
        else:
            answer = head + body
            self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(answer) + answer)
socketserver.ThreadingTCPServer.allow_reuse_address = True
socketserver.ThreadingTCPServer(("", 8000), Echo).serve_forever()
"#;

#[test]
fn plain_http_reaches_an_allowed_destination_without_the_proxy_credentials() {
    // A namespace of its own: `allow_private` (global only) shapes its gateway.
    let env = Env::layered("plain");
    let (ip, _server) = server_on_the_bridge(&env, "echo", ECHO_SERVER, 8000);
    // The sandbox's HTTP_PROXY is the gateway's plain-HTTP front: what the destination gets
    // is the request in origin form, with the Host of the URL and without the proxy's headers
    // (the credentials among them); one request per connection.
    let out = inside(
        &env,
        &[],
        &format!(
            r#"
            P=http://{ip}:8000
            until curl -sf -o /dev/null $P/ready; do sleep 0.2; done
            curl -sS $P/big | uniq -c
            curl -sS -H 'X-Trace: 1' -H 'Host: elsewhere.example' -H 'Proxy-Connection: x' --data-binary 'body!' "$P/echo?q=1"
            echo
            curl -sS -o /dev/null -o /dev/null -w 'reused %{{http_code}}\n' $P/a $P/b
            curl -sS -o /dev/null -w 'no credentials %{{http_code}}\n' --proxy http://stockade-gateway:3130 $P/
            curl -sS -o /dev/null -w 'wrong credentials %{{http_code}}\n' --proxy http://x:y@stockade-gateway:3130 $P/
            curl -sS -w ' %{{http_code}}\n' http://{ip}:8001/
            curl -sS -w ' %{{http_code}}\n' http://1.1.1.1/
            curl -sS -o /dev/null -w 'CONNECT on the front %{{http_code}}\n' --proxy "$HTTP_PROXY" https://registry.npmjs.org/react
            "#
        ),
    );
    let denials: Vec<String> = denials(&env)
        .iter()
        .map(|d| {
            format!(
                "{} {} {}",
                d["host"].as_str().unwrap(),
                d["port"],
                d["reason"].as_str().unwrap()
            )
        })
        .collect();
    let mut settings = insta::Settings::clone_current();
    settings.add_filter(r"curl/[0-9.]+", "curl/[VERSION]");
    settings.add_filter(&common::regex_escape(&ip), "[IP]");
    settings.bind(|| {
        insta::assert_snapshot!(out.replace('\r', ""), @r"
        2222222 stockade
        POST /echo?q=1 HTTP/1.1
        Host: [IP]:8000
        User-Agent: curl/[VERSION]
        Accept: */*
        X-Trace: 1
        Content-Length: 5
        Content-Type: application/x-www-form-urlencoded
        Connection: close

        body!
        reused 200
        reused 200
        no credentials 407
        wrong credentials 407
        stockade: [IP] is a private address: list `[IP]:8001` in `[network] allow_private` of your global configuration
         403
        stockade: a connection to the IP address 1.1.1.1 is refused: name the host instead, or allow the address with `stockade net allow 1.1.1.1`
         403
        CONNECT on the front 200
        ");
        insta::assert_snapshot!(denials.join("\n"), @r"
        [IP] 8001 private-address
        1.1.1.1 80 raw-ip
        ");
    });
}

/// A Python server (`script`) in a container on the engine's bridge, at a private address that
/// the global configuration of `env` allows on `port` (`allow_private`, global only: the
/// environment has a namespace, and so a gateway, of its own). Returns its address and the
/// guard that removes it when the test ends, passed or not.
fn server_on_the_bridge(env: &Env, name: &str, script: &str, port: u16) -> (String, Removed) {
    let name = format!("{}-{name}", env.namespace);
    let _ = docker(&["rm", "-f", &name]);
    let removed = Removed(name.clone());
    let started = docker(&[
        "run",
        "-d",
        "--name",
        &name,
        "--entrypoint",
        "python3",
        &env.foundation_tag(),
        "-c",
        script,
    ]);
    assert!(
        started.status.success(),
        "{}",
        String::from_utf8_lossy(&started.stderr)
    );
    let ip = docker_stdout(&[
        "inspect",
        "--format",
        "{{.NetworkSettings.IPAddress}}",
        &name,
    ]);
    env.write_global_config(&format!(
        "{}\n[network]\nallow_private = [\"{ip}:{port}\"]\n",
        common::default_config(&common::base_image())
    ));
    (ip, removed)
}

/// A container of the test's own, removed when the test ends (passed or not).
struct Removed(String);

impl Drop for Removed {
    fn drop(&mut self) {
        let _ = docker(&["rm", "-f", &self.0]);
    }
}
