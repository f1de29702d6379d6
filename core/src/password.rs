//! Password hashing: argon2id for new hashes, Better Auth's scrypt hashes verified and
//! upgraded.
//!
//! Hashing is CPU-bound for tens of milliseconds, so it never runs on the async workers: each
//! hash runs on tokio's blocking pool, and a semaphore bounds how many run at once (one per
//! core by default), so a flood of sign-ins queues instead of starving everything else.
//!
//! argon2 works in `m` KiB of memory (19 MiB by default). The hasher keeps one such buffer per
//! permit and reuses it, rather than allocating and faulting in a fresh one for every hash:
//! memory stays bounded at `concurrency × m` under any load, and no time goes to page faults.
//! Argon2's first pass writes every block before reading it, so a reused buffer needs no
//! clearing and gives exactly the hash a fresh one would.

pub use crate::routes::PasswordCheck;
use std::sync::{Arc, Mutex, PoisonError};

use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use subtle::ConstantTimeEq;
use tokio::sync::Semaphore;
use unicode_normalization::UnicodeNormalization;

/// Why hashing failed. Never carries the password.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HashError {
    /// The hasher's worker failed (a panic in the blocking pool).
    #[error("password hashing task failed")]
    Worker,
    /// argon2 refused the input.
    #[error("argon2: {0}")]
    Argon2(String),
}

/// The result of checking a password against a stored hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verified {
    /// The password matches.
    pub ok: bool,
    /// The hash is in an older format or with weaker parameters than the current ones; re-hash
    /// the password (which the caller now knows) and store the new hash.
    pub needs_rehash: bool,
}

/// argon2id parameters; OWASP's minimum (m = 19456 KiB, t = 2, p = 1) by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Argon2Params {
    /// Memory in KiB.
    pub memory_kib: u32,
    /// Iterations.
    pub iterations: u32,
    /// Lanes.
    pub parallelism: u32,
}

impl Default for Argon2Params {
    fn default() -> Self {
        Self {
            memory_kib: 19456,
            iterations: 2,
            parallelism: 1,
        }
    }
}

/// Hashes and verifies passwords off the async workers.
#[derive(Debug, Clone)]
pub struct PasswordHasher {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    params: Params,
    /// One per hash allowed to run at once; a job holds its permit until it has finished,
    /// even when the caller stopped waiting for it.
    permits: Arc<Semaphore>,
    /// How many buffers [`Inner::memory`] keeps at most: the number of permits.
    max_kept: usize,
    /// A real hash of a random password: verifying against it costs what a real check costs,
    /// so an unknown email answers in the same time as a wrong password.
    dummy: String,
    /// Idle argon2 working memory, `params.block_count()` blocks each: at most one per permit,
    /// made on first use and kept.
    memory: Mutex<Vec<Vec<Block>>>,
}

impl Inner {
    /// Runs `f` with a working-memory buffer of this hasher, returning the buffer afterwards.
    fn with_memory<T>(&self, f: impl FnOnce(&mut Vec<Block>) -> T) -> T {
        let mut buf = self
            .memory
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop()
            .unwrap_or_default();
        let out = f(&mut buf);
        let mut kept = self.memory.lock().unwrap_or_else(PoisonError::into_inner);
        if kept.len() < self.max_kept {
            kept.push(buf);
        }
        out
    }
}

impl PasswordHasher {
    /// A hasher with `params`, running at most `concurrency` hashes at once.
    pub fn new(params: Argon2Params, concurrency: usize) -> Result<Self, HashError> {
        let params = Params::new(
            params.memory_kib,
            params.iterations,
            params.parallelism,
            None,
        )
        .map_err(|e| HashError::Argon2(e.to_string()))?;
        let dummy_password = crate::crypto::random_string(24, crate::crypto::ALPHANUMERIC);
        // The dummy's buffer is dropped: an idle server keeps no argon2 memory.
        let dummy = hash_argon2(&params, &mut Vec::new(), &dummy_password)?;
        Ok(Self {
            inner: Arc::new(Inner {
                params,
                permits: Arc::new(Semaphore::new(concurrency.max(1))),
                max_kept: concurrency.max(1),
                dummy,
                memory: Mutex::new(Vec::new()),
            }),
        })
    }

