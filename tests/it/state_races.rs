//! Shared state written by many writers at once (issue 17, case 9): run state recorded by
//! concurrent windows of one process, by two stores on one data dir and by two real
//! processes keeps every entry and stays valid JSON; token stores sharing a data dir take
//! the tokens another store refreshed instead of refreshing again with a stale (possibly
//! rotated-away) refresh token.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Barrier};

use crate::helpers::*;
use serde_json::json;
use shoplake::api::auth::{TokenStore, exchange_and_store};
use shoplake::api::{ApiClient, ApiRequest};
use shoplake::pipeline::state::{RunRecord, StateStore, key};
use shoplake_sandbox::DEFAULT_AUTH_CODE;

const STREAMS: [&str; 3] = ["orders", "products", "finance"];

/// `runs.json` as it is on disk: it must parse.
fn runs_on_disk(dir: &Path) -> BTreeMap<String, RunRecord> {
    let bytes = std::fs::read(dir.join("runs.json")).expect("runs.json written");
    serde_json::from_slice(&bytes).expect("runs.json is valid JSON")
}

/// Temp files left in the state dir (a failed rename would leave one).
fn leftovers(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect()
}

/// From `threads` threads released together by `barrier`: thread `t` records `rounds`
/// windows of 2 rows for every stream of shop `<tag>-shop<t>`, and after each round one
/// window of 1 row on `shared/orders`, which every thread (and store) writes.
fn record_from_threads(
    store: &StateStore,
    tag: &str,
    threads: usize,
    rounds: u64,
    barrier: &Barrier,
) {
    std::thread::scope(|s| {
        for t in 0..threads {
            s.spawn(move || {
                barrier.wait();
                for round in 0..rounds {
                    for stream in STREAMS {
                        store
                            .record(
                                &format!("{tag}-shop{t}"),
                                stream,
                                &format!("w{round}"),
                                Ok(2),
                            )
                            .expect("recording never fails");
                    }
                    store
                        .record("shared", "orders", &format!("{tag}-w{round}"), Ok(1))
                        .expect("recording never fails");
                }
            });
        }
    });
}

#[test]
fn concurrent_windows_of_one_process_all_land() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let store = StateStore::open(&state).unwrap();
    let (threads, rounds) = (8, 10);
    let barrier = Barrier::new(threads);
    record_from_threads(&store, "p", threads, rounds, &barrier);

    let disk = runs_on_disk(&state);
    assert_eq!(disk.len(), threads * STREAMS.len() + 1, "{:?}", disk.keys());
    for t in 0..threads {
        for stream in STREAMS {
            let r = &disk[&key(&format!("p-shop{t}"), stream)];
            assert_eq!(r.status, "ok");
            assert_eq!(r.total_rows, 2 * rounds, "{t}/{stream}: no update lost");
        }
    }
    assert_eq!(
        disk[&key("shared", "orders")].total_rows,
        threads as u64 * rounds,
        "every thread's windows counted on the shared key"
    );
    assert_eq!(store.all(), disk);
    assert!(leftovers(&state).is_empty(), "{:?}", leftovers(&state));
}

#[test]
fn two_stores_on_one_dir_keep_each_others_records() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let a = StateStore::open(&state).unwrap();
    let b = StateStore::open(&state).unwrap();
    let (threads, rounds) = (3, 10);
    let barrier = Barrier::new(2 * threads);
    std::thread::scope(|s| {
        s.spawn(|| record_from_threads(&a, "a", threads, rounds, &barrier));
        s.spawn(|| record_from_threads(&b, "b", threads, rounds, &barrier));
    });

    let disk = runs_on_disk(&state);
    for tag in ["a", "b"] {
        for t in 0..threads {
            for stream in STREAMS {
                let k = key(&format!("{tag}-shop{t}"), stream);
                assert_eq!(disk.get(&k).map(|r| r.total_rows), Some(2 * rounds), "{k}");
            }
        }
    }
    assert_eq!(disk.len(), 2 * threads * STREAMS.len() + 1);
    assert_eq!(
        disk[&key("shared", "orders")].total_rows,
        2 * threads as u64 * rounds,
        "both stores' windows counted on the shared key"
    );
    // Status from either store shows the other's records.
    assert_eq!(a.all(), disk);
    assert_eq!(b.all(), disk);
    assert!(leftovers(&state).is_empty(), "{:?}", leftovers(&state));
}

