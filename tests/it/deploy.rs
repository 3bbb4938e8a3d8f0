//! The deployment files under deploy/, checked on a machine without Docker or Kubernetes:
//! - every YAML and JSON file parses (PyYAML; tests/python/check_deploy.py, which also
//!   resolves what the files reference: services, volumes, mounts, Secrets, ConfigMaps,
//!   kustomize components and patch targets, Grafana data sources, rule files; and checks
//!   that table maintenance runs one way only: the scheduler's `[jobs] maintain` or a
//!   `shoplake maintain` CronJob);
//! - every `SHOPLAKE_*` variable the compose and Kubernetes files (and the Dockerfile)
//!   name is a key shoplake's config accepts, loaded alone through
//!   [`Config::load_with_env`] (unknown keys are refused: the test proves it), or a
//!   variable shoplake, the Grafana provisioning or a `password_env` reads; every
//!   shoplake.toml they mount loads, and each service's config with its whole environment
//!   validates the way its command uses it;
//! - every path the Dockerfile copies exists (and is not excluded from the context), and
//!   it builds every workspace crate;
//! - the alert rules and the operations dashboard use only metrics shoplake exports
//!   (src/jobs/metrics.rs and src/serve/metrics.rs), and those are on the running
//!   processes' /metrics;
//! - every shoplake command line parses (`--help` with the built binary), and the
//!   long-running ones (sandbox, scheduler, worker, serve) run for real on loopback ports
//!   until their health checks answer (the image's deploy/healthcheck.sh too), then stop
//!   cleanly on SIGTERM.
//!
//! What needs Docker or a cluster (building the image, compose networking, MinIO, the
//! HPA's metrics adapter) is not checked here; deploy/README.md says so.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use serde_json::Value;
use shoplake::config::{Config, ConfigError};

use crate::helpers::*;

/// PyYAML for check_deploy.py, pinned like the other Python test packages (one venv).
const PYYAML: &str = "pyyaml==6.0.2";

/// Values every kind of config key accepts one of: an unknown key fails with all of them.
const ANY_VALUES: &[&str] = &["sample", "1", "30s", "0.5", "true", "postgres://u:p@h/db"];

/// Commands the deployment runs that the binary may not have yet: (command, why). Once
/// the binary lists the command, its command lines are checked like every other (as
/// `maintain`'s are now).
const PENDING: &[(&str, &str)] = &[];

/// Global flags that take a value (they may stand before the command).
const GLOBAL_WITH_VALUE: &[&str] = &["--config", "--data-dir", "--log-format"];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `path` relative to the repository root, with `/`.
fn rel(path: &Path) -> String {
    path.strip_prefix(root())
        .unwrap_or(path)
        .display()
        .to_string()
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every file under `dir`, sorted.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                todo.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// What tests/python/check_deploy.py read from deploy/ (its docstring lists the fields).
fn deploy_files() -> Value {
    let py = python_venv(&[PYYAML]);
    let script = root().join("tests/python/check_deploy.py");
    let out = Command::new(&py)
        .arg(&script)
        .arg(root())
        .output()
        .expect("run tests/python/check_deploy.py");
    assert!(
        out.status.success(),
        "tests/python/check_deploy.py failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("check_deploy.py prints one JSON object")
}

fn list<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v[key]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_else(|| panic!("check_deploy.py's output has no list {key:?}"))
}

fn text(v: &Value, key: &str) -> String {
    v[key].as_str().unwrap_or_default().to_string()
}

fn str_list(v: &Value) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .map(|x| x.as_str().unwrap_or_default().to_string())
        .collect()
}

/// `SHOPLAKE_<SECTION>__<KEY>`: what the config loader reads from the environment.
fn is_config_env(name: &str) -> bool {
    name.strip_prefix("SHOPLAKE_")
        .is_some_and(|rest| rest.contains("__"))
}

/// A value of the right kind for a variable whose value a file does not show (a Secret).
fn sample_value(key: &str) -> String {
    match key {
        "SHOPLAKE_JOBS__BACKEND" => "postgres://shoplake:sample@postgres:5432/shoplake".into(),
        // 32 bytes, base64.
        "SHOPLAKE_TOKEN_KEY" => format!("{}=", "A".repeat(43)),
        _ => "sample-secret-value".into(),
    }
}

/// Loads `file` with one environment variable set.
fn load_one(file: &Path, key: &str, value: &str) -> Result<Config, ConfigError> {
    Config::load_with_env(Some(file), vec![(key.to_string(), value.to_string())])
}

/// An empty config file in `dir` (so `./shoplake.toml` of the working directory never
/// joins in).
fn empty_config(dir: &Path) -> PathBuf {
    let p = dir.join("empty.toml");
    std::fs::write(&p, "").unwrap();
    p
}

/// The text of every Rust source of shoplake and its crates.
fn shoplake_sources() -> String {
    let mut all = String::new();
    for dir in ["src", "crates"] {
        for f in files_under(&root().join(dir)) {
            if f.extension().is_some_and(|x| x == "rs") {
                all.push_str(&read(&f));
            }
        }
    }
    all
}

