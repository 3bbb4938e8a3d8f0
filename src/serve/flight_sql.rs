//! Flight SQL over the lake (arrow-flight's `FlightSqlService`), for Grafana, Superset,
//! DBeaver and ADBC. What each client calls is in shared/flightsql-and-delta-notes.md;
//! this server answers:
//! - Handshake (Basic in, `authorization: Bearer <token>` header and payload out) and
//!   bearer/basic checks on every call when users are configured ([`super::access`]);
//! - statements and prepared statements with parameters (`?` or `$1`…, bound by DoPut):
//!   tickets and handles carry the SQL and the bound row, so any replica can serve them;
//!   results stream batch by batch;
//! - GetCatalogs, GetDbSchemas and GetTables (with schemas, patterns, table types) also
//!   when no catalog is sent; GetTableTypes; GetSqlInfo (ids 0–4, 8, 500–508 …);
//!   GetXdbcTypeInfo, primary/foreign keys answer empty rather than failing.
//!
//! Every query runs in its own session: only the caller's schemas are in its catalog, it
//! draws on its own memory pool inside the server's, under the timeout and concurrency
//! cap ([`super::limits`]), and leaves one audit line ([`super::audit`]). Tables open at
//! their latest Delta version when a query plans, so a new build is visible without a
//! restart. The session is read-only: DDL/DML/COPY are refused before execution.

use std::pin::Pin;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow_flight::encode::FlightDataEncoderBuilder;
use arrow_flight::flight_service_server::FlightService;
use arrow_flight::sql::metadata::{SqlInfoData, SqlInfoDataBuilder, XdbcTypeInfoDataBuilder};
use arrow_flight::sql::server::FlightSqlService;
use arrow_flight::sql::{
    ActionClosePreparedStatementRequest, ActionCreatePreparedStatementRequest,
    ActionCreatePreparedStatementResult, CommandGetCatalogs, CommandGetCrossReference,
    CommandGetDbSchemas, CommandGetExportedKeys, CommandGetImportedKeys, CommandGetPrimaryKeys,
    CommandGetSqlInfo, CommandGetTableTypes, CommandGetTables, CommandGetXdbcTypeInfo,
    CommandPreparedStatementQuery, CommandPreparedStatementUpdate, CommandStatementIngest,
    CommandStatementQuery, CommandStatementUpdate, ProstMessageExt, SqlInfo, TicketStatementQuery,
};
use arrow_flight::{
    FlightDescriptor, FlightEndpoint, FlightInfo, HandshakeRequest, HandshakeResponse, IpcMessage,
    SchemaAsIpc, Ticket,
};
use base64::Engine;
use bytes::Bytes;
use datafusion::catalog::{
    CatalogProvider, CatalogProviderList, MemoryCatalogProvider, MemoryCatalogProviderList,
};
use datafusion::execution::SendableRecordBatchStream;
use datafusion::execution::disk_manager::{DiskManagerBuilder, DiskManagerMode};
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::prelude::{DataFrame, SessionContext};
use futures::{Future, Stream, StreamExt, TryStreamExt};
use prost::Message;
use tokio::sync::OwnedSemaphorePermit;
use tonic::metadata::MetadataMap;
use tonic::{Request, Response, Status, Streaming};
use tracing::{info, warn};

use super::access::{Access, Principal};
use super::audit::{AuditLog, Entry, Outcome};
use super::error::ServeError;
use super::limits::{Admission, Limits, QueryPool, ServerPool};
use super::{ServeOptions, all_schemas};
use crate::models::run::read_only;
use crate::warehouse::Lake;
use crate::warehouse::catalog::CATALOG;
use arrow_flight::error::FlightError;

/// The table type every lake table reports (DataFusion's and Grafana's spelling).
pub const TABLE_TYPE: &str = "BASE TABLE";

/// The Flight SQL service.
pub struct LakeFlightSql {
    base: SessionContext,
    access: Arc<Access>,
    limits: Limits,
    admission: Admission,
    server_pool: ServerPool,
    audit: AuditLog,
    sql_info: SqlInfoData,
}

type DoGetStream = Pin<Box<dyn Stream<Item = Result<arrow_flight::FlightData, Status>> + Send>>;

