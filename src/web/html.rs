//! HTML shared by the dashboard and the static site: escaping, the page layout from `web/`
//! (embedded in the binary), and the fragments both show (the top-talkers table, graph
//! figures). Every name printed goes through [`esc`]; nothing here reads the store.

use crate::classify::Class;
use crate::report::Row;
use crate::units;
use crate::usage::{Dir, Host, Usage};
use std::fmt::{self, Write};

pub const LAYOUT: &str = include_str!("../../web/layout.html");
pub const STYLE: &str = include_str!("../../web/style.css");
pub const SCRIPT: &str = include_str!("../../web/app.js");

/// Text made safe for HTML content and quoted attributes.
pub struct Esc<'a>(pub &'a str);

impl fmt::Display for Esc<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut rest = self.0;
        while let Some(i) = rest.find(['&', '<', '>', '"', '\'']) {
            f.write_str(&rest[..i])?;
            f.write_str(match rest.as_bytes()[i] {
                b'&' => "&amp;",
                b'<' => "&lt;",
                b'>' => "&gt;",
                b'"' => "&quot;",
                _ => "&#39;",
            })?;
            rest = &rest[i + 1..];
        }
        f.write_str(rest)
    }
}

pub fn esc(s: &str) -> Esc<'_> {
    Esc(s)
}

/// Percent-encodes everything but RFC 3986's unreserved characters (for a path segment or a
/// query value).
pub fn url_part(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// A page in the common layout. `nav`, `body` and `footer` are HTML (already escaped).
pub struct Page<'a> {
    pub title: &'a str,
    /// Where `style.css` and `app.js` are (`/static/` or a relative path).
    pub assets: &'a str,
    pub home: &'a str,
    pub nav: &'a str,
    pub body: &'a str,
    pub footer: &'a str,
}

impl Page<'_> {
    /// Fills the layout's `{{name}}` slots.
    pub fn render(&self) -> String {
        let title = esc(self.title).to_string();
        let assets = esc(self.assets).to_string();
        let home = esc(self.home).to_string();
        let slots: [(&str, &str); 6] = [
            ("title", &title),
            ("assets", &assets),
            ("home", &home),
            ("nav", self.nav),
            ("body", self.body),
            ("footer", self.footer),
        ];
        let mut out = String::with_capacity(LAYOUT.len() + self.body.len());
        let mut rest = LAYOUT;
        while let Some(open) = rest.find("{{") {
            out.push_str(&rest[..open]);
            let after = &rest[open + 2..];
            let Some(close) = after.find("}}") else {
                out.push_str(&rest[open..]);
                rest = "";
                break;
            };
            let key = &after[..close];
            if let Some((_, v)) = slots.iter().find(|(k, _)| *k == key) {
                out.push_str(v);
            }
            rest = &after[close + 2..];
        }
        out.push_str(rest);
        out
    }
}

/// Where the links of a table lead (the dashboard and the static site differ).
pub trait Links {
    /// The page of one host (a URL, not yet escaped), if there is one.
    fn host(&self, host: &Host) -> Option<String>;
    /// The page of a customer, if there is one.
    fn customer(&self, name: &str) -> Option<String>;
    /// The name shown for a host (see `crate::names`), if names are on and it has one.
    fn name(&self, _host: &Host) -> Option<String> {
        None
    }
}

/// The per-class columns of the top-talkers table, in report order.
fn class_headers(out: &mut String) {
    for class in Class::ALL {
        let _ = write!(out, "<th>{}</th>", class.name());
    }
}

fn bytes_cell(out: &mut String, v: u64) {
    let _ = write!(out, "<td data-v=\"{v}\">{}</td>", esc(&units::bytes(v)));
}

fn usage_cells(out: &mut String, u: &Usage) {
    bytes_cell(out, u.total());
    bytes_cell(out, u.total_bytes(Dir::Tx));
    bytes_cell(out, u.total_bytes(Dir::Rx));
    for class in Class::ALL {
        bytes_cell(
            out,
            u.get(Dir::Tx, class, false)
                .saturating_add(u.get(Dir::Rx, class, false)),
        );
    }
}

