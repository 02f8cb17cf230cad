//! Mosquitto-compatible password hashes and password files (`mosquitto_passwd`'s format), so
//! files move both ways between Mosquitto and Midge.
//!
//! A file has one `username:hash` line per user; lines starting with `#` and blank lines are
//! kept as they are. Hashes:
//!
//! | prefix | format | algorithm |
//! |---|---|---|
//! | `$7$` | `$7$<iterations>$<base64 salt>$<base64 hash>` | PBKDF2-HMAC-SHA512, 64-byte output; Mosquitto 2.0 writes 12-byte salts, 2.1 writes 12 or 64 |
//! | `$6$` | `$6$<base64 salt>$<base64 hash>` | SHA-512 of password then salt (Mosquitto ≤ 1.6) |
//!
//! Base64 is the standard alphabet with padding. Verification compares in constant time.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use sha2::{Digest, Sha512};
use subtle::ConstantTimeEq;

/// PBKDF2 iterations written by default (Mosquitto 2.1's default; Mosquitto 2.0 wrote 101 and
/// reads any count).
pub const DEFAULT_ITERATIONS: u32 = 1000;

/// Salt length written by default: 12 bytes, which every Mosquitto 2.x broker reads.
pub const SALT_LEN: usize = 12;

const HASH_LEN: usize = 64;

/// A stored password hash.
#[derive(Clone, PartialEq, Eq)]
pub enum PasswordHash {
    /// `$7$`: PBKDF2-HMAC-SHA512.
    Pbkdf2Sha512 {
        /// Iteration count.
        iterations: u32,
        /// Salt.
        salt: Vec<u8>,
        /// 64-byte derived key.
        hash: Vec<u8>,
    },
    /// `$6$`: SHA-512(password ‖ salt).
    Sha512 {
        /// Salt.
        salt: Vec<u8>,
        /// 64-byte digest.
        hash: Vec<u8>,
    },
}

/// The hash algorithm to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashKind {
    /// `sha512-pbkdf2` (`$7$`), the default.
    Pbkdf2Sha512,
    /// `sha512` (`$6$`), for compatibility with old brokers.
    Sha512,
}

/// A password hash or file that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    /// The hash has a prefix Midge does not read.
    #[error("unsupported password hash type {0:?} (Midge reads $6$ and $7$)")]
    UnsupportedHash(String),
    /// The hash is damaged.
    #[error("malformed password hash: {0}")]
    Malformed(&'static str),
    /// A line of the file has no `:`.
    #[error("line {line}: expected username:hash")]
    MalformedLine {
        /// 1-based line number.
        line: usize,
    },
    /// The system's random source failed.
    #[error("cannot generate a salt: {0}")]
    Random(String),
}

fn b64(field: &'static str, s: &str) -> Result<Vec<u8>, PasswordError> {
    B64.decode(s).map_err(|_| PasswordError::Malformed(field))
}

impl PasswordHash {
    /// Parses a stored hash (the part after `username:`).
    pub fn parse(s: &str) -> Result<PasswordHash, PasswordError> {
        let s = s.trim_end_matches(['\r', '\n']);
        if let Some(rest) = s.strip_prefix("$7$") {
            let mut parts = rest.split('$');
            let (Some(iter), Some(salt), Some(hash), None) =
                (parts.next(), parts.next(), parts.next(), parts.next())
            else {
                return Err(PasswordError::Malformed("expected $7$iterations$salt$hash"));
            };
            let iterations: u32 = iter
                .parse()
                .map_err(|_| PasswordError::Malformed("iteration count"))?;
            if iterations == 0 {
                return Err(PasswordError::Malformed("iteration count is 0"));
            }
            let salt = b64("salt", salt)?;
            let hash = b64("hash", hash)?;
            if hash.len() != HASH_LEN {
                return Err(PasswordError::Malformed("hash must be 64 bytes"));
            }
            Ok(PasswordHash::Pbkdf2Sha512 {
                iterations,
                salt,
                hash,
            })
        } else if let Some(rest) = s.strip_prefix("$6$") {
            let Some((salt, hash)) = rest.split_once('$') else {
                return Err(PasswordError::Malformed("expected $6$salt$hash"));
            };
            let salt = b64("salt", salt)?;
            let hash = b64("hash", hash)?;
            if hash.len() != HASH_LEN {
                return Err(PasswordError::Malformed("hash must be 64 bytes"));
            }
            Ok(PasswordHash::Sha512 { salt, hash })
        } else {
            let prefix: String = s
                .chars()
                .take_while(|c| *c != '$' || s.starts_with('$'))
                .take(12)
                .collect();
            Err(PasswordError::UnsupportedHash(prefix))
        }
    }

