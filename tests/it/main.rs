//! The integration tests, one test binary: every file here is a module. Linking the full
//! stack (DataFusion, Delta, Flight, apalis) costs ~700 MB of disk and ~20 s per binary, so
//! one binary instead of one per file keeps a clean build's target/ small and its link time
//! short. nextest still runs each test in its own process (`it::<file>::<test>`).

mod helpers;

mod affiliate_collab;
mod affiliate_partner;
mod all_streams;
mod analytics;
mod cli_auth;
mod cli_errors;
mod cli_jobs;
mod client;
mod concurrency;
mod crash;
mod dashboards;
mod deploy;
mod drift;
mod end_to_end;
mod export;
mod faults;
mod fbt;
mod finance;
mod flight_auth;
mod flight_limits;
mod flight_roles;
mod jobs;
mod jobs_postgres;
mod maintain;
mod marts;
mod models;
mod month;
mod order_fulfillment;
mod pipeline_catalog;
mod products_listing;
mod promotion_service;
mod python_clients;
mod python_reader;
mod real_world;
mod return_refund;
mod s3;
mod sandbox_gateway;
mod secrets;
mod sign_vectors;
mod snapshot_endpoints;
mod snapshot_streams;
mod soak;
mod state_races;
mod tiktok_shipping;
mod webhooks;
mod window_split;
