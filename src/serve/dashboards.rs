//! The Grafana dashboards shipped under `deploy/grafana/dashboards/`, read as data: each
//! panel's SQL with Grafana's time macros expanded the way the FlightSQL plugin does
//! (grafana-plugin-sdk-go `sqlutil`: `$__timeFilter(c)` → `c >= '<from>' AND c <= '<to>'`,
//! `$__timeFrom()` / `$__timeTo()` → quoted RFC 3339). The dashboard test runs them on a
//! demo warehouse and `shoplake bench flight` times them.

use std::path::Path;

/// One panel query.
#[derive(Debug, Clone)]
pub struct PanelQuery {
    /// Dashboard file name.
    pub dashboard: String,
    /// Panel title.
    pub title: String,
    /// `time_series` or `table`.
    pub format: String,
    /// SQL with macros expanded.
    pub sql: String,
}

/// Expands Grafana's SQL time macros for the range `from`..`to` (RFC 3339).
pub fn expand_macros(sql: &str, from: &str, to: &str) -> Result<String, String> {
    let mut out = sql
        .replace("$__timeFrom()", &format!("'{from}'"))
        .replace("$__timeTo()", &format!("'{to}'"));
    while let Some(i) = out.find("$__timeFilter(") {
        let rest = &out[i + "$__timeFilter(".len()..];
        let end = rest
            .find(')')
            .ok_or_else(|| format!("$__timeFilter without ')' in {sql}"))?;
        let col = rest[..end].trim().to_string();
        out = format!(
            "{}{col} >= '{from}' AND {col} <= '{to}'{}",
            &out[..i],
            &rest[end + 1..]
        );
    }
    if let Some(i) = out.find("$__") {
        return Err(format!("unsupported Grafana macro at {:?}", &out[i..]));
    }
    Ok(out)
}

/// Every panel query of every dashboard JSON in `dir`, expanded for `from`..`to`.
pub fn grafana_queries(dir: &Path, from: &str, to: &str) -> Result<Vec<PanelQuery>, String> {
    let files =
        crate::files::with_extension(dir, "json").map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut out = Vec::new();
    for f in files {
        let name = f
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .to_string();
        let text = std::fs::read_to_string(&f).map_err(|e| format!("{name}: {e}"))?;
        let dash: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| format!("{name}: {e}"))?;
        for p in dash["panels"].as_array().into_iter().flatten() {
            let title = p["title"].as_str().unwrap_or_default().to_string();
            for t in p["targets"].as_array().into_iter().flatten() {
                let raw = t["queryText"]
                    .as_str()
                    .ok_or_else(|| format!("{name}: panel {title:?} has no queryText"))?;
                out.push(PanelQuery {
                    dashboard: name.clone(),
                    title: title.clone(),
                    format: t["format"].as_str().unwrap_or("table").to_string(),
                    sql: expand_macros(raw, from, to).map_err(|e| format!("{name}: {e}"))?,
                });
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn macros_expand_like_grafana() {
        let s = super::expand_macros(
            "select * from t where $__timeFilter(time) and d >= $__timeFrom()",
            "2026-01-01T00:00:00Z",
            "2026-02-01T00:00:00Z",
        )
        .unwrap();
        assert_eq!(
            s,
            "select * from t where time >= '2026-01-01T00:00:00Z' AND time <= '2026-02-01T00:00:00Z' and d >= '2026-01-01T00:00:00Z'"
        );
        assert!(super::expand_macros("select $__interval", "a", "b").is_err());
    }
}