/// Instructions of a Dockerfile: (first line number, INSTRUCTION, arguments), with
/// continuation lines joined and comment lines dropped (as Docker does).
fn dockerfile_instructions(text: &str) -> Vec<(usize, String, String)> {
    let mut out = Vec::new();
    let mut current: Option<(usize, String)> = None;
    for (i, line) in text.lines().enumerate() {
        let t = line.trim();
        if t.starts_with('#') || (t.is_empty() && current.is_none()) {
            continue;
        }
        let (start, mut acc) = current.take().unwrap_or((i + 1, String::new()));
        let continued = t.ends_with('\\');
        acc.push(' ');
        acc.push_str(t.trim_end_matches('\\'));
        if continued {
            current = Some((start, acc));
        } else {
            let acc = acc.trim().to_string();
            let (instr, args) = acc
                .split_once(char::is_whitespace)
                .unwrap_or((acc.as_str(), ""));
            out.push((start, instr.to_ascii_uppercase(), args.trim().to_string()));
        }
    }
    out
}

/// The words of a COPY/ADD: JSON array form or whitespace-separated.
fn copy_words(args: &str) -> Vec<String> {
    if args.trim_start().starts_with('[') {
        return serde_json::from_str(args.trim()).unwrap_or_default();
    }
    args.split_whitespace().map(str::to_string).collect()
}

/// Metric names shoplake exports: in every `metrics.rs` under src/ (src/jobs/metrics.rs
/// for run, worker and scheduler, src/serve/metrics.rs for serve), the names written as
/// string literals (`"shoplake_…"`) or in `# TYPE shoplake_… ` lines, and a histogram's
/// `_bucket`, `_sum` and `_count` series.
fn exported_metrics() -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for f in files_under(&root().join("src"))
        .iter()
        .filter(|f| f.file_name().is_some_and(|n| n == "metrics.rs"))
    {
        let text = read(f);
        for name in metric_tokens(&text, true) {
            if text.contains(&format!("# TYPE {name} histogram")) {
                for suffix in ["_bucket", "_sum", "_count"] {
                    out.insert(format!("{name}{suffix}"));
                }
            }
            out.insert(name);
        }
    }
    out
}

/// `shoplake_…` names in `text` (with `declared`, only those right after a `"` or
/// `# TYPE `).
fn metric_tokens(text: &str, declared: bool) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (i, _) in text.match_indices("shoplake_") {
        let before = text[..i].chars().next_back();
        let ok = if declared {
            before == Some('"') || text[..i].ends_with("# TYPE ")
        } else {
            !before.is_some_and(|c| c.is_ascii_alphanumeric() || "_:.-/".contains(c))
        };
        if !ok {
            continue;
        }
        let tail: String = text[i + "shoplake_".len()..]
            .chars()
            .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')
            .collect();
        if !tail.is_empty() {
            out.insert(format!("shoplake_{tail}"));
        }
    }
    out
}

/// Metric names the alert rules, scrape configs and the operations dashboard use, with
/// the files using each.
fn used_metrics() -> BTreeMap<String, Vec<String>> {
    let mut used: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let files = files_under(&root().join("deploy/prometheus"))
        .into_iter()
        .chain(files_under(
            &root().join("deploy/grafana/dashboards/operations"),
        ));
    for f in files {
        for name in metric_tokens(&read(&f), false) {
            used.entry(name).or_default().push(rel(&f));
        }
    }
    used
}

#[test]
fn every_deploy_yaml_and_json_file_parses_and_its_references_resolve() {
    let d = deploy_files();
    let errors: Vec<&str> = list(&d, "errors")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        errors.is_empty(),
        "deploy/ has problems:\n  {}",
        errors.join("\n  ")
    );
    // Nothing was skipped: every YAML and JSON file under deploy/ was parsed.
    let parsed: BTreeSet<String> = ["yaml", "json"]
        .iter()
        .flat_map(|k| str_list(&d["parsed"][*k]))
        .collect();
    for f in files_under(&root().join("deploy")) {
        let r = rel(&f);
        if [".yml", ".yaml", ".json"].iter().any(|x| r.ends_with(*x)) {
            assert!(parsed.contains(&r), "{r} was not parsed");
        }
    }
    for must in [
        "deploy/docker-compose.yml",
        "deploy/docker-compose.local-lake.yml",
        "deploy/k8s/kustomization.yaml",
        "deploy/prometheus/prometheus.yml",
        "deploy/prometheus/rules/shoplake.yml",
        "deploy/grafana/provisioning/datasources/prometheus.yaml",
        "deploy/grafana/dashboards/operations/operations.json",
    ] {
        assert!(parsed.contains(must), "{must} is missing");
    }
}

#[test]
fn every_shoplake_variable_is_a_real_config_key_and_every_config_loads() {
    let d = deploy_files();
    let tmp = tempfile::tempdir().unwrap();
    let empty = empty_config(tmp.path());

    unknown_config_keys_fail_and_a_known_one_loads(&empty);
    let password_envs = every_mounted_config_loads(&d, tmp.path());

    // A SHOPLAKE_ variable that is no config key must be one something reads.
    let readers = Readers::new(password_envs);
    let env_keys = every_service_variable_is_accepted_or_read(&d, &empty, &readers);
    every_other_shoplake_name_is_accepted_or_read(&d, &empty, &readers, &env_keys);

    every_services_config_validates_as_its_command_uses_it(&d, tmp.path(), &empty);
}