const CHILD_DIR: &str = "SHOPLAKE_TEST_STATE_RACES_DIR";
const CHILD_TAG: &str = "SHOPLAKE_TEST_STATE_RACES_TAG";

/// The writer of [`two_processes_keep_each_others_records`]: run by the parent in a
/// child process of this test binary; does nothing when run on its own.
#[test]
#[ignore = "run by two_processes_keep_each_others_records in a child process"]
fn record_as_child_process() {
    let (Ok(dir), Ok(tag)) = (std::env::var(CHILD_DIR), std::env::var(CHILD_TAG)) else {
        return;
    };
    let store = StateStore::open(Path::new(&dir)).unwrap();
    record_from_threads(&store, &tag, 2, 15, &Barrier::new(2));
}

#[test]
fn two_processes_keep_each_others_records() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let children: Vec<_> = ["x", "y"]
        .iter()
        .map(|tag| {
            std::process::Command::new(std::env::current_exe().unwrap())
                .args([
                    "--exact",
                    "state_races::record_as_child_process",
                    "--ignored",
                    "--test-threads",
                    "1",
                ])
                .env(CHILD_DIR, &state)
                .env(CHILD_TAG, tag)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "child failed: {text}");
        assert!(
            text.contains("1 passed"),
            "the child ran the writer: {text}"
        );
    }

    let disk = runs_on_disk(&state);
    for tag in ["x", "y"] {
        for t in 0..2 {
            for stream in STREAMS {
                let k = key(&format!("{tag}-shop{t}"), stream);
                assert_eq!(disk.get(&k).map(|r| r.total_rows), Some(30), "{k}");
            }
        }
    }
    assert_eq!(disk[&key("shared", "orders")].total_rows, 2 * 2 * 15);
    // A store opened afterwards (the next start-up) reads it.
    assert_eq!(StateStore::open(&state).unwrap().all(), disk);
    assert!(leftovers(&state).is_empty(), "{:?}", leftovers(&state));
}

#[test]
fn corrupt_state_still_names_the_way_out() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("runs.json"), b"{\"half\": ").unwrap();
    let e = StateStore::open(dir.path()).unwrap_err().to_string();
    assert!(e.contains("runs.json"), "{e}");
    assert!(e.contains("unreadable ("), "{e}");
    assert!(
        e.contains("delete it to start over, cursors are kept in the lake"),
        "{e}"
    );
}

/// A second token store and client over `tokens_dir`: another process's view.
fn second_process(sb: &shoplake_sandbox::RunningSandbox, tokens_dir: &Path) -> ApiClient {
    let store = Arc::new(TokenStore::open(tokens_dir).unwrap());
    ApiClient::new(client_config(sb), Some(store)).unwrap()
}

/// Grants the token host issued by refresh.
fn refreshes(sb: &shoplake_sandbox::RunningSandbox) -> u64 {
    sb.sandbox
        .stats()
        .get("/api/v2/token/refresh")
        .map_or(0, |s| s.ok)
}

async fn call_ok(client: &ApiClient, cipher: &str) {
    let req = ApiRequest::post("/product/202502/products/search", &json!({}))
        .shop(cipher)
        .query("page_size", "5");
    client.send(&req).await.expect("the token is accepted");
}

/// The sandbox keeps the refresh token on refresh; a new grant (a second code exchange)
/// stands for the rotation: the files then hold a new access *and* refresh token that
/// the other store has not seen.
#[tokio::test]
async fn a_grant_replaced_by_another_process_is_taken_not_refreshed_again() {
    let sb = start(small(2, 10)).await;
    let a = authorize(client_config(&sb)).await;
    let b = second_process(&sb, &a.dir.path().join("tokens"));
    let b_store = b.tokens().unwrap().clone();
    let cipher = a.shops[0].cipher.clone();
    let old = b_store.get(&cipher).unwrap();

    exchange_and_store(&a.client, DEFAULT_AUTH_CODE)
        .await
        .unwrap();
    let new = a.client.tokens().unwrap().get(&cipher).unwrap();
    assert_ne!(new.refresh_token, old.refresh_token, "the grant rotated");
    assert_eq!(
        b_store.get(&cipher).unwrap().access_token,
        old.access_token,
        "b still holds the old grant"
    );

    // b's client believes its access token expired (105002, or due): it refreshes.
    let got = b_store
        .refresh(&b, &cipher, Some(&old.access_token))
        .await
        .unwrap();
    assert_eq!(got, new.access_token, "the stored token, not a new one");
    assert_eq!(refreshes(&sb), 0, "b did not refresh again");
    for shop in &a.shops {
        let t = b_store.get(&shop.cipher).unwrap();
        assert_eq!(
            t.refresh_token, new.refresh_token,
            "{}: rotated token taken",
            shop.cipher
        );
    }
    call_ok(&b, &cipher).await;
    let on_disk = TokenStore::open(a.dir.path().join("tokens")).unwrap();
    assert_eq!(
        on_disk.get(&cipher).unwrap().refresh_token,
        new.refresh_token,
        "b did not write the old grant back"
    );
    sb.stop().await;
}

