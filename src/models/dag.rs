//! Loading models, their config comments, dependencies and build order.

use crate::warehouse::{Layer, TableRef};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use datafusion::common::TableReference;
use datafusion::prelude::SessionContext;

use super::{ModelError, Result};

/// Model schemas (folders under `sql/`), in build order.
pub const MODEL_SCHEMAS: [&str; 2] = ["staging", "marts"];

/// A data test from a `-- tests:` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DataTest {
    /// No NULLs in the column.
    NotNull(String),
    /// No two rows share these columns.
    Unique(Vec<String>),
    /// Every non-null value is one of these.
    AcceptedValues(String, Vec<String>),
    /// Every non-null value exists in `table.column` (`schema.table.column`).
    Relationships(String, String, String),
    /// A boolean SQL expression true on every row.
    Expression(String),
}

impl std::fmt::Display for DataTest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DataTest::NotNull(c) => write!(f, "not_null({c})"),
            DataTest::Unique(c) => write!(f, "unique({})", c.join(", ")),
            DataTest::AcceptedValues(c, v) => write!(f, "accepted_values({c}, [{}])", v.join(", ")),
            DataTest::Relationships(c, t, tc) => write!(f, "relationships({c}, {t}.{tc})"),
            DataTest::Expression(e) => write!(f, "expression({e})"),
        }
    }
}

/// Materialization.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Materialized {
    /// Rebuilt in full on every build (one Delta overwrite commit).
    #[default]
    Table,
    /// Only the windows (`incremental_by`) whose input rows changed since the last build
    /// are rebuilt; see [`super::incremental`].
    Incremental,
}

impl std::fmt::Display for Materialized {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Materialized::Table => "table",
            Materialized::Incremental => "incremental",
        })
    }
}

/// The config comment block.
#[derive(Debug, Clone, Default)]
pub struct ModelConfig {
    /// Materialization.
    pub materialized: Materialized,
    /// Partition columns of the Delta table.
    pub partition_by: Vec<String>,
    /// Key of a row (documented, and tested as unique when given).
    pub unique_key: Vec<String>,
    /// Window columns of an incremental model (a prefix-free subset of `unique_key`):
    /// a build replaces whole windows.
    pub incremental_by: Vec<String>,
    /// Data tests.
    pub tests: Vec<DataTest>,
}

/// One model.
#[derive(Debug, Clone)]
pub struct Model {
    /// Schema (`staging` / `marts`).
    pub schema: String,
    /// Table name (file stem).
    pub name: String,
    /// File.
    pub path: PathBuf,
    /// The whole file (comments included, so parser line numbers match the file).
    pub sql: String,
    /// Config.
    pub config: ModelConfig,
    /// Referenced tables as `schema.table`.
    pub refs: BTreeSet<String>,
    /// Digest of this model's SQL, the SQL of every model upstream of it and the seeds any
    /// of them read: an incremental model's build state is kept under it, so editing an
    /// upstream model (or a seed) rebuilds it in full rather than leaving old numbers.
    pub lineage: String,
}

impl Model {
    /// `schema.name`.
    pub fn qualified(&self) -> String {
        format!("{}.{}", self.schema, self.name)
    }

    /// The table it builds (its folder under `sql/` is `staging` or `marts`, checked at
    /// load).
    pub fn table_ref(&self) -> TableRef {
        let layer = if self.schema == "staging" {
            Layer::Staging
        } else {
            Layer::Marts
        };
        TableRef::new(layer, &self.name)
    }

    /// The file as shown in errors.
    pub fn file(&self) -> String {
        self.path.display().to_string()
    }
}

fn split_args(s: &str) -> Vec<String> {
    // Splits on commas outside brackets and quotes.
    let (mut out, mut cur, mut depth, mut quote) = (Vec::new(), String::new(), 0i32, false);
    for ch in s.chars() {
        match ch {
            '\'' => {
                quote = !quote;
                cur.push(ch);
            }
            '[' | '(' if !quote => {
                depth += 1;
                cur.push(ch);
            }
            ']' | ')' if !quote => {
                depth -= 1;
                cur.push(ch);
            }
            ',' if depth == 0 && !quote => {
                out.push(cur.trim().to_string());
                cur.clear();
            }
            _ => cur.push(ch),
        }
    }
    if !cur.trim().is_empty() {
        out.push(cur.trim().to_string());
    }
    out
}