fn sql_info(limits: &Limits) -> SqlInfoData {
    let mut b = SqlInfoDataBuilder::new();
    b.append(SqlInfo::FlightSqlServerName, "shoplake");
    b.append(SqlInfo::FlightSqlServerVersion, env!("CARGO_PKG_VERSION"));
    b.append(SqlInfo::FlightSqlServerArrowVersion, "1.3");
    b.append(SqlInfo::FlightSqlServerReadOnly, true);
    b.append(SqlInfo::FlightSqlServerSql, true);
    b.append(SqlInfo::FlightSqlServerSubstrait, false);
    b.append(SqlInfo::FlightSqlServerTransaction, 0i32);
    b.append(SqlInfo::FlightSqlServerCancel, false);
    // Milliseconds (serve.query_timeout); 0 would mean none.
    let timeout_ms = i32::try_from(limits.query_timeout.as_millis()).unwrap_or(i32::MAX);
    b.append(SqlInfo::FlightSqlServerStatementTimeout, timeout_ms);
    b.append(SqlInfo::FlightSqlServerTransactionTimeout, 0i32);
    b.append(SqlInfo::SqlDdlCatalog, false);
    b.append(SqlInfo::SqlDdlSchema, false);
    b.append(SqlInfo::SqlDdlTable, false);
    b.append(SqlInfo::SqlIdentifierCase, 1i32); // case insensitive (lowercased)
    b.append(SqlInfo::SqlIdentifierQuoteChar, "\"");
    b.append(SqlInfo::SqlQuotedIdentifierCase, 3i32); // case sensitive
    b.append(SqlInfo::SqlAllTablesAreSelectable, true);
    b.append(SqlInfo::SqlNullOrdering, 2i32); // nulls sorted at end
    b.append(
        SqlInfo::SqlKeywords,
        &[
            "absolute", "action", "add", "all", "allocate", "alter", "and", "any",
        ][..],
    );
    b.append(
        SqlInfo::SqlNumericFunctions,
        &["abs", "ceil", "floor", "round", "power", "sqrt"][..],
    );
    b.append(
        SqlInfo::SqlStringFunctions,
        &[
            "lower",
            "upper",
            "trim",
            "substr",
            "concat",
            "regexp_like",
            "strpos",
        ][..],
    );
    b.append(
        SqlInfo::SqlDatetimeFunctions,
        &["date_trunc", "date_part", "date_bin", "now"][..],
    );
    b.append(SqlInfo::SqlSearchStringEscape, "\\");
    b.append(SqlInfo::SqlExtraNameCharacters, "");
    b.append(SqlInfo::SqlSupportsColumnAliasing, true);
    b.append(SqlInfo::SqlNullPlusNullIsNull, true);
    b.append(SqlInfo::SqlSupportsExpressionsInOrderBy, true);
    b.append(SqlInfo::SqlSupportsOrderByUnrelated, true);
    b.append(SqlInfo::SqlSupportedGroupBy, 3i32); // unrelated + beyond select
    b.append(SqlInfo::SqlSupportsLikeEscapeClause, true);
    b.append(SqlInfo::SqlSupportsNonNullableColumns, true);
    b.append(SqlInfo::SqlSupportedGrammar, 3i32); // minimum + core (ODBC)
    b.append(SqlInfo::SqlAnsi92SupportedLevel, 1i32); // entry
    b.append(SqlInfo::SqlOuterJoinsSupportLevel, 2i32); // full outer joins
    b.append(SqlInfo::SqlSchemaTerm, "schema");
    b.append(SqlInfo::SqlCatalogTerm, "catalog");
    b.append(SqlInfo::SqlCatalogAtStart, true);
    b.append(SqlInfo::SqlTransactionsSupported, false);
    b.build().expect("static sql info builds")
}

/// The type clients receive for `t`: dictionaries are unpacked (Delta partition columns
/// plan as dictionaries) and view types become plain Utf8/Binary, which every Flight SQL
/// client (Go arrow v12 in Grafana, JDBC, ADBC) reads.
fn client_type(t: &DataType) -> DataType {
    match t {
        DataType::Dictionary(_, v) => client_type(v),
        DataType::Utf8View => DataType::Utf8,
        DataType::BinaryView => DataType::Binary,
        other => other.clone(),
    }
}

/// `schema` as clients receive it (see [`client_type`]); FlightInfo, GetTables and the
/// DoGet stream all use it, so they always agree.
pub fn client_schema(schema: &Schema) -> Schema {
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| {
            f.as_ref()
                .clone()
                .with_data_type(client_type(f.data_type()))
        })
        .collect();
    Schema::new_with_metadata(fields, schema.metadata().clone())
}

fn to_client(
    batch: RecordBatch,
    schema: &SchemaRef,
) -> Result<RecordBatch, arrow::error::ArrowError> {
    if batch.schema().fields() == schema.fields() {
        return Ok(batch);
    }
    let cols = batch
        .columns()
        .iter()
        .zip(schema.fields())
        .map(|(c, f)| arrow::compute::cast(c, f.data_type()))
        .collect::<Result<Vec<_>, _>>()?;
    RecordBatch::try_new(schema.clone(), cols)
}

/// Prepared statement handles are stateless, so any server process can serve them:
/// `SLH1`, the SQL's length (u32 LE), the SQL, then the bound parameters (one row) as an
/// Arrow IPC stream, or nothing before DoPut binds them.
const HANDLE_MAGIC: &[u8; 4] = b"SLH1";

fn encode_handle(sql: &str, params: Option<&RecordBatch>) -> Result<Bytes, ServeError> {
    let mut out = Vec::with_capacity(8 + sql.len());
    out.extend_from_slice(HANDLE_MAGIC);
    out.extend_from_slice(&(sql.len() as u32).to_le_bytes());
    out.extend_from_slice(sql.as_bytes());
    if let Some(b) = params {
        let mut w = arrow::ipc::writer::StreamWriter::try_new(&mut out, &b.schema())?;
        w.write(b)?;
        w.finish()?;
    }
    Ok(Bytes::from(out))
}

fn decode_handle(h: &[u8]) -> Result<(String, Option<RecordBatch>), ServeError> {
    let rest = h
        .strip_prefix(HANDLE_MAGIC.as_slice())
        .ok_or(ServeError::BadHandle)?;
    let len = rest.get(..4).ok_or(ServeError::BadHandle)?;
    let len = u32::from_le_bytes(len.try_into().map_err(|_| ServeError::BadHandle)?) as usize;
    let sql = rest.get(4..4 + len).ok_or(ServeError::BadHandle)?;
    let sql = String::from_utf8(sql.to_vec()).map_err(|_| ServeError::BadHandle)?;
    let params = &rest[4 + len..];
    if params.is_empty() {
        return Ok((sql, None));
    }
    let mut r = arrow::ipc::reader::StreamReader::try_new(std::io::Cursor::new(params), None)?;
    let batch = r.next().transpose()?;
    Ok((sql, batch))
}

fn schema_bytes(schema: &Schema) -> Result<Bytes, ServeError> {
    let msg: IpcMessage = SchemaAsIpc::new(schema, &Default::default()).try_into()?;
    Ok(msg.0)
}

