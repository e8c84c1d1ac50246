//! `[service]`: the account `run` switches to after opening its capture handles. Validates the
//! names only; looking them up is `privilege`'s job.

use super::raw::RawService;
use super::{VResult, Validator};
use toml::Spanned;

/// The user `run` drops to when none is configured.
pub const DEFAULT_USER: &str = "bwacct";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    /// `root` keeps every privilege (not recommended).
    pub user: String,
    /// Default: the user's primary group.
    pub group: Option<String>,
}

/// POSIX portable user and group names as `useradd` accepts them by default.
fn account_name_ok(v: &str) -> bool {
    let mut chars = v.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase() || c == '_')
        && v.len() <= 32
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '-'))
}

impl Validator<'_> {
    fn account_name(&self, v: Option<Spanned<String>>, what: &str) -> VResult<Option<String>> {
        match v {
            None => Ok(None),
            Some(s) if account_name_ok(s.get_ref()) => Ok(Some(s.into_inner())),
            Some(s) => self.err(
                s.span(),
                format!(
                    "{:?} is not a valid {what} name: 1 to 32 lowercase letters, digits, '_' or '-', not starting with a digit or '-'",
                    s.get_ref()
                ),
            ),
        }
    }

    pub(super) fn service(&self, raw: RawService) -> VResult<Service> {
        Ok(Service {
            user: self
                .account_name(raw.user, "user")?
                .unwrap_or_else(|| DEFAULT_USER.to_owned()),
            group: self.account_name(raw.group, "group")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::account_name_ok;

    #[test]
    fn account_names() {
        for ok in ["bwacct", "_bwacct", "bw-acct2", "root"] {
            assert!(account_name_ok(ok), "{ok}");
        }
        for bad in [
            "",
            "Bwacct",
            "1bw",
            "-bw",
            "bw acct",
            "bw;rm",
            "bw/x",
            &"a".repeat(33),
        ] {
            assert!(!account_name_ok(bad), "{bad}");
        }
    }
}
