//! Users and roles over Flight SQL: an analyst (argon2 password hash, role → marts and
//! seeds) neither sees nor reads raw tables — not through statements, prepared
//! statements, information_schema or metadata calls — while an engineer (password from an
//! env var) reads everything the role lists. Every query leaves one audit line.

use crate::helpers::*;

use arrow::array::{Array, StringArray};
use arrow_flight::sql::{CommandGetDbSchemas, CommandGetTables};
use shoplake::app::App;
use shoplake::config::{Config, UserEntry};
use shoplake::serve::access::hash_password;

type Client = arrow_flight::sql::client::FlightSqlServiceClient<tonic::transport::Channel>;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn analyst_sees_only_marts_and_every_query_is_audited() {
    let dir = tempfile::tempdir().unwrap();
    demo_warehouse(dir.path()).await;

    let mut config = Config::default();
    config.serve.users = vec![
        user("ana", "analyst", "ana-pw"),
        UserEntry {
            name: "eng".into(),
            role: "engineer".into(),
            password_hash: None,
            password_env: Some("SHOPLAKE_TEST_ENG_PASSWORD".into()),
        },
    ];
    let audit = dir.path().join("audit.jsonl");
    config.serve.audit_log = Some(audit.clone());
    // SAFETY: set before the server reads it; no other thread reads this variable.
    unsafe { std::env::set_var("SHOPLAKE_TEST_ENG_PASSWORD", "eng-pw") };
    let app = App::new(config, dir.path()).unwrap();
    let server = app.serve("127.0.0.1:0").await.unwrap();

    let mut ana = flight_client(server.addr).await;
    ana.handshake("ana", "ana-pw").await.unwrap();
    the_analyst_reads_marts_not_raw(&mut ana).await;
    metadata_hides_what_the_analyst_cannot_read(&mut ana).await;

    // The engineer reads raw.
    let mut eng = flight_query_client_as(server.addr, "eng", "eng-pw").await;
    let raw = flight_query(&mut eng, "select id from raw.orders limit 7")
        .await
        .unwrap();
    assert_eq!(rows(&raw), 7);

    // Wrong passwords: refused, then the name is locked for a while.
    for _ in 0..5 {
        let mut c = flight_client(server.addr).await;
        let e = c.handshake("ana", "guess").await.unwrap_err().to_string();
        assert!(e.contains("wrong user name or password"), "{e}");
    }
    let mut c = flight_client(server.addr).await;
    let e = c.handshake("ana", "ana-pw").await.unwrap_err().to_string();
    assert!(e.contains("too many failed logins"), "{e}");
    server.stop().await;
    one_audit_line_per_query(&audit);
}

/// Statements: marts yes, raw no — refused by name, before planning; prepared statements
/// obey the same rule.
async fn the_analyst_reads_marts_not_raw(ana: &mut Client) {
    let ok = flight_query(ana, "select count(*) as n from marts.gmv_daily")
        .await
        .unwrap();
    assert_eq!(rows(&ok), 1);
    for sql in [
        "select * from raw.orders",
        "select o.id from marts.gmv_daily g join raw.orders o on true",
        "with x as (select * from staging.stg_orders) select count(*) from x",
    ] {
        let e = flight_query(ana, sql).await.unwrap_err().to_string();
        assert!(
            e.contains("permission") && e.contains("role analyst) may not read"),
            "{sql}: {e}"
        );
    }
    // Prepared statements obey the same rule.
    let e = ana
        .prepare("select * from raw.orders where order_id = ?".into(), None)
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("may not read raw.orders"), "{e}");
}

