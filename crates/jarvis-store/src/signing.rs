//! The operator's audit key, which signs heads of the chain: an ed25519 key
//! in a file outside the database, or an external signer (a program that
//! holds the key where the gateway cannot read it: another user, another
//! machine, a hardware token) that reads the bytes to sign on stdin and
//! prints the signature in hex.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Why the key file could not be used.
#[derive(Debug, thiserror::Error)]
#[error("audit key {path}: {problem}")]
pub struct KeyError {
    /// The key file.
    pub path: PathBuf,
    /// What is wrong.
    pub problem: String,
}

/// The signing key for checkpoints.
pub struct AuditKey {
    how: How,
}

enum How {
    /// The key itself, in this process.
    Local(SigningKey),
    /// A program that signs with a key this process never sees.
    Command(SignerCommand),
}

struct SignerCommand {
    program: PathBuf,
    args: Vec<String>,
    public: VerifyingKey,
}

/// How long an external signer may take before it counts as failed: a head
/// is signed while writers wait for the chain's lock.
const SIGNER_TIMEOUT: Duration = Duration::from_secs(10);

impl std::fmt::Debug for AuditKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the secret half.
        write!(f, "AuditKey({})", self.public_hex())
    }
}

impl AuditKey {
    /// Loads the key at `path`, or creates one there (mode 0600) if none
    /// exists yet.
    ///
    /// # Errors
    /// [`KeyError`] when the file cannot be read, written or parsed, or is
    /// readable by others than its owner.
    pub fn load_or_create(path: &Path) -> Result<AuditKey, KeyError> {
        let err = |problem: String| KeyError {
            path: path.to_owned(),
            problem,
        };
        match std::fs::read_to_string(path) {
            Ok(pem) => {
                #[cfg(unix)]
                {
                    use std::os::unix::fs::PermissionsExt;
                    let mode = std::fs::metadata(path)
                        .map_err(|e| err(e.to_string()))?
                        .permissions()
                        .mode();
                    if mode & 0o077 != 0 {
                        return Err(err(format!(
                            "is readable by others (mode {:o}); run chmod 600 on it",
                            mode & 0o777
                        )));
                    }
                }
                let key = SigningKey::from_pkcs8_pem(&pem)
                    .map_err(|e| err(format!("is not an ed25519 PKCS#8 PEM key: {e}")))?;
                Ok(AuditKey {
                    how: How::Local(key),
                })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = SigningKey::generate(&mut rand_core::OsRng);
                let pem = key
                    .to_pkcs8_pem(Default::default())
                    .map_err(|e| err(format!("cannot encode a new key: {e}")))?;
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir)
                        .map_err(|e| err(format!("cannot create its directory: {e}")))?;
                }
                let mut options = std::fs::OpenOptions::new();
                options.write(true).create_new(true);
                #[cfg(unix)]
                {
                    use std::os::unix::fs::OpenOptionsExt;
                    options.mode(0o600);
                }
                let mut f = options
                    .open(path)
                    .map_err(|e| err(format!("cannot be created: {e}")))?;
                f.write_all(pem.as_bytes())
                    .and_then(|()| f.sync_all())
                    .map_err(|e| err(format!("cannot be written: {e}")))?;
                Ok(AuditKey {
                    how: How::Local(key),
                })
            }
            Err(e) => Err(err(format!("cannot be read: {e}"))),
        }
    }

    /// A fresh key held only in memory (tests, benchmarks).
    pub fn ephemeral() -> AuditKey {
        AuditKey {
            how: How::Local(SigningKey::generate(&mut rand_core::OsRng)),
        }
    }

    /// An external signer: `program` with `args` reads the bytes to sign on
    /// stdin and prints their ed25519 signature in hex on stdout; the
    /// private key stays wherever the program keeps it. Every signature it
    /// prints is checked against `public_hex` before it is stored.
    ///
    /// # Errors
    /// [`KeyError`] naming the program when `public_hex` is not an ed25519
    /// public key in hex.
    pub fn command(
        program: PathBuf,
        args: Vec<String>,
        public_hex: &str,
    ) -> Result<AuditKey, KeyError> {
        let public = parse_public(public_hex).ok_or_else(|| KeyError {
            path: program.clone(),
            problem: format!(
                "`{public_hex}` is not an ed25519 public key (64 hex digits) for this signer"
            ),
        })?;
        Ok(AuditKey {
            how: How::Command(SignerCommand {
                program,
                args,
                public,
            }),
        })
    }

    /// The public half, hex.
    pub fn public_hex(&self) -> String {
        let public = match &self.how {
            How::Local(key) => key.verifying_key(),
            How::Command(c) => c.public,
        };
        hex::encode(public.to_bytes())
    }

    /// Whether the private key is held by another program.
    pub fn is_external(&self) -> bool {
        matches!(self.how, How::Command(_))
    }

    /// Signs `message`, returning the signature in hex.
    ///
    /// # Errors
    /// [`KeyError`] naming the signer program when it cannot be started,
    /// fails, takes longer than ten seconds, or prints anything but a
    /// signature of `message` by its configured public key.
    pub async fn sign(&self, message: &[u8]) -> Result<String, KeyError> {
        match &self.how {
            How::Local(key) => Ok(hex::encode(key.sign(message).to_bytes())),
            How::Command(c) => c.sign(message).await,
        }
    }
}

