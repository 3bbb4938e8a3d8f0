//! Serving the lake: [`flight_sql`] (Arrow Flight SQL for BI tools and notebooks).

pub mod flight_sql;

pub use flight_sql::{BasicAuth, LakeFlightSql, RunningFlight, spawn};
