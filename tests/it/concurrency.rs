//! Concurrency on one lake: two extractions of the same shops and streams at once, model
//! builds running while they commit, and Flight SQL reading during the commits. Delta's
//! conflict checks (with the writer's re-planned merges) keep every table consistent: the
//! end state equals one clean run, and no reader ever sees a duplicate or a shrinking table.
//! Run on local disk and on S3 (moto), where commits race through conditional writes.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::helpers::*;
use shoplake::app::App;
use shoplake::config::Config;
use shoplake_sandbox::{DEFAULT_AUTH_CODE, DEFAULT_CLOCK};

fn app_at(
    dir: &std::path::Path,
    project: &std::path::Path,
    sb: &shoplake_sandbox::RunningSandbox,
    lake: &impl Fn(&mut Config),
) -> App {
    let mut config = Config::default();
    config.project.dir = Some(project.to_path_buf());
    lake(&mut config);
    App::new(config, dir)
        .unwrap()
        .with_client_config(client_config(sb))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_extractions_a_build_and_a_reader_at_once_stay_consistent() {
    let scope = Scope {
        orders: 2_000,
        pipeline: None,
        models: None,
        marts: &["gmv_daily", "fulfillment_sla"],
    };
    two_writers_a_build_and_a_reader(scope, |_| {}).await;
}

/// The same on S3: the two writers' commits race through put-if-absent on one store.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_writers_on_s3_never_lose_a_commit() {
    let s3 = crate::helpers::s3::S3Server::start();
    let uri = s3.bucket("concurrent");
    // The orders stream and the models over it: moto answers in milliseconds, and every
    // stream of the demo would take minutes; the commit path is the same for all.
    let scope = Scope {
        orders: 600,
        pipeline: Some("orders"),
        models: Some("+order_status_daily"),
        marts: &["order_status_daily"],
    };
    two_writers_a_build_and_a_reader(scope, |c| s3.configure(c, &uri)).await;
}

/// Two backfills of one lake (configured by `lake`) at once, a build looping and a Flight
/// SQL reader polling meanwhile; the end equals a clean run on local disk.
async fn two_writers_a_build_and_a_reader(scope: Scope, lake: impl Fn(&mut Config)) {
    let sb = start(small(2, scope.orders)).await;
    let project = project_with_order_window("3days");
    let (from, to) = (DEFAULT_CLOCK - 31 * 86_400, DEFAULT_CLOCK + 1);
    let ref_dir = tempfile::tempdir().unwrap();
    let reference = app_for(&sb, ref_dir.path(), Some(project.path())).await;
    backfill_ok(&reference, from, to, scope.pipeline).await;
    reference
        .build(scope.models, &Default::default())
        .await
        .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let a = Arc::new(app_at(dir.path(), project.path(), &sb, &lake));
    shoplake::api::auth::exchange_and_store(&a.client().unwrap(), DEFAULT_AUTH_CODE)
        .await
        .unwrap();
    // Half the range first, so the models have every table to read from the start.
    backfill_ok(&a, from, from + 15 * 86_400, scope.pipeline).await;
    a.build(scope.models, &Default::default()).await.unwrap();
    let b = Arc::new(app_at(dir.path(), project.path(), &sb, &lake));
    let server = a.serve("127.0.0.1:0").await.unwrap();

    let done = Arc::new(AtomicBool::new(false));
    let reader = {
        let done = done.clone();
        let addr = server.addr;
        tokio::spawn(async move {
            let mut c = flight_client(addr).await;
            let (mut reads, mut last) = (0u32, 0i64);
            while !done.load(Ordering::Relaxed) || reads < 3 {
                let batches = flight_query(
                    &mut c,
                    "select count(*) - count(distinct concat(_shop_id, '/', id)) as dup, count(*) as n from raw.orders",
                )
                .await
                .unwrap();
                let col = |i: usize| {
                    arrow::array::cast::as_primitive_array::<arrow::datatypes::Int64Type>(
                        batches[0].column(i),
                    )
                    .value(0)
                };
                assert_eq!(col(0), 0, "a reader saw duplicate orders mid-commit");
                assert!(col(1) >= last, "orders went from {last} to {}", col(1));
                last = col(1);
                reads += 1;
            }
            reads
        })
    };
    let builder = {
        let (a, done) = (a.clone(), done.clone());
        tokio::spawn(async move {
            // Builds one after another while the backfills commit, up to three: each
            // build competes for the same two cores, and three already commit between the
            // extractions' merges.
            let mut builds = 0;
            while !done.load(Ordering::Relaxed) && builds < 3 {
                a.build(scope.models, &Default::default())
                    .await
                    .expect("a build during extraction");
                builds += 1;
            }
            builds
        })
    };
    let (ra, rb) = tokio::join!(
        a.backfill(from, to, None, scope.pipeline),
        b.backfill(from, to, None, scope.pipeline)
    );
    done.store(true, Ordering::Relaxed);
    for r in [ra.unwrap(), rb.unwrap()] {
        assert!(r.errors.is_empty(), "{:?}", r.errors);
    }
    let builds = builder.await.unwrap();
    let reads = reader.await.unwrap();
    eprintln!("{builds} builds and {reads} reads during two concurrent backfills");
    assert!(builds >= 1 && reads >= 3);

    a.build(scope.models, &Default::default()).await.unwrap();
    let mut tables: Vec<String> = reference
        .lake
        .list_tables("raw")
        .await
        .unwrap()
        .into_iter()
        .map(|t| format!("raw.{t}"))
        .collect();
    tables.extend(scope.marts.iter().map(|m| format!("marts.{m}")));
    for t in &tables {
        let (x, y) = (
            qualified_rows(&reference, t).await,
            qualified_rows(&a, t).await,
        );
        assert!(!x.is_empty() || !expect_rows(t.as_ref()), "{t} is empty");
        assert_eq!(x.len(), y.len(), "{t} row count");
        assert!(x == y, "{t} content differs");
    }
    sb.stop().await;
}
