//! `.dockerignore` rules, matched as the Docker CLI matches them: patterns are relative to the
//! context root, `*` and `?` stay within one path component, `**` spans any number of them, a
//! pattern that matches a directory excludes everything below it, `!` re-includes, and the last
//! matching rule wins.

use globset::{Glob, GlobBuilder, GlobMatcher};

/// The rules of one `.dockerignore` file.
#[derive(Debug, Clone, Default)]
pub struct DockerIgnore {
    rules: Vec<Rule>,
}

#[derive(Debug, Clone)]
struct Rule {
    matcher: GlobMatcher,
    exception: bool,
}

/// A pattern that is not a valid glob.
#[derive(Debug, thiserror::Error)]
#[error("line {line} of .dockerignore: invalid pattern {pattern:?}: {reason}")]
pub struct InvalidPattern {
    pub line: usize,
    pub pattern: String,
    pub reason: String,
}

impl DockerIgnore {
    /// Parse the text of a `.dockerignore` file (comments start with `#`, blank lines skipped).
    pub fn parse(text: &str) -> Result<Self, InvalidPattern> {
        let mut rules = Vec::new();
        for (index, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (exception, pattern) = match line.strip_prefix('!') {
                Some(rest) => (true, rest.trim()),
                None => (false, line),
            };
            let cleaned = clean(pattern);
            if cleaned.is_empty() {
                continue;
            }
            let glob: Glob = GlobBuilder::new(&cleaned)
                .literal_separator(true)
                .backslash_escape(true)
                .build()
                .map_err(|e| InvalidPattern {
                    line: index + 1,
                    pattern: pattern.to_owned(),
                    reason: e.kind().to_string(),
                })?;
            rules.push(Rule {
                matcher: glob.compile_matcher(),
                exception,
            });
        }
        Ok(Self { rules })
    }

    /// Add a rule that always re-includes `path` (the Dockerfile is always sent).
    pub fn keep(&mut self, path: &str) {
        if let Ok(glob) = GlobBuilder::new(&globset_escape(path))
            .literal_separator(true)
            .build()
        {
            self.rules.push(Rule {
                matcher: glob.compile_matcher(),
                exception: true,
            });
        }
    }

    /// Whether the file or directory at `path` (relative, `/`-separated) is left out.
    pub fn is_excluded(&self, path: &str) -> bool {
        // Nothing is left out without an exclusion rule (the common case: no .dockerignore).
        if self.rules.iter().all(|rule| rule.exception) {
            return false;
        }
        let mut excluded = false;
        for rule in &self.rules {
            if rule.exception == excluded && matches_self_or_parent(&rule.matcher, path) {
                excluded = !rule.exception;
            }
        }
        excluded
    }

    /// Whether any rule re-includes paths: then an excluded directory must still be walked.
    pub fn has_exceptions(&self) -> bool {
        self.rules.iter().any(|rule| rule.exception)
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }
}

fn matches_self_or_parent(matcher: &GlobMatcher, path: &str) -> bool {
    if matcher.is_match(path) {
        return true;
    }
    path.match_indices('/')
        .any(|(at, _)| matcher.is_match(&path[..at]))
}

/// As Go's `filepath.Clean` on a relative pattern: no leading `/` or `./`, no empty components.
fn clean(pattern: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in pattern.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    parts.join("/")
}

fn globset_escape(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for c in path.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '{' | '}' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ignore(text: &str) -> DockerIgnore {
        DockerIgnore::parse(text).unwrap()
    }

    #[test]
    fn patterns_are_anchored_at_the_root() {
        let rules = ignore("*.log\n/build\n");
        assert!(rules.is_excluded("debug.log"));
        assert!(
            !rules.is_excluded("sub/debug.log"),
            "* stays in one component"
        );
        assert!(rules.is_excluded("build"));
        assert!(
            rules.is_excluded("build/out/a.o"),
            "a directory takes its contents"
        );
        assert!(!rules.is_excluded("src/build"));
    }

    #[test]
    fn double_star_spans_directories() {
        let rules = ignore("**/*.tmp\nnode_modules\n");
        assert!(rules.is_excluded("a.tmp"));
        assert!(rules.is_excluded("a/b/c.tmp"));
        assert!(rules.is_excluded("node_modules/x/index.js"));
        assert!(!rules.is_excluded("src/node_modules/x.js"));
    }

    #[test]
    fn exceptions_and_last_match_wins() {
        let rules = ignore("# comment\n\n*.md\n!README.md\ndocs\n!docs/keep.txt\n");
        assert!(rules.is_excluded("CHANGES.md"));
        assert!(!rules.is_excluded("README.md"));
        assert!(rules.is_excluded("docs/other.txt"));
        assert!(!rules.is_excluded("docs/keep.txt"));
        assert!(rules.has_exceptions());
        let later = ignore("!a.txt\n*.txt\n");
        assert!(later.is_excluded("a.txt"), "the later rule wins");
    }

    #[test]
    fn patterns_are_cleaned() {
        let rules = ignore("./out/\n/tmp//x\n");
        assert!(rules.is_excluded("out/file"));
        assert!(rules.is_excluded("tmp/x"));
    }

    #[test]
    fn keep_re_includes_a_literal_path() {
        let mut rules = ignore("*\n");
        rules.keep("Dockerfile");
        assert!(!rules.is_excluded("Dockerfile"));
        assert!(rules.is_excluded("other"));
    }

    #[test]
    fn invalid_patterns_name_their_line() {
        let err = DockerIgnore::parse("ok\n[z-a\n").unwrap_err();
        assert_eq!(err.line, 2);
    }
}