#[tokio::test]
async fn a_due_token_is_refreshed_with_the_refresh_token_on_disk() {
    let sb = start(small(2, 10)).await;
    let a = authorize(client_config(&sb)).await;
    let tokens_dir = a.dir.path().join("tokens");
    let b = second_process(&sb, &tokens_dir);
    let b_store = b.tokens().unwrap().clone();
    let a_store = a.client.tokens().unwrap().clone();
    let cipher = a.shops[0].cipher.clone();
    let old = b_store.get(&cipher).unwrap();

    // a gets a new grant, which then comes due.
    exchange_and_store(&a.client, DEFAULT_AUTH_CODE)
        .await
        .unwrap();
    let mut due = a_store.get(&cipher).unwrap();
    assert_ne!(due.refresh_token, old.refresh_token, "the grant rotated");
    due.access_token_expire_in = now() + 1;
    due.obtained_at = now() - 10;
    a_store.save(due.clone()).unwrap();

    let got = b_store
        .refresh(&b, &cipher, Some(&old.access_token))
        .await
        .unwrap();
    assert_eq!(refreshes(&sb), 1);
    assert_ne!(got, old.access_token);
    assert_ne!(got, due.access_token);
    // The sandbox hands back the refresh token it was given: the one on disk was used.
    let fresh = TokenStore::open(&tokens_dir).unwrap();
    for shop in &a.shops {
        let t = fresh.get(&shop.cipher).unwrap();
        assert_eq!(t.refresh_token, due.refresh_token, "{}", shop.cipher);
        assert_eq!(
            t.access_token, got,
            "{}: the grant's shops share it",
            shop.cipher
        );
    }
    call_ok(&b, &cipher).await;

    // a's own copy is due: it takes b's refresh instead of refreshing again.
    call_ok(&a.client, &cipher).await;
    assert_eq!(a_store.get(&cipher).unwrap().access_token, got);
    assert_eq!(refreshes(&sb), 1, "one refresh between the two processes");
    sb.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_stores_refreshing_at_once_share_one_refresh() {
    let sb = start(small(1, 10)).await;
    let a = authorize(client_config(&sb)).await;
    let b = second_process(&sb, &a.dir.path().join("tokens"));
    let (a_store, b_store) = (
        a.client.tokens().unwrap().clone(),
        b.tokens().unwrap().clone(),
    );
    let cipher = a.shops[0].cipher.clone();
    let stale = a_store.get(&cipher).unwrap().access_token;
    assert_eq!(b_store.get(&cipher).unwrap().access_token, stale);

    // Both reject the same token at once, and tasks within each store pile on too.
    let (x, y, z, w) = tokio::join!(
        a_store.refresh(&a.client, &cipher, Some(&stale)),
        b_store.refresh(&b, &cipher, Some(&stale)),
        a_store.refresh(&a.client, &cipher, Some(&stale)),
        b_store.refresh(&b, &cipher, Some(&stale)),
    );
    let (x, y, z, w) = (x.unwrap(), y.unwrap(), z.unwrap(), w.unwrap());
    assert_ne!(x, stale);
    assert_eq!(refreshes(&sb), 1, "one refresh for all four");
    assert!(
        x == y && y == z && z == w,
        "every caller got the same token"
    );
    call_ok(&a.client, &cipher).await;
    call_ok(&b, &cipher).await;
    sb.stop().await;
}
