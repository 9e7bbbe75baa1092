use std::path::Path;

use proptest::prelude::*;

use super::*;

fn places() -> Places<'static> {
    Places {
        project_root: Path::new("/work/app"),
        home: Path::new("/home/ada"),
    }
}

fn parse_str(text: &str) -> Result<Layer, Vec<InvalidConfig>> {
    let mut errors = Vec::new();
    let layer = parse_file(
        Path::new("/cfg/config.toml"),
        text,
        Scope::Global,
        places(),
        &mut errors,
    );
    if errors.is_empty() {
        Ok(layer)
    } else {
        Err(errors)
    }
}

fn errors(text: &str) -> Vec<InvalidConfig> {
    match parse_str(text) {
        Err(errors) => errors,
        Ok(layer) => panic!("expected an invalid config, got {layer:?}"),
    }
}

fn first_error(text: &str) -> InvalidConfig {
    errors(text).remove(0)
}

/// Each error's line, column and message.
fn messages(errors: &[InvalidConfig]) -> Vec<(usize, usize, &str)> {
    errors
        .iter()
        .map(|e| (e.line, e.column, e.message.as_str()))
        .collect()
}

fn values(layer: &Layer, key: &str) -> Vec<String> {
    layer
        .settings
        .iter()
        .filter(|s| s.key.path() == key)
        .map(|s| s.value.to_string())
        .collect()
}

#[test]
fn empty_file_is_valid() {
    let layer = parse_str("").unwrap();
    assert!(layer.settings.is_empty());
}

#[test]
fn reads_known_keys() {
    let layer = parse_str(
        "[image]\nfrom = \"mirror/debian:12\"\n[sandbox]\nenv = [\"FOO\", \"_BAR2\", \"X=1=2\"]\nmemory = \"2g\"\ncpus = 1.5\npids_limit = 256\nnetwork = \"none\"\nports = [\"8080:80\", \"0.0.0.0:53:53/udp\", \"[::1]:9000:9000\"]\nsudo = true\n",
    )
    .unwrap();
    assert_eq!(values(&layer, "image.from"), ["\"mirror/debian:12\""]);
    assert_eq!(
        values(&layer, "sandbox.env"),
        ["\"FOO\"", "\"_BAR2\"", "\"X=…\""]
    );
    assert_eq!(values(&layer, "sandbox.memory"), ["\"2g\""]);
    assert_eq!(values(&layer, "sandbox.cpus"), ["1.5"]);
    assert_eq!(values(&layer, "sandbox.pids_limit"), ["256"]);
    assert_eq!(values(&layer, "sandbox.network"), ["\"none\""]);
    assert_eq!(
        values(&layer, "sandbox.ports"),
        [
            "\"127.0.0.1:8080:80/tcp\"",
            "\"0.0.0.0:53:53/udp\"",
            "\"[::1]:9000:9000/tcp\""
        ]
    );
}

#[test]
fn unknown_key_points_at_line_and_column_and_suggests() {
    let err = first_error("[image]\nfrom = \"x\"\n  form = 1\n");
    assert_eq!((err.line, err.column), (3, 3));
    assert!(
        err.message.contains("unknown key `form`"),
        "{}",
        err.message
    );
    assert_eq!(err.help.as_deref(), Some("did you mean `from`?"));
    assert!(err.to_string().starts_with("/cfg/config.toml:3:3: "));
}

#[test]
fn unknown_section_suggests() {
    let err = first_error("[sandbx]\nsudo = true\n");
    assert_eq!((err.line, err.column), (1, 2));
    assert_eq!(err.help.as_deref(), Some("did you mean `sandbox`?"));
}

#[test]
fn wrong_types_are_errors() {
    let errs = errors("[sandbox]\nenv = \"FOO\"\nsudo = \"maybe\"\nmemory = true\n");
    let at: Vec<_> = errs.iter().map(|e| (e.line, e.column)).collect();
    assert_eq!(at, vec![(2, 7), (3, 8), (4, 10)]);
    assert_eq!(
        errs[0].message,
        "`sandbox.env`: expected a list of strings, found a string"
    );
}

