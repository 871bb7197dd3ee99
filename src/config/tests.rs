use std::path::{Path, PathBuf};

use super::load::env_names;
use super::*;

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn file(text: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("auth.toml");
    std::fs::write(&path, text).unwrap();
    (dir, path)
}

#[test]
fn defaults_match_the_documentation() {
    let c = load(Sources::default()).unwrap().config;
    assert_eq!(c.server.bind.to_string(), "127.0.0.1:8000");
    assert_eq!(c.database.path, PathBuf::from("data/auth.db"));
    assert_eq!((c.smtp.host.as_str(), c.smtp.port), ("localhost", 1025));
    assert_eq!(
        (
            c.password.scrypt_log_n,
            c.password.scrypt_r,
            c.password.scrypt_p
        ),
        (14, 8, 5)
    );
    assert_eq!(c.jwt.access_token_lifetime_secs, 300);
    assert_eq!(c.jwt.refresh_token_lifetime_secs, 86400);
    assert_eq!(c.reset.token_lifetime_secs, 3600);
    assert!(c.jwt.secret.is_none());
}

#[test]
fn layers_apply_in_order_file_env_flags() {
    let (_dir, path) =
        file("[smtp]\nhost = \"file\"\nport = 2525\n[jwt]\nsecret = \"from-file\"\n");
    let loaded = load(Sources {
        config_file: Some(path),
        env: env(&[("LATCH_SMTP_HOST", "env"), ("LATCH_JWT_SECRET", "1234")]),
        overrides: Overrides {
            smtp_port: Some(26),
            ..Default::default()
        },
        ..Default::default()
    })
    .unwrap();
    let c = loaded.config;
    assert_eq!(c.smtp.host, "env");
    assert_eq!(c.smtp.port, 26);
    assert_eq!(
        c.jwt.secret.as_ref().map(Secret::expose),
        Some("1234"),
        "numeric env value kept as a string"
    );
    assert!(loaded.warnings.is_empty());
}

#[test]
fn env_keys_with_underscores_map_whole() {
    let c = load(Sources {
        env: env(&[
            ("LATCH_SERVER_MAX_BODY_BYTES", "4096"),
            ("LATCH_PASSWORD_SCRYPT_LOG_N", "10"),
        ]),
        ..Default::default()
    })
    .unwrap()
    .config;
    assert_eq!(c.server.max_body_bytes, 4096);
    assert_eq!(c.password.scrypt_log_n, 10);
}

#[test]
fn cors_origins_from_env_as_a_comma_separated_string() {
    let c = load(Sources {
        env: env(&[(
            "LATCH_CORS_ALLOWED_ORIGINS",
            "https://a.example, http://localhost:3000",
        )]),
        ..Default::default()
    })
    .unwrap()
    .config;
    assert_eq!(
        c.cors.allowed_origins,
        ["https://a.example", "http://localhost:3000"]
    );
}