fn info_for(
    cmd: impl ProstMessageExt,
    schema: &Schema,
    descriptor: FlightDescriptor,
) -> Result<Response<FlightInfo>, ServeError> {
    // One endpoint, empty location: clients fetch from this server (Grafana requires
    // exactly one endpoint; a location makes ADBC dial a new client).
    let ticket = Ticket::new(cmd.as_any().encode_to_vec());
    let info = FlightInfo::new()
        .try_with_schema(schema)?
        .with_endpoint(FlightEndpoint::new().with_ticket(ticket))
        .with_descriptor(descriptor);
    Ok(Response::new(info))
}

fn batch_stream(batch: RecordBatch) -> DoGetStream {
    let schema = batch.schema();
    let s = FlightDataEncoderBuilder::new()
        .with_schema(schema)
        .build(futures::stream::once(async { Ok(batch) }))
        .map_err(Status::from);
    Box::pin(s)
}

impl LakeFlightSql {
    /// A service over `base` (a lake session from [`crate::warehouse::catalog::session`]).
    pub fn new(base: SessionContext, opts: ServeOptions) -> LakeFlightSql {
        LakeFlightSql {
            sql_info: sql_info(&opts.limits),
            base,
            access: Arc::new(opts.access),
            admission: Admission::new(opts.limits.max_concurrent),
            server_pool: ServerPool::new(opts.limits.server_memory),
            limits: opts.limits,
            audit: opts.audit,
        }
    }

    /// Checks the caller: a bearer token from a handshake, or basic credentials.
    fn check(&self, md: &MetadataMap) -> Result<Principal, ServeError> {
        if !self.access.required() {
            return Ok(self.access.anonymous());
        }
        let header = md
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .ok_or(ServeError::NoCredentials)?;
        if let Some(tok) = header.strip_prefix("Bearer ") {
            return self
                .access
                .bearer(tok.trim())
                .ok_or(ServeError::UnknownToken);
        }
        if let Some(b) = header.strip_prefix("Basic ") {
            let (u, p) = decode_basic(b)?;
            return self.access.login(&u, &p).map_err(ServeError::Login);
        }
        Err(ServeError::UnsupportedScheme)
    }

    /// A session for one query by `p`: only the schemas `p` may read are in its catalog
    /// (so `information_schema` and metadata show nothing else), with the query's own
    /// memory pool inside the server's and no spilling to disk (a query over its memory
    /// limit fails instead of filling the server's disk).
    fn query_ctx(&self, p: &Principal) -> Result<SessionContext, ServeError> {
        let full = self
            .base
            .catalog(CATALOG)
            .ok_or(ServeError::CatalogMissing)?;
        let catalog = Arc::new(MemoryCatalogProvider::new());
        for s in full.schema_names() {
            if let (true, Some(sp)) = (p.may_read(&s), full.schema(&s)) {
                catalog.register_schema(&s, sp)?;
            }
        }
        let list = Arc::new(MemoryCatalogProviderList::new());
        list.register_catalog(CATALOG.to_string(), catalog);
        let pool = QueryPool::new(self.server_pool.clone(), self.limits.query_memory);
        let rt = RuntimeEnvBuilder::new()
            .with_memory_pool(Arc::new(pool))
            .with_disk_manager_builder(
                DiskManagerBuilder::default().with_mode(DiskManagerMode::Disabled),
            )
            .build_arc()?;
        let state = SessionStateBuilder::new_from_existing(self.base.state())
            .with_catalog_list(list)
            .with_runtime_env(rt)
            .build();
        Ok(SessionContext::new_with_state(state))
    }

    /// Plans read-only SQL for `p`. JDBC/ODBC-style `?` placeholders are numbered `$1, $2,
    /// …` (what DataFusion binds), so ADBC and JDBC prepared statements work unchanged.
    /// A table outside `p`'s schemas is refused by name before anything is planned.
    async fn plan(
        &self,
        ctx: &SessionContext,
        p: &Principal,
        sql: &str,
    ) -> Result<DataFrame, ServeError> {
        let state = ctx.state();
        let mut stmt = state.sql_to_statement(sql, &datafusion::config::Dialect::Generic)?;
        number_placeholders(&mut stmt);
        for r in state.resolve_table_references(&stmt)? {
            let schema = r.schema().unwrap_or("marts");
            if !p.may_read(schema) {
                return Err(ServeError::Denied {
                    user: p.user.clone(),
                    role: p.role.clone(),
                    schema: schema.to_string(),
                    table: r.table().to_string(),
                    readable: p.schemas.clone(),
                });
            }
        }
        let plan = state.statement_to_plan(stmt).await?;
        read_only()
            .verify_plan(&plan)
            .map_err(ServeError::ReadOnly)?;
        ctx.execute_logical_plan(plan)
            .await
            .map_err(ServeError::from)
    }

    /// Plans `sql` (with a prepared statement's bound row) under the caller's role, the
    /// concurrency cap and the query timeout. Failures are audited as refused/error.
    async fn prepare(
        &self,
        p: &Principal,
        sql: &str,
        params: Option<RecordBatch>,
    ) -> Result<(DataFrame, OwnedSemaphorePermit, tokio::time::Instant, Entry), ServeError> {
        let entry = self.audit.start(p, sql);
        let permit = match self.admission.enter() {
            Ok(permit) => permit,
            Err(e) => return Err(audited(entry, e)),
        };
        let deadline = tokio::time::Instant::now() + self.limits.query_timeout;
        let planned = tokio::time::timeout_at(deadline, async {
            let ctx = self.query_ctx(p)?;
            let df = self.plan(&ctx, p, sql).await?;
            bind(df, params)
        })
        .await;
        match planned {
            Ok(Ok(df)) => Ok((df, permit, deadline, entry)),
            Ok(Err(e)) => Err(audited(entry, e)),
            Err(_) => Err(audited(entry, self.timed_out())),
        }
    }

