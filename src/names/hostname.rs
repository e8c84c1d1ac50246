//! Host names as untrusted text: a name from a PTR record (or typed in the config) is kept only
//! if it is a plain DNS host name. Pure; no lookups here.

/// The longest name kept (RFC 1035's limit for a name in text form, without the final dot).
pub const MAX_LEN: usize = 253;
/// The longest label.
const MAX_LABEL: usize = 63;

/// `name` in canonical form (lower case, without the final dot) if it is a plain host name:
/// 1 to 253 characters, dot-separated labels of 1 to 63 letters, digits, `-` and `_`, no label
/// starting or ending with `-`, and not an IP address (a PTR record that names another address
/// would mislead). Otherwise why not.
pub fn check(name: &str) -> Result<String, &'static str> {
    let name = name.strip_suffix('.').unwrap_or(name);
    if name.is_empty() {
        return Err("the name is empty");
    }
    if name.len() > MAX_LEN {
        return Err("the name is longer than 253 characters");
    }
    for label in name.split('.') {
        if label.is_empty() {
            return Err("the name has an empty label");
        }
        if label.len() > MAX_LABEL {
            return Err("a label is longer than 63 characters");
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err("only letters, digits, '-', '_' and '.' may appear in a host name");
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err("a label starts or ends with '-'");
        }
    }
    if name.parse::<std::net::IpAddr>().is_ok() {
        return Err("an IP address is not a host name");
    }
    Ok(name.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_names_pass_in_canonical_form() {
        assert_eq!(check("Mail.Example.").unwrap(), "mail.example");
        assert_eq!(
            check("xn--bcher-kva.example").unwrap(),
            "xn--bcher-kva.example"
        );
        assert_eq!(check("_dmarc.a-b.example").unwrap(), "_dmarc.a-b.example");
        assert_eq!(check("localhost").unwrap(), "localhost");
        let longest = [
            "a".repeat(63),
            "b".repeat(63),
            "c".repeat(63),
            "d".repeat(61),
        ]
        .join(".");
        assert_eq!(longest.len(), 253);
        assert!(check(&longest).is_ok());
    }

    #[test]
    fn hostile_or_broken_names_are_refused() {
        for bad in [
            "",
            ".",
            "<script>alert(1)</script>.example",
            "a\"b.example",
            "a b.example",
            "=HYPERLINK(\"http://x\").example",
            "mail.example\n",
            "mail..example",
            "-mail.example",
            "mail-.example",
            "mail.ex\u{e4}mple",
            "a/b.example",
            "198.51.100.8",
            "2001:db8::1",
            "\u{202e}lmth.example",
        ] {
            assert!(check(bad).is_err(), "{bad:?} was accepted");
        }
        assert!(check(&"a".repeat(64)).is_err());
        assert!(
            check(&vec!["a".repeat(63); 4].join(".")).is_err(),
            "255 characters"
        );
    }
}
