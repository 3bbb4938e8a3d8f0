//! Windows over `max_records` split in half until they fit, and land the same tables as
//! windows that never split.

use crate::helpers::*;
use shoplake::api::auth::exchange_and_store;
use shoplake::app::App;
use shoplake::config::Config;
use shoplake_sandbox as sandbox;

async fn landed(app: &App) -> String {
    let b = app
        .query(
            "select _shop_id, id, status, update_time, total_amount from raw.orders order by 1, 2",
        )
        .await
        .unwrap();
    arrow::util::pretty::pretty_format_batches(&b)
        .unwrap()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_windows_split_and_land_the_same_rows() {
    let sb = start(small(1, 1500)).await;
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let clock = sandbox::DEFAULT_CLOCK;

    let mut apps = Vec::new();
    let mut dirs = Vec::new();
    for max in [None, Some(200)] {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::default();
        if let Some(max) = max {
            let project = dir.path().join("project");
            for d in ["pipelines", "schemas", "sql"] {
                copy_dir(&root.join(d), &project.join(d));
            }
            let p = project.join("pipelines/orders.toml");
            let text = std::fs::read_to_string(&p).unwrap();
            assert!(text.contains("max_records = 20000"));
            std::fs::write(
                &p,
                text.replace("max_records = 20000", &format!("max_records = {max}")),
            )
            .unwrap();
            config.project.dir = Some(project);
        }
        let app = App::new(config, dir.path())
            .unwrap()
            .with_client_config(client_config(&sb));
        exchange_and_store(&app.client().unwrap(), sandbox::DEFAULT_AUTH_CODE)
            .await
            .unwrap();
        let sum = app
            .backfill(clock - 32 * 86_400, clock + 1, None, Some("orders"))
            .await
            .unwrap();
        assert!(sum.errors.is_empty(), "{:?}", sum.errors);
        apps.push((app, sum));
        dirs.push(dir);
    }
    let (whole, split) = (&apps[0], &apps[1]);
    assert_eq!(whole.1.windows, 1, "one 90-day window without a limit");
    assert!(
        split.1.windows >= 1500 / 200,
        "split into {} windows",
        split.1.windows
    );
    assert_eq!(whole.1.rows, split.1.rows);
    assert_eq!(landed(&whole.0).await, landed(&split.0).await);
}
