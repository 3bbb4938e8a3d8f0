//! Flight SQL with basic auth configured: calls without credentials are refused, a wrong
//! password is refused, and the Handshake's bearer token (returned in the `authorization`
//! response header, as Go/JDBC clients expect) authorizes later calls. Too many wrong
//! passwords from one client address lock that address out for a while.

use crate::helpers::*;

use futures::TryStreamExt;
use shoplake::app::App;
use shoplake::config::Config;
use shoplake::secret::Secret;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_auth_then_bearer() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::default();
    config.serve.username = Some("analyst".into());
    config.serve.password = Some(Secret::new("s3cret-pw"));
    let app = App::new(config, dir.path()).unwrap();
    let server = app.serve("127.0.0.1:0").await.unwrap();

    let mut anon = flight_client(server.addr).await;
    let err = anon
        .execute("select 1 as one".into(), None)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("authorization required"), "{err}");

    let mut wrong = flight_client(server.addr).await;
    let err = wrong.handshake("analyst", "nope").await.unwrap_err();
    assert!(
        err.to_string().contains("wrong user name or password"),
        "{err}"
    );

    let mut c = flight_client(server.addr).await;
    let token = c.handshake("analyst", "s3cret-pw").await.unwrap();
    assert!(!token.is_empty());
    let info = c
        .execute("select 40 + 2 as answer".into(), None)
        .await
        .unwrap();
    let ticket = info.endpoint[0].ticket.clone().unwrap();
    let batches: Vec<_> = c.do_get(ticket).await.unwrap().try_collect().await.unwrap();
    let col = batches[0]
        .column_by_name("answer")
        .unwrap()
        .as_any()
        .downcast_ref::<arrow::array::Int64Array>()
        .unwrap()
        .value(0);
    assert_eq!(col, 42);

    // A forged bearer token is refused.
    let mut forged = flight_client(server.addr).await;
    forged.set_token("not-a-token".into());
    let err = forged.execute("select 1".into(), None).await.unwrap_err();
    assert!(
        err.to_string().contains("unknown or expired bearer token"),
        "{err}"
    );
    server.stop().await;
}

/// Wrong passwords from one address — spread over several names, so no name reaches its
/// own lock — lock the address: then even the right password is refused, with a message
/// naming the limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_passwords_lock_the_client_address() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::default();
    config.serve.username = Some("analyst".into());
    config.serve.password = Some(Secret::new("s3cret-pw"));
    let app = App::new(config, dir.path()).unwrap();
    let mut opts = app.config.serve_options(&app.data_dir).unwrap();
    opts.access = opts.access.with_address_limit(3);
    let server = shoplake::serve::spawn(&app.lake, Some(&app.seeds_dir()), "127.0.0.1:0", opts)
        .await
        .unwrap();

    // A right password before any failure is fine, and does not count.
    let mut c = flight_client(server.addr).await;
    c.handshake("analyst", "s3cret-pw").await.unwrap();
    for name in ["analyst", "admin", "root"] {
        let mut c = flight_client(server.addr).await;
        let err = c.handshake(name, "guess").await.unwrap_err();
        assert!(
            err.to_string().contains("wrong user name or password"),
            "{err}"
        );
    }
    let mut c = flight_client(server.addr).await;
    let err = c.handshake("analyst", "s3cret-pw").await.unwrap_err();
    assert!(
        err.to_string()
            .contains("too many failed logins from 127.0.0.1 (limit 3 within 60s)"),
        "{err}"
    );
    server.stop().await;
}