/// An unknown key fails whatever its value (serde's deny_unknown_fields), naming itself:
/// what makes the checks of the deployment's variables mean anything; a known one loads.
fn unknown_config_keys_fail_and_a_known_one_loads(empty: &Path) {
    for (key, named) in [
        ("SHOPLAKE_API__NO_SUCH_KEY", "no_such_key"),
        ("SHOPLAKE_JOBS__BAKCEND", "bakcend"),
        ("SHOPLAKE_NO_SUCH_SECTION__URI", "no_such_section"),
    ] {
        for v in ANY_VALUES {
            let Err(e) = load_one(empty, key, v) else {
                panic!("{key}={v} loaded: unknown config keys must fail");
            };
            assert!(e.to_string().contains(named), "{key}: {e}");
        }
    }
    // …and a known one loads.
    let c = load_one(empty, "SHOPLAKE_WAREHOUSE__URI", "/data/lake").unwrap();
    assert_eq!(c.warehouse.uri.as_deref(), Some("/data/lake"));
}

/// Every shoplake.toml the deployment mounts (a ConfigMap's written into `tmp`), and the
/// image's default, loads as is; the `password_env`s their `[[serve.users]]` name.
fn every_mounted_config_loads(d: &Value, tmp: &Path) -> BTreeSet<String> {
    let mut configs: Vec<(String, PathBuf)> = vec![(
        "deploy/shoplake.toml (the image's default)".into(),
        root().join("deploy/shoplake.toml"),
    )];
    for (i, c) in list(d, "configs").iter().enumerate() {
        let label = format!("{} ({})", text(c, "file"), text(c, "where"));
        let path = match (c["path"].as_str(), c["text"].as_str()) {
            (Some(p), _) => root().join(p),
            (None, Some(t)) => {
                let p = tmp.join(format!("configmap-{i}.toml"));
                std::fs::write(&p, t).unwrap();
                p
            }
            _ => panic!("{label}: a config without a path or text"),
        };
        configs.push((label, path));
    }
    assert!(
        configs
            .iter()
            .any(|(_, p)| p.ends_with("k8s/shoplake.toml")),
        "the k8s ConfigMap's shoplake.toml was not found: {configs:?}"
    );
    let mut password_envs = BTreeSet::new();
    for (label, path) in &configs {
        let c = Config::load_with_env(Some(path), Vec::new())
            .unwrap_or_else(|e| panic!("{label}: {} does not load: {e}", rel(path)));
        for u in &c.serve.users {
            password_envs.extend(u.password_env.clone());
        }
    }
    password_envs
}

/// Why a `SHOPLAKE_` variable that is no config key fails: nothing of [`Readers`] reads it.
const NOT_READ: &str = "is not a config key (SHOPLAKE_<SECTION>__<KEY>) and nothing reads it: not shoplake's source, the Grafana provisioning, nor a [[serve.users]] password_env";

/// What may read a `SHOPLAKE_` variable that is no config key: shoplake's source, the
/// Grafana provisioning, or a `[[serve.users]] password_env`.
struct Readers {
    sources: String,
    provisioning: String,
    password_envs: BTreeSet<String>,
}

impl Readers {
    fn new(password_envs: BTreeSet<String>) -> Readers {
        let sources = shoplake_sources();
        let provisioning: String = files_under(&root().join("deploy/grafana/provisioning"))
            .into_iter()
            .map(|f| read(&f))
            .collect();
        Readers {
            sources,
            provisioning,
            password_envs,
        }
    }

    fn read_by_something(&self, name: &str) -> bool {
        self.sources.contains(&format!("\"{name}\""))
            || self.provisioning.contains(&format!("${{{name}}}"))
            || self.password_envs.contains(name)
    }
}

/// Every `SHOPLAKE_` variable a service sets, with the value it sets (a sample for
/// Secrets), is a config key shoplake accepts or one something reads; their names.
fn every_service_variable_is_accepted_or_read(
    d: &Value,
    empty: &Path,
    readers: &Readers,
) -> BTreeSet<String> {
    let mut env_keys = BTreeSet::new();
    for e in list(d, "env") {
        let key = text(e, "key");
        if !key.starts_with("SHOPLAKE_") {
            continue;
        }
        let place = format!("{} ({})", text(e, "file"), text(e, "where"));
        env_keys.insert(key.clone());
        if is_config_env(&key) {
            let value = e["value"]
                .as_str()
                .map_or_else(|| sample_value(&key), str::to_string);
            if let Err(err) = load_one(empty, &key, &value) {
                panic!("{place}: {key}={value:?} is not accepted by shoplake's config: {err}");
            }
        } else {
            assert!(readers.read_by_something(&key), "{place}: {key} {NOT_READ}");
        }
    }
    env_keys
}