impl SignerCommand {
    async fn sign(&self, message: &[u8]) -> Result<String, KeyError> {
        let err = |problem: String| KeyError {
            path: self.program.clone(),
            problem,
        };
        let mut child = tokio::process::Command::new(&self.program)
            .args(&self.args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| err(format!("the signer cannot be started: {e}")))?;
        let mut stdin = child
            .stdin
            .take()
            .ok_or_else(|| err("the signer has no stdin".into()))?;
        let mut stdout = child
            .stdout
            .take()
            .ok_or_else(|| err("the signer has no stdout".into()))?;
        let mut stderr = child
            .stderr
            .take()
            .ok_or_else(|| err("the signer has no stderr".into()))?;
        let run = async {
            // Written while the output is read, so a signer that answers
            // before reading everything cannot deadlock against us.
            let write = async {
                let written = stdin.write_all(message).await;
                drop(stdin);
                written
            };
            let mut out = Vec::new();
            let mut diag = Vec::new();
            let mut stdout = (&mut stdout).take(4096);
            let mut stderr = (&mut stderr).take(4096);
            let (written, read, _) = tokio::join!(
                write,
                stdout.read_to_end(&mut out),
                stderr.read_to_end(&mut diag)
            );
            let status = child.wait().await;
            (written, read, status, out, diag)
        };
        let (written, read, status, out, diag) = tokio::time::timeout(SIGNER_TIMEOUT, run)
            .await
            .map_err(|_| {
                err(format!(
                    "the signer gave no signature within {}s",
                    SIGNER_TIMEOUT.as_secs()
                ))
            })?;
        let status = status.map_err(|e| err(format!("the signer cannot be waited for: {e}")))?;
        if !status.success() {
            let said = String::from_utf8_lossy(&diag);
            let said = said.lines().next().unwrap_or("").trim();
            return Err(err(format!(
                "the signer failed ({status}){}",
                if said.is_empty() {
                    String::new()
                } else {
                    format!(": {said}")
                }
            )));
        }
        written.map_err(|e| err(format!("the signer did not read what to sign: {e}")))?;
        read.map_err(|e| err(format!("the signer's output cannot be read: {e}")))?;
        let text = String::from_utf8_lossy(&out);
        let signature = text.trim().to_ascii_lowercase();
        let valid = hex::decode(&signature)
            .ok()
            .and_then(|b| <[u8; 64]>::try_from(b.as_slice()).ok())
            .is_some_and(|b| {
                self.public
                    .verify(message, &Signature::from_bytes(&b))
                    .is_ok()
            });
        if !valid {
            return Err(err(format!(
                "the signer printed `{}`, which is not a signature of what it was given by the configured public key {}",
                signature.chars().take(140).collect::<String>(),
                hex::encode(self.public.to_bytes())
            )));
        }
        Ok(signature)
    }
}