fn parse_test(t: &str) -> std::result::Result<DataTest, String> {
    let (name, rest) = t
        .split_once('(')
        .ok_or_else(|| format!("`{t}`: expected name(args)"))?;
    let args = rest
        .strip_suffix(')')
        .ok_or_else(|| format!("`{t}`: missing `)`"))?;
    let a = split_args(args);
    let name = name.trim();
    match (name, a.len()) {
        ("not_null", 1) => Ok(DataTest::NotNull(a[0].clone())),
        ("unique", n) if n >= 1 => Ok(DataTest::Unique(a)),
        ("accepted_values", 2) => {
            let list = a[1].trim().trim_start_matches('[').trim_end_matches(']');
            let vals = split_args(list)
                .into_iter()
                .map(|v| v.trim().trim_matches('\'').to_string())
                .collect();
            Ok(DataTest::AcceptedValues(a[0].clone(), vals))
        }
        ("relationships", 2) => {
            let (table, col) = a[1]
                .rsplit_once('.')
                .ok_or_else(|| format!("`{t}`: expected relationships(col, schema.table.col)"))?;
            Ok(DataTest::Relationships(
                a[0].clone(),
                table.to_string(),
                col.to_string(),
            ))
        }
        ("expression", _) => Ok(DataTest::Expression(args.trim().to_string())),
        _ => Err(format!(
            "`{t}`: unknown test; use not_null(c), unique(c, …), accepted_values(c, ['a']), relationships(c, schema.table.c) or expression(sql)"
        )),
    }
}

/// Parses the leading comment block.
pub fn parse_config(sql: &str, file: &str) -> Result<ModelConfig> {
    let mut cfg = ModelConfig::default();
    let mut in_tests = false;
    for (i, line) in sql.lines().enumerate() {
        let Some(c) = line.trim_start().strip_prefix("--") else {
            if line.trim().is_empty() {
                continue;
            }
            break;
        };
        let c = c.trim();
        let err = |message: String| ModelError::Sql {
            file: file.to_string(),
            line: i + 1,
            message,
        };
        if let Some(item) = c.strip_prefix("- ").filter(|_| in_tests) {
            cfg.tests.push(parse_test(item.trim()).map_err(err)?);
            continue;
        }
        in_tests = false;
        let Some((key, value)) = c.split_once(':') else {
            continue;
        };
        let value = value.trim();
        let list = || -> Vec<String> {
            value
                .split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect()
        };
        match key.trim() {
            "materialized" => {
                cfg.materialized = match value {
                    "table" => Materialized::Table,
                    "incremental" => Materialized::Incremental,
                    other => {
                        return Err(err(format!(
                            "materialized: `{other}` is not supported (use `table` or `incremental`)"
                        )));
                    }
                }
            }
            "partition_by" => cfg.partition_by = list(),
            "unique_key" => cfg.unique_key = list(),
            "incremental_by" => cfg.incremental_by = list(),
            "tests" => {
                in_tests = true;
                for t in split_args(value) {
                    cfg.tests.push(parse_test(&t).map_err(err)?);
                }
            }
            _ => {}
        }
    }
    let config_err = |message: String| ModelError::Config {
        file: file.to_string(),
        message,
    };
    match cfg.materialized {
        Materialized::Incremental if cfg.unique_key.is_empty() || cfg.incremental_by.is_empty() => {
            return Err(config_err(
                "materialized: incremental needs `-- unique_key: …` and `-- incremental_by: …` (the window columns a build replaces, e.g. shop_id, order_date)".into(),
            ));
        }
        Materialized::Incremental => {
            if let Some(c) = cfg
                .incremental_by
                .iter()
                .find(|c| !cfg.unique_key.contains(c))
            {
                return Err(config_err(format!(
                    "incremental_by: `{c}` is not in unique_key ({}): a window must hold whole rows",
                    cfg.unique_key.join(", ")
                )));
            }
        }
        Materialized::Table if !cfg.incremental_by.is_empty() => {
            return Err(config_err(
                "incremental_by is only for `materialized: incremental`".into(),
            ));
        }
        Materialized::Table => {}
    }
    if !cfg.unique_key.is_empty()
        && !cfg
            .tests
            .contains(&DataTest::Unique(cfg.unique_key.clone()))
    {
        cfg.tests.push(DataTest::Unique(cfg.unique_key.clone()));
    }
    Ok(cfg)
}

/// 1-based line of the first occurrence of `needle` outside the header, else 1.
pub fn line_of(sql: &str, needle: &str) -> usize {
    let needle = needle.to_lowercase();
    sql.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim_start().starts_with("--"))
        .find(|(_, l)| l.to_lowercase().contains(&needle))
        .map(|(i, _)| i + 1)
        .unwrap_or(1)
}

