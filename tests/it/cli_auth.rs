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

/// Runs of the binary against one data dir and sandbox, every output kept.
struct Runs<'a> {
    dir: &'a std::path::Path,
    base: String,
    outputs: Vec<String>,
}

impl Runs<'_> {
    /// Runs `args` with `env`; it must succeed (or fail) as `ok` says.
    fn run(&mut self, args: &[&str], env: &[(&str, &str)], ok: bool) -> String {
        let (success, out) = shoplake_env(self.dir, &self.base, args, env);
        assert_eq!(success, ok, "{args:?}: {out}");
        self.outputs.push(out.clone());
        out
    }

    /// Runs `args` with the app secret `secret` configured.
    fn with(&mut self, secret: &'static str, args: &[&str], ok: bool) -> String {
        self.run(args, &[("SHOPLAKE_API__APP_SECRET", secret)], ok)
    }

    fn all(&self) -> String {
        self.outputs.join("\n")
    }
}

/// Checks every token file in `tokens_dir` (0600, sealed: no token in clear) and adds
/// the tokens the store holds to `secrets`; returns the number of files.
fn check_token_files(tokens_dir: &std::path::Path, secrets: &mut Vec<String>) -> usize {
    let mut n = 0;
    for entry in std::fs::read_dir(tokens_dir).unwrap() {
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
    let store = shoplake::api::auth::TokenStore::open(tokens_dir).unwrap();
    for shop in store.shops() {
        let t = store.get(&shop.cipher).unwrap();
        secrets.push(t.access_token.expose().to_string());
        secrets.push(t.refresh_token.expose().to_string());
    }
    n
}

/// The token files' bytes, sorted.
fn token_files(tokens_dir: &std::path::Path) -> Vec<Vec<u8>> {
    let mut v: Vec<_> = std::fs::read_dir(tokens_dir)
        .unwrap()
        .map(|e| std::fs::read(e.unwrap().path()).unwrap())
        .collect();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_commands_store_tokens_securely_and_never_print_secrets() {
    let mut cfg = small(3, 200);
    cfg.app_secret = KNOWN_SECRET.into();
    let sb = start(cfg).await;
    let dir = tempfile::tempdir().unwrap();
    let mut runs = Runs {
        dir: dir.path(),
        base: sb.base_url(),
        outputs: Vec::new(),
    };

    let url = runs.run(&["auth", "url", "--state", "s1"], &[], true);
    assert!(
        url.contains("/oauth/authorize?app_key=sandbox_app_key&state=s1"),
        "{url}"
    );
    let out = runs.run(
        &["-vv", "auth", "exchange", "--code", DEFAULT_AUTH_CODE],
        &[],
        true,
    );
    assert_eq!(out.matches("authorized shop").count(), 3, "{out}");

    let tokens_dir = dir.path().join("secrets").join("tokens");
    let mut secrets = vec![KNOWN_SECRET.to_string()];
    assert_eq!(
        check_token_files(&tokens_dir, &mut secrets),
        3,
        "one token file per shop"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&tokens_dir).unwrap().permissions().mode() & 0o777,
            0o700
        );
    }

    let out = runs.run(&["-vv", "auth", "refresh"], &[], true);
    assert!(out.contains("refreshed 1 grant"), "{out}");
    check_token_files(&tokens_dir, &mut secrets);
    the_key_rotates_and_the_tokens_stay(&mut runs, &tokens_dir, &mut secrets);

    // A failing run (wrong code) must not leak either.
    let out = runs.run(&["-vv", "auth", "exchange", "--code", "WRONG"], &[], false);
    assert!(
        out.contains("36004004"),
        "the error says what failed: {out}"
    );

    let all = runs.all();
    assert!(all.contains("api response"), "debug logs were on: {all}");
    for s in &secrets {
        assert!(!all.contains(s.as_str()), "secret leaked into output");
    }
    assert!(!all.contains("panicked"));
}