    /// A hasher with OWASP's parameters and one hash at a time per core.
    pub fn with_defaults() -> Result<Self, HashError> {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self::new(Argon2Params::default(), cores)
    }

    async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce(&Inner) -> T + Send + 'static,
    ) -> Result<T, HashError> {
        let permit = self
            .inner
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| HashError::Worker)?;
        let inner = self.inner.clone();
        // The permit moves into the job: a blocking job cannot be cancelled, so when the caller
        // goes away (a client that disconnects mid-sign-in) the hash still runs to its end and
        // keeps its permit till then. Released with the caller instead, every disconnect
        // would let one more hash run beyond the bound.
        tokio::task::spawn_blocking(move || {
            let out = job(&inner);
            drop(permit);
            out
        })
        .await
        .map_err(|_| HashError::Worker)
    }

    /// A new argon2id hash (PHC string) of `password`.
    pub async fn hash(&self, password: &str) -> Result<String, HashError> {
        let password = password.to_owned();
        self.run(move |inner| inner.with_memory(|mem| hash_argon2(&inner.params, mem, &password)))
            .await?
    }

    /// Checks `password` against `stored`: an argon2 PHC string, or Better Auth's scrypt
    /// `salt:key` hex format. Anything else never matches.
    pub async fn verify(&self, stored: &str, password: &str) -> Result<Verified, HashError> {
        let (stored, password) = (stored.to_owned(), password.to_owned());
        self.run(move |inner| {
            inner.with_memory(|mem| verify_any(&inner.params, mem, &stored, &password))
        })
        .await
    }

    /// Spends the time of a real verification and fails: for unknown users, so that they
    /// cannot be told apart from wrong passwords by timing.
    pub async fn verify_dummy(&self, password: &str) -> Result<(), HashError> {
        let password = password.to_owned();
        self.run(move |inner| {
            inner.with_memory(|mem| {
                let _ = verify_any(&inner.params, mem, &inner.dummy, &password);
            })
        })
        .await
    }
}

fn argon2(params: &Params) -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
}

/// Passwords are compared after NFKC normalisation, as Better Auth compares them, so every
/// form of a password that Better Auth accepted keeps working after its hash is upgraded.
pub(crate) fn nfkc(password: &str) -> String {
    password.nfkc().collect()
}

fn hash_error(e: impl std::fmt::Display) -> HashError {
    HashError::Argon2(e.to_string())
}

/// The first `n` blocks of `memory`, growing it to `n` blocks if it is shorter.
fn blocks(memory: &mut Vec<Block>, n: usize) -> &mut [Block] {
    if memory.len() < n {
        memory.resize(n, Block::default());
    }
    &mut memory[..n]
}

/// A new argon2id PHC string of NFKC(`password`) with a random salt, computed in `memory`: the
/// string `argon2`'s `PasswordHasher::hash_password` writes.
fn hash_argon2(
    params: &Params,
    memory: &mut Vec<Block>,
    password: &str,
) -> Result<String, HashError> {
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    let mut salt_buf = [0u8; 64];
    let salt_bytes = salt
        .as_salt()
        .decode_b64(&mut salt_buf)
        .map_err(hash_error)?;
    let len = params.output_len().unwrap_or(Params::DEFAULT_OUTPUT_LEN);
    let mem = blocks(memory, params.block_count());
    let output = Output::init_with(len, |out| {
        argon2(params)
            .hash_password_into_with_memory(nfkc(password).as_bytes(), salt_bytes, out, &mut *mem)
            .map_err(Into::into)
    })
    .map_err(hash_error)?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(params).map_err(hash_error)?,
        salt: Some(salt.as_salt()),
        hash: Some(output),
    };
    Ok(phc.to_string())
}

