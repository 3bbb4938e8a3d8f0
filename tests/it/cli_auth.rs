//! `shoplake auth` end to end through the binary: tokens land per shop with 0600
//! permissions, and no output of a run (logs at -vv included) contains the app secret or
//! any token.

use std::process::Command;

use crate::helpers::*;
use shoplake_sandbox::DEFAULT_AUTH_CODE;

const KNOWN_SECRET: &str = "known-app-secret-7f3a9c";

fn shoplake(data_dir: &std::path::Path, base: &str, args: &[&str]) -> (bool, String) {
    shoplake_env(data_dir, base, args, &[])
}

fn shoplake_env(
    data_dir: &std::path::Path,
    base: &str,
    args: &[&str],
    env: &[(&str, &str)],
) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_shoplake"))
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .env("SHOPLAKE_API__BASE_URL", base)
        .env("SHOPLAKE_API__APP_SECRET", KNOWN_SECRET)
        .env_remove("SHOPLAKE_LOG")
        .env_remove("SHOPLAKE_TOKEN_KEY")
        .envs(env.iter().copied())
        .output()
        .expect("run shoplake");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_commands_store_tokens_securely_and_never_print_secrets() {
    let mut cfg = small(3, 200);
    cfg.app_secret = KNOWN_SECRET.into();
    let sb = start(cfg).await;
    let dir = tempfile::tempdir().unwrap();
    let base = sb.base_url();

    let mut outputs = Vec::new();
    let (ok, url) = shoplake(dir.path(), &base, &["auth", "url", "--state", "s1"]);
    assert!(ok, "{url}");
    assert!(
        url.contains("/oauth/authorize?app_key=sandbox_app_key&state=s1"),
        "{url}"
    );
    outputs.push(url);

    let (ok, out) = shoplake(
        dir.path(),
        &base,
        &["-vv", "auth", "exchange", "--code", DEFAULT_AUTH_CODE],
    );
    assert!(ok, "{out}");
    assert_eq!(out.matches("authorized shop").count(), 3, "{out}");
    outputs.push(out);

    let tokens_dir = dir.path().join("secrets").join("tokens");
    let mut secrets = vec![KNOWN_SECRET.to_string()];
    let collect = |secrets: &mut Vec<String>| {
        let mut n = 0;
        for entry in std::fs::read_dir(&tokens_dir).unwrap() {
            let path = entry.unwrap().path();
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
                assert_eq!(mode, 0o600, "{} mode {mode:o}", path.display());
            }
            // Sealed at rest: the file holds neither token.
            let text = std::fs::read_to_string(&path).unwrap();
            assert!(text.contains("chacha20poly1305"), "{text}");
            assert!(
                !text.contains("TTP_"),
                "a token in clear in {}",
                path.display()
            );
            n += 1;
        }
        // The tokens themselves, through the store (which holds the key).
        let store = shoplake::api::auth::TokenStore::open(&tokens_dir).unwrap();
        for shop in store.shops() {
            let t = store.get(&shop.cipher).unwrap();
            secrets.push(t.access_token.expose().to_string());
            secrets.push(t.refresh_token.expose().to_string());
        }
        n
    };
    assert_eq!(collect(&mut secrets), 3, "one token file per shop");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&tokens_dir).unwrap().permissions().mode() & 0o777,
            0o700
        );
    }

    let (ok, out) = shoplake(dir.path(), &base, &["-vv", "auth", "refresh"]);
    assert!(ok, "{out}");
    assert!(out.contains("refreshed 1 grant"), "{out}");
    outputs.push(out);
    collect(&mut secrets);

    // Key rotation: files re-sealed under a new key, the tokens unchanged and still usable.
    let key_file = dir.path().join("secrets").join("token.key");
    let (old_key, before) = (
        std::fs::read_to_string(&key_file).unwrap(),
        std::fs::read_dir(&tokens_dir)
            .unwrap()
            .map(|e| std::fs::read(e.unwrap().path()).unwrap())
            .collect::<Vec<_>>(),
    );
    let (ok, out) = shoplake(dir.path(), &base, &["-vv", "auth", "rotate-key"]);
    assert!(ok, "{out}");
    assert!(out.contains("sealed 3 token file(s)"), "{out}");
    outputs.push(out);
    assert_ne!(std::fs::read_to_string(&key_file).unwrap(), old_key);
    for f in std::fs::read_dir(&tokens_dir).unwrap() {
        assert!(!before.contains(&std::fs::read(f.unwrap().path()).unwrap()));
    }
    let mut after = Vec::new();
    collect(&mut after);
    let mut sorted = secrets[secrets.len() - 6..].to_vec();
    sorted.sort();
    after.sort();
    assert_eq!(sorted, after, "the same tokens after rotation");
    let (ok, out) = shoplake(dir.path(), &base, &["-vv", "auth", "refresh"]);
    assert!(ok, "tokens still open and refresh after rotation: {out}");
    outputs.push(out);
    collect(&mut secrets);
    // With another key, the files do not open, and the error says why.
    let (ok, out) = shoplake_env(
        dir.path(),
        &base,
        &["auth", "refresh"],
        &[(
            "SHOPLAKE_TOKEN_KEY",
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        )],
    );
    assert!(!ok);
    assert!(out.contains("cannot be opened"), "{out}");
    outputs.push(out);

    // A failing run (wrong code) must not leak either.
    let (ok, out) = shoplake(
        dir.path(),
        &base,
        &["-vv", "auth", "exchange", "--code", "WRONG"],
    );
    assert!(!ok);
    assert!(
        out.contains("36004004"),
        "the error says what failed: {out}"
    );
    outputs.push(out);

    let all = outputs.join("\n");
    assert!(all.contains("api response"), "debug logs were on: {all}");
    for s in &secrets {
        assert!(!all.contains(s.as_str()), "secret leaked into output");
    }
    assert!(!all.contains("panicked"));
}

