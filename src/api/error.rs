//! Typed errors of the API client. Callers branch on predicates
//! ([`ApiError::is_retryable`], [`ApiError::is_token_expired`]), never on strings.

use std::time::Duration;

/// Result alias for the API client.
pub type Result<T, E = ApiError> = std::result::Result<T, E>;

/// Which request an error belongs to: enough to find it in logs without any secret.
#[derive(Debug, Clone, Default)]
pub struct RequestContext {
    /// Request path, e.g. `/order/202309/orders/search`.
    pub path: String,
    /// Shop cipher the request was for, if shop-scoped.
    pub shop: Option<String>,
}

impl std::fmt::Display for RequestContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.shop {
            Some(s) => write!(f, "{} (shop {s})", self.path),
            None => write!(f, "{}", self.path),
        }
    }
}

/// Everything that can go wrong talking to the TikTok Shop API (or the sandbox).
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Credentials or signature rejected (codes 106001, 105xxx, 36004004, token header errors).
    #[error("{ctx}: authentication failed (code {code}): {message}{hint}", hint = auth_hint(code, message))]
    Auth {
        /// Request context.
        ctx: RequestContext,
        /// API error code.
        code: i64,
        /// API message.
        message: String,
    },
    /// The access token expired (105002); the client refreshes and retries once.
    #[error("{ctx}: access token expired (code {code}): {message}")]
    TokenExpired {
        /// Request context.
        ctx: RequestContext,
        /// API error code.
        code: i64,
        /// API message.
        message: String,
    },
    /// HTTP 429 / 36009002.
    #[error("{ctx}: rate limited (code {code}); retry after {retry_after:?}")]
    RateLimited {
        /// Request context.
        ctx: RequestContext,
        /// API error code.
        code: i64,
        /// Server-provided Retry-After, if any.
        retry_after: Option<Duration>,
    },
    /// The request itself is wrong (bad parameter, unknown path, missing shop_cipher, …).
    #[error("{ctx}: invalid request (HTTP {status}, code {code}): {message}")]
    InvalidRequest {
        /// Request context.
        ctx: RequestContext,
        /// HTTP status.
        status: u16,
        /// API error code.
        code: i64,
        /// API message.
        message: String,
    },
    /// Server-side failure: 5xx, 36009003 internal error, 36009007 gateway timeout.
    #[error("{ctx}: server error (HTTP {status}, code {code}): {message}")]
    Server {
        /// Request context.
        ctx: RequestContext,
        /// HTTP status.
        status: u16,
        /// API error code (0 when the body was not an envelope).
        code: i64,
        /// API message or a body excerpt.
        message: String,
    },
    /// Connection refused/reset, DNS, or the client-side request timeout.
    #[error("{ctx}: transport error{}: {source}", if *.timeout { " (timeout)" } else { "" })]
    Transport {
        /// Request context.
        ctx: RequestContext,
        /// Whether this was a timeout.
        timeout: bool,
        /// Underlying error.
        #[source]
        source: reqwest::Error,
    },
    /// The response was not the expected envelope / shape.
    #[error("{ctx}: could not decode response (HTTP {status}): {detail}")]
    Decode {
        /// Request context.
        ctx: RequestContext,
        /// HTTP status.
        status: u16,
        /// What was wrong.
        detail: String,
    },
    /// The body holds bytes that are not UTF-8 (a broken encoder upstream). Asking again
    /// gets the same bytes, so this is not retried: the window fails and keeps its cursor.
    #[error(
        "{ctx}: response body is not valid UTF-8 at byte {offset} (HTTP {status}) near \"{excerpt}\"; \
         the page cannot be read as JSON"
    )]
    InvalidUtf8 {
        /// Request context.
        ctx: RequestContext,
        /// HTTP status.
        status: u16,
        /// Offset of the first invalid byte.
        offset: usize,
        /// The text around it, invalid bytes shown as U+FFFD.
        excerpt: String,
    },
    /// A walk's `total_count` changed between its pages: records moved in or out of the
    /// query while it was being read, and offset-style page tokens then skip or repeat
    /// records. Not retried per request; the window is read again from its first page.
    #[error(
        "{ctx}: the list changed while it was read (total_count {first} on the first page, {now} on page {page}); \
         pages may have skipped records"
    )]
    Shifted {
        /// Request context.
        ctx: RequestContext,
        /// `total_count` of the walk's first page.
        first: u64,
        /// `total_count` of this page.
        now: u64,
        /// 0-based page index.
        page: u32,
    },
    /// Retries exhausted; the last error is kept.
    #[error("{attempts} attempts failed; last: {last}")]
    RetriesExhausted {
        /// Attempts made.
        attempts: u32,
        /// The final error.
        #[source]
        last: Box<ApiError>,
    },
    /// No stored token for a shop, token file unreadable, or similar local auth problem.
    #[error("{0}")]
    TokenStore(String),
    /// Client misconfiguration (bad URL etc.).
    #[error("invalid client configuration: {0}")]
    Config(String),
}