    /// Updates and bulk ingest: refused for every role (after the caller is known, so an
    /// anonymous caller learns nothing), with an audit line like any refused query.
    fn refuse_write(&self, md: &MetadataMap, sql: &str) -> ServeError {
        match self.check(md) {
            Ok(p) => audited(self.audit.start(&p, sql), ServeError::WriteRefused),
            Err(e) => e,
        }
    }

    fn timed_out(&self) -> ServeError {
        ServeError::Timeout(self.limits.query_timeout)
    }

    /// The result schema of `sql` for FlightInfo / prepared statements (nothing runs).
    async fn describe(
        &self,
        p: &Principal,
        sql: &str,
        params: Option<RecordBatch>,
    ) -> Result<DataFrame, ServeError> {
        let (df, _permit, _, entry) = self.prepare(p, sql, params).await?;
        // Planned only: the DoGet that runs it writes the audit line.
        entry.discard();
        Ok(df)
    }

    /// FlightInfo for `sql` run by `p` (planned, nothing runs): its client schema, and a
    /// ticket carrying `cmd`.
    async fn statement_info(
        &self,
        p: &Principal,
        sql: &str,
        params: Option<RecordBatch>,
        cmd: impl ProstMessageExt,
        descriptor: FlightDescriptor,
    ) -> Result<Response<FlightInfo>, ServeError> {
        let df = self.describe(p, sql, params).await?;
        let schema = client_schema(df.schema().as_arrow());
        info_for(cmd, &schema, descriptor)
    }

