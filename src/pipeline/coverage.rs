//! How much of the API the pipelines cover. `pipelines/catalog.tsv` lists the read
//! endpoints of every category (copied from the agreed catalog, shared/tiktok-api/
//! endpoints.tsv); each is either extracted by a stream (same method and path), excluded
//! by an `[[not_extracted]]` entry with a reason, or missing. `shoplake pipelines
//! --coverage` prints it per category.

use std::collections::BTreeMap;
use std::path::Path;

use super::{PipelineError, Pipelines};

/// One catalog endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// Category, e.g. `Orders`, `Affiliate Seller`.
    pub category: String,
    /// Operation name, e.g. `GetOrderList`.
    pub name: String,
    /// `GET` or `POST`.
    pub method: String,
    /// Path template with version, e.g. `/order/202309/orders/search`.
    pub path: String,
}

/// What the pipelines do with an endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Coverage {
    /// Extracted by this stream.
    Extracted(String),
    /// Deliberately not extracted, with the reason.
    Excluded(String),
    /// Not handled yet.
    Missing,
}

/// Reads a catalog TSV (header `category name method path …`).
pub fn load_catalog(file: &Path) -> Result<Vec<Endpoint>, PipelineError> {
    let name = file.display().to_string();
    let text = std::fs::read_to_string(file).map_err(|e| PipelineError::Spec {
        file: name.clone(),
        message: e.to_string(),
    })?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate().skip(1) {
        if line.trim().is_empty() {
            continue;
        }
        let f: Vec<&str> = line.split('\t').collect();
        let [category, op, method, path, ..] = f[..] else {
            return Err(PipelineError::Spec {
                file: name.clone(),
                message: format!("line {}: expected category, name, method, path", i + 1),
            });
        };
        out.push(Endpoint {
            category: category.to_string(),
            name: op.to_string(),
            method: method.to_string(),
            path: path.to_string(),
        });
    }
    Ok(out)
}

/// A path with `{…}` parameter names erased, so `{id}` and `{order_id}` compare equal.
pub fn path_shape(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    let mut in_param = false;
    for c in path.chars() {
        match c {
            '{' => {
                in_param = true;
                out.push('{');
            }
            '}' => {
                in_param = false;
                out.push('}');
            }
            _ if in_param => {}
            _ => out.push(c),
        }
    }
    out
}

/// Coverage of every catalog endpoint.
pub fn coverage(catalog: &[Endpoint], p: &Pipelines) -> Vec<(Endpoint, Coverage)> {
    catalog
        .iter()
        .map(|e| {
            let shape = path_shape(&e.path);
            let c = if let Some(s) = p
                .streams
                .iter()
                .find(|s| s.method.as_str() == e.method && path_shape(&s.path) == shape)
            {
                Coverage::Extracted(s.name.clone())
            } else if let Some(n) = p
                .not_extracted
                .iter()
                .find(|n| path_shape(&n.path) == shape)
            {
                Coverage::Excluded(n.reason.clone())
            } else {
                Coverage::Missing
            };
            (e.clone(), c)
        })
        .collect()
}

/// Per category: (extracted, excluded, missing).
pub fn summary(rows: &[(Endpoint, Coverage)]) -> BTreeMap<String, (usize, usize, usize)> {
    let mut out: BTreeMap<String, (usize, usize, usize)> = BTreeMap::new();
    for (e, c) in rows {
        let n = out.entry(e.category.clone()).or_default();
        match c {
            Coverage::Extracted(_) => n.0 += 1,
            Coverage::Excluded(_) => n.1 += 1,
            Coverage::Missing => n.2 += 1,
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameter_names_do_not_matter() {
        assert_eq!(
            path_shape("/product/202309/products/{product_id}"),
            path_shape("/product/202309/products/{id}")
        );
        assert_ne!(
            path_shape("/product/202309/products/{id}"),
            path_shape("/product/202502/products/{id}")
        );
    }
}
