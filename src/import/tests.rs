use super::*;
use crate::store::NewUser;

fn django(id: i64, username: &str, email: &str) -> DjangoUser {
    DjangoUser {
        id,
        username: username.into(),
        email: email.into(),
        password: django_hash(id),
        is_active: true,
        is_staff: false,
        is_superuser: false,
        date_joined: "2024-01-02 03:04:05.123456".into(),
        last_login: None,
    }
}

/// A well-formed Django PBKDF2 hash (of no known password).
fn django_hash(id: i64) -> String {
    format!("pbkdf2_sha256$1000$salt{id}${}=", "A".repeat(43))
}

fn table(users: Vec<DjangoUser>, max_id_ever: i64) -> DjangoTable {
    DjangoTable { users, max_id_ever }
}

fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_sqlite(
        &dir.path().join("t.db"),
        std::time::Duration::from_secs(1),
        2,
    )
    .unwrap();
    (dir, store)
}

fn reasons(plan: &Plan) -> Vec<String> {
    plan.conflicts.iter().map(ToString::to_string).collect()
}

#[tokio::test]
async fn users_are_kept_with_their_ids_and_new_ids_start_above_every_django_id() {
    let (_dir, store) = store();
    let mut staff = django(7, "Zoë", "");
    staff.is_staff = true;
    staff.last_login = Some("2024-05-06T07:08:09Z".into());
    let users = vec![
        django(2, "ann", "Ann@Example.com"),
        staff,
        django(9, "bob", ""),
    ];
    let plan = run(&store, table(users, 12), false, &|_, _| {})
        .await
        .unwrap();
    assert_eq!(reasons(&plan), Vec::<String>::new());
    assert_eq!(plan.id_floor, 12);

    let zoe = store.user_by_id(7).await.unwrap().unwrap();
    assert_eq!(zoe.username, "Zoë");
    assert_eq!((zoe.email.as_str(), zoe.email_key), ("", None));
    assert!(zoe.is_staff && !zoe.is_superuser && zoe.is_active);
    assert_eq!(zoe.last_login, Some(1714979289));
    assert_eq!(zoe.date_joined, 1704164645);
    assert_eq!(zoe.password_hash, django_hash(7));
    let ann = store
        .user_by_email_key("ann@example.com")
        .await
        .unwrap()
        .unwrap();
    assert_eq!((ann.id, ann.email.as_str()), (2, "Ann@Example.com"));

    let new = NewUser {
        username: "carl".into(),
        email: "c@x.io".into(),
        email_key: "c@x.io".into(),
        password_hash: "h".into(),
    };
    assert_eq!(
        store.insert_user(new.clone(), 0).await.unwrap(),
        crate::store::InsertUser::Created(13),
        "above Django's sequence (12), not just its largest id left (9)"
    );
}

#[tokio::test]
async fn a_second_run_leaves_everyone_alone_including_changed_hashes() {
    let (_dir, store) = store();
    let users = vec![django(1, "ann", "a@x.io"), django(2, "bob", "b@x.io")];
    run(&store, table(users.clone(), 2), false, &|_, _| {})
        .await
        .unwrap();
    assert!(
        store
            .upgrade_password_hash(1, django_hash(1), "$scrypt$new".into())
            .await
            .unwrap()
    );
    let again = run(&store, table(users, 2), false, &|_, _| {})
        .await
        .unwrap();
    assert_eq!(
        (again.new.len(), again.present, again.conflicts.len()),
        (0, 2, 0)
    );
    assert_eq!(
        store.user_by_id(1).await.unwrap().unwrap().password_hash,
        "$scrypt$new"
    );
}

