//! `manage.py dumpdata auth.user` output: a JSON array of
//! `{"model": "auth.user", "pk": 1, "fields": {...}}`.

use serde_json::Value;

use crate::store::{DjangoTable, DjangoUser};

/// The `auth.user` objects of an export. Other models are counted in the
/// second value, not read. An export has no sequence: the largest id in it
/// is the highest Django id latch can know of.
pub fn parse(json: &[u8]) -> anyhow::Result<(DjangoTable, usize)> {
    let objects: Vec<Value> = serde_json::from_slice(json)
        .map_err(|e| anyhow::anyhow!("the export is not the JSON of manage.py dumpdata: {e}"))?;
    let mut users = Vec::new();
    let mut other = 0;
    for (n, object) in objects.iter().enumerate() {
        let model = object.get("model").and_then(Value::as_str).unwrap_or("");
        if !model.eq_ignore_ascii_case("auth.user") {
            other += 1;
            continue;
        }
        users.push(
            user(object).map_err(|e| anyhow::anyhow!("object {} of the export: {e}", n + 1))?,
        );
    }
    let max_id_ever = users.iter().map(|u| u.id).max().unwrap_or(0);
    Ok((DjangoTable { users, max_id_ever }, other))
}

fn user(object: &Value) -> Result<DjangoUser, String> {
    let id = match object.get("pk") {
        Some(Value::Number(n)) => n.as_i64(),
        Some(Value::String(s)) => s.parse().ok(),
        None => {
            return Err(
                "it has no \"pk\" (exported with --natural-primary?); export without it so that ids are kept"
                    .into(),
            );
        }
        _ => None,
    }
    .filter(|id| *id > 0)
    .ok_or("its \"pk\" is not a positive integer")?;
    let fields = object
        .get("fields")
        .and_then(Value::as_object)
        .ok_or("it has no \"fields\" object")?;
    let text = |name: &str| -> Result<Option<String>, String> {
        match fields.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(format!("its \"{name}\" is not text")),
        }
    };
    let flag = |name: &str, default: bool| -> Result<bool, String> {
        match fields.get(name) {
            None | Some(Value::Null) => Ok(default),
            Some(Value::Bool(b)) => Ok(*b),
            Some(_) => Err(format!("its \"{name}\" is not true or false")),
        }
    };
    Ok(DjangoUser {
        id,
        username: text("username")?.ok_or("it has no \"username\"")?,
        email: text("email")?.unwrap_or_default(),
        password: text("password")?.unwrap_or_default(),
        is_active: flag("is_active", true)?,
        is_staff: flag("is_staff", false)?,
        is_superuser: flag("is_superuser", false)?,
        date_joined: text("date_joined")?.unwrap_or_default(),
        last_login: text("last_login")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_users_and_skips_other_models() {
        let json = br#"[
            {"model": "auth.user", "pk": 3, "fields": {"password": "pbkdf2_sha256$1$s$h", "last_login": null,
             "is_superuser": true, "username": "ann", "first_name": "", "last_name": "", "email": "",
             "is_staff": true, "is_active": false, "date_joined": "2024-01-02T03:04:05Z", "groups": [], "user_permissions": []}},
            {"model": "auth.group", "pk": 1, "fields": {"name": "g"}}
        ]"#;
        let (table, other) = parse(json).unwrap();
        assert_eq!(other, 1);
        assert_eq!(table.max_id_ever, 3);
        let ann = &table.users[0];
        assert_eq!(
            (ann.id, ann.username.as_str(), ann.email.as_str()),
            (3, "ann", "")
        );
        assert!(ann.is_superuser && ann.is_staff && !ann.is_active);
        assert_eq!(ann.last_login, None);
    }

    #[test]
    fn an_export_without_ids_or_with_bad_fields_is_refused_with_the_reason() {
        let no_pk = br#"[{"model": "auth.user", "fields": {"username": "a"}}]"#;
        assert!(
            parse(no_pk)
                .unwrap_err()
                .to_string()
                .contains("--natural-primary")
        );
        let bad = br#"[{"model": "auth.user", "pk": 1, "fields": {"username": 5}}]"#;
        assert!(
            parse(bad)
                .unwrap_err()
                .to_string()
                .contains("\"username\" is not text")
        );
        assert!(parse(b"{}").is_err());
        assert!(parse(b"not json").is_err());
    }
}
