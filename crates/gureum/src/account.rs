//! `gureum account passwd`: an account's console password (stored as an argon2 hash).

use std::io::BufRead;
use std::path::Path;

use anyhow::{bail, Context};

use crate::setup;

pub fn passwd(data_dir: &Path, account: &str, from_stdin: bool) -> anyhow::Result<()> {
    let password = if from_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("reading the password from standard input")?;
        line.trim_end_matches(['\r', '\n']).to_string()
    } else {
        let first = rpassword::prompt_password(format!("New console password for {account}: "))
            .context("reading the password")?;
        let again = rpassword::prompt_password("Again: ").context("reading the password")?;
        if first != again {
            bail!("the passwords differ");
        }
        first
    };
    let cloud = setup::open_cloud(data_dir, "us-east-1")?;
    let id = gureum_console::password::set(&cloud, account, &password)?;
    println!("console password set for account {id}");
    Ok(())
}