/// Metadata (schemas, tables, patterns, information_schema) hides what the role cannot
/// read; the serialized table schema is the table's.
async fn metadata_hides_what_the_analyst_cannot_read(ana: &mut Client) {
    let info = ana
        .get_db_schemas(CommandGetDbSchemas::default())
        .await
        .unwrap();
    let schemas = flight_fetch(ana, info).await.unwrap();
    assert_eq!(strings(&schemas, "db_schema_name"), ["marts", "seeds"]);
    let info = ana
        .get_tables(CommandGetTables {
            include_schema: false,
            ..Default::default()
        })
        .await
        .unwrap();
    let tables = flight_fetch(ana, info).await.unwrap();
    let table_schemas = strings(&tables, "db_schema_name");
    assert!(table_schemas.iter().all(|s| s == "marts" || s == "seeds"));
    assert!(strings(&tables, "table_name").contains(&"gmv_daily".to_string()));
    // Patterns (% and _) and include_schema, as Grafana's column lookup and ADBC's
    // get_table_schema use them; the serialized schema is the table's.
    let info = ana
        .get_tables(CommandGetTables {
            db_schema_filter_pattern: Some("mar%".into()),
            table_name_filter_pattern: Some("%\\_daily".into()),
            table_types: vec!["BASE TABLE".into(), "table".into()],
            include_schema: true,
            ..Default::default()
        })
        .await
        .unwrap();
    let tables = flight_fetch(ana, info).await.unwrap();
    let names = strings(&tables, "table_name");
    assert!(names.contains(&"gmv_daily".to_string()) && names.contains(&"sku_daily".to_string()));
    assert!(names.iter().all(|n| n.ends_with("_daily")), "{names:?}");
    let i = names.iter().position(|n| n == "gmv_daily").unwrap();
    let b = &tables[0];
    let col = b
        .column_by_name("table_schema")
        .unwrap()
        .as_any()
        .downcast_ref::<arrow::array::BinaryArray>()
        .unwrap();
    let schema = arrow::ipc::convert::try_schema_from_ipc_buffer(col.value(i)).unwrap();
    assert!(schema.field_with_name("net_gmv").is_ok(), "{schema:?}");
    let info = ana
        .get_tables(CommandGetTables {
            table_name_filter_pattern: Some("orders".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    let none = flight_fetch(ana, info).await.unwrap();
    assert_eq!(rows(&none), 0, "raw.orders is invisible to the analyst");
    let is = flight_query(
        ana,
        "select distinct table_schema from information_schema.tables order by 1",
    )
    .await
    .unwrap();
    assert_eq!(
        strings(&is, "table_schema"),
        ["information_schema", "marts", "seeds"]
    );
}

/// One audit line per query: who, role, SQL, rows, status. No password anywhere.
fn one_audit_line_per_query(audit: &std::path::Path) {
    let text = std::fs::read_to_string(audit).unwrap();
    assert!(!text.contains("ana-pw") && !text.contains("eng-pw"));
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let find = |sql: &str| lines.iter().filter(|l| l["sql"] == sql).collect::<Vec<_>>();
    let gmv = find("select count(*) as n from marts.gmv_daily");
    assert_eq!(gmv.len(), 1, "{text}");
    assert_eq!(gmv[0]["user"], "ana");
    assert_eq!(gmv[0]["role"], "analyst");
    assert_eq!(gmv[0]["status"], "ok");
    assert_eq!(gmv[0]["rows"], 1);
    assert!(gmv[0]["bytes"].as_u64().unwrap() > 0);
    let refused = find("select * from raw.orders");
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0]["status"], "refused");
    assert!(refused[0]["error"].as_str().unwrap().contains("raw.orders"));
    let raw_line = find("select id from raw.orders limit 7");
    assert_eq!(
        (raw_line[0]["user"].as_str(), raw_line[0]["rows"].as_u64()),
        (Some("eng"), Some(7))
    );
}

async fn flight_query_client_as(
    addr: std::net::SocketAddr,
    user: &str,
    pw: &str,
) -> arrow_flight::sql::client::FlightSqlServiceClient<tonic::transport::Channel> {
    let mut c = flight_client(addr).await;
    c.handshake(user, pw).await.unwrap();
    c
}

#[test]
fn serve_config_errors_name_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let opts = |c: &Config| c.serve_options_with_env(dir.path(), |_| None);
    let mut c = Config::default();
    c.serve.users = vec![UserEntry {
        name: "x".into(),
        role: "auditor".into(),
        password_hash: Some(hash_password("p")),
        password_env: None,
    }];
    let e = opts(&c).unwrap_err();
    assert_eq!(e.key, "serve.users[0].role");
    assert!(e.message.contains("analyst"), "{e}");

    c.serve.users[0].role = "analyst".into();
    c.serve.users[0].password_hash = Some("hunter2".into());
    assert_eq!(opts(&c).unwrap_err().key, "serve.users[0].password_hash");

    c.serve.users[0].password_hash = None;
    c.serve.users[0].password_env = Some("NOPE_NOT_SET".into());
    let e = opts(&c).unwrap_err();
    assert_eq!(e.key, "serve.users[0].password_env");
    assert!(e.message.contains("NOPE_NOT_SET"));

    let mut c = Config::default();
    c.serve.roles.insert("ops".into(), vec!["warehouse".into()]);
    assert_eq!(opts(&c).unwrap_err().key, "serve.roles.ops");

    let mut c = Config::default();
    c.serve.query_memory = "lots".into();
    assert_eq!(opts(&c).unwrap_err().key, "serve.query_memory");
    c.serve.query_memory = "8GiB".into();
    assert_eq!(opts(&c).unwrap_err().key, "serve.query_memory");
    c.serve.query_memory = "1GiB".into();
    // A bad duration fails when the config loads, under its key.
    let bad = dir.path().join("bad-timeout.toml");
    std::fs::write(&bad, "[serve]\nquery_timeout = \"soon\"\n").unwrap();
    let e = Config::load_with_env(Some(&bad), Vec::new()).unwrap_err();
    assert_eq!(e.key, "serve.query_timeout");
    c.serve.query_timeout = std::time::Duration::from_secs(5);
    c.serve.tls_cert = Some(dir.path().join("missing.pem"));
    assert_eq!(opts(&c).unwrap_err().key, "serve.tls_key");
    c.serve.tls_key = Some(dir.path().join("missing-key.pem"));
    assert_eq!(opts(&c).unwrap_err().key, "serve.tls_cert");
}