/// The top-talkers table: the first `shown` rows, and a footer with the sum of all rows.
pub fn top_table(rows: &[Row], shown: usize, links: &dyn Links) -> String {
    let mut out = String::with_capacity(600 + rows.len().min(shown) * 700);
    out.push_str("<div class=\"wide\"><table class=\"sortable\" id=\"top\"><thead><tr><th>#</th><th class=\"t\">address</th><th class=\"t\">name</th><th>total</th><th>sent</th><th>received</th>");
    class_headers(&mut out);
    out.push_str("</tr></thead><tbody>");
    for (i, row) in rows.iter().take(shown).enumerate() {
        let addr = row.host.to_string();
        let _ = write!(
            out,
            "<tr data-host=\"{}\"><td data-v=\"{}\">{}</td><td class=\"t\">",
            esc(&addr),
            i + 1,
            i + 1
        );
        match links.host(&row.host) {
            Some(url) => {
                let _ = write!(out, "<a href=\"{}\">{}</a>", esc(&url), esc(&addr));
            }
            None => {
                let _ = write!(out, "{}", esc(&addr));
            }
        }
        out.push_str("</td><td class=\"t\">");
        // A name other than the customer's (a static name, or DNS), then the customer.
        if let Some(name) = links
            .name(&row.host)
            .filter(|n| Some(n.as_str()) != row.customer.as_deref())
        {
            let sep = if row.customer.is_some() { " · " } else { "" };
            let _ = write!(out, "<span class=\"dns\">{}</span>{sep}", esc(&name));
        }
        match (
            &row.customer,
            row.customer.as_deref().and_then(|c| links.customer(c)),
        ) {
            (Some(name), Some(url)) => {
                let _ = write!(out, "<a href=\"{}\">{}</a>", esc(&url), esc(name));
            }
            (Some(name), None) => {
                let _ = write!(out, "{}", esc(name));
            }
            (None, _) => {}
        }
        out.push_str("</td>");
        usage_cells(&mut out, &row.usage);
        out.push_str("</tr>");
    }
    out.push_str("</tbody>");
    let mut sum = Usage::default();
    for row in rows {
        sum.merge(&row.usage);
    }
    let _ = write!(
        out,
        "<tfoot><tr id=\"sum\"><td></td><td class=\"t\">all {} hosts</td><td></td>",
        rows.len()
    );
    usage_cells(&mut out, &sum);
    out.push_str("</tr></tfoot></table></div>");
    out
}

/// A graph image, with a caption unless it is empty.
pub fn figure(out: &mut String, src: &str, alt: &str, caption: &str, size: (u32, u32)) {
    let _ = write!(
        out,
        "<figure><img src=\"{}\" alt=\"{}\" width=\"{}\" height=\"{}\">",
        esc(src),
        esc(alt),
        size.0,
        size.1
    );
    if !caption.is_empty() {
        let _ = write!(out, "<figcaption>{}</figcaption>", esc(caption));
    }
    out.push_str("</figure>");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_and_url_parts() {
        assert_eq!(
            esc("<script>alert('x') & \"y\"</script>").to_string(),
            "&lt;script&gt;alert(&#39;x&#39;) &amp; &quot;y&quot;&lt;/script&gt;"
        );
        assert_eq!(url_part("2001:db8::/64"), "2001%3Adb8%3A%3A%2F64");
        assert_eq!(url_part("198.51.100.7"), "198.51.100.7");
    }

    struct NoLinks;
    impl Links for NoLinks {
        fn host(&self, host: &Host) -> Option<String> {
            Some(format!("/ip/{host}"))
        }
        fn customer(&self, _: &str) -> Option<String> {
            None
        }
    }

    fn row_of(host: &str) -> Row {
        Row {
            host: host.parse().unwrap(),
            customer: None,
            usage: Usage::default(),
            ips: Vec::new(),
            state: None,
            spoofed: None,
        }
    }

    #[test]
    fn names_are_escaped_in_the_table_and_the_layout() {
        let row = Row {
            customer: Some("<img src=x onerror=alert(1)>".into()),
            ..row_of("198.51.100.7")
        };
        let table = top_table(&[row], 10, &NoLinks);
        assert!(!table.contains("<img"), "{table}");
        assert!(table.contains("&lt;img src=x onerror=alert(1)&gt;"));
        let page = Page {
            title: "a <b> & c",
            assets: "/static/",
            home: "/",
            nav: "",
            body: &table,
            footer: "",
        }
        .render();
        assert!(page.contains("<title>a &lt;b&gt; &amp; c · bwacct</title>"));
        struct Named;
        impl Links for Named {
            fn host(&self, _: &Host) -> Option<String> {
                None
            }
            fn customer(&self, _: &str) -> Option<String> {
                Some("/customer/x".into())
            }
            fn name(&self, _: &Host) -> Option<String> {
                Some("<i>mail</i>".into())
            }
        }
        let row = Row {
            customer: Some("goneril".into()),
            ..row_of("198.51.100.8")
        };
        let table = top_table(&[row], 10, &Named);
        assert!(
            table.contains("<span class=\"dns\">&lt;i&gt;mail&lt;/i&gt;</span> · <a href=\"/customer/x\">goneril</a>"),
            "{table}"
        );
        assert!(page.contains("<h1>a &lt;b&gt; &amp; c</h1>"));
        assert!(!page.contains("{{"));
    }
}