#[tokio::test]
async fn conflicts_are_named_and_nothing_is_merged() {
    let (_dir, store) = store();
    // Latch users that were here first.
    for (name, email) in [("ann", "ann@x.io"), ("taken", "t@x.io")] {
        let new = NewUser {
            username: name.into(),
            email: email.into(),
            email_key: email.into(),
            password_hash: "h".into(),
        };
        store.insert_user(new.clone(), 0).await.unwrap();
    }
    let users = vec![
        django(1, "not-ann", "z@x.io"),         // id 1 is latch's ann
        django(10, "taken", "other@x.io"),      // username of latch's id 2
        django(11, "Case", "Case@Example.com"), // these two differ only in case
        django(12, "case", "case@EXAMPLE.com"),
        django(13, "has space", "s@x.io"), // latch refuses the username
        django(14, "ﬁsh", "f@x.io"),       // not NFKC: logins would read "fish"
        django(15, "mail", "not-an-address"), // latch refuses the email
        django(16, "dup", "T@x.io"),       // latch's "taken" has this address
        django(17, "ok", ""),
    ];
    let mut bad_date = django(18, "when", "");
    bad_date.date_joined = "yesterday".into();
    let mut users = users;
    users.push(bad_date);
    let plan = dry_run(&store, table(users, 18)).await.unwrap();
    let found = reasons(&plan);
    let expect = [
        r#""not-ann" (id 1): its id is taken by the latch user "ann""#,
        r#""taken" (id 10): its username is taken by the latch user with id 2"#,
        r#""Case" (id 11): its email Case@Example.com is also the email of "case" (id 12, case@EXAMPLE.com)"#,
        r#""case" (id 12): its email case@EXAMPLE.com is also the email of "Case" (id 11, Case@Example.com)"#,
        r#""has space" (id 13): latch refuses the username"#,
        r#""ﬁsh" (id 14): the username is not in the normal form (NFKC) that logins are read in, which is "fish""#,
        r#""mail" (id 15): latch refuses the email "not-an-address""#,
        r#""dup" (id 16): its email is taken by the latch user "taken" (id 2)"#,
        r#""when" (id 18): its date_joined "yesterday" is not a date"#,
    ];
    assert_eq!(found.len(), expect.len(), "{found:#?}");
    for (found, expect) in found.iter().zip(expect) {
        assert!(
            found.starts_with(expect),
            "{found}\n does not start with\n{expect}"
        );
    }
    assert_eq!(plan.new.len(), 1);
    assert_eq!(plan.new[0].username, "ok");
}

#[tokio::test]
async fn ids_of_deleted_latch_accounts_are_never_given_again() {
    // A latch account, deleted: its id (and its tokens) must stay dead.
    let (_dir, store) = store();
    let ann = NewUser {
        username: "ann".into(),
        email: "a@x.io".into(),
        email_key: "a@x.io".into(),
        password_hash: "h".into(),
    };
    store.insert_user(ann.clone(), 0).await.unwrap();
    assert!(store.delete_user(1).await.unwrap());
    let plan = dry_run(&store, table(vec![django(1, "dj", "dj@x.io")], 1))
        .await
        .unwrap();
    assert_eq!(
        reasons(&plan),
        [
            r#""dj" (id 1): its id was given to a latch account since deleted, and latch never gives an id out twice"#
        ]
    );

    // An imported user deleted in latch does not come back on a re-run.
    let (_dir2, store) = self::store();
    let users = vec![django(1, "ann", "a@x.io"), django(2, "bob", "b@x.io")];
    run(&store, table(users.clone(), 2), false, &|_, _| {})
        .await
        .unwrap();
    assert!(store.delete_user(2).await.unwrap());
    let again = run(&store, table(users, 2), true, &|_, _| {})
        .await
        .unwrap();
    assert_eq!(again.conflicts.len(), 1, "{:?}", reasons(&again));
    assert!(
        store.user_by_id(2).await.unwrap().is_none(),
        "bob stays deleted"
    );
}