#[test]
fn file_values_are_never_coerced() {
    let errs = errors(
        "[sandbox]
sudo = \"yes\"
read_only_root = \"no\"
pids_limit = \"24\"
cpus = \"2\"
network = 1
env = [1, \"OK\", [\"A\"]]
[secrets]
scan = 0
",
    );
    assert_eq!(
        messages(&errs),
        [
            (2, 8, "`sandbox.sudo`: expected a boolean, found a string"),
            (
                3,
                18,
                "`sandbox.read_only_root`: expected a boolean, found a string"
            ),
            (
                4,
                14,
                "`sandbox.pids_limit`: expected an integer, found a string"
            ),
            (5, 8, "`sandbox.cpus`: expected a number, found a string"),
            (
                6,
                11,
                "`sandbox.network`: expected a string, found an integer"
            ),
            (7, 8, "`sandbox.env`: expected a string, found an integer"),
            (7, 17, "`sandbox.env`: expected a string, found an array"),
            (9, 8, "`secrets.scan`: expected a boolean, found an integer"),
        ]
    );
    assert_eq!(
        errs[0].help.as_deref(),
        Some("write true or false, without quotes")
    );
    // What the documentation allows stays allowed: sizes as strings or integers of bytes.
    let layer = parse_str(
        "[sandbox]
memory = 1073741824
tmp_size = \"512m\"
",
    )
    .unwrap();
    assert_eq!(values(&layer, "sandbox.memory"), ["\"1g\""]);
}

#[test]
fn variables_and_flags_are_read_as_the_type_is_written() {
    let f = Fixture::new("", "");
    let load = |env: &[(&str, &str)], flag: &str, value: &str| {
        let key = flag.trim_start_matches("--").replace('-', "_");
        f.loader(env, &[(flag, &format!("sandbox.{key}"), value)])
            .load()
    };
    let resolved = load(
        &[
            ("STOCKADE_SANDBOX_SUDO", "true"),
            ("STOCKADE_SANDBOX_PIDS_LIMIT", "64"),
        ],
        "--read-only-root",
        "true",
    )
    .unwrap();
    assert!(resolved.config.sandbox.sudo);
    assert!(resolved.config.sandbox.read_only_root);
    assert_eq!(resolved.config.sandbox.pids_limit, 64);
    let err = load(
        &[
            ("STOCKADE_SANDBOX_SUDO", "yes"),
            ("STOCKADE_SECRETS_SCAN", "0"),
        ],
        "--sudo",
        "on",
    )
    .unwrap_err();
    let ConfigError::Invalid { errors } = err else {
        panic!("{err:?}");
    };
    let got: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert_eq!(
        got,
        [
            "$STOCKADE_SANDBOX_SUDO:1:1: `sandbox.sudo`: expected true or false, found \"yes\"",
            "$STOCKADE_SECRETS_SCAN:1:1: `secrets.scan`: expected true or false, found \"0\"",
            "--sudo:1:1: `sandbox.sudo`: expected true or false, found \"on\"",
        ]
    );
}

#[test]
fn tools_and_agents_errors_come_with_the_others_all_of_them() {
    let text = r#"[sandbox]
sudo = "yes"
memroy = "2g"

[tools]
version_cache_hours = "24"
version_cache_hour = 1

[agents.moo]
install = "npm"
pakage = "cowsay"
version = 2
args = ["--x", 3]
skip_permissions = "no"
env = { A = 1 }

[agents.cow]
install = "cargo"
"#;
    let errs = errors(text);
    let got: Vec<(usize, usize, &str, Option<&str>)> = errs
        .iter()
        .map(|e| (e.line, e.column, e.message.as_str(), e.help.as_deref()))
        .collect();
    assert_eq!(
        got,
        [
            (
                2,
                8,
                "`sandbox.sudo`: expected a boolean, found a string",
                Some("write true or false, without quotes")
            ),
            (
                3,
                1,
                "unknown key `memroy` in [sandbox]",
                Some("did you mean `memory`?")
            ),
            (
                6,
                23,
                "`tools.version_cache_hours`: expected an integer, found a string",
                Some("write an integer without quotes, e.g. 24")
            ),
            (
                7,
                1,
                "unknown key `version_cache_hour` in [tools]",
                Some("did you mean `version_cache_hours`?")
            ),
            (
                11,
                1,
                "unknown key `pakage` in [agents.moo]",
                Some("did you mean `package`?")
            ),
            (
                12,
                11,
                "`agents.moo.version`: expected a string, found an integer",
                Some("put the value in double quotes")
            ),
            (
                13,
                16,
                "`agents.moo.args`: expected a string, found an integer",
                Some("put the value in double quotes")
            ),
            (
                14,
                20,
                "`agents.moo.skip_permissions`: expected a boolean, found a string",
                Some("write true or false, without quotes")
            ),
            (
                15,
                13,
                "`agents.moo.env`: expected a string, found an integer",
                Some("put the value in double quotes")
            ),
            (
                18,
                11,
                "unknown install kind \"cargo\"",
                Some("use one of: npm, pypi")
            ),
        ],
        "{errs:#?}"
    );
    for e in &errs {
        assert!(!e.message.contains("invalid type"), "{e}");
    }
}

#[test]
fn sections_that_are_not_tables_are_errors() {
    let errs = errors(
        "tools = 3
agents = { moo = \"npm\" }
sandbox = []
",
    );
    let got: Vec<&str> = errs.iter().map(|e| e.message.as_str()).collect();
    assert_eq!(
        got,
        [
            "`tools` must be a table, found an integer",
            "`agents.moo` must be a table, found a string",
            "`sandbox` must be a table, found an array",
        ]
    );
}

#[test]
fn every_layer_s_errors_come_together_in_layer_order() {
    let f = Fixture::new(
        "[tools]
version_cache_hours = -1
[sandbox]
cpus = true
",
        "[agents.moo]
comand = \"x\"
[sandbx]
",
    );
    let err = f
        .loader(
            &[("STOCKADE_SANDBOX_MEMROY", "2g")],
            &[("--network", "sandbox.network", "host")],
        )
        .load()
        .unwrap_err();
    let ConfigError::Invalid { errors } = err else {
        panic!("{err:?}");
    };
    let got: Vec<(String, usize, Option<&str>)> = errors
        .iter()
        .map(|e| {
            let file = e.path.file_name().unwrap().to_string_lossy().into_owned();
            (file, e.line, e.help.as_deref())
        })
        .collect();
    assert_eq!(
        got,
        [
            (
                "global.toml".to_owned(),
                2,
                Some("0 asks for the latest version every time")
            ),
            (
                "global.toml".to_owned(),
                4,
                Some("write a number without quotes, e.g. 2 or 1.5")
            ),
            (
                "config.toml".to_owned(),
                1,
                Some(
                    "a custom agent needs `install = \"npm\"` (or \"pypi\") and `package` (see docs/agents.md)"
                )
            ),
            ("config.toml".to_owned(), 2, Some("did you mean `command`?")),
            ("config.toml".to_owned(), 3, Some("did you mean `sandbox`?")),
            (
                "$STOCKADE_SANDBOX_MEMROY".to_owned(),
                1,
                Some("did you mean STOCKADE_SANDBOX_MEMORY?")
            ),
            (
                "--network".to_owned(),
                1,
                Some(
                    "`bridge` (anywhere) or `none` (no network at all); `network` is the old name of [network] egress, which also has \"allowlist\""
                )
            ),
        ],
        "{errors:#?}"
    );
}

#[test]
fn json_follows_the_toml_layout() {
    let config = load_global(
        "[tools]
version_cache_hours = 6
",
    )
    .unwrap();
    let json = serde_json::to_value(&config).unwrap();
    assert_eq!(json["tools"]["version_cache_hours"], 6);
    assert!(json.get("version_cache_hours").is_none(), "{json}");
}

#[test]
fn syntax_errors_are_all_reported() {
    let errs = errors("[image\nfrom = \"x\"\n[sandbox]\nenv = [\n");
    assert!(errs.len() >= 2, "{errs:?}");
    assert_eq!(errs[0].line, 1);
}

#[test]
fn all_problems_of_a_file_are_reported_at_once() {
    let errs = errors(
        "[image]\nfrom = \"a b\"\nca_certificates = [\"/nonexistent/ca.pem\"]\ncolour = 1\n[sandbox]\nenv = [\"OK\", \"NOT-OK\", \"1X\"]\nports = [\"80\"]\nmounts = [\"/nonexistent/dir\"]\nnetwork = \"host\"\n",
    );
    let mut at: Vec<_> = errs.iter().map(|e| (e.line, e.column)).collect();
    at.sort();
    assert_eq!(
        at,
        vec![
            (2, 8),
            (3, 20),
            (4, 1),
            (6, 14),
            (6, 24),
            (7, 10),
            (8, 11),
            (9, 11)
        ]
    );
}

#[test]
fn refused_mounts() {
    let home = tempfile::tempdir().unwrap();
    let home = home.path().canonicalize().unwrap();
    std::fs::create_dir_all(home.join(".ssh")).unwrap();
    std::fs::create_dir_all(home.join("src")).unwrap();
    let places = Places {
        project_root: &home,
        home: &home,
    };
    let check = |text: &str| {
        let mut errors = Vec::new();
        // Relative sources in the global file start at its own directory.
        let layer = parse_file(
            &home.join("c.toml"),
            text,
            Scope::Global,
            places,
            &mut errors,
        );
        (layer, errors)
    };
    for bad in ["~", "/", "~/..", "/var/run/docker.sock"] {
        let (_, errs) = check(&format!("[sandbox]\nmounts = [\"{bad}\"]\n"));
        assert_eq!(errs.len(), 1, "{bad}: {errs:?}");
    }
    let (_, errs) = check("[sandbox]\nmounts = [\"~\"]\n");
    assert!(
        errs[0].message.contains("home directory"),
        "{}",
        errs[0].message
    );
    let (layer, errs) = check("[sandbox]\nmounts = [\"~/src:/src:ro\", \"src\"]\n");
    assert!(errs.is_empty(), "{errs:?}");
    assert_eq!(
        values(&layer, "sandbox.mounts"),
        [
            format!("\"{}:/src:ro\"", home.join("src").display()),
            format!("\"{0}:{0}\"", home.join("src").display()),
        ]
    );
}

#[test]
fn engine_options_are_validated() {
    let errs = errors(
        "[sandbox]\nengine_options = [\"--shm-size=1g\", \"--privileged\", \"--cap-add=ALL\", \"--shm-szie=1g\", \"--ulimit=nofile=1024:4096\"]\n",
    );
    assert_eq!(errs.len(), 3, "{errs:?}");
    assert!(
        errs[2]
            .help
            .as_deref()
            .unwrap_or("")
            .contains("did you mean --shm-size")
    );
}

#[test]
fn ca_paths_resolve_against_the_file_and_home() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("corp.pem"), "PEM").unwrap();
    let home = tempfile::tempdir().unwrap();
    std::fs::write(home.path().join("home.pem"), "PEM").unwrap();
    let path = dir.path().join("config.toml");
    std::fs::write(
        &path,
        "[image]\nca_certificates = [\"corp.pem\", \"~/home.pem\"]\n",
    )
    .unwrap();
    let config = Config::load(
        &path,
        Path::new("/nonexistent/.stockade/c.toml"),
        home.path(),
    )
    .unwrap();
    assert_eq!(
        config.image.ca_certificates,
        vec![dir.path().join("corp.pem"), home.path().join("home.pem")]
    );
}

struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new(global: &str, project: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("project/.stockade")).unwrap();
        std::fs::write(dir.path().join("global.toml"), global).unwrap();
        std::fs::write(dir.path().join("project/.stockade/config.toml"), project).unwrap();
        Self { dir }
    }

    fn loader(&self, env: &[(&str, &str)], flags: &[(&str, &str, &str)]) -> Loader {
        Loader {
            global: self.dir.path().join("global.toml"),
            project: self.dir.path().join("project/.stockade/config.toml"),
            project_root: self.dir.path().join("project"),
            home: self.dir.path().to_path_buf(),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            flags: flags
                .iter()
                .map(|(f, k, v)| {
                    let (section, name) = k.split_once('.').unwrap();
                    FlagValue {
                        flag: f.to_string(),
                        key: keys::find(section, name).unwrap(),
                        value: v.to_string(),
                    }
                })
                .collect(),
        }
    }
}

#[test]
fn layers_merge_scalars_last_wins_lists_concatenate() {
    let f = Fixture::new(
        "[image]\nbase = \"a\"\n[sandbox]\nenv = [\"X\", \"Y\"]\nmemory = \"1g\"\n",
        "[image]\nbase = \"b\"\n[sandbox]\nenv = [\"Y\", \"Z\"]\n",
    );
    let resolved = f
        .loader(
            &[
                ("STOCKADE_SANDBOX_ENV", "W, Y"),
                ("STOCKADE_SANDBOX_MEMORY", "2g"),
                ("STOCKADE_NAMESPACE", "x"),
            ],
            &[("--memory", "sandbox.memory", "3g")],
        )
        .load()
        .unwrap();
    let config = &resolved.config;
    assert_eq!(config.image.base.as_deref(), Some("b"));
    assert!(config.image.base_from_project);
    assert_eq!(config.sandbox.env, ["X", "Z", "W", "Y"]);
    assert_eq!(config.sandbox.memory, Some(3 << 30));
    let from = keys::find("image", "base").unwrap();
    assert!(matches!(
        resolved.sources_of(from).as_slice(),
        [Source::File {
            scope: Scope::Project,
            line: 2,
            column: 8,
            ..
        }]
    ));
    let memory = keys::find("sandbox", "memory").unwrap();
    assert_eq!(resolved.sources_of(memory)[0].to_string(), "flag --memory");
}

