//! pipelines/ and schemas/ agree, and every stream calls a real catalog endpoint:
//! every table a stream lands has a schema and every schema is landed by a stream; every
//! stream's method and path is a read endpoint of pipelines/catalog.tsv (a typo in a path
//! or version fails here, not against the real API); every exclusion has a reason, and
//! no catalog read endpoint is left neither extracted nor excluded.
//! Coverage per category is printed (`shoplake pipelines --coverage` shows the same).

use std::collections::BTreeSet;
use std::path::Path;

use shoplake::pipeline::Pipelines;
use shoplake::pipeline::coverage::{self, Coverage, path_shape};
use shoplake::pipeline::schema;

#[test]
fn schemas_pipelines_and_catalog_agree() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let p = Pipelines::load(&root.join("pipelines")).unwrap();
    let schemas = schema::load_dir(&root.join("schemas")).unwrap();
    let catalog = coverage::load_catalog(&root.join("pipelines/catalog.tsv")).unwrap();
    assert!(catalog.len() >= 150, "{} catalog endpoints", catalog.len());

    let landed: BTreeSet<&str> = p
        .streams
        .iter()
        .flat_map(|s| s.tables.iter().map(String::as_str))
        .collect();
    let declared: BTreeSet<&str> = schemas.keys().map(String::as_str).collect();
    assert_eq!(
        landed, declared,
        "tables landed by streams vs schemas/*.toml"
    );

    for s in &p.streams {
        assert!(
            catalog.iter().any(
                |e| e.method == s.method.as_str() && path_shape(&e.path) == path_shape(&s.path)
            ),
            "stream {} calls {} {}, which is not a read endpoint in pipelines/catalog.tsv",
            s.name,
            s.method,
            s.path
        );
    }
    for n in &p.not_extracted {
        assert!(!n.reason.trim().is_empty(), "{} has no reason", n.path);
    }

    let rows = coverage::coverage(&catalog, &p);
    let extracted = rows
        .iter()
        .filter(|(_, c)| matches!(c, Coverage::Extracted(_)))
        .count();
    let stream_endpoints: BTreeSet<(String, String)> = p
        .streams
        .iter()
        .map(|s| (s.method.to_string(), path_shape(&s.path)))
        .collect();
    assert_eq!(
        extracted,
        stream_endpoints.len(),
        "each stream endpoint counts once"
    );
    for (category, (x, e, m)) in coverage::summary(&rows) {
        println!("{category:<22} extracted {x:>3}  excluded {e:>3}  missing {m:>3}");
    }
    // Every read endpoint of the catalog is extracted or excluded with a reason.
    let missing: Vec<String> = rows
        .iter()
        .filter(|(_, c)| matches!(c, Coverage::Missing))
        .map(|(e, _)| format!("{} {}", e.method, e.path))
        .collect();
    assert!(
        missing.is_empty(),
        "catalog endpoints neither extracted nor excluded: {missing:#?}"
    );
}