    /// Runs `sql` and streams its batches: the permit, the deadline and the audit entry
    /// travel with the stream, so a slow or abandoned reader is still accounted for.
    async fn run(
        &self,
        p: &Principal,
        sql: &str,
        params: Option<RecordBatch>,
    ) -> Result<DoGetStream, ServeError> {
        let (df, permit, deadline, entry) = self.prepare(p, sql, params).await?;
        let schema: SchemaRef = Arc::new(client_schema(df.schema().as_arrow()));
        let inner = match tokio::time::timeout_at(deadline, df.execute_stream()).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                let e = ServeError::from(e);
                entry.finish(Outcome::Error, Some(e.to_string()));
                return Err(e);
            }
            Err(_) => {
                let e = self.timed_out();
                entry.finish(Outcome::Timeout, Some(e.to_string()));
                return Err(e);
            }
        };
        let stream = QueryStream {
            inner,
            target: schema.clone(),
            deadline: Box::pin(tokio::time::sleep_until(deadline)),
            timeout: self.limits.query_timeout,
            entry: Some(entry),
            permit: Some(permit),
        };
        let s = FlightDataEncoderBuilder::new()
            .with_schema(schema)
            .build(stream)
            .map_err(Status::from);
        Ok(Box::pin(s))
    }

    /// The FlightInfo of a metadata command (after checking the caller).
    fn metadata_info<C: Metadata>(
        &self,
        cmd: C,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, ServeError> {
        self.check(request.metadata())?;
        let schema = cmd.result_schema(self)?;
        info_for(cmd, &schema, request.into_inner())
    }

    /// The DoGet of a metadata command: its answer for the caller, in one batch.
    async fn metadata_get<C: Metadata>(
        &self,
        cmd: C,
        request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, ServeError> {
        let who = self.check(request.metadata())?;
        let batch = cmd.answer(self, &who).await?;
        Ok(Response::new(batch_stream(batch)))
    }

    async fn table_schema(&self, schema: &str, table: &str) -> Result<Schema, ServeError> {
        let p = self
            .base
            .catalog(CATALOG)
            .and_then(|c| c.schema(schema))
            .ok_or_else(|| ServeError::NoSchema(schema.to_string()))?
            .table(table)
            .await?
            .ok_or_else(|| ServeError::NoTable {
                schema: schema.to_string(),
                table: table.to_string(),
            })?;
        Ok(client_schema(p.schema().as_ref()))
    }

    /// The schemas `p` may see, in display order.
    fn schema_names(&self, p: &Principal) -> Vec<String> {
        all_schemas()
            .into_iter()
            .filter(|s| p.may_read(s))
            .collect()
    }
}

/// Writes `e` as how the query of `entry` ended, and passes it on.
fn audited(entry: Entry, e: ServeError) -> ServeError {
    entry.finish(e.outcome(), Some(e.to_string()));
    e
}

/// Binds a prepared statement's row to `$1`, `$2`, … in column order.
fn bind(df: DataFrame, params: Option<RecordBatch>) -> Result<DataFrame, ServeError> {
    let Some(p) = params else {
        return Ok(df);
    };
    let values = p
        .columns()
        .iter()
        .map(|c| datafusion::scalar::ScalarValue::try_from_array(c, 0))
        .collect::<Result<Vec<_>, _>>()?;
    df.with_param_values(values).map_err(ServeError::from)
}

/// The parameters of a prepared statement (`$1..$n` in order; an untyped one is announced
/// as Utf8).
fn parameter_schema(df: &DataFrame) -> Result<Schema, ServeError> {
    let types = df
        .logical_plan()
        .get_parameter_types()
        .map_err(ServeError::ParameterTypes)?;
    let mut names: Vec<&String> = types.keys().collect();
    names.sort_by_key(|n| {
        n.trim_start_matches('$')
            .parse::<usize>()
            .unwrap_or(usize::MAX)
    });
    Ok(Schema::new(
        names
            .iter()
            .map(|n| {
                Field::new(
                    n.as_str(),
                    types[*n].clone().unwrap_or(DataType::Utf8),
                    true,
                )
            })
            .collect::<Vec<_>>(),
    ))
}

/// A query's batches on their way to the client, converted to client types, counted for
/// the audit log, cut off at the deadline, holding the query's concurrency permit.
struct QueryStream {
    inner: SendableRecordBatchStream,
    target: SchemaRef,
    deadline: Pin<Box<tokio::time::Sleep>>,
    /// The query's time limit (for the error when the deadline passes).
    timeout: std::time::Duration,
    entry: Option<Entry>,
    permit: Option<OwnedSemaphorePermit>,
}

impl QueryStream {
    fn end(&mut self, outcome: Outcome, error: Option<String>) {
        if let Some(e) = self.entry.take() {
            e.finish(outcome, error);
        }
        self.permit = None;
    }
}

impl Stream for QueryStream {
    type Item = Result<RecordBatch, arrow_flight::error::FlightError>;

    fn poll_next(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        use std::task::Poll;
        let this = &mut *self;
        if this.entry.is_none() {
            return Poll::Ready(None);
        }
        if this.deadline.as_mut().poll(cx).is_ready() {
            let e = ServeError::Timeout(this.timeout);
            this.end(Outcome::Timeout, Some(e.to_string()));
            return Poll::Ready(Some(Err(FlightError::Tonic(Box::new(Status::from(e))))));
        }
        match this.inner.poll_next_unpin(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(None) => {
                this.end(Outcome::Ok, None);
                Poll::Ready(None)
            }
            Poll::Ready(Some(Err(e))) => {
                let e = ServeError::from(e);
                this.end(Outcome::Error, Some(e.to_string()));
                Poll::Ready(Some(Err(FlightError::Tonic(Box::new(Status::from(e))))))
            }
            Poll::Ready(Some(Ok(b))) => match to_client(b, &this.target) {
                Ok(b) => {
                    if let Some(e) = this.entry.as_mut() {
                        e.sent(b.num_rows(), super::audit::batch_bytes(&b));
                    }
                    Poll::Ready(Some(Ok(b)))
                }
                Err(e) => {
                    this.end(Outcome::Error, Some(e.to_string()));
                    Poll::Ready(Some(Err(FlightError::Arrow(e))))
                }
            },
        }
    }
}

/// SQL `LIKE` as Flight SQL filter patterns use it: `%` any run, `_` one character,
/// `\\` escapes the next character.
fn like(pattern: &str, s: &str) -> bool {
    fn go(p: &[char], s: &[char]) -> bool {
        match p.first() {
            None => s.is_empty(),
            Some('%') => (0..=s.len()).any(|i| go(&p[1..], &s[i..])),
            Some('_') => !s.is_empty() && go(&p[1..], &s[1..]),
            Some('\\') if p.len() > 1 => s.first() == Some(&p[1]) && go(&p[2..], &s[1..]),
            Some(c) => s.first() == Some(c) && go(&p[1..], &s[1..]),
        }
    }
    let p: Vec<char> = pattern.chars().collect();
    let s: Vec<char> = s.chars().collect();
    go(&p, &s)
}

/// Rewrites `?` placeholders to `$1`, `$2`, … in order of appearance.
fn number_placeholders(stmt: &mut datafusion::sql::parser::Statement) {
    use datafusion::sql::sqlparser::ast::{Expr, Value, visit_expressions_mut};
    if let datafusion::sql::parser::Statement::Statement(s) = stmt {
        let mut n = 0;
        let _ = visit_expressions_mut(s.as_mut(), |e| {
            if let Expr::Value(v) = e
                && let Value::Placeholder(p) = &mut v.value
                && p == "?"
            {
                n += 1;
                *p = format!("${n}");
            }
            std::ops::ControlFlow::<()>::Continue(())
        });
    }
}

fn decode_basic(b64: &str) -> Result<(String, String), ServeError> {
    let raw = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .map_err(ServeError::malformed_basic)?;
    let s = String::from_utf8(raw).map_err(ServeError::malformed_basic)?;
    let (u, p) = s.split_once(':').ok_or(ServeError::MalformedBasic(None))?;
    Ok((u.to_string(), p.to_string()))
}

#[tonic::async_trait]
impl FlightSqlService for LakeFlightSql {
    type FlightService = LakeFlightSql;

    async fn do_handshake(
        &self,
        request: Request<Streaming<HandshakeRequest>>,
    ) -> Result<
        Response<Pin<Box<dyn Stream<Item = Result<HandshakeResponse, Status>> + Send>>>,
        Status,
    > {
        let who = if self.access.required() {
            // (No borrow of `request` may live across the await below: `Streaming` is
            // not `Sync`.)
            let (user, password) = {
                let header = request
                    .metadata()
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default();
                let Some(basic) = header.strip_prefix("Basic ") else {
                    return Err(ServeError::HandshakeNeedsBasic.into());
                };
                decode_basic(basic)?
            };
            // The password check (argon2) runs off the async workers, and wrong passwords
            // are also counted per client address (see `Access::login_from`).
            let peer = request.remote_addr().map(|a| a.ip());
            self.access
                .login_from(peer, &user, &password)
                .await
                .map_err(|e| {
                    warn!(?peer, ?user, error = %e, "flight sql login refused");
                    ServeError::Login(e)
                })?
        } else {
            self.access.anonymous()
        };
        info!(user = %who.user, role = %who.role, "flight sql handshake");
        let token = self.access.issue(who);
        let resp = HandshakeResponse {
            protocol_version: 0,
            payload: Bytes::from(token.clone()),
        };
        let mut out: Response<
            Pin<Box<dyn Stream<Item = Result<HandshakeResponse, Status>> + Send>>,
        > = Response::new(Box::pin(futures::stream::iter(vec![Ok(resp)])));
        out.metadata_mut().insert(
            "authorization",
            format!("Bearer {token}")
                .parse()
                .map_err(ServeError::HeaderValue)?,
        );
        Ok(out)
    }

    async fn get_flight_info_statement(
        &self,
        query: CommandStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let who = self.check(request.metadata())?;
        let ticket = TicketStatementQuery {
            statement_handle: Bytes::from(query.query.clone()),
        };
        let info = self
            .statement_info(&who, &query.query, None, ticket, request.into_inner())
            .await?;
        Ok(info)
    }

    async fn get_flight_info_prepared_statement(
        &self,
        cmd: CommandPreparedStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let who = self.check(request.metadata())?;
        let (sql, params) = decode_handle(&cmd.prepared_statement_handle)?;
        let info = self
            .statement_info(&who, &sql, params, cmd, request.into_inner())
            .await?;
        Ok(info)
    }

    async fn do_get_statement(
        &self,
        ticket: TicketStatementQuery,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let who = self.check(request.metadata())?;
        let sql =
            String::from_utf8(ticket.statement_handle.to_vec()).map_err(ServeError::BadTicket)?;
        Ok(Response::new(self.run(&who, &sql, None).await?))
    }

    async fn do_get_prepared_statement(
        &self,
        cmd: CommandPreparedStatementQuery,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let who = self.check(request.metadata())?;
        let (sql, params) = decode_handle(&cmd.prepared_statement_handle)?;
        Ok(Response::new(self.run(&who, &sql, params).await?))
    }

    async fn do_action_create_prepared_statement(
        &self,
        query: ActionCreatePreparedStatementRequest,
        request: Request<arrow_flight::Action>,
    ) -> Result<ActionCreatePreparedStatementResult, Status> {
        let who = self.check(request.metadata())?;
        let df = self.describe(&who, &query.query, None).await?;
        let schema = client_schema(df.schema().as_arrow());
        let params = parameter_schema(&df)?;
        Ok(ActionCreatePreparedStatementResult {
            prepared_statement_handle: encode_handle(&query.query, None)?,
            dataset_schema: schema_bytes(&schema)?,
            parameter_schema: schema_bytes(&params)?,
        })
    }

    async fn do_put_prepared_statement_query(
        &self,
        cmd: CommandPreparedStatementQuery,
        request: Request<arrow_flight::sql::server::PeekableFlightDataStream>,
    ) -> Result<arrow_flight::sql::DoPutPreparedStatementResult, Status> {
        self.check(request.metadata())?;
        let (sql, _) = decode_handle(&cmd.prepared_statement_handle)?;
        let stream = arrow_flight::decode::FlightRecordBatchStream::new_from_flight_data(
            request
                .into_inner()
                .map_err(arrow_flight::error::FlightError::from),
        );
        let batches: Vec<RecordBatch> = stream.try_collect().await.map_err(ServeError::Flight)?;
        let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
        if rows != 1 {
            return Err(ServeError::BindRows(rows).into());
        }
        let row = batches
            .into_iter()
            .find(|b| b.num_rows() == 1)
            .expect("one row");
        // The new handle carries the parameters: no server-side state to lose.
        Ok(arrow_flight::sql::DoPutPreparedStatementResult {
            prepared_statement_handle: Some(encode_handle(&sql, Some(&row))?),
        })
    }

    async fn do_put_statement_update(
        &self,
        cmd: CommandStatementUpdate,
        request: Request<arrow_flight::sql::server::PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        Err(self.refuse_write(request.metadata(), &cmd.query).into())
    }

    async fn do_put_prepared_statement_update(
        &self,
        cmd: CommandPreparedStatementUpdate,
        request: Request<arrow_flight::sql::server::PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        let (sql, _) = decode_handle(&cmd.prepared_statement_handle)?;
        Err(self.refuse_write(request.metadata(), &sql).into())
    }

    async fn do_put_statement_ingest(
        &self,
        cmd: CommandStatementIngest,
        request: Request<arrow_flight::sql::server::PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        let what = format!("-- bulk ingest into {}", cmd.table);
        Err(self.refuse_write(request.metadata(), &what).into())
    }

    async fn do_action_close_prepared_statement(
        &self,
        _query: ActionClosePreparedStatementRequest,
        request: Request<arrow_flight::Action>,
    ) -> Result<(), Status> {
        // Handles are stateless (the SQL itself): nothing to free.
        self.check(request.metadata())?;
        Ok(())
    }

    // Metadata commands: FlightInfo and DoGet of each answer through `Metadata`.

    async fn get_flight_info_catalogs(
        &self,
        query: CommandGetCatalogs,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        Ok(self.metadata_info(query, request)?)
    }

    async fn do_get_catalogs(
        &self,
        query: CommandGetCatalogs,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        Ok(self.metadata_get(query, request).await?)
    }

    async fn get_flight_info_schemas(
        &self,
        query: CommandGetDbSchemas,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        Ok(self.metadata_info(query, request)?)
    }

    async fn do_get_schemas(
        &self,
        query: CommandGetDbSchemas,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        Ok(self.metadata_get(query, request).await?)
    }

    async fn get_flight_info_tables(
        &self,
        query: CommandGetTables,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        Ok(self.metadata_info(query, request)?)
    }

    async fn do_get_tables(
        &self,
        query: CommandGetTables,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        Ok(self.metadata_get(query, request).await?)
    }

    async fn get_flight_info_table_types(
        &self,
        query: CommandGetTableTypes,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        Ok(self.metadata_info(query, request)?)
    }

    async fn do_get_table_types(
        &self,
        query: CommandGetTableTypes,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        Ok(self.metadata_get(query, request).await?)
    }

    async fn get_flight_info_sql_info(
        &self,
        query: CommandGetSqlInfo,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        Ok(self.metadata_info(query, request)?)
    }

    async fn do_get_sql_info(
        &self,
        query: CommandGetSqlInfo,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        Ok(self.metadata_get(query, request).await?)
    }

    async fn get_flight_info_xdbc_type_info(
        &self,
        query: CommandGetXdbcTypeInfo,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        Ok(self.metadata_info(query, request)?)
    }

    async fn do_get_xdbc_type_info(
        &self,
        query: CommandGetXdbcTypeInfo,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        Ok(self.metadata_get(query, request).await?)
    }

    async fn get_flight_info_primary_keys(
        &self,
        query: CommandGetPrimaryKeys,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        Ok(self.metadata_info(query, request)?)
    }

    async fn do_get_primary_keys(
        &self,
        query: CommandGetPrimaryKeys,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        Ok(self.metadata_get(query, request).await?)
    }

    async fn get_flight_info_exported_keys(
        &self,
        query: CommandGetExportedKeys,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        Ok(self.metadata_info(query, request)?)
    }

    async fn do_get_exported_keys(
        &self,
        query: CommandGetExportedKeys,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        Ok(self.metadata_get(query, request).await?)
    }

    async fn get_flight_info_imported_keys(
        &self,
        query: CommandGetImportedKeys,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        Ok(self.metadata_info(query, request)?)
    }

    async fn do_get_imported_keys(
        &self,
        query: CommandGetImportedKeys,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        Ok(self.metadata_get(query, request).await?)
    }

    async fn get_flight_info_cross_reference(
        &self,
        query: CommandGetCrossReference,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        Ok(self.metadata_info(query, request)?)
    }

    async fn do_get_cross_reference(
        &self,
        query: CommandGetCrossReference,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        Ok(self.metadata_get(query, request).await?)
    }

    async fn register_sql_info(&self, _id: i32, _result: &SqlInfo) {}
}

/// A metadata command (GetCatalogs, GetTables, the key commands …): the result schema its
/// FlightInfo announces, and the one batch its DoGet answers with, holding what the
/// caller may see. The service checks the caller before either.
trait Metadata: ProstMessageExt + Send + Sized {
    /// The schema of the answer.
    fn result_schema(&self, svc: &LakeFlightSql) -> Result<SchemaRef, ServeError>;

    /// The answer for `who`.
    fn answer(
        self,
        svc: &LakeFlightSql,
        who: &Principal,
    ) -> impl Future<Output = Result<RecordBatch, ServeError>> + Send;
}

/// Commands answered with one fixed row: GetCatalogs (the lake's one catalog) and
/// GetTableTypes (the one table type).
macro_rules! one_row {
    ($($cmd:ty => $row:expr),* $(,)?) => {$(
        impl Metadata for $cmd {
            fn result_schema(&self, _: &LakeFlightSql) -> Result<SchemaRef, ServeError> {
                Ok(self.clone().into_builder().schema())
            }

            async fn answer(
                self,
                _: &LakeFlightSql,
                _: &Principal,
            ) -> Result<RecordBatch, ServeError> {
                let mut b = self.into_builder();
                b.append($row);
                Ok(b.build()?)
            }
        }
    )*};
}

one_row!(CommandGetCatalogs => CATALOG, CommandGetTableTypes => TABLE_TYPE);

impl Metadata for CommandGetDbSchemas {
    fn result_schema(&self, _: &LakeFlightSql) -> Result<SchemaRef, ServeError> {
        Ok(self.clone().into_builder().schema())
    }

    async fn answer(self, svc: &LakeFlightSql, who: &Principal) -> Result<RecordBatch, ServeError> {
        let mut b = self.into_builder();
        for s in svc.schema_names(who) {
            b.append(CATALOG, s);
        }
        Ok(b.build()?)
    }
}

impl Metadata for CommandGetTables {
    fn result_schema(&self, _: &LakeFlightSql) -> Result<SchemaRef, ServeError> {
        Ok(self.clone().into_builder().schema())
    }

    async fn answer(self, svc: &LakeFlightSql, who: &Principal) -> Result<RecordBatch, ServeError> {
        let include_schema = self.include_schema;
        let catalog_ok = self
            .catalog
            .as_deref()
            .is_none_or(|c| c.is_empty() || c == CATALOG);
        // Filter before opening tables for their schemas (Grafana asks for one table's
        // columns with a name pattern; opening every Delta table for that is waste). The
        // builder applies the same filters again.
        let schema_pat = self.db_schema_filter_pattern.clone();
        let table_pat = self.table_name_filter_pattern.clone();
        let type_ok =
            self.table_types.is_empty() || self.table_types.iter().any(|t| t == TABLE_TYPE);
        let mut b = self.into_builder();
        if catalog_ok && type_ok {
            let catalog = svc.base.catalog(CATALOG);
            for s in svc.schema_names(who) {
                if !schema_pat.as_deref().is_none_or(|p| like(p, &s)) {
                    continue;
                }
                let Some(sp) = catalog.as_ref().and_then(|c| c.schema(&s)) else {
                    continue;
                };
                for t in sp.table_names() {
                    if !table_pat.as_deref().is_none_or(|p| like(p, &t)) {
                        continue;
                    }
                    let schema = if include_schema {
                        svc.table_schema(&s, &t).await?
                    } else {
                        Schema::empty()
                    };
                    b.append(CATALOG, &s, &t, TABLE_TYPE, &schema)?;
                }
            }
        }
        Ok(b.build()?)
    }
}

impl Metadata for CommandGetSqlInfo {
    fn result_schema(&self, svc: &LakeFlightSql) -> Result<SchemaRef, ServeError> {
        Ok(self.clone().into_builder(&svc.sql_info).schema())
    }

    async fn answer(self, svc: &LakeFlightSql, _: &Principal) -> Result<RecordBatch, ServeError> {
        Ok(self.into_builder(&svc.sql_info).build()?)
    }
}

impl Metadata for CommandGetXdbcTypeInfo {
    fn result_schema(&self, _: &LakeFlightSql) -> Result<SchemaRef, ServeError> {
        let data = XdbcTypeInfoDataBuilder::new().build()?;
        Ok((*self).into_builder(&data).schema())
    }

    async fn answer(self, _: &LakeFlightSql, _: &Principal) -> Result<RecordBatch, ServeError> {
        let data = XdbcTypeInfoDataBuilder::new().build()?;
        Ok(self.into_builder(&data).build()?)
    }
}

/// The key commands answer empty: the lake declares no keys. (`false`: the primary-key
/// schema; `true`: the foreign-key one.)
macro_rules! no_keys {
    ($($cmd:ty => $foreign:expr),* $(,)?) => {$(
        impl Metadata for $cmd {
            fn result_schema(&self, _: &LakeFlightSql) -> Result<SchemaRef, ServeError> {
                Ok(Arc::new(keys_schema($foreign)))
            }

            async fn answer(
                self,
                svc: &LakeFlightSql,
                _: &Principal,
            ) -> Result<RecordBatch, ServeError> {
                Ok(RecordBatch::new_empty(self.result_schema(svc)?))
            }
        }
    )*};
}

no_keys!(
    CommandGetPrimaryKeys => false,
    CommandGetExportedKeys => true,
    CommandGetImportedKeys => true,
    CommandGetCrossReference => true,
);

/// Result schema of GetPrimaryKeys (`foreign = false`) and the foreign-key commands.
fn keys_schema(foreign: bool) -> Schema {
    use arrow::datatypes::{DataType, Field};
    let s = |n: &str, null: bool| Field::new(n, DataType::Utf8, null);
    if !foreign {
        return Schema::new(vec![
            s("catalog_name", true),
            s("db_schema_name", true),
            s("table_name", false),
            s("column_name", false),
            Field::new("key_sequence", DataType::Int32, false),
            s("key_name", true),
        ]);
    }
    Schema::new(vec![
        s("pk_catalog_name", true),
        s("pk_db_schema_name", true),
        s("pk_table_name", false),
        s("pk_column_name", false),
        s("fk_catalog_name", true),
        s("fk_db_schema_name", true),
        s("fk_table_name", false),
        s("fk_column_name", false),
        Field::new("key_sequence", DataType::Int32, false),
        s("fk_key_name", true),
        s("pk_key_name", true),
        Field::new("update_rule", DataType::UInt8, false),
        Field::new("delete_rule", DataType::UInt8, false),
    ])
}

/// A running Flight SQL server.
pub struct RunningFlight {
    /// Bound address.
    pub addr: std::net::SocketAddr,
    /// The server's query counters (`/metrics`).
    pub metrics: std::sync::Arc<super::metrics::QueryMetrics>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    handle: tokio::task::JoinHandle<Result<(), tonic::transport::Error>>,
}

impl RunningFlight {
    /// Stops accepting and waits for the server task.
    pub async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        let _ = self.handle.await;
    }

    /// Waits until the server ends (e.g. on Ctrl-C handled by the caller).
    pub async fn wait(self) -> Result<(), tonic::transport::Error> {
        match self.handle.await {
            Ok(r) => r,
            Err(_) => Ok(()),
        }
    }
}

