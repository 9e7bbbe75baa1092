//! The built-in agents. Each is a description, not code: adding one is adding an entry here.

use std::collections::BTreeMap;

use super::libc::MuslBuild;
use crate::config::AgentConfig;

pub struct Builtin {
    pub name: &'static str,
    pub install: &'static str,
    pub package: &'static str,
    pub command: &'static str,
    /// The oldest Node.js major the agent is known to run on, when it needs Node.js: `stockade
    /// check` compares it with the runtime's (`[agents.<name>] node`, default
    /// [`DEFAULT_NODE`](super::DEFAULT_NODE)).
    pub min_node: Option<u32>,
    /// Its command is a native program (not a Node.js script): its npm package installs a glibc
    /// build in stockade's Debian helper, so the sandbox image must have a C library of its
    /// own (a bun-compiled binary reads `/proc/self/exe` and cannot be pointed at a C library
    /// of the runtime's): glibc, or musl when [`musl`](Self::musl) names its musl build.
    pub native: bool,
    /// Its musl build (a platform package of its own), for a musl-based image.
    pub musl: Option<MuslBuild>,
    pub config_dirs: &'static [&'static str],
    pub config_files: &'static [&'static str],
    /// The files that hold the agent's login (tokens), relative to HOME: shared by every project
    /// through stockade's logins store, while the rest of the config dirs stays per project.
    pub login_files: &'static [&'static str],
    pub api_keys: &'static [&'static str],
    pub env: &'static [(&'static str, &'static str)],
    /// The flag that skips the agent's own permission prompts (the sandbox is the boundary); on by
    /// default, off with `skip_permissions = false`.
    pub skip_permissions_arg: Option<&'static str>,
    /// Its API and login (OAuth) endpoints: the `agent` egress preset while it runs. Sources in
    /// docs/egress.md.
    pub egress: &'static [&'static str],
}

pub const BUILTIN: &[Builtin] = &[
    Builtin {
        name: "claude",
        install: "npm",
        package: "@anthropic-ai/claude-code",
        command: "claude",
        // The package asks for 22 (its install script runs on Node.js); its command is a native
        // build, glibc's in stockade's Debian helper. Its musl build needs musl's libc alone.
        min_node: Some(22),
        native: true,
        musl: Some(MuslBuild {
            package: "@anthropic-ai/claude-code-linux-{arch}-musl",
            program: "claude",
            libraries: &[],
            alpine: None,
        }),
        config_dirs: &[".claude"],
        config_files: &[".claude.json"],
        login_files: &[".claude/.credentials.json"],
        api_keys: &["ANTHROPIC_API_KEY", "CLAUDE_CODE_OAUTH_TOKEN"],
        env: &[("DISABLE_AUTOUPDATER", "1")],
        skip_permissions_arg: Some("--dangerously-skip-permissions"),
        egress: &[
            // The API (inference, and the OAuth usage and profile calls)
            "api.anthropic.com",
            // Login: claude.ai/claude.com authorize, console/platform exchange the code
            "claude.ai",
            "claude.com",
            "console.anthropic.com",
            "platform.claude.com",
            // Feature flags the CLI reads at start
            "statsig.anthropic.com",
        ],
    },
    Builtin {
        name: "opencode",
        install: "npm",
        package: "opencode-ai",
        command: "opencode",
        min_node: None,
        native: true,
        // Its musl build is linked against libstdc++ and libgcc_s too.
        musl: Some(MuslBuild {
            package: "opencode-linux-{arch}-musl",
            program: "bin/opencode",
            libraries: &["libstdc++.so.6", "libgcc_s.so.1"],
            alpine: Some("apk add libstdc++"),
        }),
        config_dirs: &[".config/opencode", ".local/share/opencode"],
        config_files: &[],
        login_files: &[".local/share/opencode/auth.json"],
        api_keys: &[
            "ANTHROPIC_API_KEY",
            "OPENAI_API_KEY",
            "OPENROUTER_API_KEY",
            "GEMINI_API_KEY",
        ],
        env: &[("OPENCODE_DISABLE_AUTOUPDATE", "1")],
        skip_permissions_arg: None,
        egress: &[
            // The model catalog, opencode's own API (Zen) and the web UI `serve` proxies
            "models.dev",
            "opencode.ai",
            "app.opencode.ai",
            // The providers of its API keys, and their logins
            "api.anthropic.com",
            "console.anthropic.com",
            "claude.ai",
            "api.openai.com",
            "auth.openai.com",
            "chatgpt.com",
            "openrouter.ai",
            "generativelanguage.googleapis.com",
        ],
    },
    Builtin {
        name: "codex",
        install: "npm",
        package: "@openai/codex",
        command: "codex",
        // Its command is a Node.js script (which runs a static musl build); the package asks for
        // node >= 16.
        min_node: Some(16),
        native: false,
        musl: None,
        config_dirs: &[".codex"],
        config_files: &[],
        login_files: &[".codex/auth.json"],
        api_keys: &["OPENAI_API_KEY", "CODEX_API_KEY"],
        env: &[],
        skip_permissions_arg: None,
        egress: &[
            // The API (API keys) and the ChatGPT backend (a ChatGPT login)
            "api.openai.com",
            "chatgpt.com",
            // Login: OAuth and device codes
            "auth.openai.com",
        ],
    },
    Builtin {
        name: "gemini",
        install: "npm",
        package: "@google/gemini-cli",
        command: "gemini",
        // Gemini CLI needs Node.js 20 or newer.
        min_node: Some(20),
        native: false,
        musl: None,
        config_dirs: &[".gemini"],
        config_files: &[],
        login_files: &[".gemini/oauth_creds.json", ".gemini/google_accounts.json"],
        api_keys: &["GEMINI_API_KEY", "GOOGLE_API_KEY"],
        env: &[],
        skip_permissions_arg: None,
        egress: &[
            // The Gemini API (API keys) and Code Assist (a Google login)
            "generativelanguage.googleapis.com",
            "cloudcode-pa.googleapis.com",
            // Login: Google OAuth, the token exchange and the user's profile
            "accounts.google.com",
            "oauth2.googleapis.com",
            "www.googleapis.com",
        ],
    },
];

impl Builtin {
    pub fn to_config(&self) -> AgentConfig {
        let strings = |list: &[&str]| Some(list.iter().map(|s| (*s).to_owned()).collect());
        AgentConfig {
            install: Some(self.install.to_owned()),
            package: Some(self.package.to_owned()),
            command: Some(self.command.to_owned()),
            version: None,
            node: None,
            config_dirs: strings(self.config_dirs),
            config_files: strings(self.config_files),
            api_keys: strings(self.api_keys),
            args: None,
            env: Some(
                self.env
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect::<BTreeMap<_, _>>(),
            ),
            isolate: None,
            login_files: strings(self.login_files),
            share_config: None,
            skip_permissions: None,
            egress: strings(self.egress),
        }
    }
}