/// The role and read-only rules are checked where a query runs, not where it was planned:
/// a ticket or prepared-statement handle the engineer obtained, replayed by the analyst or
/// by a client that never logged in, is refused; writes and DDL are refused whether sent
/// as a statement, a prepared statement, or an update command; a bound parameter cannot
/// widen what a prepared statement reads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_hold_for_replayed_tickets_prepared_writes_and_parameters() {
    let dir = tempfile::tempdir().unwrap();
    demo_warehouse(dir.path()).await;
    let server = serve_with(dir.path(), |c| {
        c.serve.users = vec![
            user("ana", "analyst", "ana-pw"),
            user("eng", "engineer", "eng-pw"),
        ];
    })
    .await;
    let mut eng = flight_query_client_as(server.addr, "eng", "eng-pw").await;
    let mut ana = flight_query_client_as(server.addr, "ana", "ana-pw").await;
    replayed_and_forged_tickets_are_refused(server.addr, &mut eng, &mut ana).await;
    writes_are_refused_for_both_roles(&mut ana, &mut eng).await;
    bound_parameters_are_values_never_sql(&mut ana).await;
    server.stop().await;
}

/// The engineer's tickets (a statement and a prepared statement on raw.orders), replayed
/// by the analyst or by a client that never logged in, and a ticket the analyst writes by
/// hand: all refused.
async fn replayed_and_forged_tickets_are_refused(
    addr: std::net::SocketAddr,
    eng: &mut Client,
    ana: &mut Client,
) {
    use arrow_flight::sql::{ProstMessageExt, TicketStatementQuery};
    use futures::TryStreamExt;
    use prost::Message;

    // The engineer's tickets: a statement and a prepared statement on raw.orders.
    let info = eng
        .execute("select id from raw.orders".into(), None)
        .await
        .unwrap();
    let stmt_ticket = info.endpoint[0].ticket.clone().unwrap();
    let mut prepared = eng
        .prepare("select id from raw.orders limit 3".into(), None)
        .await
        .unwrap();
    let info = prepared.execute().await.unwrap();
    let prep_ticket = info.endpoint[0].ticket.clone().unwrap();
    assert_eq!(rows(&flight_fetch(eng, info).await.unwrap()), 3);

    for (what, ticket) in [("statement", &stmt_ticket), ("prepared", &prep_ticket)] {
        let e = match ana.do_get(ticket.clone()).await {
            Ok(s) => s
                .try_collect::<Vec<_>>()
                .await
                .map(|b| format!("{} rows", rows(&b))),
            Err(e) => Err(e),
        };
        let e = e.expect_err(&format!("analyst replayed the engineer's {what} ticket"));
        assert!(
            e.to_string()
                .contains("role analyst) may not read raw.orders"),
            "{what}: {e}"
        );
        let mut anon = flight_client(addr).await;
        let e = match anon.do_get(ticket.clone()).await {
            Ok(s) => s.try_collect::<Vec<_>>().await.map(|_| ()),
            Err(e) => Err(e),
        }
        .expect_err("a client that never logged in replayed a ticket");
        assert!(
            e.to_string().contains("authorization required"),
            "{what}: {e}"
        );
    }
    // A ticket the analyst writes by hand is just a statement: same rule.
    let forged = arrow_flight::Ticket::new(
        TicketStatementQuery {
            statement_handle: "select * from raw.order_lines".into(),
        }
        .as_any()
        .encode_to_vec(),
    );
    let e = match ana.do_get(forged).await {
        Ok(s) => s.try_collect::<Vec<_>>().await.map(|_| ()),
        Err(e) => Err(e),
    }
    .expect_err("forged ticket");
    assert!(
        e.to_string().contains("may not read raw.order_lines"),
        "{e}"
    );
}