#[tokio::test]
async fn an_export_that_repeats_an_id_or_a_username_is_a_conflict() {
    let (_dir, store) = store();
    let users = vec![
        django(5, "five", ""),
        django(5, "also-five", ""),
        django(6, "dup", "six@x.io"),
        django(7, "dup", "seven@x.io"),
        django(8, "fine", ""),
    ];
    let plan = dry_run(&store, table(users, 8)).await.unwrap();
    assert_eq!(
        reasons(&plan),
        [
            r#""five" (id 5): 2 users of the source have id 5"#,
            r#""also-five" (id 5): 2 users of the source have id 5"#,
            r#""dup" (id 6): the user with id 7 in the source has the same username"#,
            r#""dup" (id 7): the user with id 6 in the source has the same username"#,
        ]
    );
    assert_eq!(plan.new.len(), 1);
}

#[tokio::test]
async fn a_stopped_import_writes_nothing_not_even_the_id_floor() {
    let (_dir, store) = store();
    let users = vec![django(1, "ok", ""), django(2, "bad name", "")];
    let plan = run(&store, table(users, 500), false, &|_, _| {})
        .await
        .unwrap();
    assert_eq!(plan.conflicts.len(), 1);
    assert!(store.user_by_id(1).await.unwrap().is_none());
    assert_eq!(store.holdings().await.unwrap().max_id_ever, 0);
    // With --skip-conflicts the rest goes in, and ids start above Django's.
    run(
        &store,
        table(vec![django(1, "ok", ""), django(2, "bad name", "")], 500),
        true,
        &|_, _| {},
    )
    .await
    .unwrap();
    assert!(store.user_by_id(1).await.unwrap().is_some());
    assert_eq!(store.holdings().await.unwrap().max_id_ever, 500);
}

#[tokio::test]
async fn ids_javascript_cannot_represent_are_refused() {
    let (_dir, store) = store();
    let plan = dry_run(&store, table(vec![django(1 << 60, "big", "")], 1 << 60))
        .await
        .unwrap();
    assert_eq!(plan.conflicts.len(), 1);
    assert!(
        plan.conflicts[0]
            .reason
            .starts_with("its id is not between 1 and")
    );
}

#[test]
fn django_times_in_every_form_it_writes() {
    assert_eq!(django_time("2024-01-02 03:04:05"), Some(1704164645));
    assert_eq!(django_time("2024-01-02 03:04:05.999999"), Some(1704164645));
    assert_eq!(django_time("2024-01-02T03:04:05.123Z"), Some(1704164645));
    assert_eq!(django_time("2024-01-02T05:04:05+02:00"), Some(1704164645));
    assert_eq!(django_time("2024-01-02 05:04:05+02:00"), Some(1704164645));
    assert_eq!(django_time("2024-01-02T03:04:05"), Some(1704164645));
    assert_eq!(django_time(""), None);
    assert_eq!(django_time("02/01/2024"), None);
}

#[tokio::test]
async fn hashes_latch_cannot_check_are_imported_with_a_warning_and_formats_are_counted() {
    let (_dir, store) = store();
    let mut md5 = django(1, "old", "");
    md5.password = "md5$salt$0123456789abcdef0123456789abcdef".into();
    let mut unusable = django(2, "nopass", "");
    unusable.password = "!x7Yq2".into();
    let users = vec![md5, unusable, django(3, "ann", ""), django(4, "bob", "")];
    let plan = dry_run(&store, table(users, 4)).await.unwrap();
    assert_eq!(plan.new.len(), 4, "not conflicts: they are imported");
    let formats: Vec<(&str, usize)> = plan.formats.iter().map(|(f, n)| (f.as_str(), *n)).collect();
    assert_eq!(
        formats,
        [("Django pbkdf2_sha256", 2), ("unknown", 1), ("unusable", 1)]
    );
    assert_eq!(
        reasons(&Plan {
            conflicts: plan.unverifiable.clone(),
            ..plan
        }),
        [
            r#""old" (id 1): its password hash (unknown) cannot be checked by latch; the user can log in after a password reset"#
        ]
    );
}
