//! Password hashes imported from Django, checked as Django 5.2's
//! `check_password` checks them (`django/contrib/auth/hashers.py`):
//!
//! | format | stored as |
//! |---|---|
//! | PBKDF2-HMAC-SHA256 | `pbkdf2_sha256$<iterations>$<salt>$<base64 of 32 bytes>` |
//! | PBKDF2-HMAC-SHA1 | `pbkdf2_sha1$<iterations>$<salt>$<base64 of 20 bytes>` |
//! | scrypt | `scrypt$<N>$<salt>$<r>$<p>$<base64 of 64 bytes>` |
//! | argon2 | `argon2` and argon2-cffi's PHC string without its first `$`: `argon2$argon2id$v=19$m=<KiB>,t=<passes>,p=<lanes>$<salt>$<hash>` |
//!
//! The salt of PBKDF2 and scrypt is used as its UTF-8 bytes, and so is the
//! password in every format (Django does not normalize either).
//!
//! How Django decides, and so how this module does:
//! - PBKDF2 and scrypt: Django recomputes the hash with the stored
//!   parameters, formats the whole string again and compares the two
//!   strings. So only the text Django writes can match: numbers in plain
//!   decimal (no sign, no leading zero, not 0: Django replaces 0 by its
//!   default, which then formats differently), a non-empty salt, the hash in
//!   standard base64 with its padding. Here each field is parsed that
//!   strictly and the derived bytes are compared in constant time, which
//!   accepts exactly the same strings.
//! - argon2: Django hands the PHC string to argon2-cffi, whose C library
//!   accepts `argon2id`, `argon2i` and `argon2d`, decimal numbers without a
//!   leading zero, unpadded canonical base64, a salt of at least 8 bytes and
//!   a hash of at least 4. Without `v=` (argon2-cffi before 16.0) the version
//!   is 0x10, the C library's default; the `argon2` crate would assume 0x13,
//!   so the version is read here rather than by `PasswordHash`. Versions
//!   other than 16 and 19 (which no Argon2 release made) are refused.
//! - scrypt goes through OpenSSL in Django: N must be a power of two above 1,
//!   N < 2^(16r), r·p < 2^30. Stock Django also refuses a hash that needs over
//!   32 MiB (OpenSSL's default `maxmem`); latch verifies up to [`MAX_MEMORY`],
//!   for a Django that raised `maxmem` in its own hasher.
//!
//! Anything Django would raise an exception for (a missing field, a bad
//! number) is [`HashFormat::Malformed`] here, and never matches.
//!
//! Bounds on imported hashes (README): a Django hash that asks for more than
//! 10,000,000 PBKDF2 iterations, more than 1 GiB of memory, more than 1 GiB of
//! scrypt or argon2 work (memory × passes), argon2 t above 32 or p above 16
//! is refused (it never matches, after the cost of an ordinary check) and
//! logged as a warning. At each bound one check takes about 1 to 2.5 s of
//! one core here (BENCHMARKS.md); Django 5.2's defaults are well inside them.
//!
//! Parsing ([`parse`]) is separate from computing ([`Parsed::matches`]):
//! [`super::recognise`] parses only, and verification computes only what a
//! parsed, bounded hash asks for.

use argon2::Argon2;
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use subtle::ConstantTimeEq as _;

use super::HashFormat;

/// Most PBKDF2 iterations an imported hash may ask for: 10 times Django 5.2's
/// default of 1,000,000, about 1 s of one core for SHA-256 here.
pub const MAX_PBKDF2_ITERATIONS: u64 = 10_000_000;
/// Most memory an imported scrypt (128·N·r) or argon2 (m KiB) hash may ask
/// for, per hashing thread: 1 GiB. Django's defaults: scrypt 16 MiB, argon2
/// 100 MiB.
pub const MAX_MEMORY: u64 = 1 << 30;
/// Most work an imported scrypt or argon2 hash may ask for, as bytes of
/// memory filled: scrypt 128·N·r·p, argon2 m KiB × t. 1 GiB: about 2.3 s
/// of one core for scrypt, 1.4 s for argon2 here. Django's defaults: scrypt
/// 80 MiB, argon2 200 MiB.
pub const MAX_WORK: u64 = 1 << 30;
/// Most argon2 passes (t) an imported hash may ask for; Django's default is 2.
pub const MAX_ARGON2_PASSES: u64 = 32;
/// Most parallelism (scrypt p, argon2 lanes) an imported hash may ask for;
/// Django's defaults are 5 (scrypt) and 8 (argon2).
pub const MAX_PARALLELISM: u64 = 16;

/// Which bound an imported hash goes beyond: the reason it is refused. Names
/// the parameter only, never anything of the user's or the hash's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Limit {
    /// PBKDF2 iterations above [`MAX_PBKDF2_ITERATIONS`].
    Pbkdf2Iterations,
    /// scrypt or argon2 memory above [`MAX_MEMORY`].
    Memory,
    /// scrypt or argon2 memory × passes above [`MAX_WORK`].
    Work,
    /// argon2 passes (t) above [`MAX_ARGON2_PASSES`].
    Argon2Passes,
    /// scrypt p or argon2 lanes above [`MAX_PARALLELISM`].
    Parallelism,
}

impl Limit {
    /// What was too much, in a few words, for logs and reports.
    pub fn reason(self) -> &'static str {
        match self {
            Limit::Pbkdf2Iterations => "PBKDF2 iterations above 10,000,000",
            Limit::Memory => "memory above 1 GiB",
            Limit::Work => "memory x passes above 1 GiB",
            Limit::Argon2Passes => "argon2 passes (t) above 32",
            Limit::Parallelism => "parallelism (p) above 16",
        }
    }
}

/// A Django hash that is well-formed and within the bounds: all that
/// checking a password against it takes.
#[derive(Debug)]
pub(super) enum Parsed<'a> {
    Pbkdf2 {
        digest: Digest,
        iterations: u32,
        salt: &'a str,
        hash: Vec<u8>,
    },
    Scrypt {
        params: scrypt::Params,
        salt: &'a str,
        hash: Vec<u8>,
    },
    Argon2 {
        algorithm: argon2::Algorithm,
        version: argon2::Version,
        params: argon2::Params,
        salt: Vec<u8>,
        hash: Vec<u8>,
    },
}

/// PBKDF2's HMAC digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Digest {
    Sha256,
    Sha1,
}

impl Digest {
    /// Django's dklen: the digest's own size.
    fn len(self) -> usize {
        match self {
            Digest::Sha256 => 32,
            Digest::Sha1 => 20,
        }
    }
}

/// Django's scrypt hash length (`dklen=64`).
const SCRYPT_LEN: usize = 64;