/// Maps a DataFusion error to the model's file and line.
pub fn sql_error(model_file: &str, sql: &str, message: String) -> ModelError {
    // Parser errors carry "Line: N, Column: M".
    let line = message
        .split("Line: ")
        .nth(1)
        .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())
        .or_else(|| {
            // "No field named x." (unquoted when the name was not quoted in the SQL).
            let name: String = message
                .split("No field named ")
                .nth(1)?
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == '.')
                .collect();
            let name = name.trim_end_matches('.');
            let name = name.rsplit('.').next().unwrap_or(name);
            (!name.is_empty()).then(|| line_of(sql, name))
        })
        .or_else(|| {
            // Planner errors quote the unknown name: find it in the file.
            let quoted = message
                .split(['\'', '"', '`'])
                .nth(1)
                .map(|q| q.rsplit('.').next().unwrap_or(q).to_string())?;
            (!quoted.is_empty()).then(|| line_of(sql, &quoted))
        })
        .unwrap_or(1);
    ModelError::Sql {
        file: model_file.to_string(),
        line,
        message,
    }
}

/// All models of a project, in build order.
#[derive(Debug, Clone)]
pub struct Project {
    /// Models, topologically sorted (dependencies first).
    pub models: Vec<Model>,
    /// Custom SQL tests (`sql/tests/*.sql`).
    pub tests: Vec<SqlTest>,
}

/// A custom data test: a query under `sql/tests/` that returns the rows that are wrong
/// (none when the test passes).
#[derive(Debug, Clone)]
pub struct SqlTest {
    /// File stem.
    pub name: String,
    /// File.
    pub path: PathBuf,
    /// The query (with its comments, so parser lines match the file).
    pub sql: String,
    /// Tables it reads (`schema.table`).
    pub refs: BTreeSet<String>,
    /// First line of the header comment.
    pub doc: String,
}

/// The first comment line of a file's header (what the model or test is).
pub fn header_doc(sql: &str) -> String {
    sql.lines()
        .map_while(|l| l.trim_start().strip_prefix("--"))
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or_default()
        .to_string()
}

/// Tables a query reads, as `schema.table` (CTE names excluded).
fn references(ctx: &SessionContext, sql: &str, file: &str) -> Result<BTreeSet<String>> {
    let state = ctx.state();
    let stmt = state
        .sql_to_statement(sql, &datafusion::config::Dialect::Generic)
        .map_err(|e| sql_error(file, sql, e.to_string()))?;
    Ok(state
        .resolve_table_references(&stmt)
        .map_err(|e| sql_error(file, sql, e.to_string()))?
        .iter()
        .filter_map(normalize)
        .collect())
}

pub(crate) fn normalize(r: &TableReference) -> Option<String> {
    match r {
        TableReference::Bare { table } => Some(format!("marts.{table}")),
        TableReference::Partial { schema, table } => Some(format!("{schema}.{table}")),
        TableReference::Full { schema, table, .. } => Some(format!("{schema}.{table}")),
    }
}

/// A `.sql` file's name as errors show it, and its text.
fn read_sql(path: &Path) -> Result<(String, String)> {
    let file = path.display().to_string();
    match std::fs::read_to_string(path) {
        Ok(sql) => Ok((file, sql)),
        Err(e) => Err(ModelError::Config {
            file,
            message: e.to_string(),
        }),
    }
}

/// A file's stem: the name of its model or test.
fn stem(path: &Path) -> String {
    path.file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or_default()
        .to_string()
}

impl Model {
    /// The model in `path`, of `schema`, with its config and references (its lineage is
    /// filled once all models are sorted).
    fn load(schema: &str, path: PathBuf, ctx: &SessionContext) -> Result<Model> {
        let (file, sql) = read_sql(&path)?;
        let config = parse_config(&sql, &file)?;
        let refs = references(ctx, &sql, &file)?;
        Ok(Model {
            schema: schema.to_string(),
            name: stem(&path),
            path,
            sql,
            config,
            refs,
            lineage: String::new(),
        })
    }
}

