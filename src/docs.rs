//! Manual pages and shell completions, generated from the command line's definition (`cli`), so
//! they never disagree with `--help`. Writes text only; nothing here runs a command.

use crate::cli::Cli;
use clap::CommandFactory;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Writes the completion script for `shell`.
pub fn completions(shell: clap_complete::Shell, out: &mut dyn Write) {
    clap_complete::generate(shell, &mut Cli::command(), "bwacct", out);
}

/// The main page, `bwacct.1`.
pub fn manpage(out: &mut dyn Write) -> std::io::Result<()> {
    clap_mangen::Man::new(Cli::command()).render(out)
}

/// Writes `bwacct.1` and `bwacct-SUBCOMMAND.1` for every subcommand into `dir`; returns the
/// files written.
pub fn manpages(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let cmd = Cli::command();
    let mut written = Vec::new();
    let main = dir.join("bwacct.1");
    let mut buf = Vec::new();
    clap_mangen::Man::new(cmd.clone()).render(&mut buf)?;
    std::fs::write(&main, buf)?;
    written.push(main);
    for sub in cmd.get_subcommands() {
        if sub.get_name() == "help" {
            continue;
        }
        let name = format!("bwacct-{}", sub.get_name());
        let page = sub
            .clone()
            .display_name(name.clone())
            .bin_name(name.clone());
        let mut buf = Vec::new();
        clap_mangen::Man::new(page).render(&mut buf)?;
        let path = dir.join(format!("{name}.1"));
        std::fs::write(&path, buf)?;
        written.push(path);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_and_completions_cover_every_subcommand() {
        let dir = tempfile::tempdir().unwrap();
        let files = manpages(dir.path()).unwrap();
        let names: Vec<String> = files
            .iter()
            .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        for want in [
            "bwacct.1",
            "bwacct-run.1",
            "bwacct-report.1",
            "bwacct-import-cdf.1",
        ] {
            assert!(
                names.iter().any(|n| n == want),
                "{want} missing from {names:?}"
            );
        }
        let report = std::fs::read_to_string(dir.path().join("bwacct-report.1")).unwrap();
        assert!(report.contains(".TH bwacct-report 1"), "{report}");
        assert!(report.contains("timezone"), "{report}");
        for shell in [
            clap_complete::Shell::Bash,
            clap_complete::Shell::Zsh,
            clap_complete::Shell::Fish,
        ] {
            let mut out = Vec::new();
            completions(shell, &mut out);
            let text = String::from_utf8(out).unwrap();
            assert!(
                text.contains("import-cdf") && text.contains("timezone"),
                "{shell}"
            );
        }
    }
}
