//! What a handler gets from a request, read and parsed as Django REST
//! Framework would: JSON or form bodies, size-limited, errors in DRF's words.

use std::pin::Pin;
use std::time::Duration;

use bytes::{Buf, BufMut as _, Bytes, BytesMut};
use futures_util::{FutureExt as _, Stream, StreamExt as _};
use serde_json::{Map, Value, json};
use warp::http::{HeaderMap, header};

use crate::error::ApiError;

/// A request with its body fully read (and within the size limit).
pub struct Request {
    pub headers: HeaderMap,
    pub query: String,
    pub body: Bytes,
    /// The connecting address (not yet judged for proxies: see `limits::ClientIp`).
    pub peer: Option<std::net::SocketAddr>,
}

impl Request {
    /// The body as a JSON object, whatever format it came in.
    pub fn data(&self) -> Result<Map<String, Value>, ApiError> {
        let content_type = self
            .headers
            .get(header::CONTENT_TYPE)
            .map(|v| String::from_utf8_lossy(v.as_bytes()));
        parse_body(content_type.as_deref(), &self.body)
    }

    /// The last value of a query parameter, as Django's `QueryDict.get` returns it.
    pub fn query_param(&self, name: &str) -> Option<String> {
        form_urlencoded::parse(self.query.as_bytes())
            .filter(|(key, _)| key == name)
            .last()
            .map(|(_, value)| value.into_owned())
    }
}

/// The body length the client announced in `Content-Length`, if any.
pub fn announced_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

/// Reads the whole body, refusing more than `limit` bytes (whether announced
/// by Content-Length or only found out while reading a chunked body).
pub async fn read_body<S, B>(
    announced: Option<u64>,
    mut body: Pin<&mut S>,
    limit: u64,
) -> Result<Bytes, ApiError>
where
    S: Stream<Item = Result<B, warp::Error>>,
    B: Buf,
{
    if announced.is_some_and(|len| len > limit) {
        return Err(ApiError::PayloadTooLarge { limit });
    }
    let mut buffer = BytesMut::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|_| ApiError::Parse(BODY_UNREADABLE.into()))?;
        if (buffer.len() + chunk.remaining()) as u64 > limit {
            return Err(ApiError::PayloadTooLarge { limit });
        }
        buffer.put(chunk);
    }
    Ok(buffer.freeze())
}

/// The most of an unread body worth reading just to throw away.
const DRAIN_BYTES: usize = 1024 * 1024;
const DRAIN_TIME: Duration = Duration::from_secs(1);

/// Reads and discards what is left of a request body, so that an answer given
/// before the body was read (405, 413, 404...) leaves the connection usable:
/// otherwise the server closes it with bytes unread, and a client that sends
/// its next request on it sees a broken pipe, or a reset instead of the answer.
/// Returns false when the rest was too large or too slow to drain; the
/// connection must then be announced as closing. A body announced as larger
/// than that is not read at all.
pub async fn drain<S, B>(announced: Option<u64>, mut body: Pin<&mut S>) -> bool
where
    S: Stream<Item = Result<B, warp::Error>>,
    B: Buf,
{
    if announced.is_some_and(|len| len > DRAIN_BYTES as u64) {
        return false;
    }
    let mut seen = 0;
    // Nearly always the body was read, or there was none: see that without
    // arming a timer; only a body that would make us wait gets a deadline.
    loop {
        match body.next().now_or_never() {
            Some(None) => return true,
            Some(Some(Ok(chunk))) if seen + chunk.remaining() <= DRAIN_BYTES => {
                seen += chunk.remaining();
            }
            Some(Some(_)) => return false,
            None => break,
        }
    }
    let discard = async {
        while let Some(chunk) = body.next().await {
            match chunk {
                Ok(chunk) if seen + chunk.remaining() <= DRAIN_BYTES => seen += chunk.remaining(),
                _ => return false,
            }
        }
        true
    };
    tokio::time::timeout(DRAIN_TIME, discard)
        .await
        .unwrap_or(false)
}