/// Parses a stored value as Django would identify and decode it. `Err` says
/// why it can never match: [`HashFormat::Unusable`], [`HashFormat::Unknown`]
/// (an algorithm this module does not verify, or no algorithm),
/// [`HashFormat::Malformed`] or [`HashFormat::OverLimit`].
pub(super) fn parse(stored: &str) -> Result<Parsed<'_>, HashFormat> {
    // Django's `make_password(None)`: "!" and 40 random characters. An empty
    // value matches nothing either (Django finds no hasher for it).
    if stored.is_empty() || stored.starts_with('!') {
        return Err(HashFormat::Unusable);
    }
    // Django: `encoded.split("$", 1)[0]` names the hasher, then that hasher
    // decodes the whole string (so "pbkdf2_sha256" alone is malformed).
    let (algorithm, rest) = stored.split_once('$').unwrap_or((stored, ""));
    match algorithm {
        "pbkdf2_sha256" => parse_pbkdf2(Digest::Sha256, rest),
        "pbkdf2_sha1" => parse_pbkdf2(Digest::Sha1, rest),
        "scrypt" => parse_scrypt(rest),
        "argon2" => parse_argon2(rest),
        _ => Err(HashFormat::Unknown),
    }
}

/// `<iterations>$<salt>$<hash>` (Django: `encoded.split("$", 3)`).
fn parse_pbkdf2(digest: Digest, rest: &str) -> Result<Parsed<'_>, HashFormat> {
    let mut fields = rest.splitn(3, '$');
    let (Some(iterations), Some(salt), Some(hash)) = (fields.next(), fields.next(), fields.next())
    else {
        return Err(HashFormat::Malformed);
    };
    let iterations = decimal(iterations).ok_or(HashFormat::Malformed)?;
    if salt.is_empty() {
        return Err(HashFormat::Malformed);
    }
    let hash = padded_base64(hash, digest.len()).ok_or(HashFormat::Malformed)?;
    if iterations > MAX_PBKDF2_ITERATIONS {
        return Err(HashFormat::OverLimit(Limit::Pbkdf2Iterations));
    }
    Ok(Parsed::Pbkdf2 {
        digest,
        iterations: u32::try_from(iterations).map_err(|_| HashFormat::Malformed)?,
        salt,
        hash,
    })
}

/// `<N>$<salt>$<r>$<p>$<hash>`: exactly these five fields (Django unpacks
/// `encoded.split("$", 6)` into six names).
fn parse_scrypt(rest: &str) -> Result<Parsed<'_>, HashFormat> {
    let fields: Vec<&str> = rest.split('$').collect();
    let &[n, salt, r, p, hash] = fields.as_slice() else {
        return Err(HashFormat::Malformed);
    };
    let (n, r, p) = (
        decimal(n).ok_or(HashFormat::Malformed)?,
        decimal(r).ok_or(HashFormat::Malformed)?,
        decimal(p).ok_or(HashFormat::Malformed)?,
    );
    if salt.is_empty() {
        return Err(HashFormat::Malformed);
    }
    let hash = padded_base64(hash, SCRYPT_LEN).ok_or(HashFormat::Malformed)?;
    // What OpenSSL's EVP_PBE_scrypt refuses (Django then raises).
    if n < 2 || !n.is_power_of_two() {
        return Err(HashFormat::Malformed);
    }
    let log_n = n.trailing_zeros();
    if r.saturating_mul(p) >= 1 << 30 || (r <= 3 && u64::from(log_n) >= 16 * r) {
        return Err(HashFormat::Malformed);
    }
    let memory = 128u64.saturating_mul(r).saturating_mul(n);
    if memory > MAX_MEMORY {
        return Err(HashFormat::OverLimit(Limit::Memory));
    }
    if p > MAX_PARALLELISM {
        return Err(HashFormat::OverLimit(Limit::Parallelism));
    }
    if memory.saturating_mul(p) > MAX_WORK {
        return Err(HashFormat::OverLimit(Limit::Work));
    }
    // Within the bounds, log_n < 24 and r, p fit in u32.
    let params = scrypt::Params::new(
        u8::try_from(log_n).map_err(|_| HashFormat::Malformed)?,
        u32::try_from(r).map_err(|_| HashFormat::Malformed)?,
        u32::try_from(p).map_err(|_| HashFormat::Malformed)?,
    )
    .map_err(|_| HashFormat::Malformed)?;
    Ok(Parsed::Scrypt { params, salt, hash })
}

/// `argon2<variant>[$v=<version>]$m=<m>,t=<t>,p=<p>$<salt>$<hash>`, as the
/// argon2 C library's `decode_string` reads it.
fn parse_argon2(rest: &str) -> Result<Parsed<'_>, HashFormat> {
    let mut fields = rest.split('$');
    let algorithm = match fields.next() {
        Some("argon2id") => argon2::Algorithm::Argon2id,
        Some("argon2i") => argon2::Algorithm::Argon2i,
        Some("argon2d") => argon2::Algorithm::Argon2d,
        _ => return Err(HashFormat::Malformed),
    };
    let mut costs = fields.next().ok_or(HashFormat::Malformed)?;
    let mut version = argon2::Version::V0x10;
    if let Some(v) = costs.strip_prefix("v=") {
        version = match decimal(v) {
            Some(0x10) => argon2::Version::V0x10,
            Some(0x13) => argon2::Version::V0x13,
            _ => return Err(HashFormat::Malformed),
        };
        costs = fields.next().ok_or(HashFormat::Malformed)?;
    }
    let (Some(salt), Some(hash), None) = (fields.next(), fields.next(), fields.next()) else {
        return Err(HashFormat::Malformed);
    };
    let mut costs = costs.split(',');
    let (Some(m), Some(t), Some(p), None) =
        (costs.next(), costs.next(), costs.next(), costs.next())
    else {
        return Err(HashFormat::Malformed);
    };
    let number = |field: &str, name: &str| {
        field
            .strip_prefix(name)
            .and_then(decimal)
            .filter(|&n| n <= u64::from(u32::MAX))
            .ok_or(HashFormat::Malformed)
    };
    let (m, t, p) = (number(m, "m=")?, number(t, "t=")?, number(p, "p=")?);
    let salt = unpadded_base64(salt).ok_or(HashFormat::Malformed)?;
    let hash = unpadded_base64(hash).ok_or(HashFormat::Malformed)?;
    if salt.len() < argon2::MIN_SALT_LEN || hash.len() < argon2::Params::MIN_OUTPUT_LEN {
        return Err(HashFormat::Malformed);
    }
    // What the C library refuses: m >= 8p, t >= 1, 1 <= p < 2^24.
    let valid = |m, t, p| argon2::Params::new(m, t, p, Some(hash.len()));
    let to_u32 = |n: u64| u32::try_from(n).map_err(|_| HashFormat::Malformed);
    let params = valid(to_u32(m)?, to_u32(t)?, to_u32(p)?).map_err(|_| HashFormat::Malformed)?;
    if m.saturating_mul(1024) > MAX_MEMORY {
        return Err(HashFormat::OverLimit(Limit::Memory));
    }
    if t > MAX_ARGON2_PASSES {
        return Err(HashFormat::OverLimit(Limit::Argon2Passes));
    }
    if p > MAX_PARALLELISM {
        return Err(HashFormat::OverLimit(Limit::Parallelism));
    }
    if m.saturating_mul(1024).saturating_mul(t) > MAX_WORK {
        return Err(HashFormat::OverLimit(Limit::Work));
    }
    Ok(Parsed::Argon2 {
        algorithm,
        version,
        params,
        salt,
        hash,
    })
}