/// Whether `password` (as given) matches the argon2 hash `parsed`: what `argon2`'s
/// `PasswordVerifier::verify_password` computes (the stored algorithm, version, parameters,
/// salt and output length; a constant-time comparison), with `memory` as working memory when
/// the stored parameters fit in this hasher's (`params`).
fn verify_argon2(
    params: &Params,
    memory: &mut Vec<Block>,
    parsed: &PasswordHash<'_>,
    password: &str,
) -> bool {
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        return false;
    };
    let Ok(algorithm) = Algorithm::try_from(parsed.algorithm) else {
        return false;
    };
    let Ok(version) = parsed.version.map(Version::try_from).transpose() else {
        return false;
    };
    let Ok(stored) = Params::try_from(parsed) else {
        return false;
    };
    let mut salt_buf = [0u8; 64];
    let Ok(salt_bytes) = salt.decode_b64(&mut salt_buf) else {
        return false;
    };
    let n = stored.block_count();
    // A hash made with more memory than ours (an older, costlier setting) gets a buffer of its
    // own, so the kept buffers never grow past this hasher's parameters.
    let mut own = Vec::new();
    let mem = if n <= params.block_count() {
        blocks(memory, n)
    } else {
        blocks(&mut own, n)
    };
    let ctx = Argon2::new(algorithm, version.unwrap_or_default(), stored);
    Output::init_with(expected.len(), |out| {
        ctx.hash_password_into_with_memory(password.as_bytes(), salt_bytes, out, &mut *mem)
            .map_err(Into::into)
    })
    // `Output`'s equality is constant-time.
    .is_ok_and(|computed| computed == expected)
}

fn verify_any(params: &Params, memory: &mut Vec<Block>, stored: &str, password: &str) -> Verified {
    if stored.starts_with("$argon2") {
        let Ok(parsed) = PasswordHash::new(stored) else {
            return Verified {
                ok: false,
                needs_rehash: false,
            };
        };
        let mut verify = |p: &str| verify_argon2(params, memory, &parsed, p);
        let normalized = nfkc(password);
        let mut ok = verify(&normalized);
        // Hashes written before passwords were normalised are of the password as typed.
        let unnormalized = !ok && normalized != password && verify(password);
        ok |= unnormalized;
        let current = parsed.algorithm.as_str() == "argon2id"
            && Params::try_from(&parsed).is_ok_and(|p| {
                p.m_cost() == params.m_cost()
                    && p.t_cost() == params.t_cost()
                    && p.p_cost() == params.p_cost()
            });
        return Verified {
            ok,
            needs_rehash: ok && (!current || unnormalized),
        };
    }
    let ok = verify_scrypt(stored, password);
    Verified {
        ok,
        needs_rehash: ok,
    }
}

/// Better Auth's scrypt: `hex(salt):hex(scrypt(NFKC(password), salt = the hex text's bytes,
/// N = 16384, r = 16, p = 1, 64 bytes))`.
pub fn verify_scrypt(stored: &str, password: &str) -> bool {
    let Some((salt, key_hex)) = stored.split_once(':') else {
        return false;
    };
    if key_hex.len() != 128 || !key_hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return false;
    }
    let Some(derived) = scrypt_key(password, salt) else {
        return false;
    };
    let hex: String = derived.iter().map(|b| format!("{b:02x}")).collect();
    hex.as_bytes()
        .ct_eq(key_hex.to_ascii_lowercase().as_bytes())
        .into()
}

fn scrypt_key(password: &str, salt: &str) -> Option<[u8; 64]> {
    let normalized = nfkc(password);
    let params = scrypt::Params::new(14, 16, 1, 64).ok()?;
    let mut out = [0u8; 64];
    scrypt::scrypt(normalized.as_bytes(), salt.as_bytes(), &params, &mut out).ok()?;
    Some(out)
}

