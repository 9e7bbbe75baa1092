use std::path::Path;

use super::*;

fn parse_str(text: &str) -> Result<LoadedFile, ConfigError> {
    parse(Path::new("/cfg/config.toml"), text, Path::new("/home/ada"))
}

fn first_error(text: &str) -> InvalidConfig {
    match parse_str(text) {
        Err(ConfigError::Invalid { mut errors }) => errors.remove(0),
        other => panic!("expected an invalid config, got {other:?}"),
    }
}

#[test]
fn empty_file_is_valid() {
    let file = parse_str("").unwrap();
    assert_eq!(file.from, None);
    assert!(file.env.is_empty());
}

#[test]
fn reads_known_keys() {
    let file =
        parse_str("[image]\nfrom = \"mirror/debian:12\"\n[sandbox]\nenv = [\"FOO\", \"_BAR2\"]\n")
            .unwrap();
    assert_eq!(file.from.as_deref(), Some("mirror/debian:12"));
    assert_eq!(file.env, ["FOO", "_BAR2"]);
}

#[test]
fn unknown_key_points_at_line_and_column() {
    let err = first_error("[image]\nfrom = \"x\"\n  colour = 1\n");
    assert_eq!((err.line, err.column), (3, 3));
    assert!(err.message.contains("unknown field"), "{}", err.message);
    assert!(err.to_string().starts_with("/cfg/config.toml:3:3: "));
}

#[test]
fn unknown_section_is_an_error() {
    let err = first_error("[imag]\nfrom = \"x\"\n");
    assert_eq!(err.line, 1);
    assert!(err.message.contains("imag"), "{}", err.message);
}

#[test]
fn wrong_type_is_an_error() {
    let err = first_error("[sandbox]\nenv = \"FOO\"\n");
    assert_eq!(err.line, 2);
    assert!(err.message.contains("invalid type"), "{}", err.message);
}

#[test]
fn syntax_error_is_an_error() {
    let err = first_error("[image\n");
    assert_eq!(err.line, 1);
}

#[test]
fn all_bad_values_are_reported() {
    match parse_str(
        "[image]\nfrom = \"a b\"\nca_certificates = [\"/nonexistent/ca.pem\"]\n[sandbox]\nenv = [\"OK\", \"NOT-OK\", \"A=1\"]\n",
    ) {
        Err(ConfigError::Invalid { errors }) => {
            let at: Vec<_> = errors.iter().map(|e| (e.line, e.column)).collect();
            assert_eq!(at, vec![(2, 8), (3, 20), (5, 14), (5, 24)]);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn ca_paths_resolve_against_the_file_and_home() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("corp.pem"), "PEM").unwrap();
    let home = tempfile::tempdir().unwrap();
    std::fs::write(home.path().join("home.pem"), "PEM").unwrap();
    let path = dir.path().join("config.toml");
    let file = parse(
        &path,
        "[image]\nca_certificates = [\"corp.pem\", \"~/home.pem\"]\n",
        home.path(),
    )
    .unwrap();
    assert_eq!(
        file.ca_certificates,
        vec![dir.path().join("corp.pem"), home.path().join("home.pem")]
    );
}

#[test]
fn layers_merge_scalars_last_wins_lists_concatenate() {
    let dir = tempfile::tempdir().unwrap();
    let global = dir.path().join("global.toml");
    let project = dir.path().join("project.toml");
    std::fs::write(
        &global,
        "[image]\nfrom = \"a\"\n[sandbox]\nenv = [\"X\", \"Y\"]\n",
    )
    .unwrap();
    std::fs::write(
        &project,
        "[image]\nfrom = \"b\"\n[sandbox]\nenv = [\"Y\", \"Z\"]\n",
    )
    .unwrap();
    let config = Config::load(&global, &project, dir.path()).unwrap();
    assert_eq!(config.image.from, "b");
    assert_eq!(config.sandbox.env, ["X", "Y", "Z"]);
    assert_eq!(config.files, vec![global, project]);
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
}

#[test]
fn agents_and_tools_sections() {
    let file = parse_str(
        "[tools]\nversion_cache_hours = 2\n[sandbox]\nssh_agent = true\n[agents.moo]\ninstall = \"npm\"\npackage = \"cowsay\"\nversion = \"1.6.0\"\nconfig_dirs = [\"~/.moo\", \".config/moo/\"]\napi_keys = [\"MOO_KEY\"]\nenv = { MOO_UPDATE = \"0\" }\n[agents.claude]\nskip_permissions = false\n",
    )
    .unwrap();
    assert_eq!(file.version_cache_hours, Some(2));
    assert_eq!(file.ssh_agent, Some(true));
    let moo = &file.agents["moo"];
    assert_eq!(moo.package.as_deref(), Some("cowsay"));
    assert_eq!(
        moo.config_dirs.as_deref(),
        Some(&[".moo".to_owned(), ".config/moo".to_owned()][..])
    );
    assert_eq!(file.agents["claude"].skip_permissions, Some(false));
}

#[test]
fn bad_agent_values_point_at_them() {
    match parse_str(
        "[agents.Bad]\ninstall = \"npm\"\n[agents.x]\ninstall = \"cargo\"\nversion = \"1 2\"\nconfig_dirs = [\"/etc\", \"../up\"]\n",
    ) {
        Err(ConfigError::Invalid { errors }) => {
            let at: Vec<_> = errors.iter().map(|e| e.line).collect();
            assert_eq!(at, vec![1, 4, 5, 6, 6], "{errors:?}");
            assert!(
                errors[1]
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
    assert_eq!(config.version_cache_hours, 24);
}