/// A positive number as Django and argon2 write it: ASCII digits, no sign,
/// no leading zero. One too large for u64 reads as u64::MAX (it is then
/// beyond every bound).
fn decimal(s: &str) -> Option<u64> {
    let canonical =
        s.bytes().all(|b| b.is_ascii_digit()) && matches!(s.as_bytes(), [b'1'..=b'9', ..]);
    canonical.then(|| s.parse().unwrap_or(u64::MAX))
}

/// Standard base64 with padding, exactly as Python's `b64encode` writes
/// `len` bytes (the engine refuses missing padding and stray bits).
fn padded_base64(s: &str, len: usize) -> Option<Vec<u8>> {
    STANDARD.decode(s).ok().filter(|bytes| bytes.len() == len)
}

/// Standard base64 without padding and without stray bits, as argon2 writes
/// salts and hashes.
fn unpadded_base64(s: &str) -> Option<Vec<u8>> {
    STANDARD_NO_PAD.decode(s).ok()
}

impl Parsed<'_> {
    /// What [`super::recognise`] says of this hash.
    pub(super) fn format(&self) -> HashFormat {
        match self {
            Parsed::Pbkdf2 {
                digest: Digest::Sha256,
                ..
            } => HashFormat::DjangoPbkdf2Sha256,
            Parsed::Pbkdf2 {
                digest: Digest::Sha1,
                ..
            } => HashFormat::DjangoPbkdf2Sha1,
            Parsed::Scrypt { .. } => HashFormat::DjangoScrypt,
            Parsed::Argon2 { algorithm, .. } => match algorithm {
                argon2::Algorithm::Argon2id => HashFormat::DjangoArgon2id,
                argon2::Algorithm::Argon2i => HashFormat::DjangoArgon2i,
                argon2::Algorithm::Argon2d => HashFormat::DjangoArgon2d,
            },
        }
    }

    /// Derives the hash of `password` with this hash's own parameters and
    /// salt, and compares it with the stored one in constant time. The
    /// expensive part: run it on the hashing pool.
    pub(super) fn matches(&self, password: &[u8]) -> bool {
        let (derived, hash) = match self {
            Parsed::Pbkdf2 {
                digest,
                iterations,
                salt,
                hash,
            } => {
                let mut derived = vec![0; hash.len()];
                match digest {
                    Digest::Sha256 => pbkdf2::pbkdf2_hmac::<pbkdf2::sha2::Sha256>(
                        password,
                        salt.as_bytes(),
                        *iterations,
                        &mut derived,
                    ),
                    Digest::Sha1 => pbkdf2::pbkdf2_hmac::<sha1::Sha1>(
                        password,
                        salt.as_bytes(),
                        *iterations,
                        &mut derived,
                    ),
                }
                (derived, hash)
            }
            Parsed::Scrypt { params, salt, hash } => {
                let mut derived = vec![0; hash.len()];
                if scrypt::scrypt(password, salt.as_bytes(), params, &mut derived).is_err() {
                    return false;
                }
                (derived, hash)
            }
            Parsed::Argon2 {
                algorithm,
                version,
                params,
                salt,
                hash,
            } => {
                let mut derived = vec![0; hash.len()];
                let argon2 = Argon2::new(*algorithm, *version, params.clone());
                if argon2
                    .hash_password_into(password, salt, &mut derived)
                    .is_err()
                {
                    return false;
                }
                (derived, hash)
            }
        };
        derived.ct_eq(hash).into()
    }
}

#[cfg(test)]
mod tests {
    //! The hashes below were made by Django 5.2's own `make_password` (and
    //! argon2-cffi 25.1), each checked by Django's `check_password`, with:
    //!
    //!     /tmp/interop-venv/bin/python tests/interop/make_hash_vectors.py
    //!
    //! which prints these `const` lines (the script sets small costs on
    //! subclasses of Django's hashers; fixed salts keep its output stable).
    //! `django_agrees_with_the_vectors` asks Django again about every case.

    use super::super::{HashFormat, Hasher, Limit, Verified, dummy_hash, recognise, verify_stored};
    use base64::Engine as _;
    use proptest::prelude::*;

    const ASCII: &str = "correct horse battery staple";
    const UNICODE: &str = "pässwörd ü";