    /// Hashes `password` with a fresh random salt.
    pub fn new(
        kind: HashKind,
        password: &[u8],
        iterations: u32,
    ) -> Result<PasswordHash, PasswordError> {
        let mut salt = vec![0u8; SALT_LEN];
        getrandom::fill(&mut salt).map_err(|e| PasswordError::Random(e.to_string()))?;
        Ok(PasswordHash::with_salt(kind, password, salt, iterations))
    }

    /// Hashes `password` with the given salt (tests, reproducible vectors).
    pub fn with_salt(
        kind: HashKind,
        password: &[u8],
        salt: Vec<u8>,
        iterations: u32,
    ) -> PasswordHash {
        match kind {
            HashKind::Pbkdf2Sha512 => {
                let iterations = iterations.max(1);
                let hash = pbkdf2_sha512(password, &salt, iterations);
                PasswordHash::Pbkdf2Sha512 {
                    iterations,
                    salt,
                    hash,
                }
            }
            HashKind::Sha512 => {
                let hash = sha512_salted(password, &salt);
                PasswordHash::Sha512 { salt, hash }
            }
        }
    }

    /// Checks `password` against the hash in constant time. PBKDF2 costs CPU: call it off
    /// any connection's I/O path.
    pub fn verify(&self, password: &[u8]) -> bool {
        let (computed, stored) = match self {
            PasswordHash::Pbkdf2Sha512 {
                iterations,
                salt,
                hash,
            } => (pbkdf2_sha512(password, salt, *iterations), hash),
            PasswordHash::Sha512 { salt, hash } => (sha512_salted(password, salt), hash),
        };
        computed.ct_eq(stored).into()
    }
}

fn pbkdf2_sha512(password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
    let mut out = vec![0u8; HASH_LEN];
    pbkdf2::pbkdf2_hmac::<Sha512>(password, salt, iterations, &mut out);
    out
}

fn sha512_salted(password: &[u8], salt: &[u8]) -> Vec<u8> {
    let mut h = Sha512::new();
    h.update(password);
    h.update(salt);
    h.finalize().to_vec()
}

impl fmt::Display for PasswordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PasswordHash::Pbkdf2Sha512 {
                iterations,
                salt,
                hash,
            } => {
                write!(
                    f,
                    "$7${iterations}${}${}",
                    B64.encode(salt),
                    B64.encode(hash)
                )
            }
            PasswordHash::Sha512 { salt, hash } => {
                write!(f, "$6${}${}", B64.encode(salt), B64.encode(hash))
            }
        }
    }
}

impl fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The hash itself is not secret, but there is no reason to print it in logs.
        match self {
            PasswordHash::Pbkdf2Sha512 { iterations, .. } => {
                write!(f, "PasswordHash($7$, {iterations} iterations)")
            }
            PasswordHash::Sha512 { .. } => f.write_str("PasswordHash($6$)"),
        }
    }
}

/// One line of a password file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    /// `username:hash` (the hash kept as text so unknown formats survive a rewrite).
    Entry {
        /// The user name.
        username: String,
        /// The stored hash text.
        hash: String,
    },
    /// A comment or blank line, kept verbatim.
    Other(String),
}

/// A password file, kept in order with its comments.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PasswordFile {
    /// The lines.
    pub lines: Vec<Line>,
}

