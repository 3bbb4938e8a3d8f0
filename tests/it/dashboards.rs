//! The shipped dashboards run against a demo warehouse over Flight SQL, as the analyst
//! role: every Grafana panel query (macros expanded the way the FlightSQL plugin's
//! sqlutil does) returns rows with only the column types that plugin can read and a
//! nanosecond `time` column for time series; every Superset dataset's SQL runs and has
//! the declared columns, and every chart's query (as Superset builds it over the virtual
//! dataset) runs, with the dashboard placing every chart.

use std::collections::BTreeSet;
use std::path::Path;

use crate::helpers::*;
use arrow::datatypes::{DataType, TimeUnit};

const FROM: &str = "2025-11-01T00:00:00Z";
const TO: &str = "2026-11-01T00:00:00Z";

fn deploy() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy")
}

/// Column types the FlightSQL Grafana plugin (pkg/flightsql/arrow.go) converts; any
/// other type leaves the frame field empty and the panel broken.
fn grafana_reads(t: &DataType) -> bool {
    matches!(
        t,
        DataType::Utf8
            | DataType::Int64
            | DataType::UInt32
            | DataType::Float64
            | DataType::Boolean
            | DataType::Timestamp(..)
    )
}

type Client = arrow_flight::sql::client::FlightSqlServiceClient<tonic::transport::Channel>;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_dashboard_query_runs_on_the_demo_warehouse() {
    let dir = tempfile::tempdir().unwrap();
    demo_warehouse(dir.path()).await;
    let server = serve_with(dir.path(), |c| {
        c.serve.users = vec![user("grafana", "analyst", "dash-pw")]
    })
    .await;
    let mut c = flight_client(server.addr).await;
    c.handshake("grafana", "dash-pw").await.unwrap();
    every_grafana_panel_runs(&mut c).await;
    every_superset_dataset_and_chart_runs(&mut c).await;
    server.stop().await;
}

/// Every panel query returns rows of types the plugin reads (a nanosecond `time` for time
/// series), and every panel points at the provisioned data source.
async fn every_grafana_panel_runs(c: &mut Client) {
    let queries = shoplake::serve::dashboards::grafana_queries(
        &deploy().join("grafana/dashboards"),
        FROM,
        TO,
    )
    .unwrap();
    let mut panels = 0;
    for q in &queries {
        let title = &q.title;
        let batches = flight_query(c, &q.sql)
            .await
            .unwrap_or_else(|e| panic!("{title}: {e}\n{}", q.sql));
        assert!(rows(&batches) > 0, "{title}: no rows");
        let schema = batches[0].schema();
        for f in schema.fields() {
            assert!(
                grafana_reads(f.data_type()),
                "{title}: column {} is {} which the Grafana plugin cannot read",
                f.name(),
                f.data_type()
            );
        }
        if q.format == "time_series" {
            let time = schema
                .field_with_name("time")
                .unwrap_or_else(|_| panic!("{title}: time series without `time`"));
            assert!(
                matches!(
                    time.data_type(),
                    DataType::Timestamp(TimeUnit::Nanosecond, _)
                ),
                "{title}: time is {}",
                time.data_type()
            );
        }
        panels += 1;
    }
    // Every panel points at the provisioned data source.
    for f in shoplake::files::with_extension(&deploy().join("grafana/dashboards"), "json").unwrap()
    {
        let dash: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&f).unwrap()).unwrap();
        for p in dash["panels"].as_array().unwrap() {
            assert_eq!(p["datasource"]["uid"], "shoplake", "{}", p["title"]);
        }
    }
    assert!(panels >= 6, "{panels} Grafana queries");
}

