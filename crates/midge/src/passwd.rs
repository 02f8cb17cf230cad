#![allow(clippy::print_stdout)] // the tool talks to its user on stdout, as mosquitto_passwd does
//! `midge passwd`: manage password files, with `mosquitto_passwd`'s interface, messages and
//! exit codes, so scripts and files move between Mosquitto and Midge unchanged.

use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;

use midge_broker::password::{DEFAULT_ITERATIONS, HashKind, Line, PasswordFile, PasswordHash};

const USAGE: &str = "midge passwd is a tool for managing password files for Midge and Mosquitto.

Usage: midge passwd [-H sha512 | -H sha512-pbkdf2] [-I iterations] [-c | -D] passwordfile username
       midge passwd [-H sha512 | -H sha512-pbkdf2] [-I iterations] [-c] -b passwordfile username password
       midge passwd -U passwordfile
 -b : run in batch mode to allow passing passwords on the command line.
 -c : create a new password file. This will overwrite existing files.
 -D : delete the username rather than adding/updating its password.
 -H : specify the hashing algorithm. Defaults to sha512-pbkdf2, which is recommended.
      Mosquitto 1.6 and earlier defaulted to sha512.
 -I : PBKDF2 iterations (default 1000).
 -U : update a plain text password file to use hashed passwords.

The file format is mosquitto_passwd's: username:$7$iterations$salt$hash.
";

#[derive(Debug, Default)]
struct Options {
    batch: bool,
    create: bool,
    delete: bool,
    update: bool,
    kind: Option<HashKind>,
    iterations: Option<u32>,
    positional: Vec<String>,
}

/// Runs `midge passwd` with the arguments after the subcommand name.
pub(crate) fn run(args: &[String]) -> ExitCode {
    match run_inner(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(code) => ExitCode::from(code),
    }
}

fn usage() -> u8 {
    print!("{USAGE}");
    1
}

fn fail(message: &str) -> u8 {
    eprintln!("Error: {message}");
    1
}

fn parse(args: &[String]) -> Result<Options, u8> {
    let mut o = Options::default();
    let mut i = 0;
    while i < args.len() {
        let a = args[i].as_str();
        match a {
            "-b" => o.batch = true,
            "-c" => o.create = true,
            "-D" => o.delete = true,
            "-U" => o.update = true,
            "-H" => {
                i += 1;
                let Some(v) = args.get(i) else {
                    return Err(usage());
                };
                o.kind = Some(match v.as_str() {
                    "sha512-pbkdf2" => HashKind::Pbkdf2Sha512,
                    "sha512" => HashKind::Sha512,
                    "argon2id" => {
                        return Err(fail(
                            "Hash type 'argon2id' is not supported by midge passwd; use sha512-pbkdf2.",
                        ));
                    }
                    other => return Err(fail(&format!("Unknown hash type '{other}'"))),
                });
            }
            "-I" => {
                i += 1;
                let Some(v) = args.get(i) else {
                    return Err(usage());
                };
                match v.parse::<u32>() {
                    Ok(n) if n > 0 => o.iterations = Some(n),
                    _ => return Err(fail(&format!("Invalid number of iterations '{v}'."))),
                }
            }
            "--help" | "-h" => return Err(usage()),
            _ if a.starts_with('-') && a.len() > 1 => return Err(usage()),
            _ => o.positional.push(a.to_owned()),
        }
        i += 1;
    }
    Ok(o)
}