/// Writes and DDL, for both roles, as statements, prepared statements and an update
/// command: refused, the marts untouched.
async fn writes_are_refused_for_both_roles(ana: &mut Client, eng: &mut Client) {
    for sql in [
        "insert into marts.gmv_daily select * from marts.gmv_daily",
        "create table marts.x as select 1 as a",
        "drop table marts.gmv_daily",
        "create view marts.v as select 1 as a",
        "copy (select 1 as a) to '/tmp/shoplake-should-not-exist.csv'",
        "set datafusion.execution.batch_size = 1",
    ] {
        for (who, c) in [("ana", &mut *ana), ("eng", &mut *eng)] {
            let e = flight_query(c, sql).await.unwrap_err().to_string();
            assert!(e.contains("read-only"), "{who} statement {sql}: {e}");
            let e = c.prepare(sql.into(), None).await.unwrap_err().to_string();
            assert!(e.contains("read-only"), "{who} prepared {sql}: {e}");
        }
    }
    assert!(!std::path::Path::new("/tmp/shoplake-should-not-exist.csv").exists());
    let e = eng
        .execute_update("delete from marts.gmv_daily".into(), None)
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("read-only"), "{e}");
    let n = flight_query(eng, "select count(*) from marts.gmv_daily")
        .await
        .unwrap();
    assert!(scalar_i64(&n) > 0, "marts untouched");
}

/// Parameters are values, never SQL: a bound string naming a raw table stays a string.
async fn bound_parameters_are_values_never_sql(ana: &mut Client) {
    let mut p = ana
        .prepare(
            "select count(*) as n from marts.gmv_daily where shop_id = $1".into(),
            None,
        )
        .await
        .unwrap();
    let schema = std::sync::Arc::new(arrow::datatypes::Schema::new(vec![
        arrow::datatypes::Field::new("$1", arrow::datatypes::DataType::Utf8, true),
    ]));
    let bound = arrow::array::RecordBatch::try_new(
        schema,
        vec![std::sync::Arc::new(StringArray::from(vec![
            "x' union select count(*) from raw.orders --",
        ]))],
    )
    .unwrap();
    p.set_parameters(bound).unwrap();
    let info = p.execute().await.unwrap();
    let out = flight_fetch(ana, info).await.unwrap();
    assert_eq!(
        scalar_i64(&out),
        0,
        "the injection is a shop id that matches nothing"
    );
}
