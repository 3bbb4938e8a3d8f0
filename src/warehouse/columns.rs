//! The system columns every raw table carries, named once. The extract writes them, the
//! writer merges and partitions by them, models and the catalog read them.

use arrow::datatypes::{DataType, Field, TimeUnit};

/// Shop id the row was extracted for (partition column).
pub const SHOP_ID: &str = "_shop_id";
/// Shop-local month (YYYY-MM) of the partition time (partition column).
pub const MONTH: &str = "_month";
/// When shoplake fetched the row (UTC, µs). Also the partition time of snapshot tables.
pub const EXTRACTED_AT: &str = "_extracted_at";
/// `request_id` of the API answer the row came from.
pub const SOURCE_REQUEST_ID: &str = "_source_request_id";
/// Fields the schema does not know, as a JSON object (nothing is lost).
pub const EXTRA: &str = "_extra";

/// System columns every raw table carries, after the declared ones, with their docs.
pub const SYSTEM_COLUMNS: [(&str, &str); 5] = [
    (
        SHOP_ID,
        "Shop id the row was extracted for (partition column).",
    ),
    (
        MONTH,
        "Shop-local month (YYYY-MM) of the partition time (partition column).",
    ),
    (EXTRACTED_AT, "When shoplake fetched the row (UTC)."),
    (SOURCE_REQUEST_ID, "request_id of the API response."),
    (
        EXTRA,
        "Fields the schema does not know, as a JSON object (nothing is lost).",
    ),
];

/// Partition columns of every raw table.
pub const PARTITION_COLUMNS: [&str; 2] = [SHOP_ID, MONTH];

/// Columns that differ between two fetches of the same record without the record
/// changing: a merge does not rewrite a row for them.
pub const FETCH_COLUMNS: [&str; 2] = [EXTRACTED_AT, SOURCE_REQUEST_ID];

/// The system columns as Arrow fields, in table order (after the declared columns).
pub fn system_fields() -> [Field; 5] {
    [
        Field::new(SHOP_ID, DataType::Utf8, false),
        Field::new(MONTH, DataType::Utf8, false),
        Field::new(
            EXTRACTED_AT,
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            false,
        ),
        Field::new(SOURCE_REQUEST_ID, DataType::Utf8, true),
        Field::new(EXTRA, DataType::Utf8, true),
    ]
}