    const PBKDF2_SHA256_1000: &str =
        "pbkdf2_sha256$1000$Q1dWnOfz2DaRzqbrtMPVNS$OOcAdhOrpTYCQmKw+05+XUVIVxp7jtCeTgZoZLDLkkY=";
    const PBKDF2_SHA256_1000_UNICODE: &str =
        "pbkdf2_sha256$1000$aB3xYz9QwErTyUiOpAsDfG$ojl+iMj4SyWPGqJxIQXcqzWVS3M4h88Y03RgqtatABw=";
    const PBKDF2_SHA256_2: &str =
        "pbkdf2_sha256$2$lowcostsalt$Vm1atxTKgAzBohRT/yJ9rjq7mefPRWDYj83y9kz7oVU=";
    const PBKDF2_SHA256_UNICODE_SALT: &str =
        "pbkdf2_sha256$3$sälz ü€$cXKy8E2+t+LA8hVfi/+aaNAzYxImha1oGJ0jTai7dpI=";
    const PBKDF2_SHA256_DEFAULT: &str =
        "pbkdf2_sha256$1000000$w8rLmEHXyCUFAWbJg3Ekq1$HFaDMVw/YS5NSuz8hbgsTfdsRe7MrGNWAF+6hSY1aHI=";
    const PBKDF2_SHA1_1000: &str =
        "pbkdf2_sha1$1000$pBmW7uuF6QxMdV7fVxG0kq$+d21pJvNbsoBg1enGzG1MoSRQrc=";
    const PBKDF2_SHA1_2: &str = "pbkdf2_sha1$2$lowcostsalt$iV1o1goQ9xSvZtKCwC/ErMfKPMU=";
    const SCRYPT_FAST: &str = "scrypt$1024$ZsV0mXWbbHcS9cW0T1rGQr$8$1$3feUApLaA/JhLMg05/btbls5yKzA+OgXTT7XAYIL4q6STnDF9pRPy9wtcCgVq+RtIRLoKI5T7RvUfo0JlZyIbw==";
    const SCRYPT_FAST_UNICODE: &str = "scrypt$1024$Jq2Yx8pLrN3vK5mT7wZc1a$8$1$pS/r/DAaGsTDY2MPGG2PN2jqSBOD6w39md35y78EK/HtAipZZ1agbVMfwT5LNEfpYHmjsMRoNRwra51Fc0cSPA==";
    const SCRYPT_P1: &str = "scrypt$16384$G7yHn2KpLm4QrS8tVwXz0b$8$1$Ypd2Ht6VFbnZiRsCwg1XF6vSXt3FMPfzRhIDednJAsmlRT9iCzF33f4IRcGx6I3r5YfJ1OahQUAIGre/ou5xDg==";
    const SCRYPT_DEFAULT: &str = "scrypt$16384$r4nD0mS4ltF0rScrypt123$8$5$HXd8t+wb4O2a3Zd9B9vJ+h7vUKRWc6L2nOU8x26mKt0bbTqjxKMWX/1aXRNGHpGeDG23tlPrYaO8w9opC3oO9g==";
    const ARGON2ID_FAST: &str = "argon2$argon2id$v=19$m=64,t=1,p=1$dFF5VmgwV1hBbmJKZ1hrNFkyR2pSeg$eFCl1n0t9yuugH4P/vmWEeRP9Js7InAe/s4ZQJQQ2ko";
    const ARGON2ID_FAST_UNICODE: &str = "argon2$argon2id$v=19$m=64,t=1,p=1$V201THE4WnJUYjJOY1g3dktwM0hzOQ$BR0JsQjrfyIaGa3M+kAHs2dlcbTJADdi4rIs3lYhLBc";
    const ARGON2I_FAST: &str = "argon2$argon2i$v=19$m=64,t=1,p=1$RmgzSms4TG0yTnA1UXI3U3Q5VncxWA$Dq8MrwhJMsKjwWV6sJFK/ZWnT5sjfh/gycZGdHaEdoE";
    const ARGON2D_FAST: &str = "argon2$argon2d$v=19$m=64,t=1,p=1$WWI2Q2Q4RWYwR2gySWo0S2w2TW44Tw$/K0pbw4t+dQ9mt08KhsbRbsFayzrhrxh3wybolUpHHE";
    const ARGON2I_V16_FAST: &str = "argon2$argon2i$v=16$m=64,t=1,p=1$UHExUnMzVHU1Vnc3WHk5WmEyQmM0RA$RRD3ns/amkuSXmRs4zbJb0hOprjOEgoxTO2Pz+fTTUs";
    const ARGON2I_NO_VERSION_FAST: &str = "argon2$argon2i$m=64,t=1,p=1$UHExUnMzVHU1Vnc3WHk5WmEyQmM0RA$RRD3ns/amkuSXmRs4zbJb0hOprjOEgoxTO2Pz+fTTUs";
    const ARGON2ID_DEFAULT: &str = "argon2$argon2id$v=19$m=102400,t=2,p=8$RWU0RmY2R2c4SGgwSWkySmo0S2s2TA$xMZCgbeUBGxcGBNpUWgmsBwqZGvdisvjX10J+FvLQVk";
    const ARGON2ID_ODD_MEMORY: &str = "argon2$argon2id$v=19$m=70,t=2,p=3$TW03Tm45T28xUHAzUXE1UnI3U3M5VA$yMNLyZ/twnKK366/HjWI6+xJi3HEmJ8YagHu6gr91c4";
    // Well-formed, made and verified by Django, beyond latch's bounds.
    const PBKDF2_SHA256_OVER_ITERATIONS: &str =
        "pbkdf2_sha256$10000001$overthelimitsalt$I9Psd5VE0dlPDptuhPbQhiCt54lvcUaXbGBjE+x9sVo=";
    const ARGON2ID_OVER_PASSES: &str = "argon2$argon2id$v=19$m=64,t=33,p=1$VHQxVXUzVnY1V3c3WHg5WXkxWnozQQ$OZceuY34CJojW7zxfmdAJMyCeh0imEzG7Wb+if9QZC4";
    const ARGON2ID_OVER_LANES: &str = "argon2$argon2id$v=19$m=136,t=1,p=17$QmIyQ2M0RGQ2RWU4RmYwR2cySGg0SQ$oULKZDU+U72DfrEmA2WsK/XnlJIqLvdWwFpYS6cy3yg";
    const SCRYPT_OVER_P: &str = "scrypt$16$Jj5Kk7Ll9Mm1Nn3Oo5Pp7Q$8$17$AnVFNHiTqkc6SEMn8CPNppva1lL1JF3CdlZJt3BSuHHemfBnt8lDmLGumnfnjs36mjEc//FAFiMlKmmJUcWzLA==";

    /// Django hashes of the given password, cheap enough for every run.
    const CHEAP: &[(&str, &str, HashFormat)] = &[
        (ASCII, PBKDF2_SHA256_1000, HashFormat::DjangoPbkdf2Sha256),
        (
            UNICODE,
            PBKDF2_SHA256_1000_UNICODE,
            HashFormat::DjangoPbkdf2Sha256,
        ),
        (ASCII, PBKDF2_SHA256_2, HashFormat::DjangoPbkdf2Sha256),
        (
            ASCII,
            PBKDF2_SHA256_UNICODE_SALT,
            HashFormat::DjangoPbkdf2Sha256,
        ),
        (UNICODE, PBKDF2_SHA1_1000, HashFormat::DjangoPbkdf2Sha1),
        (ASCII, PBKDF2_SHA1_2, HashFormat::DjangoPbkdf2Sha1),
        (ASCII, SCRYPT_FAST, HashFormat::DjangoScrypt),
        (UNICODE, SCRYPT_FAST_UNICODE, HashFormat::DjangoScrypt),
        (ASCII, ARGON2ID_FAST, HashFormat::DjangoArgon2id),
        (UNICODE, ARGON2ID_FAST_UNICODE, HashFormat::DjangoArgon2id),
        (UNICODE, ARGON2I_FAST, HashFormat::DjangoArgon2i),
        (ASCII, ARGON2D_FAST, HashFormat::DjangoArgon2d),
        (ASCII, ARGON2I_V16_FAST, HashFormat::DjangoArgon2i),
        (ASCII, ARGON2I_NO_VERSION_FAST, HashFormat::DjangoArgon2i),
        (UNICODE, ARGON2ID_ODD_MEMORY, HashFormat::DjangoArgon2id),
    ];

