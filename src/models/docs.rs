//! `shoplake docs`: a Markdown catalog of every table — raw tables with their stream and
//! column docs from `schemas/`, models with their header (grain, formulas) and column docs
//! from the `columns:` block — with types from the lake and lineage both ways.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use datafusion::prelude::SessionContext;

use super::dag::{Model, Project, header_doc};
use crate::warehouse::columns::SYSTEM_COLUMNS;

/// Column docs of a model: the header's `columns:` (or `Definitions …:`) block, where an entry is
/// `--   name, other_name    what they are` and deeper-indented lines continue it.
pub fn column_docs(sql: &str) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    let mut current: Vec<String> = Vec::new();
    let mut in_columns = false;
    for line in sql.lines() {
        let Some(c) = line.trim_start().strip_prefix("--") else {
            break;
        };
        let t = c.trim().to_lowercase();
        if t == "columns:" || (t.starts_with("definitions") && t.ends_with(':')) {
            in_columns = true;
            continue;
        }
        if !in_columns {
            continue;
        }
        let indent = c.len() - c.trim_start().len();
        let text = c.trim();
        if text.is_empty() || indent < 2 {
            in_columns = indent >= 2 || text.is_empty();
            current.clear();
            continue;
        }
        if indent <= 4 {
            // A new entry: names, a gap of two or more spaces, the description.
            let (names, doc) = match text.find("  ") {
                Some(i) => (&text[..i], text[i..].trim()),
                None => (text, ""),
            };
            current = names
                .split(',')
                .map(|n| n.trim().to_string())
                .filter(|n| !n.is_empty() && !n.contains(' '))
                .collect();
            for n in &current {
                out.insert(n.clone(), doc.to_string());
            }
        } else {
            for n in &current {
                let d = out.entry(n.clone()).or_default();
                if !d.is_empty() {
                    d.push(' ');
                }
                d.push_str(text);
            }
        }
    }
    out
}

/// The header comment of a model, without its config lines and column block.
fn model_header(sql: &str) -> String {
    let mut out = Vec::new();
    for line in sql.lines() {
        let Some(c) = line.trim_start().strip_prefix("--") else {
            break;
        };
        let t = c.trim_start();
        if t.starts_with("columns:") {
            break;
        }
        if [
            "materialized:",
            "unique_key:",
            "incremental_by:",
            "partition_by:",
            "tests:",
            "- ",
        ]
        .iter()
        .any(|k| t.starts_with(k))
        {
            continue;
        }
        out.push(c.strip_prefix(' ').unwrap_or(c).to_string());
    }
    while out.last().is_some_and(|l| l.trim().is_empty()) {
        out.pop();
    }
    out.join("\n")
}

