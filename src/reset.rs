//! Password reset links: `<reset.url>?uid=<uid>&token=<token>`.
//!
//! `uid` is Django's `urlsafe_base64_encode` of the decimal user id (user 1
//! is `MQ`). The token is an HMAC-SHA256, under a key derived from latch's
//! own reset secret (never the JWT key, which Django services may share), of
//! the reset row (id, user, expiry): 256 bits nobody can
//! guess without the key, and nothing that needs storing. A token dies with
//! its row: when used, when it expires, and when the password changes.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac as _};
use sha2::Sha256;
use subtle::ConstantTimeEq as _;

use crate::store::LiveResetToken;

/// Stands in the body of a queued reset mail where the link goes.
pub const LINK_PLACEHOLDER: &str = "{reset_link}";

pub struct ResetLinks {
    key: [u8; 32],
    base_url: String,
}

impl ResetLinks {
    /// `secret` is the reset secret (`reset.secret` or the generated one); the
    /// HMAC key is derived from it under a label of its own.
    pub fn new(secret: &[u8], base_url: &str) -> ResetLinks {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
        mac.update(b"latch password reset token key v1");
        ResetLinks {
            key: mac.finalize().into_bytes().into(),
            base_url: base_url.to_string(),
        }
    }

    pub fn token(&self, token_id: i64, user_id: i64, expires_at: i64) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(format!("{token_id}:{user_id}:{expires_at}").as_bytes());
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    }

    pub fn link(&self, token_id: i64, user_id: i64, expires_at: i64) -> String {
        let separator = if self.base_url.contains('?') {
            '&'
        } else {
            '?'
        };
        format!(
            "{}{separator}uid={}&token={}",
            self.base_url,
            encode_uid(user_id),
            self.token(token_id, user_id, expires_at)
        )
    }

    /// Which live token of `user_id` the presented one is, comparing against
    /// all of them in constant time.
    pub fn find(&self, presented: &str, user_id: i64, live: &[LiveResetToken]) -> Option<i64> {
        let mut found = None;
        for t in live {
            let expected = self.token(t.id, user_id, t.expires_at);
            if bool::from(expected.as_bytes().ct_eq(presented.as_bytes())) {
                found = Some(t.id);
            }
        }
        found
    }
}

/// Django's `urlsafe_base64_encode(force_bytes(pk))`.
pub fn encode_uid(id: i64) -> String {
    URL_SAFE_NO_PAD.encode(id.to_string())
}

/// The inverse; tolerant of padding, as Django's decoder is.
pub fn decode_uid(uid: &str) -> Option<i64> {
    let bytes = URL_SAFE_NO_PAD.decode(uid.trim_end_matches('=')).ok()?;
    let text = std::str::from_utf8(&bytes).ok()?;
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn links() -> ResetLinks {
        ResetLinks::new(b"secret", "http://x/reset")
    }

    #[test]
    fn uid_is_djangos_encoding() {
        assert_eq!(encode_uid(1), "MQ");
        assert_eq!(encode_uid(42), "NDI");
        assert_eq!(decode_uid("MQ"), Some(1));
        assert_eq!(decode_uid("MQ=="), Some(1));
        assert_eq!(decode_uid("NDI"), Some(42));
        // "", not base64, "a", "-1", a number too large for i64
        for bad in [
            "",
            "!!",
            "YQ",
            "LTE",
            "MTIzNDU2Nzg5MDEyMzQ1Njc4OTAxMjM0NTY3ODkw",
        ] {
            assert_eq!(decode_uid(bad), None, "{bad}");
        }
    }

    #[test]
    fn tokens_are_256_bit_url_safe_and_bound_to_row_user_and_expiry() {
        let l = links();
        let t = l.token(1, 1, 100);
        assert_eq!(t.len(), 43);
        assert!(
            t.bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        );
        assert_eq!(t, l.token(1, 1, 100), "deterministic");
        for other in [l.token(2, 1, 100), l.token(1, 2, 100), l.token(1, 1, 101)] {
            assert_ne!(t, other);
        }
        assert_ne!(
            t,
            ResetLinks::new(b"other secret", "http://x/reset").token(1, 1, 100)
        );
    }

    #[test]
    fn find_picks_the_matching_live_token() {
        let l = links();
        let live = [
            LiveResetToken {
                id: 3,
                expires_at: 10,
            },
            LiveResetToken {
                id: 5,
                expires_at: 20,
            },
        ];
        assert_eq!(l.find(&l.token(5, 7, 20), 7, &live), Some(5));
        assert_eq!(
            l.find(&l.token(5, 8, 20), 7, &live),
            None,
            "another user's token"
        );
        assert_eq!(l.find("", 7, &live), None);
        assert_eq!(l.find(&l.token(5, 7, 20), 7, &[]), None);
    }

    #[test]
    fn link_appends_to_any_base() {
        let t = links().token(1, 1, 9);
        assert_eq!(
            links().link(1, 1, 9),
            format!("http://x/reset?uid=MQ&token={t}")
        );
        let with_query = ResetLinks::new(b"secret", "http://x/r?lang=uk");
        assert_eq!(
            with_query.link(1, 1, 9),
            format!("http://x/r?lang=uk&uid=MQ&token={t}")
        );
    }
}
