//! `passwd`: reads a password (twice from a terminal, without echo; one line from standard
//! input otherwise; never from the command line, where `ps` would show it) and returns its
//! argon2 hash for `[web] users`.

use super::AppError;
use crate::web::auth;
use std::io::IsTerminal;

pub fn passwd() -> Result<String, AppError> {
    let password = if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("Password: ")?;
        let again = rpassword::prompt_password("Again: ")?;
        if first != again {
            return Err(AppError::Usage("the two passwords differ".into()));
        }
        first
    } else {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line)?;
        let line = line.strip_suffix('\n').unwrap_or(&line);
        line.strip_suffix('\r').unwrap_or(line).to_owned()
    };
    Ok(auth::hash_password(&password)?)
}