fn escape(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// Columns `(name, type)` of a table as the session sees it, if it exists.
async fn columns(ctx: &SessionContext, table: &str) -> Option<Vec<(String, String)>> {
    let t = ctx.table(table).await.ok()?;
    Some(
        t.schema()
            .fields()
            .iter()
            .map(|f| (f.name().clone(), f.data_type().to_string()))
            .collect(),
    )
}

/// `items` joined by commas, or `—` when there are none.
fn list_or_dash(items: &[String]) -> String {
    if items.is_empty() {
        "—".into()
    } else {
        items.join(", ")
    }
}

/// Table → the models that read it.
type Readers = BTreeMap<String, BTreeSet<String>>;

/// Lineage: who reads what.
fn readers(project: &Project) -> Readers {
    let mut readers = Readers::new();
    for m in &project.models {
        for r in &m.refs {
            readers.entry(r.clone()).or_default().insert(m.qualified());
        }
    }
    readers
}

/// The models of `table`'s "read by" line.
fn read_by(readers: &Readers, table: &str) -> String {
    let used: Vec<String> = readers.get(table).into_iter().flatten().cloned().collect();
    list_or_dash(&used)
}

/// Marts first, then the other models: the order of the contents and the sections.
fn marts_first(project: &Project) -> impl Iterator<Item = &Model> {
    let marts = project.models.iter().filter(|m| m.schema == "marts");
    marts.chain(project.models.iter().filter(|m| m.schema != "marts"))
}

/// A raw table as the catalog shows it (the app describes them from pipelines/ and
/// schemas/, so models need not know how extraction is declared).
#[derive(Debug, Clone, Default)]
pub struct RawTable {
    /// Table name (`raw.<name>`).
    pub name: String,
    /// What it holds.
    pub doc: String,
    /// Merge key.
    pub key: Vec<String>,
    /// One line per stream landing it: `` `name` (category pipeline, kind): `GET /path` — doc ``.
    pub streams: Vec<String>,
    /// Declared columns and their docs (system columns are added here).
    pub columns: Vec<(String, String)>,
}

/// The catalog as Markdown.
pub async fn catalog(ctx: &SessionContext, project: &Project, raw: &[RawTable]) -> String {
    let readers = readers(project);
    let mut md = String::new();
    write_overview(&mut md, project, raw);
    for m in marts_first(project) {
        write_model(&mut md, ctx, m, &readers).await;
    }
    for t in raw {
        write_raw_table(&mut md, ctx, t, &readers).await;
    }
    md
}

/// The title, the lineage graph and the contents.
fn write_overview(md: &mut String, project: &Project, raw: &[RawTable]) {
    let _ = writeln!(md, "# shoplake catalog\n");
    let _ = writeln!(
        md,
        "Generated by `shoplake docs` from pipelines/, schemas/ and sql/. Tables are addressed as `raw.*`, `staging.*`, `marts.*` (catalog `shoplake`). Types are the lake's (\"not built\" when the table does not exist yet).\n"
    );
    let _ = writeln!(md, "## Lineage\n\n```mermaid\nflowchart LR");
    for m in &project.models {
        for r in &m.refs {
            let _ = writeln!(md, "  {r} --> {}", m.qualified());
        }
    }
    let _ = writeln!(md, "```\n");
    let _ = writeln!(md, "## Contents\n");
    for m in marts_first(project) {
        let _ = writeln!(
            md,
            "- [{}](#{}) — {}",
            m.qualified(),
            m.qualified().replace('.', ""),
            escape(&header_doc(&m.sql))
        );
    }
    for t in raw {
        let _ = writeln!(md, "- [raw.{0}](#raw{0})", t.name);
    }
    let _ = writeln!(md);
}

/// A model's section: header, config, lineage, tests and columns.
async fn write_model(md: &mut String, ctx: &SessionContext, m: &Model, readers: &Readers) {
    let q = m.qualified();
    let _ = writeln!(md, "## {q}\n");
    let _ = writeln!(md, "```text\n{}\n```\n", model_header(&m.sql));
    let _ = writeln!(
        md,
        "- file: `{}`\n- materialized: {}{}\n- key: {}",
        m.path
            .file_name()
            .map(|f| f.to_string_lossy().to_string())
            .unwrap_or_default(),
        m.config.materialized,
        if m.config.incremental_by.is_empty() {
            String::new()
        } else {
            format!(" by {}", m.config.incremental_by.join(", "))
        },
        list_or_dash(&m.config.unique_key)
    );
    let _ = writeln!(
        md,
        "- reads: {}",
        m.refs.iter().cloned().collect::<Vec<_>>().join(", ")
    );
    let _ = writeln!(md, "- read by: {}", read_by(readers, &q));
    let tests: Vec<String> = m.config.tests.iter().map(|t| format!("`{t}`")).collect();
    let _ = writeln!(md, "- tests: {}\n", list_or_dash(&tests));
    let docs = column_docs(&m.sql);
    match columns(ctx, &q).await {
        Some(cols) => {
            let _ = writeln!(md, "| column | type | meaning |\n|---|---|---|");
            for (c, ty) in cols {
                let d = docs.get(&c).cloned().unwrap_or_default();
                let _ = writeln!(md, "| {c} | {ty} | {} |", escape(&d));
            }
        }
        None => {
            let _ = writeln!(md, "not built\n\n| column | meaning |\n|---|---|");
            for (c, d) in &docs {
                let _ = writeln!(md, "| {c} | {} |", escape(d));
            }
        }
    }
    let _ = writeln!(md);
}

/// A raw table's section: its streams, key, readers and columns.
async fn write_raw_table(md: &mut String, ctx: &SessionContext, t: &RawTable, readers: &Readers) {
    let q = format!("raw.{}", t.name);
    let _ = writeln!(md, "## {q}\n\n{}\n", t.doc);
    for st in &t.streams {
        let _ = writeln!(md, "- stream: {}", escape(st));
    }
    let _ = writeln!(md, "- key: {}", t.key.join(", "));
    let _ = writeln!(md, "- read by: {}\n", read_by(readers, &q));
    let lake = columns(ctx, &q).await;
    let _ = writeln!(md, "| column | type | meaning |\n|---|---|---|");
    let types: BTreeMap<String, String> = lake.clone().unwrap_or_default().into_iter().collect();
    let mut docs = t.columns.clone();
    docs.extend(
        SYSTEM_COLUMNS
            .iter()
            .map(|(n, d)| (n.to_string(), d.to_string())),
    );
    for (c, d) in docs {
        let ty = types.get(&c).cloned().unwrap_or_else(|| {
            if lake.is_some() {
                "—".into()
            } else {
                "not built".into()
            }
        });
        let _ = writeln!(md, "| {c} | {ty} | {} |", escape(&d));
    }
    let _ = writeln!(md);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn column_blocks_parse() {
        let sql = "-- marts.x: a mart\n-- materialized: table\n-- columns:\n--   shop_id, currency    key; amounts in this currency\n--   aov                  net / orders;\n--                        null without orders\n--\nselect 1";
        let d = column_docs(sql);
        assert_eq!(d["shop_id"], "key; amounts in this currency");
        assert_eq!(d["currency"], "key; amounts in this currency");
        assert_eq!(d["aov"], "net / orders; null without orders");
        assert_eq!(model_header(sql), "marts.x: a mart");
    }
}
