//! Console passwords: argon2id hashes (PHC strings with their own random salt) kept in the
//! store, one per account. `gureum account passwd` sets them; the sign-in form checks them.

use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::Argon2;
use gureum_core::Cloud;
use gureum_store::StoreError;

/// The shortest password accepted.
pub const MIN_LEN: usize = 8;

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("the password must be at least {MIN_LEN} characters long")]
    TooShort,
    #[error("no account {0}")]
    NoAccount(String),
    #[error("hashing the password: {0}")]
    Hash(String),
    #[error("{0}")]
    Store(#[from] StoreError),
}

impl From<gureum_store::rusqlite::Error> for PasswordError {
    fn from(e: gureum_store::rusqlite::Error) -> Self {
        PasswordError::Store(StoreError::Sqlite(e))
    }
}

pub fn hash(password: &str) -> Result<String, PasswordError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| PasswordError::Hash(e.to_string()))
}

pub fn verify(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc).ok().is_some_and(|h| {
        Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}

/// Set the console password of an account (by id or name); returns the account id. Blocking.
pub fn set(cloud: &Cloud, account: &str, password: &str) -> Result<String, PasswordError> {
    if password.chars().count() < MIN_LEN {
        return Err(PasswordError::TooShort);
    }
    let phc = hash(password)?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    cloud.store().write(|tx| {
        let Some(acct) = gureum_store::accounts::find(tx, account)? else {
            return Err(PasswordError::NoAccount(account.to_string()));
        };
        gureum_store::console::set_password(tx, &acct.id, &phc, now)?;
        Ok(acct.id)
    })
}

/// The account (id, name) whose password this is, if it is. Blocking (argon2 is slow on
/// purpose: run it off the async executor).
pub fn check(
    cloud: &Cloud,
    account: &str,
    password: &str,
) -> Result<Option<(String, String)>, StoreError> {
    let found = cloud.store().read(|c| {
        let Some(acct) = gureum_store::accounts::find(c, account)? else {
            return Ok::<_, StoreError>(None);
        };
        let phc = gureum_store::console::password_hash(c, &acct.id)?;
        Ok(Some((acct, phc)))
    })?;
    match found {
        Some((acct, Some(phc))) if verify(password, &phc) => Ok(Some((acct.id, acct.name))),
        Some((_, Some(_))) => Ok(None),
        _ => {
            // Same work whether or not the account exists or has a password, so the time
            // taken does not tell which accounts do.
            let _ = verify(password, DUMMY);
            Ok(None)
        }
    }
}

/// A hash of a random password, verified against when there is nothing to verify.
const DUMMY: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$e0H3vbXLXk4r1sF1Rrq1TnSx1L9Mxq+8iPZQcA4e7gU";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_and_differ() {
        let a = hash("correct horse").unwrap();
        let b = hash("correct horse").unwrap();
        assert_ne!(a, b, "salted");
        assert!(a.starts_with("$argon2id$"));
        assert!(verify("correct horse", &a));
        assert!(!verify("wrong horse", &a));
        assert!(!verify("x", "not a hash"));
        assert!(!verify("x", DUMMY));
    }
}
