//! `latch user ...`: create, list, show, set-password, activate, deactivate
//! and delete accounts, on the database file (also while `serve` runs on it).

use std::io::{IsTerminal as _, Write as _};

use clap::{Args, Subcommand};
use serde_json::{Value, json};

use super::{Failure, Missing, Outcome, Target, Tools, read_password, timestamp};
use crate::accounts;
use crate::config::Config;
use crate::passwords::{self, HashFormat};
use crate::store::User;

#[derive(Args, Debug)]
pub struct UserArgs {
    #[command(flatten)]
    pub target: Target,
    #[command(subcommand)]
    pub command: UserCommand,
}

/// USER is a username, or an id when no user has that username.
#[derive(Subcommand, Debug)]
pub enum UserCommand {
    /// Create an account, validated as registration validates it.
    Create {
        username: String,
        #[arg(long, value_name = "ADDR")]
        email: String,
        /// Read the password from the first line of stdin instead of asking twice.
        #[arg(long)]
        password_stdin: bool,
    },
    /// List every account.
    List {
        /// One JSON array instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show one account.
    Show {
        user: String,
        #[arg(long)]
        json: bool,
    },
    /// Set a new password; the user's refresh tokens and reset links stop working.
    SetPassword {
        user: String,
        /// Read the password from the first line of stdin instead of asking twice.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Let the user log in again.
    Activate { user: String },
    /// Stop the user from logging in; its refresh tokens and reset links stop working.
    Deactivate { user: String },
    /// Delete the account with its tokens (its id is never reused).
    Delete {
        user: String,
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
    },
}

pub fn run(config: Config, command: UserCommand) -> Outcome {
    let missing = match command {
        UserCommand::Create { .. } => Missing::Create,
        _ => Missing::Refuse,
    };
    let tools = Tools::open(config, missing)?;
    match command {
        UserCommand::Create {
            username,
            email,
            password_stdin,
        } => create(&tools, &username, &email, password_stdin),
        UserCommand::List { json } => list(&tools, json),
        UserCommand::Show { user, json } => show(&tools, &user, json),
        UserCommand::SetPassword {
            user,
            password_stdin,
        } => set_password(&tools, &user, password_stdin),
        UserCommand::Activate { user } => set_active(&tools, &user, true),
        UserCommand::Deactivate { user } => set_active(&tools, &user, false),
        UserCommand::Delete { user, yes } => delete(&tools, &user, yes),
    }
}

fn create(tools: &Tools, username: &str, email: &str, password_stdin: bool) -> Outcome {
    let password = read_password(password_stdin)?;
    let now = tools.clock.now();
    let account = (username, email, password);
    let id = tools.block_on(accounts::create(
        &tools.store,
        &tools.hasher,
        &tools.policy,
        account,
        now,
    ))?;
    let user = tools
        .block_on(tools.store.user_by_id(id))?
        .ok_or_else(|| Failure(format!("user {id} was deleted meanwhile")))?;
    println!("created user {} (id {id})", user.username);
    Ok(())
}

fn list(tools: &Tools, as_json: bool) -> Outcome {
    let users = tools.block_on(tools.store.users())?;
    let mut out = std::io::stdout().lock();
    if as_json {
        let all: Vec<Value> = users.iter().map(user_json).collect();
        writeln!(out, "{}", Value::Array(all))?;
        return Ok(());
    }
    let rows: Vec<[String; 7]> = users
        .iter()
        .map(|u| {
            [
                u.id.to_string(),
                u.username.clone(),
                u.email.clone(),
                yes_no(u.is_active),
                roles(u),
                timestamp(u.date_joined),
                u.last_login.map(timestamp).unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    let header = [
        "ID",
        "USERNAME",
        "EMAIL",
        "ACTIVE",
        "ROLES",
        "JOINED",
        "LAST LOGIN",
    ]
    .map(String::from);
    let mut widths = header.clone().map(|h| h.chars().count());
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    for row in std::iter::once(&header).chain(&rows) {
        let cells: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(cell, width)| format!("{cell:width$}"))
            .collect();
        writeln!(out, "{}", cells.join("  ").trim_end())?;
    }
    Ok(())
}

fn show(tools: &Tools, who: &str, as_json: bool) -> Outcome {
    let user = tools.find_user(who)?;
    let fields = user_json(&user);
    if as_json {
        println!("{fields}");
        return Ok(());
    }
    for (name, value) in fields.as_object().expect("an object") {
        let text = match value {
            Value::String(s) => s.clone(),
            Value::Null => "-".into(),
            other => other.to_string(),
        };
        println!("{name:<13} {text}");
    }
    Ok(())
}

fn set_password(tools: &Tools, who: &str, password_stdin: bool) -> Outcome {
    let user = tools.find_user(who)?;
    let password = read_password(password_stdin)?;
    let now = tools.clock.now();
    tools.block_on(accounts::set_password(
        &tools.store,
        &tools.hasher,
        &tools.policy,
        &user,
        password,
        now,
    ))?;
    println!(
        "set the password of {} (id {}); its refresh tokens and reset links no longer work",
        user.username, user.id
    );
    Ok(())
}

fn set_active(tools: &Tools, who: &str, active: bool) -> Outcome {
    let user = tools.find_user(who)?;
    let now = tools.clock.now();
    let id = user.id;
    if !tools.block_on(tools.store.set_active(id, active, now))? {
        return Err(Failure(format!("user {who:?} was deleted meanwhile")));
    }
    match active {
        true => println!("activated {} (id {id})", user.username),
        false => println!(
            "deactivated {} (id {id}); its refresh tokens and reset links no longer work",
            user.username
        ),
    }
    Ok(())
}

fn delete(tools: &Tools, who: &str, yes: bool) -> Outcome {
    let user = tools.find_user(who)?;
    if !yes && !confirm(&format!("Delete user {} (id {})?", user.username, user.id))? {
        return Err(Failure::new("not confirmed; nothing was deleted"));
    }
    let id = user.id;
    if !tools.block_on(tools.store.delete_user(id))? {
        return Err(Failure(format!("user {who:?} was deleted meanwhile")));
    }
    println!("deleted {} (id {id})", user.username);
    Ok(())
}

/// Asks at the terminal; without one, refuses (say `--yes` instead).
fn confirm(question: &str) -> Result<bool, Failure> {
    if !std::io::stdin().is_terminal() {
        return Err(Failure::new(
            "no terminal to confirm on: pass --yes to delete without asking",
        ));
    }
    eprint!("{question} [y/N] ");
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes"))
}

fn user_json(u: &User) -> Value {
    json!({
        "id": u.id,
        "username": u.username,
        "email": u.email,
        "is_active": u.is_active,
        "is_staff": u.is_staff,
        "is_superuser": u.is_superuser,
        "date_joined": timestamp(u.date_joined),
        "last_login": u.last_login.map(timestamp),
        "password": password_format(&u.password_hash),
    })
}

/// How the password is kept, never the hash itself.
fn password_format(hash: &str) -> String {
    let format = passwords::recognise(hash);
    match format {
        HashFormat::LatchScrypt => format.to_string(),
        HashFormat::Unusable => "unusable (cannot log in until a password is set)".into(),
        f if f.is_verifiable() => format!("{f} (replaced by latch scrypt at the next login)"),
        f => format!("{f} (cannot log in until a password is set)"),
    }
}

fn yes_no(flag: bool) -> String {
    if flag { "yes" } else { "no" }.into()
}

fn roles(u: &User) -> String {
    match (u.is_superuser, u.is_staff) {
        (true, _) => "superuser".into(),
        (false, true) => "staff".into(),
        (false, false) => "-".into(),
    }
}