/// What an operator can do about a rejected signature or app credential. The secret is
/// never named by value; the config key is.
fn auth_hint(code: &i64, message: &str) -> &'static str {
    let app_credentials = *code == 106001
        || (*code == 36009004 && message.to_ascii_lowercase().contains("app_secret"));
    if app_credentials {
        " — check api.app_secret (SHOPLAKE_API__APP_SECRET): after an app secret reset in the \
         Partner Center set the new one; stored tokens stay valid"
    } else {
        ""
    }
}

impl ApiError {
    /// Worth retrying with backoff: 429, 5xx, 36009003/36009007, transport failures.
    pub fn is_retryable(&self) -> bool {
        match self {
            ApiError::RateLimited { .. } | ApiError::Server { .. } | ApiError::Transport { .. } => {
                true
            }
            // A success or server answer whose body does not parse was cut off on the way
            // (proxy, dropped connection): asking again gets the whole page.
            ApiError::Decode { status, .. } => (200..300).contains(status) || *status >= 500,
            _ => false,
        }
    }

    /// The access token expired: refresh and retry.
    pub fn is_token_expired(&self) -> bool {
        matches!(self, ApiError::TokenExpired { .. })
    }

    /// Server-provided delay before the next attempt.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ApiError::RateLimited { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// The API error code, when the server answered with an envelope.
    pub fn code(&self) -> Option<i64> {
        match self {
            ApiError::Auth { code, .. }
            | ApiError::TokenExpired { code, .. }
            | ApiError::RateLimited { code, .. }
            | ApiError::InvalidRequest { code, .. }
            | ApiError::Server { code, .. } => Some(*code),
            ApiError::RetriesExhausted { last, .. } => last.code(),
            _ => None,
        }
    }

    /// Classifies an API answer (HTTP status + envelope code) into a typed error.
    /// `code == 0` with a 2xx status is success and must not reach here.
    pub fn classify(
        ctx: RequestContext,
        status: u16,
        code: i64,
        message: String,
        retry_after: Option<Duration>,
    ) -> ApiError {
        match code {
            105002 => ApiError::TokenExpired { ctx, code, message },
            36009002 => ApiError::RateLimited {
                ctx,
                code,
                retry_after,
            },
            36009003 | 36009007 => ApiError::Server {
                ctx,
                status,
                code,
                message,
            },
            _ if status == 429 => ApiError::RateLimited {
                ctx,
                code,
                retry_after,
            },
            _ if status >= 500 => ApiError::Server {
                ctx,
                status,
                code,
                message,
            },
            106001 | 101000 | 105005 | 36004004 => ApiError::Auth { ctx, code, message },
            c if (105000..106000).contains(&c) => ApiError::Auth { ctx, code, message },
            _ if status == 401 || status == 403 => ApiError::Auth { ctx, code, message },
            _ => ApiError::InvalidRequest {
                ctx,
                status,
                code,
                message,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(status: u16, code: i64) -> ApiError {
        ApiError::classify(RequestContext::default(), status, code, "m".into(), None)
    }

    /// The retry classifier over every status/code the API documents.
    #[test]
    fn classification_table() {
        let table: &[(u16, i64, bool, bool)] = &[
            // status, code, retryable, token-expired
            (429, 36009002, true, false),
            (200, 36009002, true, false),
            (500, 36009003, true, false),
            (200, 36009003, true, false),
            (504, 36009007, true, false),
            (503, 0, true, false),
            (502, 0, true, false),
            (401, 106001, false, false),
            (401, 105002, false, true),
            (200, 105002, false, true),
            (403, 105005, false, false),
            (200, 36009004, false, false),
            (400, 106013, false, false),
            (404, 36009009, false, false),
            (405, 36009010, false, false),
            (200, 36004004, false, false),
            (200, 21008111, false, false),
        ];
        for &(status, code, retry, expired) in table {
            let e = c(status, code);
            assert_eq!(e.is_retryable(), retry, "{status}/{code}: {e}");
            assert_eq!(e.is_token_expired(), expired, "{status}/{code}: {e}");
            assert_eq!(e.code(), Some(code));
        }
        assert!(matches!(c(401, 106001), ApiError::Auth { .. }));
        assert!(matches!(c(400, 36009004), ApiError::InvalidRequest { .. }));
    }
}
