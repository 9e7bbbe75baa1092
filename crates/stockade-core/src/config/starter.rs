//! The commented starter file `stockade config init` writes.

/// A starter configuration: every key, commented out, with what it does.
pub fn starter_file(global: bool) -> String {
    let scope = if global {
        "# stockade global configuration (~/.config/stockade/config.toml).\n\
         # Applies to every project; a project's .stockade/config.toml is applied over it.\n"
    } else {
        "# stockade project configuration (.stockade/config.toml).\n\
         # Applied over ~/.config/stockade/config.toml. Anything that widens the sandbox (mounts\n\
         # outside the project, pass-through variables, ports, sudo…) asks for approval first:\n\
         # see `stockade trust`.\n\
         #\n\
         # extends = false            # ignore the global configuration file\n"
    };
    // Global-only keys shape images every project shares: only the global starter shows them.
    let image = if global {
        "[image]\n\
         # from = \"debian:bookworm-slim\"          # image the foundation is built FROM\n\
         # ca_certificates = [\"/etc/ssl/certs/ca-certificates.crt\"]   # behind a TLS-intercepting proxy\n\
         \n"
    } else {
        ""
    };
    format!(
        "{scope}#\n\
# Every key is optional; uncomment what you need. Reference: docs/configuration.md\n\
# `stockade config show --sources` prints the result and where each value came from.\n\
\n\
{image}\
[sandbox]\n\
# env = [\"GITHUB_TOKEN\", \"RUST_LOG=debug\"]  # NAME passes the host value through; NAME=value sets it\n\
# mounts = [\"~/src/shared-lib:ro\"]          # src[:dst][:ro]; never $HOME itself or /\n\
# ports = [\"8080:80\"]                       # [ip:]host:container[/proto]; ip defaults to 127.0.0.1\n\
# memory = \"8g\"                           # the default; /tmp counts against it\n\
# tmp_size = \"2g\"                         # the /tmp tmpfs (the default)\n\
# cpus = 2\n\
# pids_limit = 1024\n\
# stop_timeout = 10                       # seconds to stop on SIGTERM/SIGHUP before a kill\n\
# detach_keys = \"ctrl-p,ctrl-q\"           # leave `stockade attach` with the sandbox running\n\
# read_only_root = false\n\
# sudo = false                              # true: passwordless sudo, no-new-privileges lifted\n\
# docker_socket = false                     # true gives the sandbox control of the engine\n\
# engine_options = [\"--shm-size=1g\"]        # for experts; see docs/configuration.md\n\
\n\
[network]\n\
# egress = \"allowlist\"                    # the allowed hosts only; or \"open\", or \"none\"\n\
# allow = [\"api.example.com\", \"*.example.org\", \"git.example.com:22\"]   # \"!host\" removes one\n\
# presets = [\"!git-hosts\"]                # the defaults are agent, packages, git-hosts\n\
\n\
[secrets]\n\
# scan = true                               # look for likely secrets before each launch\n\
# allowlist = [\"config/dev.env\"]            # globs relative to the project root\n"
    )
}
