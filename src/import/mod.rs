//! Bringing users over from Django (`latch import django`): read the source,
//! sort its users into new, already here and conflicting, then write the new
//! ones in one transaction. Hashes are copied as Django stored them; login
//! checks them as Django would and replaces them with latch's scrypt.

mod dumpdata;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use crate::passwords::{self, HashFormat};
use crate::store::{
    DjangoTable, DjangoUser, Holdings, ImportWrite, ImportedUser, Store, StoreResult,
};
use crate::validate::{Email, Username};

/// What a source holds, told by its first bytes.
pub fn read_source(path: &Path) -> anyhow::Result<Source> {
    use anyhow::Context as _;
    use std::io::Read as _;
    let mut head = [0u8; 16];
    let mut file =
        std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let n = file.read(&mut head)?;
    if head[..n] == b"SQLite format 3\0"[..n.min(16)] && n == 16 {
        let table = crate::store::read_django_sqlite(path)?;
        return Ok(Source {
            kind: "SQLite database",
            table,
            other_objects: 0,
        });
    }
    if head[..n].iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[') {
        let json = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let (table, other_objects) = dumpdata::parse(&json)?;
        return Ok(Source {
            kind: "dumpdata export",
            table,
            other_objects,
        });
    }
    anyhow::bail!(
        "{} is neither a SQLite database nor the JSON of manage.py dumpdata auth.user",
        path.display()
    )
}

pub struct Source {
    /// "SQLite database" or "dumpdata export".
    pub kind: &'static str,
    pub table: DjangoTable,
    /// Objects of other models in an export (ignored).
    pub other_objects: usize,
}

/// A Django user latch will not take as it is, and why, in words that name
/// the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    pub id: i64,
    pub username: String,
    pub reason: String,
}

impl std::fmt::Display for Conflict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?} (id {}): {}", self.username, self.id, self.reason)
    }
}

/// What an import would do.
#[derive(Debug)]
pub struct Plan {
    pub new: Vec<ImportedUser>,
    /// How many of the new users have a password hash in each format.
    pub formats: BTreeMap<String, usize>,
    /// New users whose hash latch cannot check (an unknown format, malformed,
    /// or over latch's work limits): imported, but they can log in only
    /// after a password reset. Not a conflict: Django could not have let
    /// some of them in either.
    pub unverifiable: Vec<Conflict>,
    /// Already in latch with the same id and username: left alone (they may
    /// have logged in since and have latch's hash now).
    pub present: usize,
    pub conflicts: Vec<Conflict>,
    /// Accounts made in latch from now on get ids above this: above every
    /// id Django ever used, and every id latch ever gave.
    pub id_floor: i64,
}

/// What an import would do, against what the store holds now. Reads only
/// (for `--dry-run`).
pub async fn dry_run(store: &Store, table: DjangoTable) -> StoreResult<Plan> {
    Ok(plan(store.holdings().await?, table))
}

/// Plans and writes in one transaction, under the write lock: the new users
/// go in unless there are conflicts and `skip_conflicts` is false, in which
/// case nothing is written. The plan says what was found.
pub async fn run(
    store: &Store,
    table: DjangoTable,
    skip_conflicts: bool,
    progress: &dyn Fn(usize, usize),
) -> StoreResult<Plan> {
    store
        .import_users(
            |holdings| plan(holdings, table),
            |plan: &Plan| {
                (plan.conflicts.is_empty() || skip_conflicts).then(|| ImportWrite {
                    users: &plan.new,
                    id_floor: plan.id_floor,
                })
            },
            progress,
        )
        .await
}

/// Ids above this cannot be read exactly by JavaScript clients (profile's
/// `id` is a JSON number), and would leave latch's own sequence no room.
const MAX_ID: i64 = (1 << 53) - 1;

