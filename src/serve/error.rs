//! What can go wrong serving a Flight SQL call, as one typed error. Each variant keeps
//! its cause as its [`source`](std::error::Error::source); its `Display` is the message
//! the client receives and the audit log records; [`ServeError::code`] is the one place a
//! failure gets its gRPC code, which `From<ServeError> for Status` sends and the audit
//! outcome follows.
//!
//! | variant | gRPC code |
//! | --- | --- |
//! | `NoCredentials`, `UnsupportedScheme`, `HandshakeNeedsBasic`, `MalformedBasic`, `UnknownToken`, `Login` | `UNAUTHENTICATED` |
//! | `Denied`, `ReadOnly`, `WriteRefused` | `PERMISSION_DENIED` |
//! | `Timeout` | `DEADLINE_EXCEEDED` |
//! | `Busy`, `Memory` | `RESOURCE_EXHAUSTED` |
//! | `BadHandle`, `BadTicket`, `BindRows`, `ParameterTypes`, `Query`, `Arrow`, `Flight`, `HeaderValue` | `INVALID_ARGUMENT` |
//! | `NoSchema`, `NoTable` | `NOT_FOUND` |
//! | `CatalogMissing`, `DataFusion` | `INTERNAL` |

use std::collections::BTreeSet;
use std::string::FromUtf8Error;
use std::sync::Arc;
use std::time::Duration;

use arrow::error::ArrowError;
use arrow_flight::error::FlightError;
use datafusion::error::DataFusionError;
use tonic::metadata::errors::InvalidMetadataValue;
use tonic::{Code, Status};

use super::access::AuthError;
use super::audit::Outcome;