/// Refuses a key file inside `database_directory`, the directory a
/// database server keeps its files in: whoever can write the database
/// there can read the key, and a key that signs for a writer proves
/// nothing about the writer.
///
/// # Errors
/// [`KeyError`] naming the key file and the directory.
pub fn refuse_key_inside(key: &Path, database_directory: &Path) -> Result<(), KeyError> {
    if is_inside(key, database_directory) {
        return Err(KeyError {
            path: key.to_owned(),
            problem: format!(
                "sits in the database's data directory {}: whoever can write the database could sign for it; keep the key on the gateway host outside it, or use an external signer",
                database_directory.display()
            ),
        });
    }
    Ok(())
}

/// Whether `path` is `dir` or inside it, comparing resolved paths where
/// they exist (a symlink or `..` does not hide the key).
pub(crate) fn is_inside(path: &Path, dir: &Path) -> bool {
    let resolve = |p: &Path| -> PathBuf {
        if let Ok(real) = std::fs::canonicalize(p) {
            return real;
        }
        // A file not made yet: resolve its directory and keep its name.
        match (p.parent(), p.file_name()) {
            (Some(parent), Some(name)) if !parent.as_os_str().is_empty() => {
                std::fs::canonicalize(parent).map_or_else(|_| p.to_owned(), |d| d.join(name))
            }
            _ => p.to_owned(),
        }
    };
    resolve(path).starts_with(resolve(dir))
}

fn parse_public(public_hex: &str) -> Option<VerifyingKey> {
    let bytes = hex::decode(public_hex.trim()).ok()?;
    VerifyingKey::from_bytes(&<[u8; 32]>::try_from(bytes.as_slice()).ok()?).ok()
}

/// What a checkpoint signs.
pub(crate) fn checkpoint_message(seq: i64, hash: &str) -> String {
    format!("jarvis-audit-checkpoint:v1:{seq}:{hash}")
}