#[test]
fn extends_false_ignores_the_global_file() {
    let f = Fixture::new("[image]\nfrom = \"a\"\n", "extends = false\n");
    let resolved = f.loader(&[], &[]).load().unwrap();
    assert_eq!(resolved.config.image.from, DEFAULT_FROM);
    assert!(resolved.global_ignored);
}

#[test]
fn missing_files_mean_defaults() {
    let config = Config::load(
        Path::new("/nonexistent/a.toml"),
        Path::new("/nonexistent/b.toml"),
        Path::new("/"),
    )
    .unwrap();
    assert_eq!(config, Config::default());
    assert_eq!(config.image.from, DEFAULT_FROM);
    assert_eq!(config.sandbox.pids_limit, DEFAULT_PIDS_LIMIT);
}

#[test]
fn starter_files_are_valid_and_empty() {
    for global in [true, false] {
        let layer = parse_str(&starter_file(global)).unwrap();
        assert!(layer.settings.is_empty());
        // Uncommenting every line gives a valid file too (paths aside).
        let uncommented: String = starter_file(global)
            .lines()
            .map(|l| {
                l.strip_prefix("# ")
                    .filter(|l| {
                        l.contains(" = ")
                            && !l.starts_with("extends")
                            && !l.starts_with("ca_")
                            && !l.starts_with("mounts")
                    })
                    .unwrap_or(l)
            })
            .map(|l| format!("{l}\n"))
            .collect();
        assert!(parse_str(&uncommented).is_ok(), "{uncommented}");
    }
}

/// Every key set (paths aside: they are checked against the disk).
/// A project file: global-only keys are refused there (see trust's tests).
const FULL: &str = "extends = true\n[image]\nbase = \"ruby:3\"\nbase_dockerfile = \".stockade/base.Dockerfile\"\n\
[sandbox]\nenv = [\"A\", \"B=1\"]\nports = [\"8080:80\", \"[::1]:53:53/udp\"]\nmemory = \"2g\"\ncpus = 1.5\npids_limit = 100\ntmp_size = \"1g\"\n\
network = \"none\"\nread_only_root = true\nsudo = false\ndocker_socket = false\n\
engine_options = [\"--shm-size=1g\", \"--ulimit=nofile=10:20\", \"--add-host=a:1.2.3.4\"]\n\
[secrets]\nscan = true\nallowlist = [\"*.pem\"]\n";

#[test]
fn the_full_example_is_valid() {
    let mut errors = Vec::new();
    let layer = parse_file(
        Path::new("/cfg/c.toml"),
        FULL,
        Scope::Project,
        places(),
        &mut errors,
    );
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(layer.extends, Some(true));
    assert_eq!(layer.settings.len(), 19);
}

/// Fragments a mutated file is made of: real keys, real sections, broken syntax.
fn fragment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("[image]\n".to_owned()),
        Just("[sandbox]\n".to_owned()),
        Just("[secrets]\n".to_owned()),
        Just("[sandbox.x]\n".to_owned()),
        Just("extends = false\n".to_owned()),
        Just("[[sandbox]]\n".to_owned()),
        proptest::sample::select(keys::KEYS.iter().map(|k| k.name).collect::<Vec<_>>())
            .prop_map(|k| format!("{k} = ")),
        "\"[^\"\\\\\n]{0,12}\"\n",
        "-?[0-9]{1,20}\n",
        Just("[\"a:b:ro\", \"8080:80\", \"X=1\"]\n".to_owned()),
        Just("{ a = 1 }\n".to_owned()),
        Just("1.5e308\n".to_owned()),
        Just("true\n".to_owned()),
        ".{0,8}",
        "[\\[\\]=\"'{},.\n ]{1,4}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, max_shrink_iters: 200, ..ProptestConfig::default() })]

    /// Random and mutated TOML never panics the loader, and every error points inside the text.
    #[test]
    fn loader_never_panics(parts in proptest::collection::vec(fragment(), 0..24)) {
        let text: String = parts.concat();
        let mut errors = Vec::new();
        let _ = parse_file(Path::new("/cfg/c.toml"), &text, Scope::Project, places(), &mut errors);
        for e in &errors {
            prop_assert!(e.line >= 1 && e.column >= 1);
            prop_assert!(e.line <= text.lines().count().max(1) + 1);
        }
    }

    /// A valid, full configuration with random edits: characters inserted, deleted, replaced.
    #[test]
    fn mutated_valid_file_never_panics(edits in proptest::collection::vec((any::<usize>(), 0u8..3, any::<char>()), 1..12)) {
        let mut text: Vec<char> = FULL.chars().collect();
        for (at, op, c) in edits {
            let at = at % (text.len() + 1);
            match op {
                0 => text.insert(at, c),
                1 if at < text.len() => { text.remove(at); }
                _ if at < text.len() => text[at] = c,
                _ => text.push(c),
            }
        }
        let text: String = text.into_iter().collect();
        let mut errors = Vec::new();
        let _ = parse_file(Path::new("/cfg/c.toml"), &text, Scope::Project, places(), &mut errors);
        for e in &errors {
            prop_assert!(e.line >= 1 && e.column >= 1);
        }
    }

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,200}") {
        let mut errors = Vec::new();
        let _ = parse_file(Path::new("/cfg/c.toml"), &text, Scope::Global, places(), &mut errors);
        let _ = parse_env(&[("STOCKADE_SANDBOX_PORTS".into(), text.clone()), ("STOCKADE_SANDBOX_MEMORY".into(), text.clone())], places(), &mut errors);
    }
}

/// The whole pipeline (`[agents]` and `[tools]` included) over one global file.
fn load_global(text: &str) -> Result<Config, ConfigError> {
    let dir = tempfile::tempdir().unwrap();
    let global = dir.path().join("config.toml");
    std::fs::write(&global, text).unwrap();
    Config::load(
        &global,
        &dir.path().join("none/.stockade/config.toml"),
        dir.path(),
    )
}