    /// Django's default costs: scrypt N=2^14 r=8 at p=1 and at Django's p=5,
    /// argon2id 100 MiB t=2 p=8. Under half a second in a debug build (the
    /// hashing crates are optimized there too). PBKDF2's default is apart.
    const DEFAULT_COSTS: &[(&str, &str, HashFormat)] = &[
        (UNICODE, SCRYPT_P1, HashFormat::DjangoScrypt),
        (ASCII, SCRYPT_DEFAULT, HashFormat::DjangoScrypt),
        (UNICODE, ARGON2ID_DEFAULT, HashFormat::DjangoArgon2id),
    ];

    fn cheap() -> scrypt::Params {
        scrypt::Params::new(4, 8, 1).unwrap()
    }

    /// `Hasher::verify`'s work, on this thread.
    fn check(password: &str, stored: &str) -> Verified {
        verify_stored(cheap(), password.as_bytes(), stored, &dummy_hash(cheap()))
    }

    const MATCH: Verified = Verified {
        matches: true,
        needs_rehash: true,
    };

    fn other_password(password: &str) -> &'static str {
        if password == ASCII { UNICODE } else { ASCII }
    }

    #[test]
    fn django_hashes_match_their_password_and_ask_for_a_rehash() {
        for &(password, stored, format) in CHEAP {
            assert_eq!(recognise(stored), format, "{stored}");
            assert!(format.is_verifiable());
            assert_eq!(check(password, stored), MATCH, "{stored}");
            for wrong in [
                other_password(password),
                "",
                &format!("{password}x"),
                &password.chars().skip(1).collect::<String>(),
                &password.to_uppercase(),
            ] {
                assert!(!check(wrong, stored).matches, "{wrong:?} matched {stored}");
            }
        }
    }

    #[test]
    fn django_default_costs_match() {
        for &(password, stored, format) in DEFAULT_COSTS {
            assert_eq!(recognise(stored), format, "{stored}");
            assert_eq!(check(password, stored), MATCH, "{stored}");
            assert!(!check(other_password(password), stored).matches, "{stored}");
        }
    }

    /// Django 5.2's default PBKDF2, 1,000,000 iterations: about 0.15 s
    /// optimized, but about 5 s in a debug build, since `pbkdf2_hmac` is
    /// generic and so compiled as part of latch, without the hashing crates'
    /// `opt-level`. `cargo test --release` runs it.
    #[test]
    #[cfg_attr(debug_assertions, ignore = "~5 s unoptimized: run with --release")]
    fn django_default_pbkdf2_matches() {
        assert_eq!(
            recognise(PBKDF2_SHA256_DEFAULT),
            HashFormat::DjangoPbkdf2Sha256
        );
        assert_eq!(check(UNICODE, PBKDF2_SHA256_DEFAULT), MATCH);
        assert!(!check(ASCII, PBKDF2_SHA256_DEFAULT).matches);
    }

    #[tokio::test]
    async fn the_hashing_pool_verifies_django_hashes() {
        let hasher = Hasher::new(cheap(), 1, 8).unwrap();
        for (password, stored) in [(ASCII, PBKDF2_SHA256_1000), (UNICODE, ARGON2I_FAST)] {
            let verified = hasher.verify(password.into(), stored.into()).await;
            assert_eq!(verified, Ok(MATCH));
            let verified = hasher.verify("wrong".into(), stored.into()).await;
            assert!(!verified.unwrap().matches);
        }
        let verified = hasher.verify(ASCII.into(), "!unusable".into()).await;
        assert_eq!(
            verified,
            Ok(Verified {
                matches: false,
                needs_rehash: false
            })
        );
    }

    /// Another character of the same kind where `s` has `c`, to keep the
    /// string as well-formed as it can be.
    fn other_char(c: char) -> char {
        match c {
            '9' => '8',
            'z' => 'y',
            'Z' => 'Y',
            '0'..='8' | 'a'..='y' | 'A'..='Y' => char::from_u32(c as u32 + 1).unwrap(),
            '+' => '/',
            '/' => '+',
            '=' => 'A',
            '$' => '_',
            _ => 'a',
        }
    }

    /// Every way of changing one character of `stored`.
    fn one_character_changes(stored: &str) -> Vec<String> {
        stored
            .char_indices()
            .map(|(i, c)| {
                let mut changed = String::with_capacity(stored.len());
                changed.push_str(&stored[..i]);
                changed.push(other_char(c));
                changed.push_str(&stored[i + c.len_utf8()..]);
                changed
            })
            .collect()
    }

    #[test]
    fn one_character_changed_anywhere_never_matches() {
        for &(password, stored, _) in CHEAP {
            for changed in one_character_changes(stored) {
                let verified = check(password, &changed);
                assert!(!verified.matches, "{changed} matched");
            }
        }
        // And some with the other fields kept well-formed, by name.
        for changed in [
            PBKDF2_SHA256_1000.replacen("$1000$", "$1001$", 1),
            PBKDF2_SHA256_1000.replacen("$1000$", "$999$", 1),
            PBKDF2_SHA256_1000.replacen("pbkdf2_sha256", "pbkdf2_sha1", 1),
            PBKDF2_SHA1_1000.replacen("pbkdf2_sha1", "pbkdf2_sha256", 1),
            SCRYPT_FAST.replacen("$1024$", "$2048$", 1),
            SCRYPT_FAST.replacen("$8$1$", "$4$1$", 1),
            SCRYPT_FAST.replacen("$8$1$", "$8$2$", 1),
            ARGON2ID_FAST.replacen("argon2id", "argon2i", 1),
            ARGON2ID_FAST.replacen("v=19", "v=16", 1),
            ARGON2ID_FAST.replacen("$v=19", "", 1),
            ARGON2ID_FAST.replacen("m=64", "m=65", 1),
            ARGON2ID_FAST.replacen("t=1", "t=2", 1),
            ARGON2ID_FAST.replacen("p=1", "p=2", 1),
            ARGON2I_NO_VERSION_FAST.replacen("$m=", "$v=19$m=", 1),
        ] {
            assert!(!check(ASCII, &changed).matches, "{changed} matched");
        }
    }

    /// Stored values that must never match, with what `recognise` says.
    /// Many are a real hash of `ASCII` spoiled in a way a lenient parser
    /// would forgive.
    fn never_matching() -> Vec<(String, HashFormat)> {
        use HashFormat::{Malformed, Unknown, Unusable};
        let spoil = |stored: &str, from: &str, to: &str| {
            assert!(stored.contains(from), "{from} not in {stored}");
            stored.replacen(from, to, 1)
        };
        let vectors = [
            ("".to_string(), Unusable),
            ("!".into(), Unusable),
            ("!abc".into(), Unusable),
            ("!vgbjUxSRdVBFbj4ZVX9TAIp6BmFXY6KXGNXYMosN".into(), Unusable),
            (format!("!{PBKDF2_SHA256_2}"), Unusable),
            // Django's other hashers, and not hashes at all.
            (
                "md5$seasalt$9b3ed1bea1c6a3b2b0b2b9d1a5b6c1d0".into(),
                Unknown,
            ),
            ("md5$$5f4dcc3b5aa765d61d8327deb882cf99".into(), Unknown),
            ("5f4dcc3b5aa765d61d8327deb882cf99".into(), Unknown),
            (
                "sha1$$5baa61e4c9b93f3f0682250b6cf8331b7ee68fd8".into(),
                Unknown,
            ),
            (
                "bcrypt$$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW".into(),
                Unknown,
            ),
            (
                "bcrypt_sha256$$2b$12$LZSJchsWGHw6Gpd5jcVbc.w3xKxF9BufV1PKc6ri2D3QqW6mIRlbC".into(),
                Unknown,
            ),
            ("crypt$$ab1Hv2Lg7ltQo".into(), Unknown),
            (
                "PBKDF2_SHA256$2$lowcostsalt$Vm1atxTKgAzBohRT/yJ9rjq7mefPRWDYj83y9kz7oVU=".into(),
                Unknown,
            ),
            (
                " pbkdf2_sha256$2$lowcostsalt$Vm1atxTKgAzBohRT/yJ9rjq7mefPRWDYj83y9kz7oVU=".into(),
                Unknown,
            ),
            ("correct horse battery staple".into(), Unknown),
            (
                "$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW".into(),
                Unknown,
            ),
            (spoil(ARGON2ID_FAST, "argon2$", "$"), Unknown),
            (
                spoil(ARGON2ID_FAST, "argon2$argon2id", "argon2id$argon2id"),
                Unknown,
            ),
            // PBKDF2, malformed.
            ("pbkdf2_sha256".into(), Malformed),
            ("pbkdf2_sha256$".into(), Malformed),
            ("pbkdf2_sha256$2$lowcostsalt".into(), Malformed),
            (spoil(PBKDF2_SHA256_2, "$2$", "$$"), Malformed),
            (spoil(PBKDF2_SHA256_2, "$2$", "$two$"), Malformed),
            (spoil(PBKDF2_SHA256_2, "$2$", "$0$"), Malformed),
            (spoil(PBKDF2_SHA256_2, "$2$", "$02$"), Malformed),
            (spoil(PBKDF2_SHA256_2, "$2$", "$+2$"), Malformed),
            (spoil(PBKDF2_SHA256_2, "$2$", "$-2$"), Malformed),
            (spoil(PBKDF2_SHA256_2, "$2$", "$ 2$"), Malformed),
            (spoil(PBKDF2_SHA256_2, "$2$", "$2 $"), Malformed),
            (spoil(PBKDF2_SHA256_2, "$2$", "$٢$"), Malformed),
            (spoil(PBKDF2_SHA256_2, "$2$", "$2.0$"), Malformed),
            (spoil(PBKDF2_SHA256_2, "$lowcostsalt$", "$$"), Malformed),
            (spoil(PBKDF2_SHA256_2, "oVU=", "oVU"), Malformed),
            (spoil(PBKDF2_SHA256_2, "oVU=", "oVU=="), Malformed),
            (spoil(PBKDF2_SHA256_2, "oVU=", "oVV="), Malformed),
            (spoil(PBKDF2_SHA256_2, "oVU=", "oVU= "), Malformed),
            (spoil(PBKDF2_SHA256_2, "oVU=", "oVU=$"), Malformed),
            (spoil(PBKDF2_SHA256_2, "Vm1a", "Vm-a"), Malformed),
            (spoil(PBKDF2_SHA256_2, "Vm1a", "Vm1"), Malformed),
            (spoil(PBKDF2_SHA256_2, "/yJ9", "_yJ9"), Malformed),
            (spoil(PBKDF2_SHA256_2, "sha256", "sha1"), Malformed),
            (spoil(PBKDF2_SHA1_2, "sha1", "sha256"), Malformed),
            // scrypt, malformed.
            ("scrypt".into(), Malformed),
            (spoil(SCRYPT_FAST, "$8$1$", "$8$"), Malformed),
            (spoil(SCRYPT_FAST, "$8$1$", "$8$1$1$"), Malformed),
            (format!("{SCRYPT_FAST}$"), Malformed),
            (spoil(SCRYPT_FAST, "$1024$", "$0$"), Malformed),
            (spoil(SCRYPT_FAST, "$1024$", "$1$"), Malformed),
            (spoil(SCRYPT_FAST, "$1024$", "$1000$"), Malformed),
            (spoil(SCRYPT_FAST, "$1024$", "$01024$"), Malformed),
            (spoil(SCRYPT_FAST, "$8$1$", "$0$1$"), Malformed),
            (spoil(SCRYPT_FAST, "$8$1$", "$8$0$"), Malformed),
            (spoil(SCRYPT_FAST, "$8$1$", "$08$1$"), Malformed),
            (
                spoil(SCRYPT_FAST, "$1024$", "$65536$").replacen("$8$1$", "$1$1$", 1),
                Malformed,
            ),
            (
                spoil(SCRYPT_FAST, "$ZsV0mXWbbHcS9cW0T1rGQr$", "$$"),
                Malformed,
            ),
            (spoil(SCRYPT_FAST, "Ibw==", "Ibw="), Malformed),
            (spoil(SCRYPT_FAST, "Ibw==", "Ibw"), Malformed),
            (
                spoil(
                    SCRYPT_FAST,
                    "3feUApLaA/JhLMg05/btbls5yKzA+OgXTT7XAYIL4q6STnDF9pRPy9wtcCgVq+RtIRLoKI5T7RvUfo0JlZyIbw==",
                    "3feUApLaA/JhLMg05/btbls5yKzA+OgXTT7XAYIL4q4=",
                ),
                Malformed,
            ),
            // argon2, malformed.
            ("argon2".into(), Malformed),
            ("argon2$".into(), Malformed),
            (spoil(ARGON2ID_FAST, "argon2id", "argon2x"), Malformed),
            (spoil(ARGON2ID_FAST, "argon2id", "Argon2id"), Malformed),
            (spoil(ARGON2ID_FAST, "argon2id", "argon2idd"), Malformed),
            (spoil(ARGON2ID_FAST, "v=19", "v=18"), Malformed),
            (spoil(ARGON2ID_FAST, "v=19", "v=019"), Malformed),
            (spoil(ARGON2ID_FAST, "v=19", "V=19"), Malformed),
            (spoil(ARGON2ID_FAST, "m=64", "m=064"), Malformed),
            (spoil(ARGON2ID_FAST, "m=64", "m= 64"), Malformed),
            (spoil(ARGON2ID_FAST, "m=64", "m=4"), Malformed),
            (
                spoil(ARGON2ID_FAST, "m=64,t=1,p=1", "t=1,m=64,p=1"),
                Malformed,
            ),
            (spoil(ARGON2ID_FAST, "m=64,t=1,p=1", "m=64,t=1"), Malformed),
            (
                spoil(ARGON2ID_FAST, "m=64,t=1,p=1", "m=64,t=1,p=1,k=1"),
                Malformed,
            ),
            (spoil(ARGON2ID_FAST, "t=1", "t=0"), Malformed),
            (spoil(ARGON2ID_FAST, "p=1", "p=0"), Malformed),
            (spoil(ARGON2ID_FAST, "m=64", "m=4294967296"), Malformed),
            (
                spoil(ARGON2ID_FAST, "m=64,t=1,p=1", "m=64,t=1,p=9"),
                Malformed,
            ),
            (
                spoil(
                    ARGON2ID_FAST,
                    "dFF5VmgwV1hBbmJKZ1hrNFkyR2pSeg",
                    "dFF5VmgwVw",
                ),
                Malformed,
            ),
            (
                spoil(ARGON2ID_FAST, "dFF5VmgwV1hBbmJKZ1hrNFkyR2pSeg", ""),
                Malformed,
            ),
            (spoil(ARGON2ID_FAST, "Seg$", "Seg==$"), Malformed),
            (spoil(ARGON2ID_FAST, "Seg$", "Sef$"), Malformed),
            (spoil(ARGON2ID_FAST, "2ko", "2ko="), Malformed),
            (spoil(ARGON2ID_FAST, "2ko", "2kp"), Malformed),
            (
                spoil(
                    ARGON2ID_FAST,
                    "eFCl1n0t9yuugH4P/vmWEeRP9Js7InAe/s4ZQJQQ2ko",
                    "eFCl1n",
                ),
                Malformed,
            ),
            (
                spoil(
                    ARGON2ID_FAST,
                    "eFCl1n0t9yuugH4P/vmWEeRP9Js7InAe/s4ZQJQQ2ko",
                    "",
                ),
                Malformed,
            ),
            (format!("{ARGON2ID_FAST}$"), Malformed),
            (spoil(ARGON2ID_FAST, "$dFF5", "$$dFF5"), Malformed),
        ];
        vectors.into_iter().collect()
    }

    #[test]
    fn unusable_unknown_and_malformed_hashes_never_match() {
        for (stored, format) in never_matching() {
            assert_eq!(recognise(&stored), format, "{stored:?}");
            assert!(!format.is_verifiable());
            for password in [ASCII, UNICODE, "", "!", &stored] {
                assert_eq!(
                    check(password, &stored),
                    Verified {
                        matches: false,
                        needs_rehash: false
                    },
                    "{stored:?}"
                );
            }
        }
    }

    /// Well-formed hashes beyond the bounds, and the limit each one hits.
    fn over_the_bounds() -> Vec<(String, Limit)> {
        let b64 = |len| base64::engine::general_purpose::STANDARD.encode(vec![7u8; len]);
        let argon2 = |costs: &str| {
            format!(
                "argon2$argon2id$v=19${costs}$c2FsdHNhbHQ${}",
                b64(32).trim_end_matches('=')
            )
        };
        vec![
            (
                PBKDF2_SHA256_OVER_ITERATIONS.into(),
                Limit::Pbkdf2Iterations,
            ),
            (
                format!("pbkdf2_sha1$99999999999999999999999$salt${}", b64(20)),
                Limit::Pbkdf2Iterations,
            ),
            (ARGON2ID_OVER_PASSES.into(), Limit::Argon2Passes),
            (ARGON2ID_OVER_LANES.into(), Limit::Parallelism),
            (SCRYPT_OVER_P.into(), Limit::Parallelism),
            // 2 GiB, then 1 GiB at p=3.
            (
                format!("scrypt$2097152$salt$8$1${}", b64(64)),
                Limit::Memory,
            ),
            (format!("scrypt$1048576$salt$8$3${}", b64(64)), Limit::Work),
            (
                format!("scrypt$1024$salt$536870911$1${}", b64(64)),
                Limit::Memory,
            ),
            (argon2("m=1048577,t=1,p=1"), Limit::Memory),
            (argon2("m=4294967295,t=1,p=1"), Limit::Memory),
            (argon2("m=1048576,t=2,p=1"), Limit::Work),
            (argon2("m=524289,t=2,p=1"), Limit::Work),
            (format!("scrypt$524288$salt$8$3${}", b64(64)), Limit::Work),
            (argon2("m=65536,t=4294967295,p=1"), Limit::Argon2Passes),
            (argon2("m=1048576,t=1,p=131072"), Limit::Parallelism),
        ]
    }

    #[test]
    fn hashes_beyond_the_bounds_never_match() {
        let (log, _guard) = capture_warnings();
        for (stored, limit) in over_the_bounds() {
            assert_eq!(recognise(&stored), HashFormat::OverLimit(limit), "{stored}");
            assert_eq!(
                check(ASCII, &stored),
                Verified {
                    matches: false,
                    needs_rehash: false
                },
                "{stored}"
            );
        }
        let log = String::from_utf8(log.lock().unwrap().clone()).unwrap();
        assert!(log.contains("PBKDF2 iterations above 10,000,000"), "{log}");
        assert!(log.contains("argon2 passes (t) above 32"), "{log}");
        assert!(log.contains("WARN"), "{log}");
        assert!(
            !log.contains("overthelimitsalt") && !log.contains("I9Psd5"),
            "{log}"
        );
    }

    /// Warnings of this thread go to the returned buffer while the guard lives.
    fn capture_warnings() -> (
        std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
        tracing::subscriber::DefaultGuard,
    ) {
        struct Buffer(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
        impl std::io::Write for Buffer {
            fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(bytes);
                Ok(bytes.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let writer = log.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::WARN)
            .with_ansi(false)
            .with_writer(move || Buffer(writer.clone()))
            .finish();
        (log, tracing::subscriber::set_default(subscriber))
    }

    #[test]
    fn the_bounds_themselves_are_allowed() {
        let b64 = |len| base64::engine::general_purpose::STANDARD.encode(vec![7u8; len]);
        let argon2 = |costs: &str| {
            format!(
                "argon2$argon2id$v=19${costs}$c2FsdHNhbHQ${}",
                b64(32).trim_end_matches('=')
            )
        };
        for (stored, format) in [
            (
                format!("pbkdf2_sha256$10000000$salt${}", b64(32)),
                HashFormat::DjangoPbkdf2Sha256,
            ),
            (
                format!("scrypt$1048576$salt$8$1${}", b64(64)),
                HashFormat::DjangoScrypt,
            ),
            (
                format!("scrypt$16$salt$8$16${}", b64(64)),
                HashFormat::DjangoScrypt,
            ),
            (argon2("m=1048576,t=1,p=16"), HashFormat::DjangoArgon2id),
            (argon2("m=524288,t=2,p=16"), HashFormat::DjangoArgon2id),
            (argon2("m=32768,t=32,p=16"), HashFormat::DjangoArgon2id),
            (
                format!("scrypt$524288$salt$8$2${}", b64(64)),
                HashFormat::DjangoScrypt,
            ),
            (argon2("m=64,t=32,p=1"), HashFormat::DjangoArgon2id),
        ] {
            assert_eq!(recognise(&stored), format, "{stored}");
        }
    }

    #[tokio::test]
    async fn latch_hashes_are_recognised() {
        let hasher = Hasher::new(cheap(), 1, 8).unwrap();
        let hash = hasher.hash("pw".into()).await.unwrap();
        assert_eq!(recognise(&hash), HashFormat::LatchScrypt);
        assert_eq!(recognise(&dummy_hash(cheap())), HashFormat::LatchScrypt);
        let no_hash = hash.rsplit_once('$').unwrap().0;
        assert_eq!(recognise(no_hash), HashFormat::Malformed);
        assert_eq!(recognise("$scrypt$"), HashFormat::Malformed);
        assert_eq!(recognise("$scrypt$ln=4,r=8,p=1$$$"), HashFormat::Malformed);
        assert_eq!(
            recognise("$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo"),
            HashFormat::Unknown
        );
    }

    #[test]
    fn formats_print_their_names() {
        assert_eq!(
            HashFormat::DjangoPbkdf2Sha256.to_string(),
            "Django pbkdf2_sha256"
        );
        assert_eq!(
            HashFormat::OverLimit(Limit::Memory).to_string(),
            "over latch's limit: memory above 1 GiB"
        );
    }

    /// Asks the real Django about every case above, when Python with Django
    /// and argon2-cffi is at hand (LATCH_INTEROP_PYTHON, as for
    /// tests/api/interop.rs): it must match exactly where latch matches.
    /// The hashes beyond latch's bounds are left out: Django verifies those.
    #[test]
    fn django_agrees_with_the_vectors() {
        let Some(python) = crate::django_oracle::python_with("django, argon2") else {
            return;
        };
        let mut cases: Vec<(String, String)> = Vec::new();
        for &(password, stored, _) in CHEAP.iter().chain(DEFAULT_COSTS) {
            cases.push((password.into(), stored.into()));
            cases.push((other_password(password).into(), stored.into()));
        }
        for &(password, stored, _) in CHEAP {
            for changed in one_character_changes(stored) {
                cases.push((password.into(), changed));
            }
        }
        for (stored, _) in never_matching() {
            cases.push((ASCII.into(), stored));
        }
        if !cfg!(debug_assertions) {
            cases.push((UNICODE.into(), PBKDF2_SHA256_DEFAULT.into()));
            cases.push((ASCII.into(), PBKDF2_SHA256_DEFAULT.into()));
        }
        let latch: Vec<bool> = cases
            .iter()
            .map(|(password, stored)| check(password, stored).matches)
            .collect();

        let answer = crate::django_oracle::ask(&python, "hash_oracle.py", &cases);
        let django: Vec<serde_json::Value> = serde_json::from_value(answer).unwrap();
        assert_eq!(django.len(), cases.len());
        for ((case, latch), django) in cases.iter().zip(latch).zip(django) {
            assert_eq!(
                django == serde_json::Value::Bool(true),
                latch,
                "Django says {django} and latch {latch} for {case:?}"
            );
        }
    }

    proptest! {
        #[test]
        fn any_stored_string_parses_without_panicking(stored in any::<String>()) {
            let _ = recognise(&stored);
        }

        #[test]
        fn django_shaped_strings_parse_without_panicking(
            stored in "(pbkdf2_sha256|pbkdf2_sha1|scrypt|argon2|!|md5|\\$scrypt)?\\$[0-9a-zA-Z+/=$,.:-]{0,90}",
        ) {
            let _ = recognise(&stored);
        }

        /// Well-formed enough to reach the computation, with small costs
        /// and any lengths of salt and hash, valid or not.
        #[test]
        fn cheap_django_hashes_verify_without_panicking(
            kind in 0..5usize,
            cost in 0u64..2000,
            r in 0u64..5,
            p in 0u64..20,
            salt in proptest::collection::vec(any::<u8>(), 0..12),
            hash in proptest::collection::vec(any::<u8>(), 0..70),
            password in ".{0,8}",
        ) {
            use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
            let salt_text = String::from_utf8_lossy(&salt).replace('$', "");
            let stored = match kind {
                0 => format!("pbkdf2_sha256${}${salt_text}${}", cost % 50, STANDARD.encode(&hash)),
                1 => format!("pbkdf2_sha1${}${salt_text}${}", cost % 50, STANDARD.encode(&hash)),
                2 => format!("scrypt${}${salt_text}${r}${}${}", 1u64 << (cost % 12), p % 4, STANDARD.encode(&hash)),
                3 => format!(
                    "argon2$argon2id$v=19$m={cost},t={r},p={p}${}${}",
                    STANDARD_NO_PAD.encode(&salt),
                    STANDARD_NO_PAD.encode(&hash)
                ),
                _ => format!(
                    "argon2$argon2d$m={cost},t={r},p={}${}${}",
                    p % 3,
                    STANDARD_NO_PAD.encode(&salt),
                    STANDARD_NO_PAD.encode(&hash)
                ),
            };
            let verified = check(&password, &stored);
            prop_assert!(!verified.matches || recognise(&stored).is_verifiable());
        }
    }
}