/// Whether `signature_hex` is `public_hex`'s signature over `message`.
pub(crate) fn verify_signature(public_hex: &str, message: &str, signature_hex: &str) -> bool {
    let Some(vk) = parse_public(public_hex) else {
        return false;
    };
    let Ok(sig) = hex::decode(signature_hex) else {
        return false;
    };
    let Ok(sig) = <[u8; 64]>::try_from(sig.as_slice()) else {
        return false;
    };
    vk.verify(message.as_bytes(), &Signature::from_bytes(&sig))
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn signs_and_verifies() {
        let k = AuditKey::ephemeral();
        let sig = k.sign(b"m").await.expect("sign");
        assert!(verify_signature(&k.public_hex(), "m", &sig));
        assert!(!verify_signature(&k.public_hex(), "n", &sig));
        assert!(!verify_signature(
            &AuditKey::ephemeral().public_hex(),
            "m",
            &sig
        ));
        assert!(!verify_signature("zz", "m", &sig));
    }

    #[test]
    fn key_file_is_created_private_and_reloaded() {
        let dir = std::env::temp_dir().join(format!("jarvis-key-{}", std::process::id()));
        let path = dir.join("audit.key");
        let _ = std::fs::remove_dir_all(&dir);
        let a = AuditKey::load_or_create(&path).expect("create");
        let b = AuditKey::load_or_create(&path).expect("reload");
        assert_eq!(a.public_hex(), b.public_hex());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777,
                0o600
            );
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
            let e = AuditKey::load_or_create(&path).expect_err("too open");
            assert!(e.to_string().contains("readable by others"), "{e}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    fn temp_dir(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("jarvis-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        dir
    }

    /// A signer as an operator would write one: a shell script around
    /// openssl, holding a key file (made by openssl) the gateway is never
    /// given.
    fn openssl_signer(dir: &Path) -> (PathBuf, PathBuf, String) {
        let key_file = dir.join("held-elsewhere.pem");
        let made = std::process::Command::new("openssl")
            .args(["genpkey", "-algorithm", "ed25519", "-out"])
            .arg(&key_file)
            .status()
            .expect("openssl runs");
        assert!(made.success(), "openssl genpkey");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600))
                .expect("chmod");
        }
        let public = AuditKey::load_or_create(&key_file)
            .expect("openssl's key reads as an audit key")
            .public_hex();
        let script = dir.join("sign");
        std::fs::write(
            &script,
            "#!/bin/sh\nset -e\nt=$(mktemp)\ntrap 'rm -f \"$t\" \"$t.sig\"' EXIT\ncat > \"$t\"\n\
             openssl pkeyutl -sign -inkey \"$1\" -rawin -in \"$t\" -out \"$t.sig\"\n\
             od -An -v -tx1 \"$t.sig\" | tr -d ' \\n'\n",
        )
        .expect("write the signer");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755))
                .expect("chmod");
        }
        (script, key_file, public)
    }

    #[tokio::test]
    async fn an_external_signer_signs_with_a_key_this_process_never_reads() {
        let dir = temp_dir("signer");
        let (script, key_file, public) = openssl_signer(&dir);
        let signer = AuditKey::command(
            script.clone(),
            vec![key_file.display().to_string()],
            &public,
        )
        .expect("signer");
        assert!(signer.is_external());
        assert_eq!(signer.public_hex(), public);
        let message = "jarvis-audit-head:v2:{\"seq\":5}";
        let sig = signer.sign(message.as_bytes()).await.expect("signs");
        assert!(verify_signature(&public, message, &sig));
        // Ed25519 is deterministic: the same key here signs the same bytes.
        let local = AuditKey::load_or_create(&key_file).expect("key");
        assert_eq!(local.sign(message.as_bytes()).await.expect("sign"), sig);

        // A signer holding another key than the one configured is refused.
        let other = AuditKey::ephemeral().public_hex();
        let wrong = AuditKey::command(script.clone(), vec![key_file.display().to_string()], &other)
            .expect("signer");
        let e = wrong.sign(b"x").await.expect_err("wrong key");
        assert!(e.to_string().contains("not a signature"), "{e}");
        // A failing signer says so, with what it printed on stderr.
        let broken = AuditKey::command(
            script.clone(),
            vec![dir.join("absent.pem").display().to_string()],
            &public,
        )
        .expect("signer");
        let e = broken.sign(b"x").await.expect_err("fails");
        assert!(e.to_string().contains("the signer failed"), "{e}");
        let e = AuditKey::command(dir.join("no-such-program"), vec![], &public)
            .expect("signer")
            .sign(b"x")
            .await
            .expect_err("absent");
        assert!(e.to_string().contains("cannot be started"), "{e}");
        let e = AuditKey::command(script, vec![], "beef").expect_err("short key");
        assert!(e.to_string().contains("not an ed25519 public key"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_key_inside_the_database_directory_is_refused() {
        let dir = temp_dir("placement");
        let data = dir.join("pgdata");
        std::fs::create_dir_all(data.join("base")).expect("mkdir");
        for inside in [
            data.join("audit.key"),
            data.join("base/audit.key"),
            dir.join("pgdata/../pgdata/audit.key"),
        ] {
            let e = refuse_key_inside(&inside, &data).expect_err("inside");
            assert!(
                e.to_string().contains("data directory")
                    && e.to_string().contains("external signer"),
                "{e}"
            );
        }
        #[cfg(unix)]
        {
            let link = dir.join("link");
            std::os::unix::fs::symlink(&data, &link).expect("symlink");
            assert!(refuse_key_inside(&link.join("audit.key"), &data).is_err());
        }
        for outside in [dir.join("audit.key"), dir.join("pgdata2/audit.key")] {
            refuse_key_inside(&outside, &data).expect("outside");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
