//! Configuration errors that name the file, the line and the key, with a suggestion for a
//! misspelt key.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Invalid(Located),
}

/// A problem at a place in the file.
#[derive(Debug)]
pub struct Located {
    pub path: PathBuf,
    pub line: usize,
    pub column: usize,
    /// Dotted key, e.g. `accounting.interval_s`, when known.
    pub key: Option<String>,
    pub message: String,
}

impl fmt::Display for Located {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: ", self.path.display(), self.line, self.column)?;
        if let Some(key) = &self.key {
            write!(f, "{key}: ")?;
        }
        f.write_str(&self.message)
    }
}

/// Locates byte offsets in the source text.
pub struct Source<'a> {
    pub path: &'a Path,
    pub text: &'a str,
}

impl Source<'_> {
    /// An error at `span`, with the dotted key read from the file around it.
    pub fn error(&self, span: Option<Range<usize>>, message: impl Into<String>) -> ConfigError {
        let at = span.map_or(0, |s| s.start.min(self.text.len()));
        let before = self.text.get(..at).unwrap_or("");
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before.get(line_start..).map_or(0, |s| s.chars().count()) + 1;
        ConfigError::Invalid(Located {
            path: self.path.to_owned(),
            line,
            column,
            key: self.key_at(line_start),
            message: message.into(),
        })
    }

    /// The dotted key of the line starting at `line_start`: the nearest table header above it,
    /// and the key on the line (if the line is `key = ...`).
    fn key_at(&self, line_start: usize) -> Option<String> {
        let rest = self.text.get(line_start..)?;
        let line = rest.lines().next().unwrap_or("").trim();
        let header_of = |l: &str| {
            let l = l.trim();
            l.starts_with('[')
                .then(|| l.trim_matches(|c| c == '[' || c == ']').trim().to_owned())
        };
        if let Some(h) = header_of(line) {
            return Some(h);
        }
        let key = line
            .split_once('=')
            .map(|(k, _)| k.trim().trim_matches('"').to_owned())
            .filter(|k| !k.is_empty());
        let table = self
            .text
            .get(..line_start)?
            .lines()
            .rev()
            .find_map(header_of);
        match (table, key) {
            (Some(t), Some(k)) => Some(format!("{t}.{k}")),
            (None, Some(k)) => Some(k),
            (t, None) => t,
        }
    }

    /// Turns a TOML/serde error into a located one, adding "did you mean" for unknown keys.
    pub fn toml_error(&self, err: &toml::de::Error) -> ConfigError {
        let mut message = err.message().trim().to_owned();
        if let Some(hint) = suggestion(&message) {
            message.push_str(&format!(" (did you mean `{hint}`?)"));
        }
        self.error(err.span(), message)
    }
}

/// For "unknown field `x`, expected one of `a`, `b`", the closest expected name.
fn suggestion(message: &str) -> Option<String> {
    let rest = message.strip_prefix("unknown field `")?;
    let (unknown, expected) = rest.split_once('`')?;
    expected
        .split('`')
        .skip(1)
        .step_by(2)
        .map(|c| (strsim::jaro_winkler(unknown, c), c))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_the_closest_key() {
        assert_eq!(
            suggestion("unknown field `intervl_s`, expected one of `local`, `interval_s`, `count`")
                .as_deref(),
            Some("interval_s")
        );
        assert_eq!(suggestion("unknown field `zzz`, expected `local`"), None);
    }
}
