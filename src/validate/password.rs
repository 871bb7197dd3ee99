//! New passwords, judged as Django's default `AUTH_PASSWORD_VALIDATORS` judge
//! them, in their words and their order: similarity to the username and
//! email, minimum length, common passwords, entirely numeric. Only the
//! minimum length is always on (as the spec has it); the others are
//! settings. A maximum length, which Django lacks, bounds hashing work.
//!
//! `data/common-passwords.txt` is Django 5.2.19's
//! `django/contrib/auth/common-passwords.txt.gz`, decompressed.

use std::collections::{HashMap, HashSet};
use std::sync::LazyLock;

use regex_syntax::hir::{Class, HirKind};

use crate::config::PasswordConfig;

/// `UserAttributeSimilarityValidator`'s default `max_similarity`.
const MAX_SIMILARITY: f64 = 0.7;

/// The rules for new passwords (registration, reset), built once from the
/// settings.
#[derive(Debug, Clone)]
pub struct PasswordPolicy {
    min_length: usize,
    max_length: usize,
    reject_similar: bool,
    reject_common: bool,
    reject_numeric: bool,
}

/// The fixed messages of `PasswordPolicy::check` (also listed in the OpenAPI
/// document).
pub const PASSWORD_MESSAGES: [&str; 5] = [
    "Null characters are not allowed.",
    "The password is too similar to the username.",
    "The password is too similar to the email address.",
    "This password is too common.",
    "This password is entirely numeric.",
];
/// The too-short and too-long messages, whose numbers come from the settings.
pub const PASSWORD_LENGTH_PATTERN: &str = r"^This password is too (short\. It must contain at least|long\. It must contain at most) [0-9]+ characters?\.$";

impl PasswordPolicy {
    pub fn from_config(config: &PasswordConfig) -> PasswordPolicy {
        if config.reject_common {
            // Read the list at start-up rather than in the first request.
            LazyLock::force(&COMMON_PASSWORDS);
        }
        PasswordPolicy {
            min_length: config.min_length,
            max_length: config.max_length,
            reject_similar: config.reject_similar,
            reject_common: config.reject_common,
            reject_numeric: config.reject_numeric,
        }
    }

    /// The first rule `password` breaks, as its message; `username` and
    /// `email` are the account's, for the similarity rule.
    pub fn check(&self, password: &str, username: &str, email: &str) -> Result<(), String> {
        let [nul, like_username, like_email, common, numeric] = PASSWORD_MESSAGES;
        // DRF's login field refuses NUL, so such a password could never be used.
        if password.contains('\0') {
            return Err(nul.into());
        }
        if self.reject_similar {
            for (value, message) in [(username, like_username), (email, like_email)] {
                if too_similar(password, value) {
                    return Err(message.into());
                }
            }
        }
        // Django's len(): code points.
        let length = password.chars().count();
        if length < self.min_length {
            return Err(format!(
                "This password is too short. It must contain at least {} {}.",
                self.min_length,
                characters(self.min_length)
            ));
        }
        if length > self.max_length {
            return Err(format!(
                "This password is too long. It must contain at most {} {}.",
                self.max_length,
                characters(self.max_length)
            ));
        }
        if self.reject_common && is_common(password) {
            return Err(common.into());
        }
        if self.reject_numeric && is_digits(password) {
            return Err(numeric.into());
        }
        Ok(())
    }
}

fn characters(n: usize) -> &'static str {
    if n == 1 { "character" } else { "characters" }
}

/// `UserAttributeSimilarityValidator` for one attribute: the lower-cased
/// value, each of its parts split on `\W+` and then the whole, compared by
/// `SequenceMatcher.quick_ratio()`.
fn too_similar(password: &str, value: &str) -> bool {
    if value.is_empty() {
        return false;
    }
    let password: Vec<char> = password.to_lowercase().chars().collect();
    let value = value.to_lowercase();
    split_on_non_word(&value)
        .chain([value.as_str()])
        .any(|part| {
            let part: Vec<char> = part.chars().collect();
            !exceeds_maximum_length_ratio(password.len(), part.len())
                && quick_ratio(&password, &part) >= MAX_SIMILARITY
        })
}

/// Django's shortcut: a value under a tenth of the password's length cannot
/// be similar enough, so it is not compared.
fn exceeds_maximum_length_ratio(password_len: usize, value_len: usize) -> bool {
    let length_bound_similarity = MAX_SIMILARITY / 2.0 * password_len as f64;
    password_len >= 10 * value_len && (value_len as f64) < length_bound_similarity
}