/// DRF's parser selection: an empty body, or one without a content type, is
/// no data; JSON and URL-encoded forms are parsed; anything else is a 415.
pub fn parse_body(content_type: Option<&str>, body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    let media_type = content_type
        .map(|ct| {
            ct.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .filter(|m| !m.is_empty());
    let Some(media_type) = media_type.filter(|_| !body.is_empty()) else {
        return Ok(Map::new());
    };
    match media_type.as_str() {
        "application/json" => {
            let value: Value = serde_json::from_slice(body)
                .map_err(|e| ApiError::Parse(format!("{JSON_PARSE_ERROR}{e}")))?;
            into_object(value)
        }
        "application/x-www-form-urlencoded" => {
            let mut data = Map::new();
            // Repeated keys: the last one wins, as with QueryDict.get.
            for (key, value) in form_urlencoded::parse(body) {
                data.insert(key.into_owned(), Value::String(value.into_owned()));
            }
            Ok(data)
        }
        _ => Err(ApiError::UnsupportedMediaType(
            content_type.unwrap_or_default().to_string(),
        )),
    }
}

/// DRF's `non_field_errors` for JSON that is no object: `null`, and the
/// Python type names of the others (see `into_object`).
pub const NO_DATA: &str = "No data provided";
pub const NOT_A_DICTIONARY: [&str; 5] = ["list", "str", "bool", "float", "int"];

/// `Invalid data. Expected a dictionary, but got <type>.`
pub fn not_a_dictionary(python_type: &str) -> String {
    format!("Invalid data. Expected a dictionary, but got {python_type}.")
}

/// The start of the `detail` of a body that is not JSON.
pub const JSON_PARSE_ERROR: &str = "JSON parse error - ";
/// The `detail` of a body broken off mid-way.
pub const BODY_UNREADABLE: &str = "The request body could not be read.";

fn into_object(value: Value) -> Result<Map<String, Value>, ApiError> {
    let [list, string, boolean, float, int] = NOT_A_DICTIONARY;
    let python_type = match value {
        Value::Object(map) => return Ok(map),
        Value::Null => return Err(non_field_error(NO_DATA)),
        Value::Array(_) => list,
        Value::String(_) => string,
        Value::Bool(_) => boolean,
        Value::Number(ref n) if n.is_f64() => float,
        Value::Number(_) => int,
    };
    Err(non_field_error(&not_a_dictionary(python_type)))
}

fn non_field_error(message: &str) -> ApiError {
    let mut fields = Map::new();
    fields.insert("non_field_errors".into(), json!([message]));
    ApiError::Fields(fields)
}

/// Reads string fields the way a DRF serializer's `CharField`s do, collecting
/// every field's error into one 400 (`{"username": ["This field is required."]}`).
/// Numbers are taken as their text, as DRF does. Values are returned untrimmed;
/// blankness is judged on the trimmed text.
pub fn char_fields<const N: usize>(
    data: &Map<String, Value>,
    names: [&str; N],
) -> Result<[String; N], ApiError> {
    let mut errors = Map::new();
    let values = names.map(|name| match char_field(data.get(name)) {
        Ok(value) => value,
        Err(message) => {
            errors.insert(name.to_string(), json!([message]));
            String::new()
        }
    });
    if errors.is_empty() {
        Ok(values)
    } else {
        Err(ApiError::Fields(errors))
    }
}

/// DRF's messages for a `CharField`, in the order `char_field` checks.
pub const FIELD_MESSAGES: [&str; 5] = [
    "This field is required.",
    "This field may not be null.",
    "Not a valid string.",
    "This field may not be blank.",
    "Null characters are not allowed.",
];

fn char_field(value: Option<&Value>) -> Result<String, &'static str> {
    let [required, null, not_string, blank, nul] = FIELD_MESSAGES;
    let text = match value {
        None => return Err(required),
        Some(Value::Null) => return Err(null),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        Some(_) => return Err(not_string),
    };
    if text.trim().is_empty() {
        return Err(blank);
    }
    if text.contains('\0') {
        return Err(nul);
    }
    Ok(text)
}

/// A field as the original hand-written views read it: `request.data.get(name)`
/// followed by `if not value`.
#[derive(Debug, PartialEq, Eq)]
pub enum ViewField {
    /// Missing, or falsy in Python's sense: null, "", false, 0, [], {}.
    Absent,
    /// Present and truthy, but not a string.
    NotText,
    Text(String),
}

pub fn view_field(data: &Map<String, Value>, name: &str) -> ViewField {
    match data.get(name) {
        None | Some(Value::Null) | Some(Value::Bool(false)) => ViewField::Absent,
        Some(Value::String(s)) if s.is_empty() => ViewField::Absent,
        Some(Value::String(s)) => ViewField::Text(s.clone()),
        Some(Value::Number(n)) if n.as_f64() == Some(0.0) => ViewField::Absent,
        Some(Value::Array(a)) if a.is_empty() => ViewField::Absent,
        Some(Value::Object(o)) if o.is_empty() => ViewField::Absent,
        Some(_) => ViewField::NotText,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(ct: Option<&str>, body: &str) -> Result<Value, Value> {
        parse_body(ct, body.as_bytes())
            .map(Value::Object)
            .map_err(|e| {
                let resp = e.into_response();
                json!(resp.status().as_u16())
            })
    }

    fn fields_error(err: ApiError) -> Value {
        match err {
            ApiError::Fields(f) => Value::Object(f),
            other => panic!("not a field error: {other:?}"),
        }
    }

    #[test]
    fn json_and_form_bodies() {
        assert_eq!(
            parse(Some("application/json"), r#"{"a":"b"}"#),
            Ok(json!({"a": "b"}))
        );
        assert_eq!(
            parse(Some("application/json; charset=utf-8"), r#"{"a":1}"#),
            Ok(json!({"a": 1}))
        );
        assert_eq!(
            parse(Some("application/x-www-form-urlencoded"), "a=1&b=x%20y&a=2"),
            Ok(json!({"a": "2", "b": "x y"}))
        );
    }

    #[test]
    fn empty_or_untyped_bodies_are_no_data() {
        assert_eq!(parse(Some("application/json"), ""), Ok(json!({})));
        assert_eq!(parse(None, r#"{"a":"b"}"#), Ok(json!({})));
        assert_eq!(parse(Some("text/plain"), ""), Ok(json!({})));
    }

    #[test]
    fn unreadable_bodies() {
        assert_eq!(parse(Some("text/plain"), "hi"), Err(json!(415)));
        assert_eq!(parse(Some("application/json"), "{"), Err(json!(400)));
        let err = parse_body(Some("application/json"), b"[1]").unwrap_err();
        assert_eq!(
            fields_error(err),
            json!({"non_field_errors": ["Invalid data. Expected a dictionary, but got list."]})
        );
        for (body, kind) in [
            ("\"s\"", "str"),
            ("1", "int"),
            ("1.5", "float"),
            ("true", "bool"),
        ] {
            let err = parse_body(Some("application/json"), body.as_bytes()).unwrap_err();
            let expected = format!("Invalid data. Expected a dictionary, but got {kind}.");
            assert_eq!(fields_error(err), json!({"non_field_errors": [expected]}));
        }
        let err = parse_body(Some("application/json"), b"null").unwrap_err();
        assert_eq!(
            fields_error(err),
            json!({"non_field_errors": ["No data provided"]})
        );
        match parse_body(Some("application/json"), b"{\"a\":").unwrap_err() {
            ApiError::Parse(detail) => {
                assert!(detail.starts_with("JSON parse error - "), "{detail}")
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn char_fields_speak_drf() {
        let data = json!({"n": null, "b": "  ", "t": true, "num": 12, "ok": " x ", "nul": "a\0b"});
        let data = data.as_object().unwrap();
        let err = char_fields(data, ["missing", "n", "b", "t", "nul"]).unwrap_err();
        assert_eq!(
            fields_error(err),
            json!({
                "missing": ["This field is required."],
                "n": ["This field may not be null."],
                "b": ["This field may not be blank."],
                "t": ["Not a valid string."],
                "nul": ["Null characters are not allowed."],
            })
        );
        assert_eq!(
            char_fields(data, ["num", "ok"]).unwrap(),
            ["12".to_string(), " x ".to_string()]
        );
    }

    #[test]
    fn view_fields_follow_python_truthiness() {
        let data = json!({"e": "", "z": 0, "f": false, "l": [], "o": {}, "n": null, "s": "x", "t": true, "i": 3});
        let data = data.as_object().unwrap();
        for absent in ["missing", "e", "z", "f", "l", "o", "n"] {
            assert_eq!(view_field(data, absent), ViewField::Absent, "{absent}");
        }
        assert_eq!(view_field(data, "s"), ViewField::Text("x".into()));
        assert_eq!(view_field(data, "t"), ViewField::NotText);
        assert_eq!(view_field(data, "i"), ViewField::NotText);
    }

    #[test]
    fn query_param_takes_the_last_value() {
        let req = Request {
            headers: HeaderMap::new(),
            query: "uid=MQ&token=a&token=b%2Bc".into(),
            body: Bytes::new(),
            peer: None,
        };
        assert_eq!(req.query_param("uid").as_deref(), Some("MQ"));
        assert_eq!(req.query_param("token").as_deref(), Some("b+c"));
        assert_eq!(req.query_param("nope"), None);
    }
}