/// App secret rotation (the seller resets it in the Partner Center): requests signed with
/// the old secret are refused with an error that names the config key to change; with the
/// new secret configured the tokens granted before the reset keep working — no new
/// authorization, token files untouched — and refreshing them takes the new secret. The
/// failed run moves no cursor, and neither secret reaches any output.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_secret_rotation_keeps_granted_tokens_until_refreshed() {
    const OLD: &str = "old-app-secret-51c0e2";
    const NEW: &str = "new-app-secret-9b7d44";
    let mut cfg = small(2, 300);
    cfg.app_secret = OLD.into();
    let sb = start(cfg).await;
    let dir = tempfile::tempdir().unwrap();
    let base = sb.base_url();
    let with = |secret: &'static str, args: &[&str]| {
        shoplake_env(
            dir.path(),
            &base,
            args,
            &[("SHOPLAKE_API__APP_SECRET", secret)],
        )
    };
    let day = |d: i64| {
        chrono::DateTime::from_timestamp(shoplake_sandbox::DEFAULT_CLOCK - d * 86_400, 0)
            .unwrap()
            .to_rfc3339()
    };
    let (start, early, late) = (day(10), day(5), day(0));
    let mut outputs = Vec::new();
    let mut step = |secret: &'static str, args: &[&str], ok: bool| {
        let (success, out) = with(secret, args);
        assert_eq!(success, ok, "{args:?} with the {secret}: {out}");
        outputs.push(out.clone());
        out
    };
    step(
        OLD,
        &["auth", "exchange", "--code", DEFAULT_AUTH_CODE],
        true,
    );
    step(
        OLD,
        &[
            "backfill",
            "--pipeline",
            "orders",
            "--from",
            &start,
            "--to",
            &early,
        ],
        true,
    );
    let tokens_dir = dir.path().join("secrets").join("tokens");
    let files = || {
        let mut v: Vec<_> = std::fs::read_dir(&tokens_dir)
            .unwrap()
            .map(|e| std::fs::read(e.unwrap().path()).unwrap())
            .collect();
        v.sort();
        v
    };
    let granted = files();
    let cursors = |out: &str| {
        let v: serde_json::Value = serde_json::from_str(&out[out.find('{').unwrap()..]).unwrap();
        v["streams"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["cursor"].to_string())
            .collect::<Vec<_>>()
    };
    let before = cursors(&step(OLD, &["status", "--format", "json"], true));

    // The reset, through the sandbox's control endpoint.
    let r = reqwest::Client::new()
        .post(format!("{base}/__sandbox/app-secret"))
        .body(format!("{{\"app_secret\": \"{NEW}\"}}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);

    // Still configured with the old secret: refused, and told what to change.
    let out = step(
        OLD,
        &["-vv", "extract", "--pipeline", "orders", "--until", &late],
        false,
    );
    assert!(
        out.contains("106001") && out.contains("api.app_secret"),
        "{out}"
    );
    assert_eq!(
        cursors(&step(OLD, &["status", "--format", "json"], true)),
        before,
        "a refused run moves no cursor"
    );
    // The new secret, the old tokens: the sync carries on without re-authorizing.
    step(
        NEW,
        &["-vv", "extract", "--pipeline", "orders", "--until", &late],
        true,
    );
    assert_eq!(files(), granted, "no refresh and no new grant were needed");
    assert_ne!(
        cursors(&step(NEW, &["status", "--format", "json"], true)),
        before
    );
    // Refreshing takes the new secret; the refreshed token then works.
    let out = step(OLD, &["auth", "refresh"], false);
    assert!(out.contains("api.app_secret"), "{out}");
    assert_eq!(files(), granted);
    step(NEW, &["-vv", "auth", "refresh"], true);
    assert_ne!(files(), granted, "refreshed tokens stored");
    step(
        NEW,
        &["extract", "--pipeline", "orders", "--until", &late],
        true,
    );

    let all = outputs.join("\n");
    assert!(all.contains("api response"), "debug logs were on");
    assert!(
        !all.contains(OLD) && !all.contains(NEW),
        "an app secret leaked"
    );
    assert!(!all.contains("TTP_"), "a token leaked");
    sb.stop().await;
}

#[test]
fn bad_config_names_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_shoplake"))
        .arg("--data-dir")
        .arg(dir.path())
        .args(["auth", "url"])
        .env("SHOPLAKE_API__TIMEOUT", "soon")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("api.timeout"), "{err}");
}