impl PasswordFile {
    /// Parses a file's text. Lines are `username:rest-of-line`.
    pub fn parse(text: &str) -> Result<PasswordFile, PasswordError> {
        let mut lines = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim_end_matches('\r');
            if line.trim().is_empty() || line.starts_with('#') {
                lines.push(Line::Other(line.to_owned()));
                continue;
            }
            let Some((user, hash)) = line.split_once(':') else {
                return Err(PasswordError::MalformedLine { line: i + 1 });
            };
            lines.push(Line::Entry {
                username: user.to_owned(),
                hash: hash.to_owned(),
            });
        }
        Ok(PasswordFile { lines })
    }

    /// The stored hash text of `username`.
    pub fn get(&self, username: &str) -> Option<&str> {
        self.lines.iter().find_map(|l| match l {
            Line::Entry { username: u, hash } if u == username => Some(hash.as_str()),
            _ => None,
        })
    }

    /// Checks a user's password. Unknown users and unreadable hashes fail.
    pub fn verify(&self, username: &str, password: &[u8]) -> bool {
        self.get(username)
            .and_then(|h| PasswordHash::parse(h).ok())
            .is_some_and(|h| h.verify(password))
    }

    /// Sets a user's hash, replacing an existing entry in place or appending.
    pub fn set(&mut self, username: &str, hash: &PasswordHash) {
        let text = hash.to_string();
        for line in &mut self.lines {
            if let Line::Entry { username: u, hash } = line
                && u == username
            {
                *hash = text;
                return;
            }
        }
        self.lines.push(Line::Entry {
            username: username.to_owned(),
            hash: text,
        });
    }

    /// Removes a user; returns whether it existed.
    pub fn remove(&mut self, username: &str) -> bool {
        let before = self.lines.len();
        self.lines
            .retain(|l| !matches!(l, Line::Entry { username: u, .. } if u == username));
        self.lines.len() != before
    }

    /// The file's text.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for l in &self.lines {
            match l {
                Line::Entry { username, hash } => {
                    out.push_str(username);
                    out.push(':');
                    out.push_str(hash);
                }
                Line::Other(s) => out.push_str(s),
            }
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Written by Debian's `mosquitto_passwd` 2.0.11 (`-c -b pw.txt alice s3cret`).
    const MOSQUITTO_LINE: &str = "alice:$7$101$CX+MXvBPE0/3uaT5$21LP2XKPBzc3we1KFiL4QBwhUbX+HgUVBQQ/TxEkwNPvB0M47FjZ9kjeuSdGZmBouxvszZchBLUgodN6M2rHPw==";

    #[test]
    fn verifies_a_mosquitto_passwd_line() {
        let file = PasswordFile::parse(MOSQUITTO_LINE).unwrap();
        assert!(file.verify("alice", b"s3cret"));
        assert!(!file.verify("alice", b"s3cret "));
        assert!(!file.verify("bob", b"s3cret"));
    }

    #[test]
    fn pbkdf2_round_trips_through_text() {
        let h = PasswordHash::new(HashKind::Pbkdf2Sha512, b"pw", 50).unwrap();
        let text = h.to_string();
        assert!(text.starts_with("$7$50$"));
        // 12-byte salt → 16 base64 characters; 64-byte hash → 88.
        let parts: Vec<&str> = text.split('$').collect();
        assert_eq!(parts[3].len(), 16);
        assert_eq!(parts[4].len(), 88);
        let back = PasswordHash::parse(&text).unwrap();
        assert_eq!(back, h);
        assert!(back.verify(b"pw"));
        assert!(!back.verify(b"pW"));
    }

    #[test]
    fn sha512_legacy_hashes_verify() {
        let h = PasswordHash::with_salt(HashKind::Sha512, b"pw", b"0123456789ab".to_vec(), 0);
        let parsed = PasswordHash::parse(&h.to_string()).unwrap();
        assert!(parsed.verify(b"pw"));
        assert!(!parsed.verify(b"px"));
    }

    #[test]
    fn file_edits_keep_comments_and_order() {
        let mut f = PasswordFile::parse("# users\nalice:$6$x$y\n\nbob:plain\n").unwrap();
        let h = PasswordHash::with_salt(HashKind::Sha512, b"a", vec![1; 12], 0);
        f.set("alice", &h);
        assert!(f.remove("bob"));
        assert!(!f.remove("carol"));
        let text = f.to_text();
        assert!(text.starts_with("# users\nalice:$6$"));
        assert!(text.ends_with("\n\n"));
    }

    #[test]
    fn unsupported_and_malformed_hashes_are_errors() {
        assert!(matches!(
            PasswordHash::parse("plain"),
            Err(PasswordError::UnsupportedHash(_))
        ));
        assert!(PasswordHash::parse("$7$0$AAAA$AAAA").is_err());
        assert!(PasswordHash::parse("$7$10$!!$AAAA").is_err());
    }
}