#[test]
fn agents_and_tools_sections() {
    let config = load_global(
        "[tools]\nversion_cache_hours = 2\n[sandbox]\nssh_agent = true\n[agents.moo]\ninstall = \"npm\"\npackage = \"cowsay\"\nversion = \"1.6.0\"\nconfig_dirs = [\"~/.moo\", \".config/moo/\"]\napi_keys = [\"MOO_KEY\"]\nenv = { MOO_UPDATE = \"0\" }\n[agents.claude]\nskip_permissions = false\n",
    )
    .unwrap();
    assert_eq!(config.tools.version_cache_hours, 2);
    assert!(config.sandbox.ssh_agent);
    let moo = &config.agents["moo"];
    assert_eq!(moo.package.as_deref(), Some("cowsay"));
    assert_eq!(
        moo.config_dirs.as_deref(),
        Some(&[".moo".to_owned(), ".config/moo".to_owned()][..])
    );
    assert_eq!(config.agents["claude"].skip_permissions, Some(false));
}

#[test]
fn bad_agent_values_point_at_them() {
    match load_global(
        "[agents.Bad]\ninstall = \"npm\"\n[agents.x]\ninstall = \"cargo\"\nversion = \"1 2\"\nconfig_dirs = [\"/etc\", \"../up\"]\n",
    ) {
        Err(ConfigError::Invalid { errors }) => {
            let at: Vec<_> = errors.iter().map(|e| e.line).collect();
            assert_eq!(at, vec![1, 3, 4, 5, 6, 6], "{errors:?}");
            assert_eq!(errors[1].message, "custom agent `x` has no `package`");
            assert!(
                errors[2]
                    .help
                    .as_deref()
                    .unwrap_or("")
                    .contains("npm, pypi")
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn unknown_agent_fields_point_at_their_line() {
    match load_global("[sandbox]\nenv = [\"A\"]\n[agents.moo]\ninstall = \"npm\"\npackge = \"x\"\n")
    {
        Err(ConfigError::Invalid { errors }) => {
            assert_eq!(errors.len(), 1, "{errors:?}");
            assert_eq!(errors[0].line, 5, "{errors:?}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn agent_layers_merge_field_by_field() {
    let dir = tempfile::tempdir().unwrap();
    let global = dir.path().join("global.toml");
    let project = dir.path().join("project.toml");
    std::fs::write(
        &global,
        "[agents.moo]\ninstall = \"npm\"\npackage = \"cowsay\"\nversion = \"1.5.0\"\n",
    )
    .unwrap();
    std::fs::write(&project, "[agents.moo]\nversion = \"1.6.0\"\n").unwrap();
    let config = Config::load(&global, &project, dir.path()).unwrap();
    let moo = &config.agents["moo"];
    assert_eq!(moo.package.as_deref(), Some("cowsay"));
    assert_eq!(moo.version.as_deref(), Some("1.6.0"));
    assert_eq!(config.tools.version_cache_hours, 24);
}

/// Parse `text` as the project file of `fixture`'s project, or as its global file.
fn parse_scoped(dir: &Path, text: &str, scope: Scope) -> (Layer, Vec<InvalidConfig>) {
    let root = dir.join("project");
    let file = match scope {
        Scope::Global => dir.join("home/.config/stockade/config.toml"),
        _ => root.join(".stockade/config.toml"),
    };
    let mut errors = Vec::new();
    let layer = parse_file(
        &file,
        text,
        scope,
        Places {
            project_root: &root,
            home: &dir.join("home"),
        },
        &mut errors,
    );
    (layer, errors)
}

fn scoped_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for d in [
        "project/.stockade",
        "project/src",
        "home/.config/stockade/src",
        "home/.config/stockade/images",
    ] {
        std::fs::create_dir_all(dir.path().join(d)).unwrap();
    }
    std::fs::write(dir.path().join("home/.config/stockade/ca.pem"), "x").unwrap();
    dir
}

#[test]
fn a_project_file_may_not_set_what_changes_the_sandbox_s_own_code() {
    let dir = scoped_dir();
    let text = "[sandbox]\n\
env = [\"PATH=/x\", \"LD_PRELOAD\", \"STOCKADE_UID=0\", \"BASH_ENV=/p\", \"uid=0\", \"RUST_LOG=debug\"]\n\
mounts = [\"src:/opt/stockade/entrypoint.sh:ro\", \"src:/etc/gitconfig\", \"src:/lib64/x\", \"src:/opt\", \"src:/data/../usr\", \"src:/data\"]\n\
engine_options = [\"--cap-add=SYS_PTRACE\", \"--device=/dev/fuse\", \"--tmpfs=/opt/stockade\", \"--shm-size=1g\"]\n\
[image]\nfrom = \"x\"\nca_certificates = [\"ca.pem\"]\nbase_dockerfile = \"../../elsewhere/Dockerfile\"\n";
    let (layer, errors) = parse_scoped(dir.path(), text, Scope::Project);
    let at: Vec<(usize, usize, &str)> = errors
        .iter()
        .map(|e| (e.line, e.column, e.label.as_str()))
        .collect();
    assert_eq!(
        at,
        [
            (2, 8, "reserved name"),
            (2, 19, "reserved name"),
            (2, 33, "reserved name"),
            (2, 51, "reserved name"),
            (3, 11, "protected target"),
            (3, 49, "protected target"),
            (3, 71, "protected target"),
            (3, 87, "protected target"),
            (3, 99, "`..` in target"),
            (4, 19, "refused in a project file"),
            (4, 43, "refused in a project file"),
            (4, 65, "protected target"),
            (6, 1, "global-only key"),
            (7, 1, "global-only key"),
            (8, 19, "outside the project"),
        ],
        "{errors:#?}"
    );
    // What is left is harmless.
    let kept: Vec<String> = layer.settings.iter().map(|s| s.value.to_string()).collect();
    assert_eq!(kept.len(), 4, "{kept:?}");
}

#[test]
fn the_user_s_own_layers_keep_their_freedom_except_over_the_runtime() {
    let dir = scoped_dir();
    let text = "[sandbox]\nenv = [\"PATH=/x\", \"LD_LIBRARY_PATH\"]\n\
mounts = [\"src:/etc/gitconfig:ro\", \"src:/opt/stockade/entrypoint.sh\"]\n\
engine_options = [\"--cap-add=SYS_PTRACE\", \"--device=/dev/fuse\"]\n\
[image]\nfrom = \"x\"\nca_certificates = [\"ca.pem\"]\n";
    let (_, errors) = parse_scoped(dir.path(), text, Scope::Global);
    let at: Vec<(usize, usize)> = errors.iter().map(|e| (e.line, e.column)).collect();
    assert_eq!(at, [(3, 36)], "{errors:#?}");
    assert!(errors[0].message.contains("/opt/stockade"));
    // Variables and flags: the same rule for /opt/stockade.
    let f = Fixture::new("", "");
    let err = f
        .loader(
            &[("STOCKADE_SANDBOX_MOUNTS", ".stockade:/opt/stockade")],
            &[],
        )
        .load()
        .unwrap_err();
    assert!(err.to_string().contains("/opt/stockade"), "{err}");
    let err = f
        .loader(&[], &[("--mount", "sandbox.mounts", ".stockade:/")])
        .load()
        .unwrap_err();
    assert!(err.to_string().contains("/opt/stockade"), "{err}");
}

#[test]
fn relative_paths_in_the_global_file_start_at_its_directory() {
    let dir = scoped_dir();
    let global = dir.path().join("home/.config/stockade");
    let text = "[sandbox]\nmounts = [\"src:/g\"]\n[image]\nca_certificates = [\"ca.pem\"]\nbase_dockerfile = \"images/Dockerfile\"\n";
    let (layer, errors) = parse_scoped(dir.path(), text, Scope::Global);
    assert!(errors.is_empty(), "{errors:?}");
    let global = global.canonicalize().unwrap();
    let paths: Vec<String> = layer.settings.iter().map(|s| s.value.to_string()).collect();
    assert_eq!(
        paths,
        [
            format!("\"{}:/g\"", global.join("src").display()),
            format!("{:?}", global.join("ca.pem").display().to_string()),
            format!(
                "{:?}",
                global.join("images/Dockerfile").display().to_string()
            ),
        ],
        "{paths:?}"
    );
    // The project's relative paths start at the project root and stay inside it.
    let (layer, errors) = parse_scoped(
        dir.path(),
        "[image]\nbase_dockerfile = \".stockade/base.Dockerfile\"\n",
        Scope::Project,
    );
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(
        layer.settings[0].value,
        Value::Path(dir.path().join("project/.stockade/base.Dockerfile"))
    );
}

#[test]
fn defaults_come_from_the_key_table() {
    let config = Config::default();
    assert_eq!(config.image.from, DEFAULT_FROM);
    assert_eq!(config.sandbox.pids_limit, DEFAULT_PIDS_LIMIT);
    assert_eq!(config.sandbox.memory, Some(8 << 30));
    assert_eq!(config.sandbox.tmp_size, 2 << 30);
    assert!(config.secrets.scan);
    for key in keys::KEYS {
        // An old name reads as the key it stands for.
        let default = keys::default_value(keys::alias_target(key).unwrap_or(key));
        assert_eq!(
            config.value_of(key),
            default,
            "{key:?}: the table's default and Config::default disagree"
        );
    }
}

#[test]
fn the_key_reference_shows_each_key_s_class_and_default() {
    let doc = include_str!("../../../../docs/configuration.md");
    for key in keys::KEYS {
        let section = format!("## `[{}]`", key.section);
        let start = doc
            .find(&section)
            .unwrap_or_else(|| panic!("no {section} in the docs"));
        let rest = &doc[start + section.len()..];
        let table = &rest[..rest.find("\n## ").unwrap_or(rest.len())];
        let row = table
            .lines()
            .find(|l| l.starts_with(&format!("| `{}` |", key.name)))
            .unwrap_or_else(|| panic!("{key:?} has no row in docs/configuration.md"));
        let cells: Vec<&str> = row.split(" | ").collect();
        assert_eq!(cells[3], key.class.as_str(), "{key:?}: {row}");
        if let Some(default) = keys::default_value(key) {
            assert_eq!(cells[2], format!("`{default}`"), "{key:?}: {row}");
        }
        if let (keys::Shape::List, Some(default)) = (key.shape, key.default) {
            assert_eq!(cells[2], format!("`{default}`"), "{key:?}: {row}");
        }
    }
}

#[test]
fn a_project_agent_may_not_set_reserved_variables_either() {
    let agent = "[agents.moo]\ninstall = \"npm\"\npackage = \"cowsay\"\napi_keys = [\"LD_PRELOAD\", \"MOO_KEY\"]\nenv = { PATH = \"/x\", \"bad name\" = \"1\", MOO = \"1\" }\n";
    let f = Fixture::new("", agent);
    let err = f.loader(&[], &[]).load().unwrap_err();
    let ConfigError::Invalid { errors } = err else {
        panic!("{err:?}");
    };
    let at: Vec<(usize, usize, &str)> = errors
        .iter()
        .map(|e| (e.line, e.column, e.label.as_str()))
        .collect();
    assert_eq!(
        at,
        [
            (4, 13, "reserved name"),
            (5, 9, "reserved name"),
            (5, 22, "invalid name"),
        ],
        "{errors:#?}"
    );
    // The user's global file may; a bad name is bad everywhere.
    let f = Fixture::new(agent, "");
    let err = f.loader(&[], &[]).load().unwrap_err();
    assert!(err.to_string().contains("bad name"), "{err}");
}

#[test]
fn the_key_table_reads_and_writes_the_config() {
    let config = Config::default();
    for key in keys::KEYS {
        let key = keys::alias_target(key).unwrap_or(key);
        match (key.shape, keys::default_value(key)) {
            (keys::Shape::Scalar, Some(default)) => {
                assert_eq!(config.value_of(key), Some(default), "{key:?}");
            }
            (keys::Shape::Scalar, None) | (keys::Shape::List, _) => {
                assert_eq!(config.value_of(key), None, "{key:?}");
            }
        }
    }
    let f = Fixture::new("[sandbox]\ndocker_socket = true\ncpus = 1.5\n", "");
    let resolved = f
        .loader(&[], &[("--ssh-agent", "sandbox.ssh_agent", "true")])
        .load()
        .unwrap();
    let cpus = keys::find("sandbox", "cpus").unwrap();
    assert_eq!(resolved.config.value_of(cpus), Some(Value::Cpus(1500)));
    assert!(resolved.config.sandbox.ssh_agent);
    let warnings: Vec<&str> = resolved
        .warnings
        .iter()
        .map(|w| w.message.as_str())
        .collect();
    assert_eq!(
        warnings,
        [
            "docker_socket = true: the sandbox can control the container engine, which is root on this host in all but name"
        ]
    );
    // A later layer turning it off silences it.
    let resolved = f
        .loader(&[("STOCKADE_SANDBOX_DOCKER_SOCKET", "false")], &[])
        .load()
        .unwrap();
    assert!(resolved.warnings.is_empty(), "{:?}", resolved.warnings);
}

#[test]
fn a_custom_agent_needs_install_and_package_from_some_file() {
    // Complete across the layers: the global file installs it, the project pins it.
    let f = Fixture::new(
        "[agents.moo]\ninstall = \"npm\"\npackage = \"cowsay\"\n",
        "[agents.moo]\nversion = \"1.6.0\"\n[agents.claude]\nversion = \"2.1.0\"\n",
    );
    f.loader(&[], &[]).load().unwrap();
    // A name close to a built-in agent's gets a did-you-mean.
    let f = Fixture::new(
        "[agents.claud]\nversion = \"2.1.0\"\n",
        "extends = false\n[agents.moo]\nversion = \"1.6.0\"\n",
    );
    let err = f.loader(&[], &[]).load().unwrap_err();
    let ConfigError::Invalid { errors } = err else {
        panic!("{err:?}");
    };
    let got: Vec<(String, Option<&str>)> = errors
        .iter()
        .map(|e| (e.to_string(), e.help.as_deref()))
        .collect();
    let project = f.dir.path().join("project/.stockade/config.toml");
    assert_eq!(
        got,
        [(
            format!(
                "{}:2:9: custom agent `moo` has no `install` and no `package`",
                project.display()
            ),
            Some(
                "a custom agent needs `install = \"npm\"` (or \"pypi\") and `package` (see docs/agents.md)"
            )
        )],
        "the global file is ignored (extends = false)"
    );
    let f = Fixture::new("[agents.claud]\nversion = \"2.1.0\"\n", "");
    let err = f.loader(&[], &[]).load().unwrap_err();
    let ConfigError::Invalid { errors } = err else {
        panic!("{err:?}");
    };
    assert_eq!(
        errors[0].help.as_deref(),
        Some(
            "did you mean [agents.claude]? Otherwise a custom agent needs `install = \"npm\"` (or \"pypi\") and `package`"
        )
    );
}

#[test]
fn network_lists_keep_removals_for_the_policy_across_layers() {
    let f = Fixture::new(
        "[network]\npresets = [\"!packages\"]\nallow = [\"a.example.com\", \"C.example.com\"]\nallow_private = [\"nexus.corp.example\"]\n",
        "[network]\nallow = [\"! a.example.com\"]\npresets = [\"!git-hosts\"]\n",
    );
    let resolved = f
        .loader(&[("STOCKADE_NETWORK_ALLOW", "d.example.com:8443")], &[])
        .load()
        .unwrap();
    let network = &resolved.config.network;
    assert_eq!(network.egress, crate::config::Egress::Allowlist);
    // Only what the layers add, removals included, in merge order (entries in lower case).
    assert_eq!(network.presets, ["!packages", "!git-hosts"]);
    assert_eq!(
        network.allow,
        [
            "a.example.com",
            "c.example.com",
            "!a.example.com",
            "d.example.com:8443"
        ]
    );
    assert_eq!(network.allow_private, ["nexus.corp.example"]);
    let policy = crate::egress::policy(network, &["api.anthropic.com".to_owned()]);
    assert_eq!(policy.presets, ["agent"]);
    let hosts: Vec<&str> = policy.rules.iter().map(|r| r.host.as_str()).collect();
    assert_eq!(
        hosts,
        ["api.anthropic.com", "c.example.com", "d.example.com"]
    );
    assert_eq!(policy.private.len(), 1);
}

#[test]
fn sandbox_network_is_the_old_name_of_egress() {
    use crate::config::Egress;
    for (global, project, env, flags, egress) in [
        ("", "", vec![], vec![], Egress::Allowlist),
        (
            "[sandbox]\nnetwork = \"none\"\n",
            "",
            vec![],
            vec![],
            Egress::None,
        ),
        (
            "[sandbox]\nnetwork = \"bridge\"\n",
            "",
            vec![],
            vec![],
            Egress::Open,
        ),
        // Agreeing is fine, whichever layers.
        (
            "[sandbox]\nnetwork = \"none\"\n",
            "[network]\negress = \"none\"\n",
            vec![],
            vec![],
            Egress::None,
        ),
        (
            "",
            "[sandbox]\nnetwork = \"bridge\"\n",
            vec![],
            vec![("--egress", "network.egress", "open")],
            Egress::Open,
        ),
        // The flag of the old name over a file's old name.
        (
            "[sandbox]\nnetwork = \"bridge\"\n",
            "",
            vec![],
            vec![("--network", "sandbox.network", "none")],
            Egress::None,
        ),
        (
            "",
            "",
            vec![("STOCKADE_NETWORK_EGRESS", "none")],
            vec![],
            Egress::None,
        ),
    ] {
        let f = Fixture::new(global, project);
        let resolved = f.loader(&env, &flags).load();
        match resolved {
            Ok(r) => assert_eq!(r.config.network.egress, egress, "{global}|{project}"),
            Err(e) => panic!("{global}|{project}: {e:?}"),
        }
    }
}

#[test]
fn the_old_and_new_names_disagreeing_in_one_layer_is_one_error_naming_both_places() {
    let f = Fixture::new(
        "[sandbox]\nnetwork = \"bridge\"\n\n[network]\negress = \"none\"\n",
        "",
    );
    let err = f.loader(&[], &[]).load().unwrap_err();
    let ConfigError::Invalid { errors } = err else {
        panic!("{err:?}");
    };
    let got: Vec<(String, &str, Option<String>)> = errors
        .iter()
        .map(|e| {
            let dir = f.dir.path().display().to_string();
            (
                e.message.replace(&dir, "[DIR]"),
                e.label.as_str(),
                e.help.as_deref().map(|h| h.replace(&dir, "[DIR]")),
            )
        })
        .collect();
    assert_eq!(
        got,
        [(
            "`sandbox.network = \"bridge\"` ([DIR]/global.toml:2:11) and `network.egress = \"none\"` ([DIR]/global.toml:5:10) disagree".to_owned(),
            "old name",
            Some(
                "remove `network` from [sandbox] in [DIR]/global.toml: `network` is the old name of [network] egress (\"bridge\" is egress = \"open\", \"none\" is egress = \"none\")".to_owned()
            )
        )]
    );
}

#[test]
fn across_layers_the_later_of_the_two_names_wins() {
    // A variable or flag with the old name over a file with the new one, and the reverse.
    let f = Fixture::new("[network]\negress = \"open\"\n", "");
    let over_file = f
        .loader(&[("STOCKADE_SANDBOX_NETWORK", "none")], &[])
        .load()
        .unwrap();
    assert_eq!(over_file.config.network.egress, Egress::None);
    let f = Fixture::new("[sandbox]\nnetwork = \"none\"\n", "");
    let over_old = f
        .loader(&[("STOCKADE_NETWORK_EGRESS", "open")], &[])
        .load()
        .unwrap();
    assert_eq!(over_old.config.network.egress, Egress::Open);
}

#[test]
fn agent_egress_lists_replace_the_built_in_one_and_are_checked() {
    let f = Fixture::new("[agents.claude]\negress = [\"LLM.corp.example\"]\n", "");
    let config = f.loader(&[], &[]).load().unwrap().config;
    let claude = crate::agents::resolve("claude", &config).unwrap();
    assert_eq!(claude.egress, ["llm.corp.example"]);
    let codex = crate::agents::resolve("codex", &config).unwrap();
    assert!(codex.egress.iter().any(|h| h == "auth.openai.com"));
    let f = Fixture::new(
        "[agents.moo]\ninstall = \"npm\"\npackage = \"cowsay\"\negress = [\"ok.example.com\", \"bad host\", 3]\n",
        "",
    );
    let ConfigError::Invalid { errors } = f.loader(&[], &[]).load().unwrap_err() else {
        panic!("not invalid");
    };
    assert_eq!(
        messages(&errors),
        [
            (
                4,
                29,
                "`agents.moo.egress`: \"bad host\" is not a host name: write `host`, `*.domain` or `host:port`"
            ),
            (
                4,
                41,
                "`agents.moo.egress`: expected a string, found an integer"
            ),
        ]
    );
}

#[test]
fn toolset_is_minimal_or_full() {
    assert_eq!(
        Config::default().image.toolset,
        crate::config::Toolset::Minimal
    );
    let layer = parse_str("[image]\ntoolset = \"full\"\n").unwrap();
    assert_eq!(values(&layer, "image.toolset"), ["\"full\""]);
    let error = first_error("[image]\ntoolset = \"huge\"\n");
    assert_eq!(
        (error.line, error.column, error.message.as_str()),
        (2, 11, "`image.toolset`: unknown toolset \"huge\"")
    );
    assert_eq!(error.label, "not minimal or full");
    assert!(error.help.unwrap().contains("`full`"));
}

#[test]
fn pull_settings_are_checked_where_they_are_written() {
    let pin = format!("sha256:{}", "0a".repeat(32));
    let layer = parse_str(&format!(
        "[image]\nsource = \"pull\"\nregistries = [\"127.0.0.1:5000/mirror/\", \"ghcr.io/x\"]\n\
         foundation_digest = \"{pin}\"\nverify_signatures = \"required\"\n"
    ))
    .unwrap();
    assert_eq!(values(&layer, "image.source"), ["\"pull\""]);
    assert_eq!(
        values(&layer, "image.registries"),
        ["\"127.0.0.1:5000/mirror\"", "\"ghcr.io/x\""]
    );
    assert_eq!(
        values(&layer, "image.foundation_digest"),
        [format!("{pin:?}")]
    );
    let bad = errors(
        "[image]\nsource = \"pulled\"\nregistries = [\"docker.io/x:1.0\", \"a b\"]\n\
         foundation_digest = \"sha256:ABC\"\nfull_digest = \"1234\"\n\
         verify_signatures = \"yes\"\ncosign_public_key = \"/nonexistent/cosign.pub\"\n",
    );
    let at: Vec<(usize, usize, &str)> = bad
        .iter()
        .map(|e| (e.line, e.column, e.label.as_str()))
        .collect();
    assert_eq!(
        at,
        [
            (2, 10, "not build, pull or auto"),
            (3, 15, "not a repository prefix"),
            (3, 34, "not a repository prefix"),
            (4, 21, "not sha256:<64 hex digits>"),
            (5, 15, "not sha256:<64 hex digits>"),
            (6, 21, "not auto, required or off"),
            (7, 21, "this file"),
        ],
        "{bad:#?}"
    );
    // Unset, the registries are the defaults.
    assert_eq!(
        Config::default().image.registries(),
        ["docker.io/stockadedev", "ghcr.io/stockade-dev"]
    );
}