/// Key rotation: files re-sealed under a new key, the tokens unchanged and still usable;
/// with another key the files do not open, and the error says why.
fn the_key_rotates_and_the_tokens_stay(
    runs: &mut Runs<'_>,
    tokens_dir: &std::path::Path,
    secrets: &mut Vec<String>,
) {
    let key_file = runs.dir.join("secrets").join("token.key");
    let (old_key, before) = (
        std::fs::read_to_string(&key_file).unwrap(),
        std::fs::read_dir(tokens_dir)
            .unwrap()
            .map(|e| std::fs::read(e.unwrap().path()).unwrap())
            .collect::<Vec<_>>(),
    );
    let out = runs.run(&["-vv", "auth", "rotate-key"], &[], true);
    assert!(out.contains("sealed 3 token file(s)"), "{out}");
    assert_ne!(std::fs::read_to_string(&key_file).unwrap(), old_key);
    for f in std::fs::read_dir(tokens_dir).unwrap() {
        assert!(!before.contains(&std::fs::read(f.unwrap().path()).unwrap()));
    }
    let mut after = Vec::new();
    check_token_files(tokens_dir, &mut after);
    let mut sorted = secrets[secrets.len() - 6..].to_vec();
    sorted.sort();
    after.sort();
    assert_eq!(sorted, after, "the same tokens after rotation");
    let (ok, out) = shoplake(runs.dir, &runs.base, &["-vv", "auth", "refresh"]);
    assert!(ok, "tokens still open and refresh after rotation: {out}");
    runs.outputs.push(out);
    check_token_files(tokens_dir, secrets);
    // With another key, the files do not open, and the error says why.
    let out = runs.run(
        &["auth", "refresh"],
        &[(
            "SHOPLAKE_TOKEN_KEY",
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        )],
        false,
    );
    assert!(out.contains("cannot be opened"), "{out}");
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
    let mut runs = Runs {
        dir: dir.path(),
        base: base.clone(),
        outputs: Vec::new(),
    };
    let day = |d: i64| {
        chrono::DateTime::from_timestamp(shoplake_sandbox::DEFAULT_CLOCK - d * 86_400, 0)
            .unwrap()
            .to_rfc3339()
    };
    let (start, early, late) = (day(10), day(5), day(0));
    runs.with(
        OLD,
        &["auth", "exchange", "--code", DEFAULT_AUTH_CODE],
        true,
    );
    let backfill = [
        "backfill",
        "--pipeline",
        "orders",
        "--from",
        &start,
        "--to",
        &early,
    ];
    runs.with(OLD, &backfill, true);
    let tokens_dir = dir.path().join("secrets").join("tokens");
    let granted = token_files(&tokens_dir);
    let status = ["status", "--format", "json"];
    let before = cursors(&runs.with(OLD, &status, true));

    // The reset, through the sandbox's control endpoint.
    let r = reqwest::Client::new()
        .post(format!("{base}/__sandbox/app-secret"))
        .body(format!("{{\"app_secret\": \"{NEW}\"}}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);

    // Still configured with the old secret: refused, and told what to change.
    let extract = ["-vv", "extract", "--pipeline", "orders", "--until", &late];
    let out = runs.with(OLD, &extract, false);
    assert!(
        out.contains("106001") && out.contains("api.app_secret"),
        "{out}"
    );
    assert_eq!(
        cursors(&runs.with(OLD, &status, true)),
        before,
        "a refused run moves no cursor"
    );
    // The new secret, the old tokens: the sync carries on without re-authorizing.
    runs.with(NEW, &extract, true);
    assert_eq!(
        token_files(&tokens_dir),
        granted,
        "no refresh and no new grant were needed"
    );
    assert_ne!(cursors(&runs.with(NEW, &status, true)), before);
    // Refreshing takes the new secret; the refreshed token then works.
    let out = runs.with(OLD, &["auth", "refresh"], false);
    assert!(out.contains("api.app_secret"), "{out}");
    assert_eq!(token_files(&tokens_dir), granted);
    runs.with(NEW, &["-vv", "auth", "refresh"], true);
    assert_ne!(token_files(&tokens_dir), granted, "refreshed tokens stored");
    runs.with(NEW, &extract[1..], true);

    let all = runs.all();
    assert!(all.contains("api response"), "debug logs were on");
    assert!(
        !all.contains(OLD) && !all.contains(NEW),
        "an app secret leaked"
    );
    assert!(!all.contains("TTP_"), "a token leaked");
    sb.stop().await;
}

/// The streams' cursors in `status --format json` output.
fn cursors(out: &str) -> Vec<String> {
    let v: serde_json::Value = serde_json::from_str(&out[out.find('{').unwrap()..]).unwrap();
    v["streams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["cursor"].to_string())
        .collect()
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