fn run_inner(args: &[String]) -> Result<(), u8> {
    let o = parse(args)?;
    if o.create && o.delete {
        return Err(fail("-c and -D cannot be used together."));
    }
    if o.update {
        let [file] = o.positional.as_slice() else {
            return Err(fail("-U argument given but password file missing."));
        };
        return update_plain(
            Path::new(file),
            o.kind.unwrap_or(HashKind::Pbkdf2Sha512),
            o.iterations,
        );
    }
    let expected = if o.batch { 3 } else { 2 };
    if o.positional.len() != expected {
        if o.create && o.positional.len() < 2 {
            return Err(fail(
                "-c argument given but password file or username missing.",
            ));
        }
        if o.delete && o.positional.len() < 2 {
            return Err(fail(
                "-D argument given but password file or username missing.",
            ));
        }
        return Err(usage());
    }
    let path = Path::new(&o.positional[0]);
    let username = &o.positional[1];
    if username.contains(':') {
        return Err(fail("Username must not contain the ':' character."));
    }
    let mut file = if o.create {
        PasswordFile::default()
    } else {
        read_file(path)?
    };
    if o.delete {
        let removed = file.remove(username);
        write_file(path, &file)?;
        if !removed {
            eprintln!("Warning: User {username} not found in password file.");
            return Err(1);
        }
        return Ok(());
    }
    let password = if o.batch {
        o.positional[2].clone()
    } else {
        read_password()?
    };
    let kind = o.kind.unwrap_or(HashKind::Pbkdf2Sha512);
    let hash = PasswordHash::new(
        kind,
        password.as_bytes(),
        o.iterations.unwrap_or(DEFAULT_ITERATIONS),
    )
    .map_err(|e| fail(&e.to_string()))?;
    file.set(username, &hash);
    write_file(path, &file)
}

fn read_file(path: &Path) -> Result<PasswordFile, u8> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        fail(&format!(
            "Unable to open password file {}. {}.",
            path.display(),
            describe(&e)
        ))
    })?;
    PasswordFile::parse(&text)
        .map_err(|e| fail(&format!("Invalid password file {}: {e}", path.display())))
}

fn describe(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "No such file or directory".to_owned(),
        std::io::ErrorKind::PermissionDenied => "Permission denied".to_owned(),
        _ => e.to_string(),
    }
}

/// Writes through a temporary file in the same directory and renames it, so a crash never
/// leaves a half-written password file. New files are readable by their owner only.
fn write_file(path: &Path, file: &PasswordFile) -> Result<(), u8> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.midge-tmp"));
    let result = (|| -> std::io::Result<()> {
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut f = opts.open(&tmp)?;
        if let Ok(meta) = std::fs::metadata(path) {
            f.set_permissions(meta.permissions())?;
        }
        f.write_all(file.to_text().as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    result.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        fail(&format!(
            "Unable to write password file {}. {}.",
            path.display(),
            describe(&e)
        ))
    })
}

fn read_password() -> Result<String, u8> {
    let first = prompt("Password: ")?;
    let second = prompt("Reenter password: ")?;
    if first != second {
        eprintln!("Error: Passwords do not match.");
        return Err(2);
    }
    if first.is_empty() {
        return Err(fail("Empty password."));
    }
    Ok(first)
}

fn prompt(text: &str) -> Result<String, u8> {
    print!("{text}");
    let _ = std::io::stdout().flush();
    let line = if std::io::stdin().is_terminal() {
        rpassword::read_password().map_err(|_| fail("Empty password."))?
    } else {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|_| fail("Empty password."))?;
        line.trim_end_matches(['\n', '\r']).to_owned()
    };
    println!();
    Ok(line)
}

/// `-U`: hashes every entry whose value is not already a hash Midge reads.
fn update_plain(path: &Path, kind: HashKind, iterations: Option<u32>) -> Result<(), u8> {
    let mut file = read_file(path)?;
    for line in &mut file.lines {
        if let Line::Entry { hash, .. } = line
            && PasswordHash::parse(hash).is_err()
        {
            let h = PasswordHash::new(
                kind,
                hash.as_bytes(),
                iterations.unwrap_or(DEFAULT_ITERATIONS),
            )
            .map_err(|e| fail(&e.to_string()))?;
            *hash = h.to_string();
        }
    }
    write_file(path, &file)
}