/// Why a Flight SQL call failed.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    // The caller is not known.
    /// No `authorization` header where users are configured.
    #[error("authorization required: use basic auth (Handshake) or a bearer token")]
    NoCredentials,
    /// An `authorization` header that is neither Basic nor Bearer.
    #[error("unsupported authorization scheme (use Basic or Bearer)")]
    UnsupportedScheme,
    /// A Handshake without Basic credentials.
    #[error("handshake needs `authorization: Basic …`")]
    HandshakeNeedsBasic,
    /// Basic credentials that are not base64 of UTF-8 `user:password` (the decoding
    /// error, when there is one).
    #[error("malformed basic credentials")]
    MalformedBasic(#[source] Option<Box<dyn std::error::Error + Send + Sync + 'static>>),
    /// A bearer token this server did not issue, or one past its lifetime.
    #[error("unknown or expired bearer token; authenticate again")]
    UnknownToken,
    /// A refused login (wrong password, or a locked name or address).
    #[error(transparent)]
    Login(#[from] AuthError),

    // The caller may not do this.
    /// A table outside the caller's schemas.
    #[error(
        "user {user} (role {role}) may not read {schema}.{table}; the role may read: {}",
        joined(.readable)
    )]
    Denied {
        /// The caller.
        user: String,
        /// The caller's role.
        role: String,
        /// The table's schema.
        schema: String,
        /// The table.
        table: String,
        /// The schemas the role may read.
        readable: Arc<BTreeSet<String>>,
    },
    /// DDL, DML or another statement that is not a query (the read-only check's error).
    #[error("shoplake serves read-only SQL; refused: {}", .0.strip_backtrace())]
    ReadOnly(#[source] DataFusionError),
    /// Updates and bulk ingest, refused for every role.
    #[error(
        "shoplake serves read-only SQL; updates and ingest are refused (the warehouse is written only by extraction and model builds)"
    )]
    WriteRefused,

    // Limits.
    /// The query ran past `serve.query_timeout` (the limit).
    #[error(
        "query exceeded its time limit of {} (serve.query_timeout)",
        show_duration(.0)
    )]
    Timeout(Duration),
    /// Every query slot is taken (`serve.max_concurrent_queries`, the limit).
    #[error(
        "server busy: {0} queries already running (serve.max_concurrent_queries); retry shortly"
    )]
    Busy(usize),
    /// The query outgrew its memory (`serve.query_memory`) or the server's
    /// (`serve.server_memory`).
    #[error("{}", .0.strip_backtrace())]
    Memory(#[source] DataFusionError),

    // The request itself is wrong.
    /// A prepared statement handle this server cannot read.
    #[error("malformed prepared statement handle; prepare the statement again")]
    BadHandle,
    /// A statement ticket that is not UTF-8 SQL.
    #[error("{0}")]
    BadTicket(#[source] FromUtf8Error),
    /// DoPut bound other than one row of parameters (the row count).
    #[error("bind exactly one row of parameters (got {0}); run the statement once per row")]
    BindRows(usize),
    /// The statement's parameter types cannot be worked out.
    #[error("{0}")]
    ParameterTypes(#[source] DataFusionError),
    /// SQL that does not parse or plan, or uses what DataFusion does not support.
    #[error("{}", .0.strip_backtrace())]
    Query(#[source] DataFusionError),
    /// Arrow could not encode or decode a schema, a batch or a handle's parameters.
    #[error(transparent)]
    Arrow(#[from] ArrowError),
    /// Arrow Flight could not build a metadata answer or decode bound parameters.
    #[error(transparent)]
    Flight(#[from] FlightError),
    /// A value that cannot go into a response header.
    #[error(transparent)]
    HeaderValue(#[from] InvalidMetadataValue),
    /// A schema the lake does not have.
    #[error("schema {0}")]
    NoSchema(String),
    /// A table the lake does not have.
    #[error("table {schema}.{table}")]
    NoTable {
        /// The schema.
        schema: String,
        /// The table.
        table: String,
    },

    // The server's own failures.
    /// The lake catalog is not in the server's session.
    #[error("lake catalog missing")]
    CatalogMissing,
    /// Any other DataFusion failure.
    #[error("{}", .0.strip_backtrace())]
    DataFusion(#[source] DataFusionError),
}

fn show_duration(d: &Duration) -> humantime::FormattedDuration {
    humantime::format_duration(*d)
}

fn joined(names: &BTreeSet<String>) -> String {
    names
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}

impl ServeError {
    /// Malformed Basic credentials, keeping the decoding error.
    pub fn malformed_basic(cause: impl std::error::Error + Send + Sync + 'static) -> ServeError {
        let cause: Box<dyn std::error::Error + Send + Sync + 'static> = Box::new(cause);
        ServeError::MalformedBasic(Some(cause))
    }

    /// The gRPC code a client receives for this error: the one place codes are chosen
    /// (`From<ServeError> for Status` and [`ServeError::outcome`] both ask here).
    pub fn code(&self) -> Code {
        use ServeError as E;
        match self {
            E::NoCredentials
            | E::UnsupportedScheme
            | E::HandshakeNeedsBasic
            | E::MalformedBasic(_)
            | E::UnknownToken
            | E::Login(_) => Code::Unauthenticated,
            E::Denied { .. } | E::ReadOnly(_) | E::WriteRefused => Code::PermissionDenied,
            E::Timeout(_) => Code::DeadlineExceeded,
            E::Busy(_) | E::Memory(_) => Code::ResourceExhausted,
            E::BadHandle
            | E::BadTicket(_)
            | E::BindRows(_)
            | E::ParameterTypes(_)
            | E::Query(_)
            | E::Arrow(_)
            | E::Flight(_)
            | E::HeaderValue(_) => Code::InvalidArgument,
            E::NoSchema(_) | E::NoTable { .. } => Code::NotFound,
            E::CatalogMissing | E::DataFusion(_) => Code::Internal,
        }
    }

    /// How a query that failed with this error ends in the audit log: refusals (role,
    /// read-only, busy, memory: permission denied or resource exhausted) are `refused`,
    /// the time limit is `timeout`, the rest `error`.
    pub fn outcome(&self) -> Outcome {
        match self.code() {
            Code::PermissionDenied | Code::ResourceExhausted => Outcome::Refused,
            Code::DeadlineExceeded => Outcome::Timeout,
            _ => Outcome::Error,
        }
    }
}

/// A DataFusion error by its root cause: over a memory budget, a query the client must
/// change (parse, plan, schema, unsupported), or a failure of the server.
impl From<DataFusionError> for ServeError {
    fn from(e: DataFusionError) -> ServeError {
        let root = e.find_root();
        let memory = matches!(root, DataFusionError::ResourcesExhausted(_));
        let query = matches!(
            root,
            DataFusionError::Plan(_)
                | DataFusionError::SchemaError(..)
                | DataFusionError::SQL(..)
                | DataFusionError::NotImplemented(_)
        );
        if memory {
            ServeError::Memory(e)
        } else if query {
            ServeError::Query(e)
        } else {
            ServeError::DataFusion(e)
        }
    }
}

/// The status a client receives: the variant's code ([`ServeError::code`]) and its
/// message; the error itself stays attached as the status's source (not sent).
impl From<ServeError> for Status {
    fn from(e: ServeError) -> Status {
        let mut status = Status::new(e.code(), e.to_string());
        status.set_source(Arc::new(e));
        status
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_messages() {
        let s = Status::from(ServeError::Busy(3));
        assert_eq!(s.code(), Code::ResourceExhausted);
        assert_eq!(
            s.message(),
            "server busy: 3 queries already running (serve.max_concurrent_queries); retry shortly"
        );
        let s = Status::from(ServeError::Timeout(Duration::from_secs(90)));
        assert_eq!(s.code(), Code::DeadlineExceeded);
        assert_eq!(
            s.message(),
            "query exceeded its time limit of 1m 30s (serve.query_timeout)"
        );
        let e = ServeError::Denied {
            user: "ana".into(),
            role: "analyst".into(),
            schema: "raw".into(),
            table: "orders".into(),
            readable: Arc::new(["marts", "seeds"].map(String::from).into()),
        };
        assert_eq!(e.outcome(), Outcome::Refused);
        let s = Status::from(e);
        assert_eq!(s.code(), Code::PermissionDenied);
        assert_eq!(
            s.message(),
            "user ana (role analyst) may not read raw.orders; the role may read: marts, seeds"
        );
        let s = Status::from(ServeError::from(AuthError::Wrong));
        assert_eq!(s.code(), Code::Unauthenticated);
        assert_eq!(s.message(), "wrong user name or password");
    }

    #[test]
    fn datafusion_errors_by_root_cause() {
        let code = |e: DataFusionError| Status::from(ServeError::from(e)).code();
        assert_eq!(
            code(DataFusionError::ResourcesExhausted("x".into())),
            Code::ResourceExhausted
        );
        assert_eq!(
            code(DataFusionError::Plan("x".into())),
            Code::InvalidArgument
        );
        assert_eq!(code(DataFusionError::Internal("x".into())), Code::Internal);
        let wrapped = DataFusionError::Context(
            "ctx".into(),
            Box::new(DataFusionError::ResourcesExhausted("x".into())),
        );
        assert_eq!(code(wrapped), Code::ResourceExhausted);
    }
}