impl SqlTest {
    /// The test in `path`; it may read raw tables, seeds and `models`.
    fn load(path: PathBuf, ctx: &SessionContext, models: &[Model]) -> Result<SqlTest> {
        let (file, sql) = read_sql(&path)?;
        let refs = references(ctx, &sql, &file)?;
        if let Some(r) = refs.iter().find(|r| {
            !r.starts_with("raw.")
                && !r.starts_with("seeds.")
                && !models.iter().any(|m| &m.qualified() == *r)
        }) {
            return Err(ModelError::Sql {
                file,
                line: line_of(&sql, r.rsplit('.').next().unwrap_or(r)),
                message: format!("test reads {r}, which is not a model, raw table or seed"),
            });
        }
        let doc = header_doc(&sql);
        Ok(SqlTest {
            name: stem(&path),
            path,
            sql,
            refs,
            doc,
        })
    }
}

impl Project {
    /// Loads `sql_dir/{staging,marts}/*.sql`, resolves references and sorts.
    pub fn load(sql_dir: &Path, ctx: &SessionContext) -> Result<Project> {
        let mut models = Vec::new();
        for schema in MODEL_SCHEMAS {
            // A project may have only one of staging/ and marts/.
            let Ok(paths) = crate::files::with_extension(&sql_dir.join(schema), "sql") else {
                continue;
            };
            for path in paths {
                models.push(Model::load(schema, path, ctx)?);
            }
        }
        let mut models = toposort(models)?;
        lineage(&mut models, &sql_dir.join("seeds"));
        let mut tests = Vec::new();
        if let Ok(paths) = crate::files::with_extension(&sql_dir.join("tests"), "sql") {
            for path in paths {
                tests.push(SqlTest::load(path, ctx, &models)?);
            }
        }
        Ok(Project { models, tests })
    }

    /// Models in build layers: every model's inputs are in earlier layers.
    pub fn layer_of(&self) -> HashMap<String, usize> {
        let mut layer: HashMap<String, usize> = HashMap::new();
        for m in &self.models {
            let l = m
                .refs
                .iter()
                .filter_map(|r| layer.get(r).map(|l| l + 1))
                .max()
                .unwrap_or(0);
            layer.insert(m.qualified(), l);
        }
        layer
    }

    /// Models that read `qualified` directly.
    pub fn users_of(&self, qualified: &str) -> Vec<&Model> {
        self.models
            .iter()
            .filter(|m| m.refs.contains(qualified))
            .collect()
    }

    /// A model by name (`gmv_daily` or `marts.gmv_daily`).
    pub fn find(&self, name: &str) -> Option<&Model> {
        self.models
            .iter()
            .find(|m| m.name == name || m.qualified() == name)
    }