/// Every other `SHOPLAKE_` name the files write (comments, compose interpolation) and the
/// Dockerfile's (not in `env_keys`) is a config key shoplake accepts, one something reads
/// or one the compose files interpolate.
fn every_other_shoplake_name_is_accepted_or_read(
    d: &Value,
    empty: &Path,
    readers: &Readers,
    env_keys: &BTreeSet<String>,
) {
    let compose_vars: BTreeSet<String> = str_list(&d["compose_vars"]).into_iter().collect();
    let mut names: Vec<(String, String)> = list(d, "names")
        .iter()
        .map(|n| (text(n, "file"), text(n, "name")))
        .collect();
    let dockerfile = read(&root().join("deploy/Dockerfile"));
    for (_, instr, args) in dockerfile_instructions(&dockerfile) {
        if instr == "ENV" || instr == "ARG" {
            for w in args.split_whitespace() {
                let name = w.split('=').next().unwrap_or_default();
                if name.starts_with("SHOPLAKE_") {
                    names.push(("deploy/Dockerfile".into(), name.to_string()));
                }
            }
        }
    }
    assert!(
        names.iter().any(|(_, n)| n == "SHOPLAKE_DATA_DIR"),
        "the Dockerfile sets no SHOPLAKE_DATA_DIR"
    );
    for (file, name) in names {
        if env_keys.contains(&name) {
            continue;
        }
        if is_config_env(&name) {
            assert!(
                ANY_VALUES.iter().any(|v| load_one(empty, &name, v).is_ok()),
                "{file}: {name} is not a config key shoplake accepts"
            );
        } else {
            assert!(
                readers.read_by_something(&name) || compose_vars.contains(&name),
                "{file}: {name} {NOT_READ}, nor a variable the compose files interpolate"
            );
        }
    }
}

/// Each service: its config with its whole environment loads and validates as its
/// command uses it (files it needs written into `tmp`).
fn every_services_config_validates_as_its_command_uses_it(d: &Value, tmp: &Path, empty: &Path) {
    let mut whole = 0;
    for p in list(d, "processes") {
        if !p["whole"].as_bool().unwrap_or(false) {
            continue;
        }
        whole += 1;
        service_config_validates(p, whole, tmp, empty);
    }
    assert!(whole >= 8, "only {whole} complete services found");
}