/// Binds `addr` (port 0 picks one) and serves the lake over Flight SQL (TLS when
/// `opts.tls` is set).
pub async fn spawn(
    lake: &Lake,
    seeds_dir: Option<&std::path::Path>,
    addr: &str,
    opts: ServeOptions,
) -> std::io::Result<RunningFlight> {
    let ctx = crate::warehouse::catalog::session(lake, seeds_dir)
        .await
        .map_err(std::io::Error::other)?;
    let mut builder = tonic::transport::Server::builder();
    if let Some(tls) = &opts.tls {
        // Both rustls back ends are linked (through dependencies); name one for the
        // process, or building the server config panics. An already installed one wins.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let read = |p: &std::path::Path| {
            std::fs::read(p)
                .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", p.display())))
        };
        let identity = tonic::transport::Identity::from_pem(read(&tls.cert)?, read(&tls.key)?);
        builder = builder
            .tls_config(tonic::transport::ServerTlsConfig::new().identity(identity))
            .map_err(std::io::Error::other)?;
    }
    let tls = opts.tls.is_some();
    if let Some(p) = opts.audit.path() {
        info!(audit_log = %p.display(), "audit log");
    }
    let metrics = opts.audit.metrics();
    let svc = LakeFlightSql::new(ctx, opts);
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    // Small responses must not wait for Nagle + delayed ACK (~40 ms per round trip):
    // with sockets from our own listener tonic's `tcp_nodelay` does not apply.
    let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener).map(|s| {
        if let Ok(s) = &s {
            let _ = s.set_nodelay(true);
        }
        s
    });
    let handle = tokio::spawn(
        builder
            .add_service(arrow_flight::flight_service_server::FlightServiceServer::new(svc))
            .serve_with_incoming_shutdown(incoming, async {
                let _ = rx.await;
            }),
    );
    info!(%addr, tls, "flight sql listening");
    Ok(RunningFlight {
        addr,
        metrics,
        stop: Some(tx),
        handle,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn like_patterns() {
        use super::like;
        assert!(like("gmv%", "gmv_daily"));
        assert!(like("%daily", "sku_daily"));
        assert!(like("gmv_daily", "gmv_daily") && like("gmv_daily", "gmvXdaily"));
        assert!(like("gmv\\_daily", "gmv_daily") && !like("gmv\\_daily", "gmvXdaily"));
        assert!(like("%", "") && !like("_", ""));
        assert!(!like("raw", "marts") && !like("m%s", "marts_x"));
    }
}
