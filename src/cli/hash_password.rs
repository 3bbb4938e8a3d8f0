//! `shoplake hash-password`: an argon2 hash of a password read from stdin.

use anyhow::{Context, Result};

pub fn run() -> Result<()> {
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .context("reading the password from stdin")?;
    let pw = line.trim_end_matches(['\r', '\n']);
    anyhow::ensure!(!pw.is_empty(), "empty password on stdin");
    println!("{}", shoplake::serve::access::hash_password(pw));
    Ok(())
}