/// Hashes `password` the way Better Auth does (scrypt), with `salt_hex` as salt. For tests
/// and migration tools; the engine writes argon2id.
pub fn scrypt_hash_with_salt(password: &str, salt_hex: &str) -> Option<String> {
    let key = scrypt_key(password, salt_hex)?;
    let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
    Some(format!("{salt_hex}:{hex}"))
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use super::*;
    use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};

    /// Written by Better Auth 1.7.25 for `password123` (captured from the reference server).
    const BETTER_AUTH_HASH: &str = "0d9f7c443c058d3e25713b85e5cee0ac:48c1e31fd03a57a56eec06d97c1a3e4b01d5fa92799ee86508aa3bace2f8ff42f56a4516b5461e03af414e58523862d59eeb44d4a770619c63a6e998ad68765a";

    #[test]
    fn verifies_a_hash_written_by_better_auth() {
        assert!(verify_scrypt(BETTER_AUTH_HASH, "password123"));
        assert!(!verify_scrypt(BETTER_AUTH_HASH, "password124"));
        assert_eq!(
            scrypt_hash_with_salt("password123", "0d9f7c443c058d3e25713b85e5cee0ac").as_deref(),
            Some(BETTER_AUTH_HASH)
        );
    }

    #[test]
    fn scrypt_input_is_nfkc_normalised() {
        // U+FB01 (the "fi" ligature) normalises to "fi" under NFKC.
        let hash = scrypt_hash_with_salt("\u{FB01}sh-password", "00112233445566778899aabbccddeeff")
            .unwrap();
        assert!(verify_scrypt(&hash, "fish-password"));
    }

    #[test]
    fn malformed_hashes_never_match() {
        for bad in [
            "",
            "abc",
            "salt:",
            ":deadbeef",
            "zz:zz",
            "$argon2id$garbage",
        ] {
            assert!(
                !verify_any(&Params::default(), &mut Vec::new(), bad, "password123").ok,
                "{bad}"
            );
        }
    }

    #[tokio::test]
    async fn argon2id_round_trip_at_owasp_parameters() {
        let hasher = PasswordHasher::new(Argon2Params::default(), 2).unwrap();
        let hash = hasher.hash("correct horse").await.unwrap();
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        let good = hasher.verify(&hash, "correct horse").await.unwrap();
        assert_eq!(
            good,
            Verified {
                ok: true,
                needs_rehash: false
            }
        );
        assert!(!hasher.verify(&hash, "wrong horse").await.unwrap().ok);
        // A Better Auth hash verifies and asks to be upgraded.
        let old = hasher
            .verify(BETTER_AUTH_HASH, "password123")
            .await
            .unwrap();
        assert_eq!(
            old,
            Verified {
                ok: true,
                needs_rehash: true
            }
        );
    }

    #[tokio::test]
    async fn argon2_compares_nfkc_normalised_passwords() {
        let hasher = PasswordHasher::new(Argon2Params::default(), 1).unwrap();
        // Fullwidth letters normalise to ASCII; a composed and a decomposed accent are equal.
        let hash = hasher.hash("\u{ff50}ass-word").await.unwrap();
        assert!(hasher.verify(&hash, "pass-word").await.unwrap().ok);
        let hash = hasher.hash("caf\u{e9}-pass").await.unwrap();
        assert!(hasher.verify(&hash, "cafe\u{301}-pass").await.unwrap().ok);
        assert!(!hasher.verify(&hash, "cafe-pass").await.unwrap().ok);
        // A hash of the password as typed (before normalisation) still verifies and asks to
        // be replaced.
        let params = Params::new(19456, 2, 1, None).unwrap();
        let salt = SaltString::generate(&mut rand::rngs::OsRng);
        let raw = argon2(&params)
            .hash_password("cafe\u{301}-pass".as_bytes(), &salt)
            .unwrap()
            .to_string();
        assert_eq!(
            hasher.verify(&raw, "cafe\u{301}-pass").await.unwrap(),
            Verified {
                ok: true,
                needs_rehash: true
            }
        );
    }

    fn small(m: u32) -> Params {
        Params::new(m, 2, 1, None).unwrap()
    }

    #[test]
    fn reused_memory_gives_argon2s_own_hashes() {
        let params = small(256);
        let stock = argon2(&params);
        let mut mem = Vec::new();
        // Ours, checked by the argon2 crate's verifier (twice through one dirty buffer).
        for pw in ["first password", "second password"] {
            let ours = hash_argon2(&params, &mut mem, pw).unwrap();
            assert!(ours.starts_with("$argon2id$v=19$m=256,t=2,p=1$"), "{ours}");
            let parsed = PasswordHash::new(&ours).unwrap();
            assert!(stock.verify_password(pw.as_bytes(), &parsed).is_ok());
            assert!(stock.verify_password(b"other", &parsed).is_err());
        }
        // The argon2 crate's, checked by ours.
        let salt = SaltString::generate(&mut rand::rngs::OsRng);
        let theirs = stock
            .hash_password(b"third password", &salt)
            .unwrap()
            .to_string();
        let parsed = PasswordHash::new(&theirs).unwrap();
        assert!(verify_argon2(&params, &mut mem, &parsed, "third password"));
        assert!(!verify_argon2(&params, &mut mem, &parsed, "third passwore"));
        assert_eq!(mem.len(), params.block_count());
        // Argon2i/argon2d hashes and other output lengths verify as the crate verifies them.
        for alg in [Algorithm::Argon2i, Algorithm::Argon2d] {
            let p = Params::new(128, 1, 1, Some(16)).unwrap();
            let other = Argon2::new(alg, Version::V0x10, p)
                .hash_password(b"pw-pw-pw-pw", &salt)
                .unwrap()
                .to_string();
            let parsed = PasswordHash::new(&other).unwrap();
            assert!(
                verify_argon2(&params, &mut mem, &parsed, "pw-pw-pw-pw"),
                "{other}"
            );
            assert!(
                !verify_argon2(&params, &mut mem, &parsed, "pw-pw-pw-px"),
                "{other}"
            );
        }
    }

    #[test]
    fn a_costlier_stored_hash_does_not_grow_the_kept_buffer() {
        let costly = hash_argon2(&small(1024), &mut Vec::new(), "pw-pw-pw-pw").unwrap();
        let mut mem = Vec::new();
        let v = verify_any(&small(256), &mut mem, &costly, "pw-pw-pw-pw");
        assert_eq!(
            v,
            Verified {
                ok: true,
                needs_rehash: true
            }
        );
        assert!(mem.len() <= small(256).block_count());
    }

    #[tokio::test]
    async fn at_most_one_buffer_per_permit_is_kept() {
        let hasher = PasswordHasher::new(
            Argon2Params {
                memory_kib: 256,
                iterations: 1,
                parallelism: 1,
            },
            2,
        )
        .unwrap();
        assert!(hasher.inner.memory.lock().unwrap().is_empty());
        let jobs: Vec<_> = (0..16)
            .map(|i| {
                let h = hasher.clone();
                tokio::spawn(async move { h.hash(&format!("password-{i}")).await })
            })
            .collect();
        for j in jobs {
            let hash = j.await.unwrap().unwrap();
            assert!(!hasher.verify(&hash, "nope").await.unwrap().ok);
        }
        let kept = hasher.inner.memory.lock().unwrap().len();
        assert!((1..=2).contains(&kept), "{kept} buffers kept");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn callers_that_go_away_do_not_lift_the_bound() {
        let hasher = PasswordHasher::new(Argon2Params::default(), 1).unwrap();
        let running = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let peak = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        // Callers that give up right after their hash started, one after another.
        for _ in 0..6 {
            let (running, peak) = (running.clone(), peak.clone());
            let job = hasher.run(move |inner| {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                let r = inner.with_memory(|mem| hash_argon2(&inner.params, mem, "pw-pw-pw-pw"));
                running.fetch_sub(1, Ordering::SeqCst);
                r
            });
            let _ = tokio::time::timeout(std::time::Duration::from_millis(2), job).await;
        }
        // Let the abandoned hashes finish.
        let _ = hasher.hash("pw-pw-pw-pw").await.unwrap();
        assert_eq!(
            peak.load(Ordering::SeqCst),
            1,
            "hashes ran beyond the bound"
        );
        assert_eq!(hasher.inner.memory.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn weaker_argon2_parameters_ask_for_a_rehash() {
        let weak = PasswordHasher::new(
            Argon2Params {
                memory_kib: 8192,
                iterations: 1,
                parallelism: 1,
            },
            1,
        )
        .unwrap();
        let hash = weak.hash("pw-pw-pw-pw").await.unwrap();
        let strong = PasswordHasher::new(Argon2Params::default(), 1).unwrap();
        assert_eq!(
            strong.verify(&hash, "pw-pw-pw-pw").await.unwrap(),
            Verified {
                ok: true,
                needs_rehash: true
            }
        );
    }
}