fn yaml(p: &Path) -> serde_yaml::Value {
    serde_yaml::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

/// Every dataset's SQL runs with its declared columns; every chart is on the dashboard and
/// its query runs.
async fn every_superset_dataset_and_chart_runs(c: &mut Client) {
    let root = deploy().join("superset/shoplake_dashboard");
    let db = yaml(&root.join("databases/shoplake.yaml"));
    assert!(
        db["sqlalchemy_uri"]
            .as_str()
            .unwrap()
            .starts_with("datafusion://"),
        "the flightsql-dbapi entry point is `datafusion`"
    );
    assert_eq!(db["allow_dml"], serde_yaml::Value::Bool(false));
    let mut datasets = std::collections::HashMap::new();
    for f in shoplake::files::with_extension(&root.join("datasets/shoplake"), "yaml").unwrap() {
        let d = yaml(&f);
        let name = d["table_name"].as_str().unwrap().to_string();
        assert_eq!(d["database_uuid"], db["uuid"], "{name}");
        let sql = d["sql"].as_str().unwrap().to_string();
        let batches = flight_query(c, &sql)
            .await
            .unwrap_or_else(|e| panic!("dataset {name}: {e}"));
        assert!(rows(&batches) > 0, "dataset {name}: no rows");
        let got: Vec<String> = batches[0]
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        let declared: Vec<String> = d["columns"]
            .as_sequence()
            .unwrap()
            .iter()
            .map(|c| c["column_name"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(got, declared, "dataset {name}: declared columns");
        datasets.insert(d["uuid"].as_str().unwrap().to_string(), d);
    }
    let dashboard = yaml(&root.join("dashboards/shoplake_sales.yaml"));
    let placed: BTreeSet<String> = dashboard["position"]
        .as_mapping()
        .unwrap()
        .values()
        .filter_map(|v| v["meta"]["uuid"].as_str().map(str::to_string))
        .collect();
    let mut charts = 0;
    for f in shoplake::files::with_extension(&root.join("charts"), "yaml").unwrap() {
        let ch = yaml(&f);
        let title = ch["slice_name"].as_str().unwrap();
        assert!(
            placed.contains(ch["uuid"].as_str().unwrap()),
            "{title} is not on the dashboard"
        );
        let sql = chart_sql(&ch, &datasets[ch["dataset_uuid"].as_str().unwrap()]);
        let batches = flight_query(c, &sql)
            .await
            .unwrap_or_else(|e| panic!("chart {title}: {e}\n{sql}"));
        assert!(rows(&batches) > 0, "chart {title}: no rows");
        charts += 1;
    }
    assert_eq!(charts, placed.len());
}

/// The query Superset sends for chart `ch` over its dataset `d`: metrics as the dataset
/// defines them, grouped by the chart's dimensions, over the virtual dataset.
fn chart_sql(ch: &serde_yaml::Value, d: &serde_yaml::Value) -> String {
    let title = ch["slice_name"].as_str().unwrap();
    let p = &ch["params"];
    let metric_sql = |name: &str| -> String {
        let m = d["metrics"]
            .as_sequence()
            .unwrap()
            .iter()
            .find(|m| m["metric_name"] == name)
            .unwrap_or_else(|| panic!("{title}: metric {name} not in its dataset"));
        format!("{} AS \"{name}\"", m["expression"].as_str().unwrap())
    };
    let mut metrics: Vec<String> = p["metrics"]
        .as_sequence()
        .map(|s| s.iter().map(|m| metric_sql(m.as_str().unwrap())).collect())
        .unwrap_or_default();
    if let Some(m) = p["metric"].as_str() {
        metrics.push(metric_sql(m));
    }
    let mut dims: Vec<String> = p["groupby"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|g| format!("\"{}\"", g.as_str().unwrap()))
        .collect();
    if let Some(x) = p["x_axis"].as_str() {
        dims.insert(0, format!("\"{x}\""));
    }
    let select: Vec<String> = dims.iter().cloned().chain(metrics).collect();
    let group = if dims.is_empty() {
        String::new()
    } else {
        format!(" GROUP BY {}", dims.join(", "))
    };
    format!(
        "SELECT {} FROM ({}) AS virtual_table{group} LIMIT {}",
        select.join(", "),
        d["sql"].as_str().unwrap(),
        p["row_limit"].as_u64().unwrap()
    )
}