#[test]
fn unknown_env_var_is_a_warning_naming_it() {
    let loaded = load(Sources {
        env: env(&[("LATCH_SMTP_HSOT", "x"), ("PATH", "/bin")]),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(loaded.warnings.len(), 1);
    assert!(loaded.warnings[0].contains("LATCH_SMTP_HSOT"));
}

#[test]
fn unknown_file_key_is_an_error_naming_it() {
    let (_dir, path) = file("[smtp]\nhots = \"x\"\n");
    let err = load(Sources {
        config_file: Some(path),
        ..Default::default()
    })
    .unwrap_err();
    assert!(err.to_string().contains("hots"), "{err}");
    let (_dir, path) = file("[smpt]\nhost = \"x\"\n");
    let err = load(Sources {
        config_file: Some(path),
        ..Default::default()
    })
    .unwrap_err();
    assert!(err.to_string().contains("smpt"), "{err}");
}

#[test]
fn invalid_values_are_errors_naming_the_key() {
    let (_dir, path) = file("[smtp]\nport = \"many\"\n");
    let err = load(Sources {
        config_file: Some(path),
        ..Default::default()
    })
    .unwrap_err();
    assert!(err.to_string().contains("port"), "{err}");
    for (text, key) in [
        ("[password]\nscrypt_r = 0\n", "scrypt"),
        ("[reset]\nurl = \"ftp://x\"\n", "reset.url"),
        ("[mail]\nfrom = \"not an address\"\n", "mail.from"),
        ("[jwt]\nsecret = \"\"\n", "jwt.secret"),
        ("[jwt]\nalgorithm = \"RS512\"\n", "algorithm"),
        ("[jwt]\nalgorithm = \"EdDSA\"\n", "jwt.private_key_file"),
        (
            "[limits]\ntrusted_proxies = [\"10.0.0.0/33\"]\n",
            "limits.trusted_proxies",
        ),
        (
            "[password]\nmin_length = 10\nmax_length = 9\n",
            "password.min_length",
        ),
        ("[smtp]\ntls = \"maybe\"\n", "tls"),
        (
            "[server]\nidle_timeout_secs = 0\n",
            "server.idle_timeout_secs",
        ),
        (
            "[reset]\ntoken_lifetime_secs = 9223372036854775807\n",
            "reset.token_lifetime_secs",
        ),
        ("[server]\nmax_connections = 0\n", "server.max_connections"),
        (
            "[cors]\nallowed_origins = [\"https://x.io/path\"]\n",
            "cors.allowed_origins",
        ),
        (
            "[cors]\nallowed_origins = [\"x.io\"]\n",
            "cors.allowed_origins",
        ),
    ] {
        let (_dir, path) = file(text);
        let err = load(Sources {
            config_file: Some(path),
            ..Default::default()
        })
        .unwrap_err();
        assert!(err.to_string().contains(key), "{text}: {err}");
    }
}

#[test]
fn missing_explicit_config_file_is_an_error() {
    let err = load(Sources {
        config_file: Some("/nonexistent/auth.toml".into()),
        ..Default::default()
    })
    .unwrap_err();
    assert!(err.to_string().contains("/nonexistent/auth.toml"));
}

#[test]
fn repository_auth_toml_lists_every_setting_with_its_default() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("auth.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    // Every key appears, commented or not...
    for dotted in env_names().values().map(|k| &k.path) {
        let (section, key) = dotted.split_once('.').unwrap();
        assert!(
            text.contains(&format!("[{section}]")),
            "auth.toml lacks [{section}]"
        );
        assert!(
            text.lines()
                .any(|l| l.trim_start_matches("# ").starts_with(&format!("{key} ="))),
            "auth.toml lacks {dotted}"
        );
    }
    // ...and the uncommented values are the defaults.
    let from_file = load(Sources {
        config_file: Some(path),
        ..Default::default()
    })
    .unwrap()
    .config;
    assert_eq!(
        serde_json::to_value(from_file).unwrap(),
        serde_json::to_value(Config::default()).unwrap()
    );
}

#[test]
fn secrets_never_print() {
    let (_dir, path) = file(
        "[jwt]\nsecret = \"hunter2-hunter2\"\n[smtp]\nusername = \"u\"\npassword = \"pw-value\"\n",
    );
    let c = load(Sources {
        config_file: Some(path),
        ..Default::default()
    })
    .unwrap()
    .config;
    let printed = format!("{c:?}");
    assert!(
        !printed.contains("hunter2") && !printed.contains("pw-value"),
        "{printed}"
    );
    assert!(printed.contains("<redacted>"));
}

#[test]
fn string_settings_from_the_environment_arrive_byte_for_byte() {
    for value in [
        "0123",
        "12345678901234567890123456789",
        "  spaced  ",
        "'quoted'",
        "\"double\"",
        "[1, 2]",
        "{a = 1}",
        "true",
        "1.50",
        "1e3",
        "#not-a-comment",
        "k=v,w;x$y`z\\'\"!@%^&*()",
    ] {
        let c = load(Sources {
            env: env(&[
                ("LATCH_JWT_SECRET", value),
                ("LATCH_SMTP_USERNAME", value),
                ("LATCH_SMTP_PASSWORD", value),
                ("LATCH_MAIL_FROM", "a@example.com"),
            ]),
            ..Default::default()
        })
        .unwrap_or_else(|e| panic!("{value:?}: {e}"))
        .config;
        assert_eq!(c.jwt.secret.as_ref().map(Secret::expose), Some(value));
        assert_eq!(c.smtp.username.as_deref(), Some(value));
        assert_eq!(c.smtp.password.as_ref().map(Secret::expose), Some(value));
    }
}

#[test]
fn every_number_has_a_range_and_out_of_range_is_an_error_naming_the_key() {
    let defaults = Config::default();
    for (key, value, range) in defaults.numbers() {
        assert!(
            range.contains(&value),
            "the default of {key} is out of its range"
        );
        let (section, name) = key.split_once('.').unwrap();
        let env_name = format!("LATCH_{}_{}", section, name).to_uppercase();
        let mut too_big = vec![(range.end() + 1).to_string(), u64::MAX.to_string()];
        if *range.start() > 0 {
            too_big.push((range.start() - 1).to_string());
        }
        for bad in too_big {
            let result = load(Sources {
                env: env(&[(&env_name, &bad)]),
                ..Default::default()
            });
            let err = match result {
                Ok(_) => panic!("{key} = {bad} was accepted"),
                Err(e) => e.to_string(),
            };
            assert!(
                err.contains(key) || err.contains(name),
                "{key} = {bad}: {err}"
            );
        }
    }
    // The values that used to panic or misbehave at start-up.
    for (name, value) in [
        ("LATCH_DATABASE_BUSY_TIMEOUT_MS", "2147483648"),
        ("LATCH_SERVER_MAX_CONNECTIONS", "18446744073709551615"),
        ("LATCH_PASSWORD_HASH_THREADS", "100000"),
        ("LATCH_PASSWORD_HASH_QUEUE_DEPTH", "9223372036854775807"),
    ] {
        assert!(
            load(Sources {
                env: env(&[(name, value)]),
                ..Default::default()
            })
            .is_err(),
            "{name}"
        );
    }
}

#[test]
fn numbers_cover_every_numeric_setting() {
    let defaults = serde_json::to_value(Config::default()).unwrap();
    let listed: Vec<&str> = Config::default().numbers().iter().map(|n| n.0).collect();
    for (section, table) in defaults.as_object().unwrap() {
        for (key, value) in table.as_object().unwrap() {
            let dotted = format!("{section}.{key}");
            if value.is_number() {
                assert!(listed.contains(&dotted.as_str()), "{dotted} has no range");
            }
        }
    }
}

#[test]
fn readme_states_the_range_of_every_number() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let rows: Vec<String> = Config::default()
        .numbers()
        .into_iter()
        .map(|(key, _, range)| format!("| `{key}` | {} to {} |", range.start(), range.end()))
        .collect();
    let missing: Vec<&String> = rows
        .iter()
        .filter(|r| !readme.contains(r.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "README.md lacks these rows:\n{}",
        rows.join("\n")
    );
}

#[test]
fn errors_never_quote_a_secret() {
    for text in [
        "[jwt]\nsecret = 0123\n",
        "[jwt]\nsecret = 9876\n",
        "[reset]\nsecret = [\"9876\"]\n",
        "[smtp]\nusername = \"u\"\npassword = 9876\n",
        "[jwt]\nsecret = \"9876\n",
    ] {
        let (_dir, path) = file(text);
        let err = load(Sources {
            config_file: Some(path),
            ..Default::default()
        })
        .unwrap_err()
        .to_string();
        assert!(
            !err.contains("9876") && !err.contains("0123"),
            "{text}: {err}"
        );
        assert!(
            err.contains("secret") || err.contains("password") || err.contains("line"),
            "{err}"
        );
    }
}

fn ephemeral(sources: Sources) -> Loaded {
    load(Sources {
        overrides: Overrides {
            ephemeral: true,
            ..sources.overrides
        },
        ..sources
    })
    .unwrap()
}

#[test]
fn ephemeral_makes_a_throwaway_server_with_a_warning_about_hashing() {
    let loaded = ephemeral(Sources::default());
    let c = &loaded.config;
    assert_eq!(c.database.path, PathBuf::from(":memory:"));
    assert!(!c.limits.enabled);
    assert_eq!(
        (
            c.password.scrypt_log_n,
            c.password.scrypt_r,
            c.password.scrypt_p
        ),
        (4, 8, 1)
    );
    assert_eq!(EPHEMERAL_SCRYPT, (4, 8, 1));
    assert_eq!(c.mail.transport, MailTransport::File);
    assert_eq!(c.mail.file_dir, PathBuf::from("data/mail"));
    assert!(
        loaded.warnings.iter().any(|w| w.contains("for tests only")),
        "{:?}",
        loaded.warnings
    );
    assert!(
        loaded.notes.iter().any(|n| n.contains("data/mail")),
        "{:?}",
        loaded.notes
    );
    // Without the flag, none of it.
    let plain = load(Sources::default()).unwrap();
    assert!(plain.config.limits.enabled);
    assert_eq!(plain.config.mail.transport, MailTransport::Smtp);
    assert!(plain.warnings.is_empty() && plain.notes.is_empty());
}

#[test]
fn ephemeral_wins_over_file_and_environment_for_limits_hashing_and_database() {
    let (_dir, path) = file(
        "[limits]\nenabled = true\n[password]\nscrypt_log_n = 15\n[database]\npath = \"real.db\"\n",
    );
    let loaded = ephemeral(Sources {
        config_file: Some(path),
        env: env(&[("LATCH_PASSWORD_SCRYPT_P", "3")]),
        ..Default::default()
    });
    let c = &loaded.config;
    assert!(!c.limits.enabled);
    assert_eq!(
        (
            c.password.scrypt_log_n,
            c.password.scrypt_r,
            c.password.scrypt_p
        ),
        (4, 8, 1)
    );
    assert_eq!(c.database.path, PathBuf::from(":memory:"));
    assert!(
        loaded
            .notes
            .iter()
            .any(|n| n.contains("database.path (set in") && n.contains("auth.toml")),
        "{:?}",
        loaded.notes
    );
}

#[test]
fn ephemeral_sends_by_smtp_when_a_host_is_set_in_any_layer() {
    let (_dir, path) = file("[smtp]\nhost = \"mail.test\"\n");
    let from_file = Sources {
        config_file: Some(path),
        ..Default::default()
    };
    let from_env = Sources {
        env: env(&[("LATCH_SMTP_HOST", "mail.test")]),
        ..Default::default()
    };
    let from_flag = Sources {
        overrides: Overrides {
            smtp_host: Some("mail.test".into()),
            ..Default::default()
        },
        ..Default::default()
    };
    for (sources, place) in [
        (from_file, "auth.toml"),
        (from_env, "LATCH_SMTP_HOST"),
        (from_flag, "--smtp-host"),
    ] {
        let loaded = ephemeral(sources);
        assert_eq!(loaded.config.mail.transport, MailTransport::Smtp, "{place}");
        assert_eq!(loaded.config.smtp.host, "mail.test");
        let note = loaded.notes.join("\n");
        assert!(
            note.contains("mail.test:1025") && note.contains(place),
            "{place}: {note}"
        );
        // The rest of --ephemeral still applies.
        assert!(!loaded.config.limits.enabled);
    }
}

#[test]
fn ephemeral_counts_a_setting_as_set_even_at_its_default_value() {
    // The user wrote it: that is a choice, whatever the value.
    let (_dir, path) = file("[smtp]\nhost = \"localhost\"\n");
    let loaded = ephemeral(Sources {
        config_file: Some(path),
        ..Default::default()
    });
    assert_eq!(loaded.config.mail.transport, MailTransport::Smtp);
    // A port alone points at an SMTP server on the default host.
    let loaded = ephemeral(Sources {
        env: env(&[("LATCH_SMTP_PORT", "2525")]),
        ..Default::default()
    });
    assert_eq!(loaded.config.mail.transport, MailTransport::Smtp);
    // An explicit file transport stays one, host or not.
    let loaded = ephemeral(Sources {
        env: env(&[
            ("LATCH_SMTP_HOST", "mail.test"),
            ("LATCH_MAIL_TRANSPORT", "file"),
            ("LATCH_MAIL_FILE_DIR", "/tmp/latch-mail"),
        ]),
        ..Default::default()
    });
    assert_eq!(loaded.config.mail.transport, MailTransport::File);
    assert!(loaded.notes.join("\n").contains("/tmp/latch-mail"));
}

#[test]
fn an_error_names_the_environment_variable_or_flag_it_came_from() {
    let err = load(Sources {
        env: env(&[("LATCH_SMTP_PORT", "many")]),
        ..Default::default()
    })
    .unwrap_err()
    .to_string();
    assert!(err.contains("LATCH_SMTP_PORT"), "{err}");
}

#[test]
fn reset_page_is_served_where_reset_url_points_at_latch() {
    let page_path = |url: &str, page: ResetPage, bind: &str| {
        let mut c = Config::default();
        c.reset.url = url.into();
        c.reset.page = page;
        c.server.bind = bind.parse().unwrap();
        c.validate()
            .map(|()| c.reset_page_path().map(str::to_string))
    };
    let auto = |url: &str| page_path(url, ResetPage::Auto, "127.0.0.1:8000").unwrap();
    // auto: the default path, on a loopback host or the bound address; any
    // port (latch may sit behind a forwarded port), any query.
    for url in [
        "http://localhost:8000/reset-password",
        "http://LOCALHOST/reset-password/",
        "https://127.0.0.1:9999/reset-password?lang=uk",
        "http://[::1]:8000/reset-password",
        "http://user@127.0.0.2/reset-password",
    ] {
        assert_eq!(auto(url).as_deref(), Some("/reset-password"), "{url}");
    }
    assert_eq!(
        page_path(
            "http://192.0.2.7:8000/reset-password",
            ResetPage::Auto,
            "192.0.2.7:8000"
        )
        .unwrap()
        .as_deref(),
        Some("/reset-password"),
        "the address latch listens on"
    );
    // ...and not elsewhere, nor at another path.
    for url in [
        "https://app.example.com/reset-password",
        "http://192.0.2.7/reset-password",
        "http://localhost.example.com/reset-password",
        "http://localhost:8000/reset",
        "http://localhost:8000/reset-password/x",
        "http://localhost:8000/",
    ] {
        assert_eq!(auto(url), None, "{url}");
    }
    // true: reset.url's path, wherever it points; false: never.
    let on = |url: &str| page_path(url, ResetPage::On, "127.0.0.1:8000");
    assert_eq!(
        on("https://auth.example.com/reset").unwrap().as_deref(),
        Some("/reset")
    );
    assert_eq!(
        on("https://auth.example.com/a/b-c_d.e~f/?x=1#y")
            .unwrap()
            .as_deref(),
        Some("/a/b-c_d.e~f")
    );
    assert_eq!(
        on("https://auth.example.com").unwrap().as_deref(),
        Some("/")
    );
    assert_eq!(
        page_path(
            "http://localhost:8000/reset-password",
            ResetPage::Off,
            "127.0.0.1:8000"
        )
        .unwrap(),
        None
    );
    // A path the page cannot have is an error naming reset.url.
    for url in [
        "https://x.io/api/auth/login",
        "https://x.io/api",
        "https://x.io/healthz/",
        "https://x.io/readyz",
        "https://x.io/.well-known/jwks.json",
        "https://x.io/r%C3%A9set",
        "https://x.io/a//b",
        "https://x.io/a/../b",
        "https://x.io/<script>",
        "https://x.io/a'b",
    ] {
        let err = on(url).unwrap_err().to_string();
        assert!(err.contains("reset.url"), "{url}: {err}");
    }
    // ...but only when the page is served there.
    let off = page_path(
        "https://x.io/api/auth/login",
        ResetPage::Off,
        "127.0.0.1:8000",
    );
    assert_eq!(off.unwrap(), None);
}

#[test]
fn reset_page_is_auto_true_or_false_in_the_file_and_the_environment() {
    for (text, expected) in [
        ("\"auto\"", ResetPage::Auto),
        ("true", ResetPage::On),
        ("false", ResetPage::Off),
    ] {
        let (_dir, path) = file(&format!("[reset]\npage = {text}\n"));
        let c = load(Sources {
            config_file: Some(path),
            ..Default::default()
        })
        .unwrap()
        .config;
        assert_eq!(c.reset.page, expected, "{text}");
    }
    for (value, expected) in [
        ("auto", ResetPage::Auto),
        ("true", ResetPage::On),
        ("false", ResetPage::Off),
    ] {
        let c = load(Sources {
            env: env(&[("LATCH_RESET_PAGE", value)]),
            ..Default::default()
        })
        .unwrap()
        .config;
        assert_eq!(c.reset.page, expected, "{value}");
    }
    for bad in ["\"yes\"", "1", "\"True\""] {
        let (_dir, path) = file(&format!("[reset]\npage = {bad}\n"));
        let err = load(Sources {
            config_file: Some(path),
            ..Default::default()
        })
        .unwrap_err()
        .to_string();
        assert!(err.contains("page") && err.contains("auto"), "{bad}: {err}");
    }
}

#[test]
fn metrics_bind_is_an_address_or_empty_for_none() {
    let bind = |value: &str| {
        load(Sources {
            env: env(&[("LATCH_METRICS_BIND", value)]),
            ..Default::default()
        })
        .map(|loaded| loaded.config.metrics.bind)
    };
    assert_eq!(
        load(Sources::default()).unwrap().config.metrics.bind,
        Some("127.0.0.1:9100".parse().unwrap()),
        "the default"
    );
    assert_eq!(bind("").unwrap(), None);
    assert_eq!(bind("  ").unwrap(), None);
    assert_eq!(
        bind("127.0.0.1:0").unwrap(),
        Some("127.0.0.1:0".parse().unwrap())
    );
    assert_eq!(
        bind("[::1]:9200").unwrap(),
        Some("[::1]:9200".parse().unwrap())
    );
    for bad in ["9100", "localhost:9100", "127.0.0.1"] {
        let err = bind(bad).unwrap_err().to_string();
        assert!(
            err.contains("metrics.bind") || err.contains("bind"),
            "{bad}: {err}"
        );
        assert!(err.contains("LATCH_METRICS_BIND"), "{bad}: {err}");
    }
    // In the file, "" turns metrics off too.
    let (_dir, path) = file("[metrics]\nbind = \"\"\n");
    let loaded = load(Sources {
        config_file: Some(path),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(loaded.config.metrics.bind, None);
}

#[test]
fn metrics_are_never_served_on_the_api_port() {
    for (api, metrics) in [
        ("127.0.0.1:8000", "127.0.0.1:8000"),
        ("0.0.0.0:8000", "127.0.0.1:8000"),
        ("127.0.0.1:8000", "0.0.0.0:8000"),
    ] {
        let err = load(Sources {
            env: env(&[("LATCH_SERVER_BIND", api), ("LATCH_METRICS_BIND", metrics)]),
            ..Default::default()
        })
        .unwrap_err()
        .to_string();
        assert!(err.contains("metrics.bind"), "{api} {metrics}: {err}");
    }
    for (api, metrics) in [
        ("127.0.0.1:0", "127.0.0.1:0"),
        ("127.0.0.1:8000", "127.0.0.2:8000"),
        ("127.0.0.1:8000", "127.0.0.1:9100"),
    ] {
        load(Sources {
            env: env(&[("LATCH_SERVER_BIND", api), ("LATCH_METRICS_BIND", metrics)]),
            ..Default::default()
        })
        .unwrap_or_else(|e| panic!("{api} {metrics}: {e}"));
    }
}

#[test]
fn ephemeral_serves_metrics_only_when_metrics_bind_is_set() {
    let loaded = ephemeral(Sources::default());
    assert_eq!(loaded.config.metrics.bind, None);
    assert!(
        loaded.notes.iter().any(|n| n.contains("metrics.bind")),
        "{:?}",
        loaded.notes
    );
    let loaded = ephemeral(Sources {
        env: env(&[("LATCH_METRICS_BIND", "127.0.0.1:0")]),
        ..Default::default()
    });
    assert_eq!(
        loaded.config.metrics.bind,
        Some("127.0.0.1:0".parse().unwrap())
    );
    assert!(!loaded.notes.join("\n").contains("metrics"));
}

#[test]
fn a_database_url_with_a_password_is_refused_as_a_flag_and_taken_from_the_environment() {
    let flag = |url: &str| Overrides {
        database_url: Some(url.into()),
        ..Default::default()
    };
    let err = load(Sources {
        overrides: flag("postgres://latch:hunter2@db/latch"),
        ..Default::default()
    })
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("LATCH_DATABASE_URL") && !err.contains("hunter2"),
        "{err}"
    );
    let c = load(Sources {
        overrides: flag("postgres://latch@db/latch?sslmode=verify-full"),
        ..Default::default()
    })
    .unwrap()
    .config;
    assert!(matches!(
        c.database.location().unwrap(),
        Location::Postgres(_)
    ));
    let c = load(Sources {
        env: env(&[("LATCH_DATABASE_URL", "postgres://latch:hunter2@db/latch")]),
        ..Default::default()
    })
    .unwrap()
    .config;
    let Location::Postgres(url) = c.database.location().unwrap() else {
        panic!("PostgreSQL")
    };
    assert_eq!(url.expose(), "postgres://latch:hunter2@db/latch");
    assert!(!format!("{c:?}").contains("hunter2"), "the URL is a secret");
}

#[test]
fn db_and_ephemeral_win_over_a_database_url_from_below() {
    let url = &[("LATCH_DATABASE_URL", "postgres://latch:hunter2@db/latch")];
    let loaded = load(Sources {
        env: env(url),
        overrides: Overrides {
            db: Some("local.db".into()),
            ..Default::default()
        },
        ..Default::default()
    })
    .unwrap();
    assert_eq!(
        loaded.config.database.location().unwrap(),
        Location::Sqlite("local.db".into())
    );
    assert!(
        loaded
            .notes
            .iter()
            .any(|n| n.contains("--db: database.url")),
        "{:?}",
        loaded.notes
    );
    let loaded = load(Sources {
        env: env(url),
        overrides: Overrides {
            ephemeral: true,
            ..Default::default()
        },
        ..Default::default()
    })
    .unwrap();
    assert_eq!(
        loaded.config.database.location().unwrap(),
        Location::Sqlite(":memory:".into())
    );
}

#[test]
fn a_mail_lease_must_fit_two_smtp_timeouts() {
    let mut c = Config::default();
    c.smtp.timeout_secs = 10;
    c.mail.lease_secs = 19;
    let err = c.validate().unwrap_err().to_string();
    assert!(
        err.contains("mail.lease_secs") && err.contains("smtp.timeout_secs"),
        "{err}"
    );
    c.mail.lease_secs = 20;
    c.validate().unwrap();
}
