//! Flight SQL limits and hardening: a query over its time limit, over its memory budget or
//! beyond the concurrency cap fails with a clear error while the server keeps answering;
//! statements that write or touch files are refused before execution; a result larger
//! than the query's memory budget still streams; TLS when a certificate is configured.

use crate::helpers::*;

/// A never-ending-in-practice query (10^12 rows counted).
const SLOW: &str = "select count(*) as n from generate_series(1, 1000000000000)";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_fail_the_query_not_the_server() {
    let dir = tempfile::tempdir().unwrap();
    demo_warehouse(dir.path()).await;

    // Timeout.
    let server = serve_with(dir.path(), |c| {
        c.serve.query_timeout = std::time::Duration::from_secs(1)
    })
    .await;
    let mut c = flight_client(server.addr).await;
    let e = flight_query(&mut c, SLOW).await.unwrap_err().to_string();
    assert!(e.contains("serve.query_timeout"), "{e}");
    let ok = flight_query(&mut c, "select 1 as one").await.unwrap();
    assert_eq!(rows(&ok), 1, "server still answers after a timeout");
    server.stop().await;

    // Memory: a sort that needs more than the query's budget fails (no spilling to the
    // server's disk); a result far larger than the budget still streams.
    let server = serve_with(dir.path(), |c| c.serve.query_memory = "256KiB".into()).await;
    let mut c = flight_client(server.addr).await;
    let e = flight_query(
        &mut c,
        "select value from generate_series(1, 3000000) order by value desc",
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(e.to_lowercase().contains("memory"), "{e}");
    let all = flight_query(&mut c, "select * from raw.order_line_items")
        .await
        .unwrap();
    let bytes: usize = all.iter().map(|b| b.get_array_memory_size()).sum();
    assert!(bytes > 256 * 1024, "result of {bytes} bytes");
    let n = flight_query(&mut c, "select count(*) as n from raw.order_line_items")
        .await
        .unwrap();
    let n = n[0]
        .column(0)
        .as_any()
        .downcast_ref::<arrow::array::Int64Array>()
        .unwrap()
        .value(0);
    assert_eq!(rows(&all) as i64, n);
    server.stop().await;

    // Concurrency: one query at a time; the second is refused while the first streams,
    // and admitted once the first is gone.
    let server = serve_with(dir.path(), |c| c.serve.max_concurrent_queries = 1).await;
    let mut first = flight_client(server.addr).await;
    let info = first.execute(SLOW.into(), None).await.unwrap();
    let running = first
        .do_get(info.endpoint[0].ticket.clone().unwrap())
        .await
        .unwrap();
    let mut second = flight_client(server.addr).await;
    let e = flight_query(&mut second, "select 1 as one")
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("server busy") && e.contains("max_concurrent_queries"),
        "{e}"
    );
    drop(running);
    drop(first);
    // The server notices the cancelled stream asynchronously; wait for the slot (until
    // then the query is refused as busy).
    let b = poll("the slot to free", 30, async || {
        match flight_query(&mut second, "select 1 as one").await {
            Ok(b) => Some(b),
            Err(e) => {
                assert!(e.to_string().contains("server busy"), "{e}");
                None
            }
        }
    })
    .await;
    assert_eq!(rows(&b), 1);
    server.stop().await;

    // The audit log recorded the timeout, the refusal and the cancelled query.
    let audit = std::fs::read_to_string(dir.path().join("state/audit.jsonl")).unwrap();
    let statuses: Vec<String> = audit
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["status"].to_string())
        .collect();
    for s in [
        "\"timeout\"",
        "\"refused\"",
        "\"cancelled\"",
        "\"error\"",
        "\"ok\"",
    ] {
        assert!(statuses.iter().any(|x| x == s), "{s} missing in {audit}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_and_file_access_are_refused_before_execution() {
    let dir = tempfile::tempdir().unwrap();
    demo_warehouse(dir.path()).await;
    let server = serve_with(dir.path(), |_| {}).await;
    let mut c = flight_client(server.addr).await;
    let out = dir.path().join("exfil.csv");
    let csv = dir.path().join("some.csv");
    std::fs::write(&csv, "a\n1\n").unwrap();
    for sql in [
        format!(
            "COPY (select * from marts.gmv_daily) TO '{}'",
            out.display()
        ),
        format!(
            "CREATE EXTERNAL TABLE x STORED AS CSV LOCATION '{}'",
            csv.display()
        ),
        "CREATE TABLE t AS SELECT 1".into(),
        "INSERT INTO marts.gmv_daily SELECT * FROM marts.gmv_daily".into(),
        "DROP TABLE marts.gmv_daily".into(),
        "CREATE VIEW v AS SELECT 1".into(),
        "SET datafusion.execution.batch_size = 1".into(),
    ] {
        let e = flight_query(&mut c, &sql).await.unwrap_err().to_string();
        assert!(e.contains("read-only"), "{sql}: {e}");
    }
    assert!(!out.exists(), "COPY must not have written a file");
    let still = flight_query(&mut c, "select count(*) from marts.gmv_daily")
        .await
        .unwrap();
    assert_eq!(rows(&still), 1);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_when_a_certificate_is_configured() {
    let dir = tempfile::tempdir().unwrap();
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let cert_pem = cert.cert.pem();
    let (cp, kp) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cp, &cert_pem).unwrap();
    std::fs::write(&kp, cert.signing_key.serialize_pem()).unwrap();
    let server = serve_with(dir.path(), |c| {
        c.serve.tls_cert = Some(cp.clone());
        c.serve.tls_key = Some(kp.clone());
    })
    .await;
    let port = server.addr.port();

    let tls = tonic::transport::ClientTlsConfig::new()
        .ca_certificate(tonic::transport::Certificate::from_pem(&cert_pem))
        .domain_name("localhost");
    let ch = tonic::transport::Endpoint::from_shared(format!("https://localhost:{port}"))
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut c = arrow_flight::sql::client::FlightSqlServiceClient::new(ch);
    let b = flight_query(&mut c, "select 42 as answer").await.unwrap();
    assert_eq!(rows(&b), 1);

    // A plaintext client cannot talk to the TLS port.
    let plain = tonic::transport::Endpoint::from_shared(format!("http://127.0.0.1:{port}"))
        .unwrap()
        .connect()
        .await;
    if let Ok(ch) = plain {
        let mut c = arrow_flight::sql::client::FlightSqlServiceClient::new(ch);
        assert!(flight_query(&mut c, "select 1").await.is_err());
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_statement_and_an_unknown_table_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve_with(dir.path(), |_| {}).await;
    let mut c = flight_client(server.addr).await;
    let huge = format!("select 1 as x -- {}", "x".repeat(10 * 1024 * 1024));
    let e = flight_query(&mut c, &huge).await.unwrap_err().to_string();
    assert!(
        e.contains("too large") || e.contains("larger than max"),
        "a 10 MB statement is refused by size: {e}"
    );
    let e = flight_query(&mut c, "select * from marts.no_such_mart")
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("no_such_mart"), "{e}");
    let mut c = flight_client(server.addr).await;
    let ok = flight_query(&mut c, "select 1 as x").await.unwrap();
    assert_eq!(rows(&ok), 1, "the server still answers");
}