/// Sorts the source's users against what latch holds.
pub fn plan(holdings: Holdings, table: DjangoTable) -> Plan {
    let latch = &holdings.users;
    let by_id: HashMap<i64, &str> = latch.iter().map(|u| (u.id, u.username.as_str())).collect();
    let id_by_name: HashMap<&str, i64> =
        latch.iter().map(|u| (u.username.as_str(), u.id)).collect();
    let by_key: HashMap<&str, (i64, &str)> = latch
        .iter()
        .filter_map(|u| Some((u.email_key.as_deref()?, (u.id, u.username.as_str()))))
        .collect();

    let mut plan = Plan {
        new: Vec::new(),
        formats: BTreeMap::new(),
        unverifiable: Vec::new(),
        present: 0,
        conflicts: Vec::new(),
        id_floor: table.max_id_ever.max(holdings.max_id_ever),
    };
    // An export can repeat an id or a username; latch would have to merge.
    let mut source_ids: HashMap<i64, usize> = HashMap::new();
    let mut source_names: HashMap<&str, Vec<i64>> = HashMap::new();
    for user in &table.users {
        *source_ids.entry(user.id).or_default() += 1;
        source_names
            .entry(&user.username)
            .or_default()
            .push(user.id);
    }
    let mut candidates = Vec::new();
    for user in &table.users {
        let twin_name = source_names[user.username.as_str()]
            .iter()
            .find(|id| **id != user.id);
        let reason = if source_ids[&user.id] > 1 {
            Some(format!(
                "{} users of the source have id {}",
                source_ids[&user.id], user.id
            ))
        } else if let Some(other) = twin_name {
            Some(format!(
                "the user with id {other} in the source has the same username"
            ))
        } else {
            match by_id.get(&user.id) {
                Some(name) if *name == user.username => {
                    plan.present += 1;
                    continue;
                }
                Some(name) => Some(format!("its id is taken by the latch user {name:?}")),
                None if user.id <= holdings.max_id_ever => Some(
                    "its id was given to a latch account since deleted, and latch never gives an id out twice"
                        .into(),
                ),
                None => match checked(user) {
                    Err(reason) => Some(reason),
                    Ok(imported) => {
                        candidates.push(imported);
                        None
                    }
                },
            }
        };
        if let Some(reason) = reason {
            plan.conflicts.push(conflict(user, reason));
        }
    }
    // Addresses are unique regardless of case in latch, not in Django.
    let mut sharing: HashMap<&str, Vec<&ImportedUser>> = HashMap::new();
    for user in &candidates {
        if let Some(key) = &user.email_key {
            sharing.entry(key).or_default().push(user);
        }
    }
    let mut refused = Vec::new();
    for user in &candidates {
        let reason = if let Some(id) = id_by_name.get(user.username.as_str()) {
            Some(format!(
                "its username is taken by the latch user with id {id}"
            ))
        } else if let Some(key) = &user.email_key {
            let others: Vec<String> = sharing[key.as_str()]
                .iter()
                .filter(|other| other.id != user.id)
                .map(|other| format!("{:?} (id {}, {})", other.username, other.id, other.email))
                .collect();
            if !others.is_empty() {
                Some(format!(
                    "its email {} is also the email of {} (latch allows one account per address, ignoring case)",
                    user.email,
                    others.join(", ")
                ))
            } else {
                by_key.get(key.as_str()).map(|(id, name)| {
                    format!("its email is taken by the latch user {name:?} (id {id})")
                })
            }
        } else {
            None
        };
        match reason {
            Some(reason) => refused.push(Conflict {
                id: user.id,
                username: user.username.clone(),
                reason,
            }),
            None => {
                let format = passwords::recognise(&user.password_hash);
                *plan.formats.entry(format.to_string()).or_default() += 1;
                if !format.is_verifiable() && format != HashFormat::Unusable {
                    plan.unverifiable.push(Conflict {
                        id: user.id,
                        username: user.username.clone(),
                        reason: format!(
                            "its password hash ({format}) cannot be checked by latch; the user can log in after a password reset"
                        ),
                    });
                }
                plan.new.push(user.clone());
            }
        }
    }
    plan.conflicts.extend(refused);
    plan.conflicts.sort_by_key(|c| c.id);
    plan
}

fn conflict(user: &DjangoUser, reason: String) -> Conflict {
    Conflict {
        id: user.id,
        username: user.username.clone(),
        reason,
    }
}

/// The user as latch would store it, if latch's rules take it as it is.
fn checked(user: &DjangoUser) -> Result<ImportedUser, String> {
    if !(1..=MAX_ID).contains(&user.id) {
        return Err(format!("its id is not between 1 and {MAX_ID}"));
    }
    match Username::parse(&user.username) {
        Err(reason) => return Err(format!("latch refuses the username: {reason}")),
        Ok(name) if name.as_str() != user.username => {
            return Err(format!(
                "the username is not in the normal form (NFKC) that logins are read in, which is {:?}",
                name.as_str()
            ));
        }
        Ok(_) => {}
    }
    let email_key = match user.email.as_str() {
        "" => None,
        email => match Email::parse(email) {
            Ok(parsed) => Some(parsed.key().to_string()),
            Err(reason) => return Err(format!("latch refuses the email {email:?}: {reason}")),
        },
    };
    let date_joined = django_time(&user.date_joined)
        .ok_or_else(|| format!("its date_joined {:?} is not a date", user.date_joined))?;
    let last_login = match &user.last_login {
        None => None,
        Some(text) => Some(
            django_time(text).ok_or_else(|| format!("its last_login {text:?} is not a date"))?,
        ),
    };
    Ok(ImportedUser {
        id: user.id,
        username: user.username.clone(),
        email: user.email.clone(),
        email_key,
        password_hash: user.password.clone(),
        is_active: user.is_active,
        is_staff: user.is_staff,
        is_superuser: user.is_superuser,
        date_joined,
        last_login,
    })
}

/// A time as Django writes it, as Unix seconds: with an offset or `Z`
/// (dumpdata), or without one (Django's SQLite columns, in UTC when
/// USE_TZ is on, the project's default; taken as UTC).
fn django_time(text: &str) -> Option<i64> {
    use chrono::{DateTime, NaiveDateTime};
    let text = text.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(t.timestamp());
    }
    for format in [
        "%Y-%m-%d %H:%M:%S%.f%:z",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S%.f",
    ] {
        if let Ok(t) = DateTime::parse_from_str(text, format) {
            return Some(t.timestamp());
        }
        if let Ok(t) = NaiveDateTime::parse_from_str(text, format) {
            return Some(t.and_utc().timestamp());
        }
    }
    None
}

#[cfg(test)]
mod tests;