/// The config of `p`, the `whole`-th complete service, with its whole environment loads
/// and validates as its command uses it.
fn service_config_validates(p: &Value, whole: usize, tmp: &Path, empty: &Path) {
    let place = format!("{} ({})", text(p, "file"), text(p, "where"));
    let args = str_list(&p["args"]);
    let env: BTreeMap<String, String> = p["env"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| {
            let v = v.as_str().map_or_else(|| sample_value(k), str::to_string);
            (k.clone(), v)
        })
        .collect();
    let config = match (p["config"].as_str(), p["config_text"].as_str()) {
        (Some(path), _) => root().join(path),
        (None, Some(t)) => {
            let path = tmp.join(format!("process-{whole}.toml"));
            std::fs::write(&path, t).unwrap();
            path
        }
        _ => empty.to_path_buf(),
    };
    let config_env: Vec<(String, String)> = env
        .iter()
        .filter(|(k, _)| is_config_env(k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let mut c = Config::load_with_env(Some(&config), config_env).unwrap_or_else(|e| {
        panic!(
            "{place}: {} with the service's environment does not load: {e}",
            rel(&config)
        )
    });
    let check = |step: &str, r: Result<(), ConfigError>| {
        if let Err(e) = r {
            panic!("{place}: `shoplake {}`: {step} fails: {e}", args.join(" "));
        }
    };
    match command_of(&args) {
        "worker" | "run" | "backfill" | "extract" | "auth" => {
            check("[api]", c.client_config().map(drop));
            check("[jobs]", c.jobs_config().map(drop));
            check("[extract]", c.extract_options().map(drop));
        }
        "scheduler" | "status" | "retry" => check("[jobs]", c.jobs_config().map(drop)),
        "serve" => {
            // The audit log path is the container's; write it here instead.
            c.serve.audit_log = Some(tmp.join(format!("audit-{whole}.jsonl")));
            let opts = c.serve_options_with_env(tmp, |k| env.get(k).cloned());
            check("[serve]", opts.map(drop));
        }
        "build" | "test" | "maintain" | "query" | "docs" => {
            check("[project]", c.build_options().map(drop));
        }
        _ => {}
    }
}

#[test]
fn the_dockerfile_copies_paths_that_exist_and_builds_every_workspace_crate() {
    let file = "deploy/Dockerfile";
    let instructions = dockerfile_instructions(&read(&root().join(file)));
    let ignore: Vec<String> = read(&root().join("deploy/Dockerfile.dockerignore"))
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect();
    let mut copied = BTreeSet::new();
    for (line, instr, args) in &instructions {
        if instr != "COPY" && instr != "ADD" {
            continue;
        }
        let words = copy_words(args);
        if words.iter().any(|w| w.starts_with("--from")) {
            continue;
        }
        let paths: Vec<&String> = words.iter().filter(|w| !w.starts_with("--")).collect();
        assert!(
            paths.len() >= 2,
            "{file}:{line}: {instr} {args}: needs a source and a destination"
        );
        for src in &paths[..paths.len() - 1] {
            let src = src.trim_start_matches("./").trim_end_matches('/');
            assert!(
                root().join(src).exists(),
                "{file}:{line}: {instr} {src}: no such path in the repository (the build context is the repository root)"
            );
            for pat in &ignore {
                let literal = !pat.starts_with('!') && !pat.contains(['*', '?', '[']);
                if literal && (src == pat || src.starts_with(&format!("{pat}/"))) {
                    panic!(
                        "{file}:{line}: {src} is excluded from the build context by deploy/Dockerfile.dockerignore ({pat})"
                    );
                }
            }
            copied.insert(src.to_string());
        }
    }
    // Every workspace crate's manifest (dependency layer) and sources (build).
    let manifest: toml::Table = read(&root().join("Cargo.toml")).parse().unwrap();
    let members: Vec<String> = manifest["workspace"]["members"]
        .as_array()
        .expect("[workspace] members")
        .iter()
        .filter_map(|m| m.as_str().map(str::to_string))
        .collect();
    let mut needed: Vec<String> = ["Cargo.toml", "Cargo.lock", "src"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    for m in members.iter().filter(|m| *m != ".") {
        needed.push(format!("{m}/Cargo.toml"));
        needed.push(format!("{m}/src"));
    }
    // The project files the binary reads at run time.
    needed.extend(["pipelines", "schemas", "sql"].map(String::from));
    for n in &needed {
        assert!(
            copied.contains(n),
            "{file} does not COPY {n} (copies {copied:?})"
        );
    }
    // A health check, a non-root user, the config pointing at the project files.
    assert!(
        instructions.iter().any(|(_, i, _)| i == "HEALTHCHECK"),
        "{file} has no HEALTHCHECK"
    );
    let user = instructions
        .iter()
        .rev()
        .find(|(_, i, _)| i == "USER")
        .unwrap_or_else(|| panic!("{file} sets no USER: the image would run as root"));
    let uid = user.2.split(':').next().unwrap_or_default();
    assert!(
        !matches!(uid, "root" | "0"),
        "{file}:{}: the image runs as root",
        user.0
    );
    let image = Config::load_with_env(Some(&root().join("deploy/shoplake.toml")), Vec::new())
        .expect("deploy/shoplake.toml loads");
    let dir = image
        .project
        .dir
        .expect("deploy/shoplake.toml sets [project] dir");
    for sub in ["pipelines", "schemas", "sql"] {
        let dest = format!("{}/{sub}", dir.display());
        assert!(
            instructions
                .iter()
                .any(|(_, i, a)| i == "COPY" && a.trim_end_matches('/').ends_with(&dest)),
            "{file} does not copy {sub}/ to {dest}, where deploy/shoplake.toml's [project] dir points"
        );
    }
    // The health check script it installs (run against live processes by
    // every_shoplake_command_line_parses_and_the_long_running_ones_start).
    let script = root().join("deploy/healthcheck.sh");
    assert!(script.is_file(), "deploy/healthcheck.sh is missing");
}

#[test]
fn alert_rules_and_the_operations_dashboard_use_only_metrics_shoplake_exports() {
    let exported = exported_metrics();
    for m in [
        "shoplake_jobs",
        "shoplake_jobs_finished_total",
        "shoplake_last_sync_timestamp_seconds",
        "shoplake_api_requests_total",
        "shoplake_serve_queries_total",
        "shoplake_serve_query_seconds_bucket",
    ] {
        assert!(
            exported.contains(m),
            "src/jobs/metrics.rs or src/serve/metrics.rs no longer has {m}: {exported:?}"
        );
    }
    let used = used_metrics();
    for (name, files) in &used {
        assert!(
            exported.contains(name),
            "{}: {name} is not a metric shoplake exports (src/**/metrics.rs have {exported:?})",
            files.join(", ")
        );
    }
    for m in exported.iter().filter(|m| !used.contains_key(*m)) {
        eprintln!(
            "note: {m} is exported but neither deploy/prometheus nor the operations dashboard uses it"
        );
    }
}

/// The command of a command line (after the global flags that may precede it).
fn command_of(args: &[String]) -> &str {
    let mut i = 0;
    while i < args.len() {
        let a = args[i].as_str();
        if GLOBAL_WITH_VALUE.contains(&a) {
            i += 2;
        } else if a.starts_with('-') {
            i += 1;
        } else {
            return a;
        }
    }
    ""
}

/// The commands `shoplake --help` lists.
fn binary_commands() -> BTreeSet<String> {
    let out = Command::new(env!("CARGO_BIN_EXE_shoplake"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success(), "shoplake --help fails");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

/// Sets `flag`'s value in `args` (replacing it, or appending the flag).
fn set_flag(args: &mut Vec<String>, flag: &str, value: &str) {
    if let Some(i) = args.iter().position(|a| a == flag) {
        if i + 1 < args.len() {
            args[i + 1] = value.to_string();
        } else {
            args.push(value.to_string());
        }
    } else if let Some(i) = args.iter().position(|a| a.starts_with(&format!("{flag}="))) {
        args[i] = format!("{flag}={value}");
    } else {
        args.push(flag.to_string());
        args.push(value.to_string());
    }
}

/// Removes `flag` and its value from `args`.
fn remove_flag(args: &mut Vec<String>, flag: &str) {
    if let Some(i) = args.iter().position(|a| a == flag) {
        args.drain(i..(i + 2).min(args.len()));
    }
    args.retain(|a| !a.starts_with(&format!("{flag}=")));
}

/// `shoplake --config <config> --data-dir <dir> ARGS` with none of this process's
/// SHOPLAKE_* variables, output into `<log>` (stderr) and `<log>.out`.
fn shoplake_cmd(dir: &Path, config: &Path, args: &[String], log: &Path) -> Command {
    let mut args = args.to_vec();
    for flag in ["--config", "--data-dir"] {
        remove_flag(&mut args, flag);
    }
    let mut c = Command::new(env!("CARGO_BIN_EXE_shoplake"));
    c.arg("--config")
        .arg(config)
        .arg("--data-dir")
        .arg(dir)
        .args(&args)
        .current_dir(dir);
    for (k, _) in std::env::vars() {
        if k.starts_with("SHOPLAKE_") {
            c.env_remove(k);
        }
    }
    c.env("SHOPLAKE_LOG", "info")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(log.with_extension("out")).unwrap())
        .stderr(std::fs::File::create(log).unwrap());
    c
}

/// The last lines of a log file.
fn tail(log: &Path) -> String {
    let t = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = t.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

/// What answers when a process is up (every check given must pass).
#[derive(Clone)]
struct Health {
    /// GET answers 200 "ok".
    http: Option<String>,
    /// A Flight SQL `select 1` answers.
    flight: Option<String>,
}

impl Health {
    fn http(url: String) -> Health {
        Health {
            http: Some(url),
            flight: None,
        }
    }
}

/// A process started from a deployment's command line; killed if the test fails first.
struct Running {
    what: String,
    command: String,
    child: Child,
    log: PathBuf,
    health: Health,
}

impl Drop for Running {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

async fn healthy(h: &Health) -> bool {
    if let Some(url) = &h.http {
        let ok = match reqwest::get(url).await {
            Ok(r) if r.status().is_success() => r.text().await.is_ok_and(|t| t.trim() == "ok"),
            _ => false,
        };
        if !ok {
            return false;
        }
    }
    if let Some(addr) = &h.flight {
        let Ok(ep) = tonic::transport::Endpoint::from_shared(format!("http://{addr}")) else {
            return false;
        };
        let Ok(ch) = ep.connect().await else {
            return false;
        };
        let mut c = arrow_flight::sql::client::FlightSqlServiceClient::new(ch);
        return flight_query(&mut c, "select 1")
            .await
            .is_ok_and(|b| rows(&b) == 1);
    }
    true
}

/// Starts `args` (from `place`) over the data dir `data` with `config`, its output in
/// `<data>/process-<n>.log`.
fn spawn_process(
    data: &Path,
    n: usize,
    place: &str,
    command: &str,
    args: &[String],
    config: &Path,
    health: Health,
) -> Running {
    let log = data.join(format!("process-{n}.log"));
    let what = format!("{place}: `shoplake {}`", args.join(" "));
    let child = shoplake_cmd(data, config, args, &log)
        .spawn()
        .unwrap_or_else(|e| panic!("{what}: cannot start: {e}"));
    Running {
        what,
        command: command.to_string(),
        child,
        log,
        health,
    }
}

/// Waits until `r` answers its health check; fails with its log if it exits or times out.
async fn wait_healthy(r: &mut Running) {
    let health = r.health.clone();
    let child = &mut r.child;
    let outcome = poll_for(180, async || {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(Err(status));
        }
        healthy(&health).await.then_some(Ok(()))
    })
    .await;
    match outcome {
        Some(Ok(())) => {}
        Some(Err(status)) => panic!(
            "{}: exited ({status}) before answering its health check:\n{}",
            r.what,
            tail(&r.log)
        ),
        None => panic!(
            "{}: no health answer within 180 s:\n{}",
            r.what,
            tail(&r.log)
        ),
    }
}

/// Runs deploy/healthcheck.sh (the image's HEALTHCHECK) with `env`; its exit status.
fn healthcheck_script(env: &[(&str, &str)]) -> std::process::ExitStatus {
    let mut c = Command::new("sh");
    c.arg(root().join("deploy/healthcheck.sh"))
        .env_remove("HEALTH_URL")
        .env_remove("HEALTH_TCP")
        // Loopback, never through a proxy this machine may set.
        .env("no_proxy", "127.0.0.1,localhost")
        .env("NO_PROXY", "127.0.0.1,localhost")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for (k, v) in env {
        c.env(k, v);
    }
    c.status().expect("run sh deploy/healthcheck.sh")
}

/// A shoplake command line with where it was first seen.
type CommandLine = (String, Vec<String>);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_shoplake_command_line_parses_and_the_long_running_ones_start() {
    let d = tokio::task::spawn_blocking(deploy_files).await.unwrap();
    let commands = binary_commands();
    let lines = distinct_command_lines(&d);

    // 1. Every command line parses.
    let runnable = command_lines_that_parse(&lines, &commands);

    // 2. The long-running ones run: the sandbox first (the others' API), shops authorized
    //    by the deployment's own `auth` command lines, then scheduler, workers and serve,
    //    each on its own loopback port over one temp data dir and the SQLite queue.
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let repo = root().display().to_string();
    let mut running: Vec<Running> = Vec::new();
    let empty = empty_config(data);
    let api = start_sandboxes(&runnable, data, &empty, &mut running).await;
    authorize_shops(&runnable, data, &repo, &api);
    // The queue's tables made once, before several processes open it at the same time.
    shoplake::jobs::Queue::open("sqlite", data).await.unwrap();
    start_long_running(&runnable, data, &repo, &api, &mut running).await;

    used_metrics_are_on_the_running_processes(&running).await;
    healthcheck_script_checks_the_running_processes(&running);

    // 3. SIGTERM stops each cleanly (exit 0, no panic): the sandbox last.
    stop_each_with_sigterm(&mut running).await;
}

/// The distinct command lines the deployment runs, each with where it was first seen;
/// they must include every command the deployment depends on.
fn distinct_command_lines(d: &Value) -> Vec<CommandLine> {
    let mut lines: Vec<CommandLine> = Vec::new();
    for p in list(d, "processes") {
        let args = str_list(&p["args"]);
        if !lines.iter().any(|(_, a)| *a == args) {
            lines.push((format!("{} ({})", text(p, "file"), text(p, "where")), args));
        }
    }
    for cmd in [
        "sandbox",
        "auth",
        "scheduler",
        "worker",
        "serve",
        "maintain",
    ] {
        assert!(
            lines.iter().any(|(_, a)| command_of(a) == cmd),
            "no compose or Kubernetes file runs `shoplake {cmd}`"
        );
    }
    lines
}

/// Every command line of `lines` parses (`--help`), unless its command is [`PENDING`]
/// and not among the binary's `commands` yet; those that parse.
fn command_lines_that_parse(
    lines: &[CommandLine],
    commands: &BTreeSet<String>,
) -> Vec<CommandLine> {
    let mut runnable = Vec::new();
    for (place, args) in lines {
        let cmd = command_of(args);
        if !commands.contains(cmd) {
            if let Some((_, why)) = PENDING.iter().find(|(c, _)| *c == cmd) {
                eprintln!(
                    "note: {place}: `shoplake {}` not checked: this binary has no `{cmd}` command yet ({why})",
                    args.join(" ")
                );
                continue;
            }
            panic!(
                "{place}: `shoplake {}`: the binary has no command {cmd:?} (it has {commands:?})",
                args.join(" ")
            );
        }
        let out = Command::new(env!("CARGO_BIN_EXE_shoplake"))
            .args(args)
            .arg("--help")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{place}: `shoplake {} --help` fails ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        runnable.push((place.clone(), args.clone()));
    }
    runnable
}

/// The shoplake.toml of the long-running processes: the project files in `repo`, the
/// API at `api`, `[jobs] http_addr` `http`.
fn config_with(repo: &str, api: &str, http: &str) -> String {
    format!(
        "[project]\ndir = {repo:?}\n[api]\nbase_url = \"{api}\"\n[jobs]\nhttp_addr = \"{http}\"\n"
    )
}

/// Starts the sandbox command lines of `runnable` into `running`, each on a loopback port
/// of its own with a small world, and waits until all of `running` answer; the first
/// sandbox's URL.
async fn start_sandboxes(
    runnable: &[CommandLine],
    data: &Path,
    empty: &Path,
    running: &mut Vec<Running>,
) -> String {
    let mut api = None;
    for (place, args) in runnable.iter().filter(|(_, a)| command_of(a) == "sandbox") {
        let port = pg::free_port();
        let mut a = args.clone();
        set_flag(&mut a, "--addr", &format!("127.0.0.1:{port}"));
        // A small world: a debug build generates slowly (the size flags parsed above).
        for (flag, v) in [("--orders", "300"), ("--days", "30")] {
            if a.iter().any(|x| x == flag) {
                set_flag(&mut a, flag, v);
            }
        }
        let url = format!("http://127.0.0.1:{port}");
        let n = running.len();
        running.push(spawn_process(
            data,
            n,
            place,
            "sandbox",
            &a,
            empty,
            Health::http(format!("{url}/healthz")),
        ));
        api.get_or_insert(url);
    }
    let api = api.expect("the deployment runs the sandbox");
    for r in running.iter_mut() {
        wait_healthy(r).await;
    }
    api
}

/// Authorizes shops against the sandbox at `api` with the `auth` command lines of
/// `runnable` (an `auth exchange` first, there must be one), over `data`.
fn authorize_shops(runnable: &[CommandLine], data: &Path, repo: &str, api: &str) {
    let base = data.join("shoplake.toml");
    std::fs::write(&base, config_with(repo, api, "")).unwrap();
    let mut auth: Vec<&CommandLine> = runnable
        .iter()
        .filter(|(_, a)| command_of(a) == "auth")
        .collect();
    auth.sort_by_key(|(_, a)| !a.iter().any(|x| x == "exchange"));
    assert!(
        auth.first()
            .is_some_and(|(_, a)| a.iter().any(|x| x == "exchange")),
        "no deployment file authorizes shops (`shoplake auth exchange`)"
    );
    for (i, (place, args)) in auth.iter().enumerate() {
        let log = data.join(format!("auth-{i}.log"));
        let status = shoplake_cmd(data, &base, args, &log).status().unwrap();
        assert!(
            status.success(),
            "{place}: `shoplake {}` against the sandbox fails ({status}):\n{}",
            args.join(" "),
            tail(&log)
        );
    }
}

/// Starts the scheduler, worker, serve and run command lines of `runnable` into
/// `running`, each with a config of its own (the API at `api`) on loopback ports, and
/// waits until all of `running` answer.
async fn start_long_running(
    runnable: &[CommandLine],
    data: &Path,
    repo: &str,
    api: &str,
    running: &mut Vec<Running>,
) {
    // `serve` may have an HTTP side of its own (`--http-addr`, /health and /metrics): give
    // each one a free port then, and check it too.
    let serve_help = Command::new(env!("CARGO_BIN_EXE_shoplake"))
        .args(["serve", "--help"])
        .output()
        .unwrap();
    let serve_has_http = String::from_utf8_lossy(&serve_help.stdout).contains("--http-addr");
    let mut long = Vec::new();
    for (place, args) in runnable {
        let cmd = command_of(args);
        if !matches!(cmd, "scheduler" | "worker" | "serve" | "run") {
            continue;
        }
        let addr = format!("127.0.0.1:{}", pg::free_port());
        let config = data.join(format!("config-{}.toml", long.len()));
        std::fs::write(&config, config_with(repo, api, &addr)).unwrap();
        let mut a = args.clone();
        remove_flag(&mut a, "--backend");
        let health = listen_on(cmd, &mut a, addr, serve_has_http);
        long.push(cmd);
        let n = running.len();
        running.push(spawn_process(data, n, place, cmd, &a, &config, health));
    }
    for cmd in ["scheduler", "worker", "serve"] {
        assert!(long.contains(&cmd), "no `shoplake {cmd}` ran");
    }
    for r in running.iter_mut() {
        wait_healthy(r).await;
    }
}

/// Sets the flags of `a` (a `cmd` command line) for it to listen on `addr` (and `serve`
/// on a free HTTP port of its own too, when `serve_has_http`); its health checks.
fn listen_on(cmd: &str, a: &mut Vec<String>, addr: String, serve_has_http: bool) -> Health {
    match cmd {
        "serve" => {
            set_flag(a, "--addr", &addr);
            let mut h = Health {
                http: None,
                flight: Some(addr),
            };
            if serve_has_http {
                let http = format!("127.0.0.1:{}", pg::free_port());
                set_flag(a, "--http-addr", &http);
                h.http = Some(format!("http://{http}/health"));
            }
            h
        }
        "worker" => {
            set_flag(a, "--http-addr", &addr);
            Health::http(format!("http://{addr}/health"))
        }
        _ => Health::http(format!("http://{addr}/health")),
    }
}

/// What Prometheus scrapes is there: every metric the rules and the dashboard use is on
/// the /metrics of the `running` workers and serves that export it.
async fn used_metrics_are_on_the_running_processes(running: &[Running]) {
    // Every worker metric (src/jobs/metrics.rs) the rules and the dashboard use is on a
    // worker's /metrics.
    let jobs_metrics = metric_tokens(&read(&root().join("src/jobs/metrics.rs")), true);
    let used = used_metrics();
    for r in running.iter().filter(|r| r.command == "worker") {
        let url = r.health.http.as_deref().expect("a worker's /health");
        let metrics = http_text(&url.replace("/health", "/metrics")).await;
        for name in used.keys().filter(|n| jobs_metrics.contains(*n)) {
            assert!(
                metrics.contains(&format!("# TYPE {name} ")),
                "{}: /metrics has no {name}:\n{metrics}",
                r.what
            );
        }
    }
    // …and every serve metric (src/serve/metrics.rs) they use is on serve's /metrics
    // ([serve] http_addr, given above as --http-addr), before any query ran.
    let serve_metrics = metric_tokens(&read(&root().join("src/serve/metrics.rs")), true);
    for r in running.iter().filter(|r| r.command == "serve") {
        let Some(url) = r.health.http.as_deref() else {
            continue;
        };
        let metrics = http_text(&url.replace("/health", "/metrics")).await;
        for name in used.keys().filter(|n| serve_metrics.contains(*n)) {
            // A sample line (`name{…} v`, `name v`), or the `# TYPE` line of a histogram
            // whose samples are `name_bucket`, `_sum` and `_count`.
            let exposed = metrics.contains(&format!("# TYPE {name} "))
                || metrics.lines().any(|l| {
                    l.strip_prefix(name.as_str())
                        .is_some_and(|rest| rest.starts_with([' ', '{']))
                });
            assert!(exposed, "{}: /metrics has no {name}:\n{metrics}", r.what);
        }
    }
}

/// The image's health check script against the `running` processes, and against a port
/// nothing listens on (it must fail then); skipped without curl, bash and timeout.
fn healthcheck_script_checks_the_running_processes(running: &[Running]) {
    let tools = Command::new("sh")
        .args([
            "-c",
            "command -v curl && command -v bash && command -v timeout",
        ])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if tools {
        for r in running {
            let checks = [
                r.health.http.as_deref().map(|u| ("HEALTH_URL", u)),
                r.health.flight.as_deref().map(|a| ("HEALTH_TCP", a)),
            ];
            for (var, value) in checks.into_iter().flatten() {
                let status = healthcheck_script(&[(var, value)]);
                assert!(
                    status.success(),
                    "{}: deploy/healthcheck.sh (the image's HEALTHCHECK) with {var}={value} fails: {status}",
                    r.what
                );
            }
        }
        let closed = format!("127.0.0.1:{}", pg::free_port());
        let url = format!("http://{closed}/health");
        assert!(
            !healthcheck_script(&[("HEALTH_URL", url.as_str())]).success(),
            "deploy/healthcheck.sh succeeds against {url}, where nothing listens"
        );
        assert!(
            !healthcheck_script(&[("HEALTH_TCP", closed.as_str())]).success(),
            "deploy/healthcheck.sh succeeds against {closed}, where nothing listens"
        );
    } else {
        eprintln!("note: deploy/healthcheck.sh not run: it needs sh, curl, bash and timeout");
    }
}

/// SIGTERM stops each of `running` cleanly (exit 0, no panic), the last started first.
async fn stop_each_with_sigterm(running: &mut [Running]) {
    running.reverse();
    for r in running.iter_mut() {
        unsafe { libc::kill(r.child.id() as i32, libc::SIGTERM) };
        let status = exited(&mut r.child, &format!("{} to stop", r.what), 90).await;
        let log = tail(&r.log);
        assert!(status.success(), "{}: SIGTERM → {status}:\n{log}", r.what);
        assert!(!log.contains("panicked"), "{}:\n{log}", r.what);
    }
}