/// `difflib.SequenceMatcher(a=a, b=b).quick_ratio()`: twice the size of the
/// two multisets' intersection over the total length; 1.0 for two empties.
fn quick_ratio(a: &[char], b: &[char]) -> f64 {
    let length = a.len() + b.len();
    if length == 0 {
        return 1.0;
    }
    let mut available: HashMap<char, usize> = HashMap::new();
    for &c in b {
        *available.entry(c).or_default() += 1;
    }
    let mut matches = 0usize;
    for c in a {
        if let Some(n) = available.get_mut(c).filter(|n| **n > 0) {
            *n -= 1;
            matches += 1;
        }
    }
    2.0 * matches as f64 / length as f64
}

/// Python's `re.split(r"\W+", value)`: the runs between non-word characters,
/// with an empty part before a leading run and after a trailing one.
fn split_on_non_word(value: &str) -> impl Iterator<Item = &str> {
    let mut rest = Some(value);
    std::iter::from_fn(move || {
        let text = rest?;
        match text.find(|c| !is_word(c)) {
            None => {
                rest = None;
                Some(text)
            }
            Some(start) => {
                let after = &text[start..];
                let end = after.find(is_word).unwrap_or(after.len());
                rest = Some(&after[end..]);
                Some(&text[..start])
            }
        }
    })
}

/// Python's `\w` on `str`: `str.isalnum()` (general categories L* and N*)
/// or `_`. Rust's `char::is_alphanumeric` would also count marks such as
/// Devanagari vowel signs and circled letters (Other_Alphabetic), which
/// Python splits on.
fn is_word(c: char) -> bool {
    static WORD: LazyLock<Vec<(char, char)>> = LazyLock::new(|| unicode_class(r"[\p{L}\p{N}_]"));
    in_ranges(&WORD, c)
}

/// Python's `str.isdigit()`: not empty, and every character has a digit
/// value (Numeric_Type Decimal, which is category Nd, or Digit). Rust has no
/// Numeric_Type: the Digit ones outside Nd are listed below as of Python
/// 3.11 (Unicode 14.0), while Nd comes from regex-syntax's tables (Unicode
/// 16.0). So the two differ only on characters whose Unicode data differs
/// between those versions. `char::is_numeric` would wrongly take fractions
/// (½) and Roman numerals (Ⅻ), which Python's `isdigit` refuses.
fn is_digits(password: &str) -> bool {
    static DECIMAL: LazyLock<Vec<(char, char)>> = LazyLock::new(|| unicode_class(r"\p{Nd}"));
    const DIGIT_NOT_DECIMAL: &[(char, char)] = &[
        ('\u{b2}', '\u{b3}'),
        ('\u{b9}', '\u{b9}'),
        ('\u{1369}', '\u{1371}'),
        ('\u{19da}', '\u{19da}'),
        ('\u{2070}', '\u{2070}'),
        ('\u{2074}', '\u{2079}'),
        ('\u{2080}', '\u{2089}'),
        ('\u{2460}', '\u{2468}'),
        ('\u{2474}', '\u{247c}'),
        ('\u{2488}', '\u{2490}'),
        ('\u{24ea}', '\u{24ea}'),
        ('\u{24f5}', '\u{24fd}'),
        ('\u{24ff}', '\u{24ff}'),
        ('\u{2776}', '\u{277e}'),
        ('\u{2780}', '\u{2788}'),
        ('\u{278a}', '\u{2792}'),
        ('\u{10a40}', '\u{10a43}'),
        ('\u{10e60}', '\u{10e68}'),
        ('\u{11052}', '\u{1105a}'),
        ('\u{1f100}', '\u{1f10a}'),
    ];
    !password.is_empty()
        && password
            .chars()
            .all(|c| in_ranges(&DECIMAL, c) || in_ranges(DIGIT_NOT_DECIMAL, c))
}

/// `CommonPasswordValidator`: `password.lower().strip()` in Django's list.
fn is_common(password: &str) -> bool {
    COMMON_PASSWORDS.contains(python_strip(&password.to_lowercase()))
}

static COMMON_PASSWORDS: LazyLock<HashSet<&'static str>> = LazyLock::new(|| {
    include_str!("../../data/common-passwords.txt")
        .lines()
        .map(python_strip)
        .collect()
});

/// Python's `str.strip()`: Unicode White_Space (Rust's `trim`) and also the
/// separators U+001C-U+001F, which Python counts as space.
fn python_strip(s: &str) -> &str {
    s.trim_matches(|c: char| c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c))
}

