//! Account fields, validated and normalized once at the edge, as Django's
//! user model does it. The messages are Django's own where it has one.

use unicode_normalization::UnicodeNormalization as _;

mod password;

pub use password::{PASSWORD_LENGTH_PATTERN, PASSWORD_MESSAGES, PasswordPolicy};

const USERNAME_MAX_CHARS: usize = 150;

/// The messages of `Username::parse` and `Email::parse`: the fixed ones, and
/// a pattern of the one that counts characters (`USERNAME_MAX_CHARS`).
pub const USERNAME_INVALID: &str = "Enter a valid username. This value may contain only letters, numbers, and @/./+/-/_ characters.";
pub const USERNAME_TOO_LONG_PATTERN: &str =
    r"^Ensure this value has at most 150 characters \(it has [0-9]+\)\.$";
pub const EMAIL_INVALID: &str = "Enter a valid email address.";
const EMAIL_MAX_CHARS: usize = 254;

/// A username as Django stores it: NFKC-normalized, 1-150 characters of
/// letters, digits and `@ . + - _`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Username(String);

impl Username {
    pub fn parse(raw: &str) -> Result<Username, String> {
        let name = normalize_username(raw);
        let count = name.chars().count();
        if count > USERNAME_MAX_CHARS {
            return Err(format!(
                "Ensure this value has at most {USERNAME_MAX_CHARS} characters (it has {count})."
            ));
        }
        let allowed = |c: char| c.is_alphanumeric() || matches!(c, '@' | '.' | '+' | '-' | '_');
        if name.is_empty() || !name.chars().all(allowed) {
            return Err(USERNAME_INVALID.into());
        }
        Ok(Username(name))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// Django's `normalize_username`: compatibility composition (NFKC), so that
/// look-alike forms of one name (full-width letters, ligatures) are one name.
pub fn normalize_username(raw: &str) -> String {
    raw.nfkc().collect()
}

/// An email address: the domain lower-cased as Django's `normalize_email`
/// does, and a key folded to lower case entirely, under which the address is
/// unique and looked up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email {
    address: String,
    key: String,
}

impl Email {
    pub fn parse(raw: &str) -> Result<Email, String> {
        const INVALID: &str = EMAIL_INVALID;
        if raw.chars().count() > EMAIL_MAX_CHARS
            || raw.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(INVALID.into());
        }
        let options = email_address::Options {
            minimum_sub_domains: 1,
            allow_domain_literal: false,
            allow_display_text: false,
            ..Default::default()
        };
        let parsed = email_address::EmailAddress::parse_with_options(raw, options)
            .map_err(|_| INVALID.to_string())?;
        let domain = parsed.domain().to_lowercase();
        if !(domain.contains('.') || domain == "localhost") {
            return Err(INVALID.into());
        }
        let address = format!("{}@{}", parsed.local_part(), domain);
        let key = address.to_lowercase();
        Ok(Email { address, key })
    }

    pub fn address(&self) -> &str {
        &self.address
    }

    pub fn key(&self) -> &str {
        &self.key
    }
}

/// The key under which an address typed by a user is looked up. Total: any
/// input gives a key; one that is not an address simply matches nothing.
pub fn email_lookup_key(raw: &str) -> String {
    raw.trim().to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_follow_django_rules() {
        for ok in [
            "alice",
            "a",
            "user.name+tag@host-x_1",
            "Ünïcødé",
            "用户",
            &"x".repeat(150),
        ] {
            assert!(Username::parse(ok).is_ok(), "{ok:?}");
        }
        for bad in [
            "",
            " ",
            "has space",
            "semi;colon",
            "tab\t",
            "nul\0",
            "emoji🙂",
            "slash/",
        ] {
            assert!(Username::parse(bad).is_err(), "{bad:?}");
        }
        let long = Username::parse(&"x".repeat(151)).unwrap_err();
        assert_eq!(
            long,
            "Ensure this value has at most 150 characters (it has 151)."
        );
    }

    #[test]
    fn usernames_are_nfkc_normalized() {
        // Full-width letters and the "ﬁ" ligature fold to plain ASCII.
        assert_eq!(Username::parse("ａｌｉｃｅ").unwrap().as_str(), "alice");
        assert_eq!(Username::parse("ﬁsh").unwrap().as_str(), "fish");
        // Case is kept: usernames are case-sensitive.
        assert_eq!(Username::parse("Alice").unwrap().as_str(), "Alice");
    }

    #[test]
    fn email_domain_is_lowercased_and_key_folds_everything() {
        let e = Email::parse("John.Doe@Example.COM").unwrap();
        assert_eq!(e.address(), "John.Doe@example.com");
        assert_eq!(e.key(), "john.doe@example.com");
        assert_eq!(email_lookup_key(" John.Doe@EXAMPLE.com"), e.key());
        assert!(Email::parse("root@localhost").is_ok());
    }

    #[test]
    fn invalid_emails_are_refused() {
        for bad in [
            "",
            "plain",
            "@example.com",
            "a@",
            "a b@example.com",
            "a@example",
            "a@@example.com",
            "Name <a@example.com>",
            "a@[127.0.0.1]",
            "a@example.com\n",
            "a\0@example.com",
        ] {
            assert_eq!(
                Email::parse(bad),
                Err("Enter a valid email address.".into()),
                "{bad:?}"
            );
        }
        let long = format!("{}@example.com", "a".repeat(250));
        assert!(Email::parse(&long).is_err());
    }
}