    /// Models selected by `--select`: `name` (that model), `name+` (and everything
    /// downstream), `+name` (and everything upstream); comma-separated; empty = all.
    pub fn select(&self, select: Option<&str>) -> Result<Vec<&Model>> {
        let Some(select) = select.filter(|s| !s.trim().is_empty()) else {
            return Ok(self.models.iter().collect());
        };
        let mut picked: BTreeSet<String> = BTreeSet::new();
        for part in select.split(',').map(str::trim) {
            let (up, rest) = match part.strip_prefix('+') {
                Some(r) => (true, r),
                None => (false, part),
            };
            let (down, name) = match rest.strip_suffix('+') {
                Some(r) => (true, r),
                None => (false, rest),
            };
            let m = self.find(name).ok_or_else(|| ModelError::Config {
                file: "sql/".into(),
                message: format!(
                    "--select: no model `{name}`; models: {}",
                    self.models
                        .iter()
                        .map(|m| m.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            })?;
            picked.insert(m.qualified());
            if down {
                // Models are sorted: one forward pass collects every descendant.
                let mut set = BTreeSet::from([m.qualified()]);
                for x in &self.models {
                    if x.refs.iter().any(|r| set.contains(r)) {
                        set.insert(x.qualified());
                    }
                }
                picked.extend(set);
            }
            if up {
                let mut set = BTreeSet::from([m.qualified()]);
                for x in self.models.iter().rev() {
                    if set.contains(&x.qualified()) {
                        set.extend(x.refs.iter().cloned());
                    }
                }
                picked.extend(set);
            }
        }
        Ok(self
            .models
            .iter()
            .filter(|m| picked.contains(&m.qualified()))
            .collect())
    }
}

/// Fills each model's [`Model::lineage`] (models sorted dependencies first).
fn lineage(models: &mut [Model], seeds: &Path) {
    use sha2::{Digest, Sha256};
    let mut done: HashMap<String, String> = HashMap::new();
    for m in models.iter_mut() {
        let mut h = Sha256::new();
        h.update(m.sql.as_bytes());
        for r in &m.refs {
            h.update([0]);
            h.update(r.as_bytes());
            if let Some(up) = done.get(r) {
                h.update(up.as_bytes());
            } else if let Some(seed) = r.strip_prefix("seeds.") {
                // A seed that cannot be read is caught when the session loads it.
                h.update(std::fs::read(seeds.join(format!("{seed}.csv"))).unwrap_or_default());
            }
        }
        let hex: String = h.finalize()[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        m.lineage = hex.clone();
        done.insert(m.qualified(), hex);
    }
}

fn toposort(models: Vec<Model>) -> Result<Vec<Model>> {
    let names: HashMap<String, usize> = models
        .iter()
        .enumerate()
        .map(|(i, m)| (m.qualified(), i))
        .collect();
    let mut indeg = vec![0usize; models.len()];
    let mut users: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for (i, m) in models.iter().enumerate() {
        for r in &m.refs {
            if let Some(&j) = names.get(r) {
                if j == i {
                    return Err(ModelError::Config {
                        file: m.file(),
                        message: format!("model {} reads itself", m.qualified()),
                    });
                }
                indeg[i] += 1;
                users.entry(j).or_default().push(i);
            } else if r.starts_with("staging.") || r.starts_with("marts.") {
                return Err(ModelError::Sql {
                    file: m.file(),
                    line: line_of(&m.sql, r.rsplit('.').next().unwrap_or(r)),
                    message: format!(
                        "references {r}, which is not a model (no sql/{}.sql)",
                        r.replace('.', "/")
                    ),
                });
            }
        }
    }
    let mut ready: Vec<usize> = (0..models.len()).filter(|&i| indeg[i] == 0).collect();
    ready.reverse();
    let mut order = Vec::with_capacity(models.len());
    while let Some(i) = ready.pop() {
        order.push(i);
        let mut next = Vec::new();
        for &u in users.get(&i).into_iter().flatten() {
            indeg[u] -= 1;
            if indeg[u] == 0 {
                next.push(u);
            }
        }
        next.sort_unstable_by(|a, b| b.cmp(a));
        ready.extend(next);
    }
    if order.len() != models.len() {
        let stuck: Vec<String> = (0..models.len())
            .filter(|i| !order.contains(i))
            .map(|i| models[i].qualified())
            .collect();
        return Err(ModelError::Config {
            file: "sql/".into(),
            message: format!("dependency cycle among {}", stuck.join(", ")),
        });
    }
    let mut slots: Vec<Option<Model>> = models.into_iter().map(Some).collect();
    Ok(order
        .into_iter()
        .map(|i| slots[i].take().expect("each once"))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_comments_parse() {
        let sql = "-- grain: one row per x\n-- materialized: table\n-- partition_by: shop_id\n-- unique_key: shop_id, d\n-- tests: not_null(a), accepted_values(s, ['A', 'B'])\n-- tests:\n--   - relationships(sku_id, staging.stg_skus.sku_id)\n--   - expression(net <= gross)\nselect 1";
        let c = parse_config(sql, "f.sql").unwrap();
        assert_eq!(c.partition_by, vec!["shop_id"]);
        assert_eq!(
            c.tests,
            vec![
                DataTest::NotNull("a".into()),
                DataTest::AcceptedValues("s".into(), vec!["A".into(), "B".into()]),
                DataTest::Relationships(
                    "sku_id".into(),
                    "staging.stg_skus".into(),
                    "sku_id".into()
                ),
                DataTest::Expression("net <= gross".into()),
                DataTest::Unique(vec!["shop_id".into(), "d".into()]),
            ]
        );
        let bad = parse_config("-- tests: nope(x)\nselect 1", "m.sql").unwrap_err();
        assert!(bad.to_string().starts_with("m.sql:1:"), "{bad}");
    }

    #[test]
    fn errors_point_at_the_line() {
        let sql = "-- h\nselect a,\n  b\nfrom staging.nope\n";
        let e = sql_error(
            "m.sql",
            sql,
            "table 'shoplake.staging.nope' not found".into(),
        );
        assert_eq!(
            e.to_string(),
            "m.sql:4: table 'shoplake.staging.nope' not found"
        );
        let e = sql_error(
            "m.sql",
            sql,
            "sql parser error: Expected: end of statement, found: x at Line: 3, Column: 4".into(),
        );
        assert!(e.to_string().starts_with("m.sql:3:"));
        let e = sql_error(
            "m.sql",
            "-- h\nselect\n  nope\nfrom t\n",
            "Schema error: No field named nope. Valid fields are t.a.".into(),
        );
        assert!(e.to_string().starts_with("m.sql:3:"), "{e}");
    }
}