/// The code point ranges of a regex character class, from regex-syntax's
/// Unicode tables.
fn unicode_class(class: &str) -> Vec<(char, char)> {
    let hir = regex_syntax::Parser::new()
        .parse(class)
        .expect("a valid class");
    match hir.kind() {
        HirKind::Class(Class::Unicode(class)) => {
            class.iter().map(|r| (r.start(), r.end())).collect()
        }
        other => unreachable!("not a Unicode class: {other:?}"),
    }
}

fn in_ranges(ranges: &[(char, char)], c: char) -> bool {
    ranges
        .binary_search_by(|&(start, end)| {
            if end < c {
                std::cmp::Ordering::Less
            } else if start > c {
                std::cmp::Ordering::Greater
            } else {
                std::cmp::Ordering::Equal
            }
        })
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const USERNAME: &str = "The password is too similar to the username.";
    const EMAIL: &str = "The password is too similar to the email address.";

    type Vector = (
        &'static str,
        &'static str,
        &'static str,
        Option<&'static str>,
        bool,
        bool,
    );

    /// (password, username, email) and what Django 5.2.19's validators say:
    /// the similarity message, common, entirely numeric. Made by
    /// tests/interop/password_oracle.py; `django_agrees_with_the_vectors`
    /// asks it again when Django is at hand.
    #[rustfmt::skip]
    const VECTORS: &[Vector] = &[
        // Similarity around 0.7: 14/20 is exactly 0.7 and counts.
        ("alice123", "alice", "a@example.com", Some(USERNAME), true, false),
        ("abcdefgxyz", "abcdefghij", "x@example.com", Some(USERNAME), false, false),
        ("abcdefxyzw", "abcdefghij", "x@example.com", None, false, false),
        ("abcdefghxyz", "abcdefghijkl", "x@example.com", None, false, false),
        ("abcdefghxy", "abcdefghijkl", "x@example.com", Some(USERNAME), false, false),
        ("ecilaxyz", "alice", "q@example.com", Some(USERNAME), false, false),
        ("al", "alice", "q@example.com", None, false, false),
        ("aaaa", "aaa", "q@example.com", Some(USERNAME), true, false),
        ("aaaaaaa", "aaa", "q@example.com", None, true, false),
        // Long passwords against short values.
        ("bobbobbobbobbobbobbobbobbobbob", "bob", "q@example.com", None, false, false),
        ("bobbobbob", "bob", "q@example.com", None, false, false),
        // Values split on \W+, plus the whole value.
        ("smith2024", "jsmith99", "john.smith@example.com", Some(EMAIL), false, false),
        ("examplecom", "zed", "john.smith@example.com", Some(EMAIL), false, false),
        ("john.smith@example", "zed", "john.smith@example.com", Some(EMAIL), false, false),
        ("correct-horse-9", "alice", "alice@example.com", None, false, false),
        ("Alice@Example.com", "zed", "alice@example.com", Some(EMAIL), false, false),
        ("doe12", "john_doe", "q@example.com", None, false, false),
        ("doe1", "john-doe", "q@example.com", Some(USERNAME), false, false),
        ("bobby", "-bob-", "q@example.com", Some(USERNAME), true, false),
        ("x", "-bob-", "q@example.com", None, true, false),
        // Case and Unicode: full lower-casing (İ, final sigma); marks and
        // circled letters are not word characters.
        ("ALICE-99", "alice", "q@example.com", Some(USERNAME), false, false),
        ("ÜNÏCØDÉ!", "Ünïcødé", "q@example.com", Some(USERNAME), false, false),
        ("οδυσσευς", "ΟΔΥΣΣΕΥΣ", "q@example.com", Some(USERNAME), false, false),
        ("i\u{307}stanbul1", "İstanbul", "q@example.com", Some(USERNAME), false, false),
        ("istanbul12", "İstanbul", "q@example.com", Some(USERNAME), false, false),
        ("σα", "ΑΣ", "q@example.com", None, false, false),
        ("ΑΣ", "σα", "q@example.com", None, false, false),
        ("हि123", "हिंदी", "q@example.com", None, false, false),
        ("नम12", "नमस्ते", "q@example.com", None, false, false),
        ("ह", "हिंदी", "q@example.com", Some(USERNAME), false, false),
        ("用户名123", "用户名", "q@example.com", None, false, false),
        ("smithé12", "zed", "smith\u{301}e@example.com", Some(EMAIL), false, false),
        ("δοκιμή1", "zed", "δοκιμή@παράδειγμα.δοκιμή", Some(EMAIL), false, false),
        ("ⓐⓑⓒ12", "ⓐⓑⓒ", "q@example.com", Some(USERNAME), false, false),
        ("abc1", "abcⓐⓑⓒ", "q@example.com", Some(USERNAME), false, false),
        // An empty part (before a leading separator) is as similar as can
        // be to an empty password.
        ("", "-bob-", "q@example.com", Some(USERNAME), false, false),
        ("", "bob", "q@example.com", None, false, false),
        ("", "a..b", "q@example.com", None, false, false),
        // Common: lower-cased and stripped as Python strips.
        ("password", "zed", "q@example.com", None, true, false),
        (" Password ", "zed", "q@example.com", None, true, false),
        ("PASSWORD\t\n", "zed", "q@example.com", None, true, false),
        ("\u{3000}qwerty\u{a0}", "zed", "q@example.com", None, true, false),
        ("\u{1c}password\u{1f}", "zed", "q@example.com", None, true, false),
        ("\u{200b}password", "zed", "q@example.com", None, false, false),
        ("friend of emily", "zed", "q@example.com", None, true, false),
        ("Friend  of emily", "zed", "q@example.com", None, false, false),
        ("ПАРОЛЬ", "zed", "q@example.com", None, true, false),
        ("correct-horse-9", "zed", "q@example.com", None, false, false),
        ("p@ssw0rd", "zed", "q@example.com", None, true, false),
        // Numeric: str.isdigit(), which takes any digit, not fractions or
        // other numerals.
        ("12345678", "zed", "q@example.com", None, true, true),
        ("98765432109", "zed", "q@example.com", None, false, true),
        ("١٢٣٤٥٦٧٨", "zed", "q@example.com", None, false, true),
        ("１２３４５６７８", "zed", "q@example.com", None, false, true),
        ("𝟏𝟐𝟑𝟒𝟓𝟔𝟕𝟖", "zed", "q@example.com", None, false, true),
        ("²³¹⁴⁵⁶⁷⁸", "zed", "q@example.com", None, false, true),
        ("①②③④⑤⑥⑦⑧", "zed", "q@example.com", None, false, true),
        ("❶❷❸❹❺❻❼❽", "zed", "q@example.com", None, false, true),
        ("12345678½", "zed", "q@example.com", None, false, false),
        ("ⅫⅫⅫⅫⅫⅫⅫⅫ", "zed", "q@example.com", None, false, false),
        ("〇一二三四五六七", "zed", "q@example.com", None, false, false),
        ("1234 5678", "zed", "q@example.com", None, false, false),
        ("-12345678", "zed", "q@example.com", None, false, false),
        ("1234567x", "zed", "q@example.com", None, false, false),
    ];

    fn policy(customize: impl FnOnce(&mut PasswordConfig)) -> PasswordPolicy {
        let mut config = PasswordConfig::default();
        customize(&mut config);
        PasswordPolicy::from_config(&config)
    }

    /// Each rule alone (no minimum length), so every vector is judged by it.
    fn only(rule: fn(&mut PasswordConfig)) -> PasswordPolicy {
        policy(|c| {
            c.min_length = 0;
            rule(c);
        })
    }

    #[test]
    fn each_rule_agrees_with_django() {
        let similar = only(|c| c.reject_similar = true);
        let common = only(|c| c.reject_common = true);
        let numeric = only(|c| c.reject_numeric = true);
        for &(password, username, email, too_similar, is_common, is_numeric) in VECTORS {
            let case = format!("{password:?} {username:?} {email:?}");
            assert_eq!(
                similar.check(password, username, email).err().as_deref(),
                too_similar,
                "{case}"
            );
            assert_eq!(
                common.check(password, username, email).is_err(),
                is_common,
                "{case}"
            );
            assert_eq!(
                numeric.check(password, username, email).is_err(),
                is_numeric,
                "{case}"
            );
        }
    }

    #[test]
    fn defaults_check_only_the_lengths() {
        let p = policy(|_| {});
        for &(password, username, email, ..) in VECTORS {
            let length = password.chars().count();
            assert_eq!(
                p.check(password, username, email).is_ok(),
                (8..=4096).contains(&length),
                "{password:?}"
            );
        }
    }

    #[test]
    fn lengths_count_characters() {
        let p = policy(|_| {});
        assert!(p.check("12345678", "u", "e").is_ok());
        assert!(p.check("ééééééé€", "u", "e").is_ok());
        assert_eq!(
            p.check("1234567", "u", "e").unwrap_err(),
            "This password is too short. It must contain at least 8 characters."
        );
        assert!(p.check(&"é".repeat(4096), "u", "e").is_ok());
        assert_eq!(
            p.check(&"é".repeat(4097), "u", "e").unwrap_err(),
            "This password is too long. It must contain at most 4096 characters."
        );
        let one = policy(|c| {
            c.min_length = 1;
            c.max_length = 1;
        });
        assert!(one.check("€", "u", "e").is_ok());
        assert_eq!(
            one.check("ab", "u", "e").unwrap_err(),
            "This password is too long. It must contain at most 1 character."
        );
        let two = policy(|c| c.min_length = 2);
        assert_eq!(
            two.check("a", "u", "e").unwrap_err(),
            "This password is too short. It must contain at least 2 characters."
        );
        let one = policy(|c| c.min_length = 1);
        assert_eq!(
            one.check("", "u", "e").unwrap_err(),
            "This password is too short. It must contain at least 1 character."
        );
    }

    #[test]
    fn the_first_failure_in_djangos_order_is_reported() {
        let all = policy(|c| {
            c.reject_similar = true;
            c.reject_common = true;
            c.reject_numeric = true;
            c.max_length = 10;
        });
        let check = |password| all.check(password, "alice", "q@example.com");
        // NUL first, then similarity, minimum, maximum, common, numeric.
        assert_eq!(
            check("alice123\0").unwrap_err(),
            "Null characters are not allowed."
        );
        assert_eq!(check("alice123").unwrap_err(), USERNAME);
        assert_eq!(
            check("1234").unwrap_err(),
            "This password is too short. It must contain at least 8 characters."
        );
        assert_eq!(
            check("98765432109").unwrap_err(),
            "This password is too long. It must contain at most 10 characters."
        );
        assert_eq!(
            check("password").unwrap_err(),
            "This password is too common."
        );
        assert_eq!(
            check("9876543210").unwrap_err(),
            "This password is too common."
        );
        assert_eq!(
            check("24681357").unwrap_err(),
            "This password is entirely numeric."
        );
        assert!(check("horsecart9").is_ok());
    }

    #[test]
    fn splitting_follows_pythons_re_split() {
        let parts = |v| split_on_non_word(v).collect::<Vec<_>>();
        assert_eq!(
            parts("john.smith@example.com"),
            ["john", "smith", "example", "com"]
        );
        assert_eq!(parts("-bob-"), ["", "bob", ""]);
        assert_eq!(parts("a..b"), ["a", "b"]);
        assert_eq!(parts("john_doe"), ["john_doe"]);
        assert_eq!(parts("..."), ["", ""]);
        assert_eq!(parts("हिंदी"), ["ह", "द", ""]);
    }

    #[test]
    fn the_common_list_is_djangos() {
        assert_eq!(COMMON_PASSWORDS.len(), 19_640);
        assert!(COMMON_PASSWORDS.contains("123456"));
        assert!(!COMMON_PASSWORDS.contains(""));
    }

    #[test]
    fn long_passwords_are_checked_quickly() {
        let all = policy(|c| {
            c.reject_similar = true;
            c.reject_common = true;
            c.reject_numeric = true;
            c.max_length = 65_536;
        });
        let email = format!("{}@example.com", "a.".repeat(100));
        let start = std::time::Instant::now();
        for len in [10, 100, 1000, 65_536] {
            let password = "ab".repeat(len / 2);
            let _ = all.check(&password, &"a".repeat(150), &email);
        }
        assert!(start.elapsed() < std::time::Duration::from_secs(2));
    }

    /// Asks the real Django about every vector, when Python with Django is
    /// at hand (LATCH_INTEROP_PYTHON, as for tests/api/interop.rs).
    #[test]
    fn django_agrees_with_the_vectors() {
        let Some(python) = crate::django_oracle::python_with("django") else {
            return;
        };
        let cases: Vec<[&str; 3]> = VECTORS.iter().map(|v| [v.0, v.1, v.2]).collect();
        let answer = crate::django_oracle::ask(&python, "password_oracle.py", &cases);
        let answers: Vec<serde_json::Value> = serde_json::from_value(answer).unwrap();
        assert_eq!(answers.len(), VECTORS.len());
        for (v, answer) in VECTORS.iter().zip(answers) {
            let recorded = serde_json::json!({"similar": v.3, "common": v.4, "numeric": v.5});
            assert_eq!(answer, recorded, "{:?} {:?} {:?}", v.0, v.1, v.2);
        }
    }
}
