//! Where exported rows come from: the lake (a local DataFusion session, read-only like
//! `shoplake query`) or a `shoplake serve` over Flight SQL, whose users, roles, limits and
//! audit apply to the export as to any client.

use std::path::Path;

use arrow::array::{Array, RecordBatch, StringArray};
use arrow::datatypes::SchemaRef;
use arrow_flight::sql::client::FlightSqlServiceClient;
use datafusion::prelude::SessionContext;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};

use super::{ExportError, Result};
use crate::secret::Secret;

/// A query's rows as they arrive.
pub struct Rows {
    /// Their schema (known before the first row).
    pub schema: SchemaRef,
    /// The batches.
    pub batches: BoxStream<'static, Result<RecordBatch>>,
}

/// The lake, or a server.
pub enum Source {
    /// A session over the lake (+ seeds).
    Local(SessionContext),
    /// A Flight SQL server, logged in.
    Remote(Remote),
}

/// A logged-in Flight SQL client.
pub struct Remote(FlightSqlServiceClient<Channel>);

impl Remote {
    /// Connects to `url` (`http://host:port`, or `https://…` with `ca_cert` as the trust
    /// root for a server with its own CA) and logs in as `user` when given.
    pub async fn connect(
        url: &str,
        ca_cert: Option<&Path>,
        user: Option<&str>,
        password: Option<&Secret>,
    ) -> Result<Remote> {
        let usage = |m: String| ExportError::Usage(m);
        let mut ep = Endpoint::from_shared(url.to_string())
            .map_err(|e| usage(format!("--server `{url}`: {e}")))?;
        if url.starts_with("https://") {
            let mut tls = ClientTlsConfig::new();
            match ca_cert {
                Some(p) => {
                    let pem = std::fs::read(p).map_err(|source| ExportError::Io {
                        path: p.to_path_buf(),
                        source,
                    })?;
                    tls = tls.ca_certificate(Certificate::from_pem(pem));
                }
                None => {
                    return Err(usage(
                        "an https:// --server needs --ca-cert FILE (the CA that signed its certificate)".into(),
                    ));
                }
            }
            ep = ep
                .tls_config(tls)
                .map_err(|e| usage(format!("--server `{url}` TLS: {e}")))?;
        }
        let ch = ep
            .connect()
            .await
            .map_err(|e| usage(format!("cannot connect to {url}: {e}")))?;
        let mut c = FlightSqlServiceClient::new(ch);
        if let Some(user) = user {
            let pw = password.map(Secret::expose).unwrap_or_default();
            c.handshake(user, pw).await?;
        }
        Ok(Remote(c))
    }
}

impl Source {
    /// Tables the source shows this user, as (schema, table).
    pub async fn tables(&mut self) -> Result<Vec<(String, String)>> {
        let rows = self
            .collect("select table_schema, table_name from information_schema.tables where table_schema <> 'information_schema'")
            .await?;
        let mut out = Vec::new();
        for b in rows {
            let s = arrow::compute::cast(b.column(0), &arrow::datatypes::DataType::Utf8)?;
            let n = arrow::compute::cast(b.column(1), &arrow::datatypes::DataType::Utf8)?;
            let (s, n) = (as_strings(s.as_ref()), as_strings(n.as_ref()));
            for i in 0..b.num_rows() {
                out.push((s.value(i).to_string(), n.value(i).to_string()));
            }
        }
        Ok(out)
    }

    /// The schema `sql` answers with (planned, not run to the end).
    pub async fn schema(&mut self, sql: &str) -> Result<SchemaRef> {
        Ok(self.stream(sql).await?.schema)
    }

    /// Runs `sql` and streams its batches.
    pub async fn stream(&mut self, sql: &str) -> Result<Rows> {
        match self {
            Source::Local(ctx) => {
                let df = ctx
                    .sql_with_options(sql, crate::models::run::read_only())
                    .await?;
                let s = df.execute_stream().await?;
                Ok(Rows {
                    schema: s.schema(),
                    batches: s.map_err(ExportError::Query).boxed(),
                })
            }
            Source::Remote(Remote(c)) => {
                let info = c.execute(sql.to_string(), None).await?;
                let schema = std::sync::Arc::new(info.clone().try_decode_schema()?);
                let mut streams = Vec::new();
                for ep in &info.endpoint {
                    let ticket = ep.ticket.clone().ok_or_else(|| {
                        ExportError::Usage("the server answered without a ticket".into())
                    })?;
                    streams.push(c.do_get(ticket).await?.map_err(ExportError::Flight));
                }
                Ok(Rows {
                    schema,
                    batches: futures::stream::iter(streams).flatten().boxed(),
                })
            }
        }
    }

    async fn collect(&mut self, sql: &str) -> Result<Vec<RecordBatch>> {
        self.stream(sql).await?.batches.try_collect().await
    }
}

fn as_strings(a: &dyn Array) -> &StringArray {
    a.as_any()
        .downcast_ref::<StringArray>()
        .expect("cast to Utf8")
}
