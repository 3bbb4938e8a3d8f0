//! The sandbox rejects every kind of bad request with the real code in the real envelope.
//! Requests are built by hand (like curl or a third-party SDK would), signed with
//! `shoplake::api::sign` only where the case needs a valid signature.

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::Value;
use shoplake::api::sign;
use shoplake_sandbox::{self as sandbox, RunningSandbox};

struct Raw<'a> {
    method: &'a str,
    path: &'a str,
    query: Vec<(String, String)>,
    body: &'a str,
    token: Option<String>,
    sign: Sign,
}

enum Sign {
    Good,
    Wrong,
    Missing,
}

impl<'a> Raw<'a> {
    fn new(method: &'a str, path: &'a str, token: Option<String>) -> Self {
        Raw {
            method,
            path,
            query: vec![
                ("app_key".into(), KEY.into()),
                ("timestamp".into(), now().to_string()),
            ],
            body: "",
            token,
            sign: Sign::Good,
        }
    }
    fn q(mut self, k: &str, v: &str) -> Self {
        self.query.retain(|(kk, _)| kk != k);
        self.query.push((k.into(), v.into()));
        self
    }
    fn without(mut self, k: &str) -> Self {
        self.query.retain(|(kk, _)| kk != k);
        self
    }
    async fn send(self, sb: &RunningSandbox) -> (StatusCode, Value, Option<String>) {
        let mut query = self.query.clone();
        match self.sign {
            Sign::Good => query.push((
                "sign".into(),
                sign::sign(
                    SECRET,
                    self.path,
                    self.query.iter().map(|(k, v)| (k.as_str(), v.as_str())),
                    self.body.as_bytes(),
                ),
            )),
            Sign::Wrong => query.push(("sign".into(), "0".repeat(64))),
            Sign::Missing => {}
        }
        let url = format!("{}{}", sb.base_url(), self.path);
        let c = reqwest::Client::new();
        let mut rb = c
            .request(self.method.parse().unwrap(), url)
            .query(&query)
            .header("content-type", "application/json");
        if let Some(t) = &self.token {
            rb = rb.header("x-tts-access-token", t);
        }
        if !self.body.is_empty() {
            rb = rb.body(self.body.to_string());
        }
        let resp = rb.send().await.unwrap();
        let status = resp.status();
        let retry_after = resp
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap().to_string());
        let body: Value = resp.json().await.unwrap();
        for k in ["code", "message", "request_id", "data"] {
            assert!(body.get(k).is_some(), "envelope lacks {k}: {body}");
        }
        (status, body, retry_after)
    }
}

async fn token_for(sb: &RunningSandbox) -> (String, String) {
    let url = format!(
        "{}/api/v2/token/get?app_key={KEY}&app_secret={SECRET}&auth_code={}&grant_type=authorized_code",
        sb.base_url(),
        sandbox::DEFAULT_AUTH_CODE
    );
    let v: Value = reqwest::get(url).await.unwrap().json().await.unwrap();
    assert_eq!(v["code"], 0, "{v}");
    let exp = v["data"]["access_token_expire_in"].as_i64().unwrap();
    assert!(exp > now(), "expiry is an absolute unix time");
    let t = v["data"]["access_token"].as_str().unwrap().to_string();
    let (_, body, _) = Raw::new("GET", "/authorization/202309/shops", Some(t.clone()))
        .send(sb)
        .await;
    assert_eq!(body["code"], 0, "{body}");
    let cipher = body["data"]["shops"][0]["cipher"]
        .as_str()
        .unwrap()
        .to_string();
    for k in ["id", "name", "region", "cipher", "seller_type", "code"] {
        assert!(body["data"]["shops"][0].get(k).is_some(), "shop lacks {k}");
    }
    (t, cipher)
}

const SEARCH: &str = "/order/202309/orders/search";

/// A bad request: what is wrong, the request, the code and HTTP status it must get.
type Case = (&'static str, Raw<'static>, i64, u16);

/// Signing, app key, timestamp and access token gone wrong.
fn auth_cases(token: &str, cipher: &str) -> Vec<Case> {
    let tok = || Some(token.to_string());
    vec![
        (
            "wrong sign",
            Raw {
                sign: Sign::Wrong,
                ..Raw::new("POST", SEARCH, tok())
                    .q("shop_cipher", cipher)
                    .q("page_size", "10")
            },
            106001,
            401,
        ),
        (
            "missing sign",
            Raw {
                sign: Sign::Missing,
                ..Raw::new("POST", SEARCH, tok())
                    .q("shop_cipher", cipher)
                    .q("page_size", "10")
            },
            36009004,
            401,
        ),
        (
            "unknown app_key",
            Raw::new("POST", SEARCH, tok())
                .q("app_key", "nope")
                .q("shop_cipher", cipher)
                .q("page_size", "10"),
            36009004,
            401,
        ),
        (
            "missing app_key",
            Raw::new("POST", SEARCH, tok())
                .without("app_key")
                .q("shop_cipher", cipher),
            36009004,
            401,
        ),
        (
            "stale timestamp",
            Raw::new("POST", SEARCH, tok())
                .q("timestamp", &(now() - 301).to_string())
                .q("shop_cipher", cipher),
            36009004,
            401,
        ),
        (
            "future timestamp",
            Raw::new("POST", SEARCH, tok())
                .q("timestamp", &(now() + 60).to_string())
                .q("shop_cipher", cipher),
            36009004,
            401,
        ),
        (
            "missing timestamp",
            Raw::new("POST", SEARCH, tok())
                .without("timestamp")
                .q("shop_cipher", cipher),
            36009004,
            401,
        ),
        (
            "missing access token",
            Raw::new("POST", SEARCH, None)
                .q("shop_cipher", cipher)
                .q("page_size", "10"),
            36009004,
            401,
        ),
        (
            "forged access token",
            Raw::new("POST", SEARCH, Some("TTP_abc.def".into())).q("shop_cipher", cipher),
            36009004,
            401,
        ),
    ]
}

/// Requests whose shop, parameters, path or method are wrong.
fn request_cases(token: &str, cipher: &str) -> Vec<Case> {
    let tok = || Some(token.to_string());
    vec![
        (
            "missing shop_cipher",
            Raw::new("POST", SEARCH, tok()).q("page_size", "10"),
            106013,
            400,
        ),
        (
            "unknown shop_cipher",
            Raw::new("POST", SEARCH, tok())
                .q("shop_cipher", "ROW_nope")
                .q("page_size", "10"),
            36009004,
            400,
        ),
        (
            "shop_cipher where not expected",
            Raw::new("GET", "/authorization/202309/shops", tok()).q("shop_cipher", cipher),
            36009004,
            400,
        ),
        (
            "page_size too big",
            Raw::new("POST", SEARCH, tok())
                .q("shop_cipher", cipher)
                .q("page_size", "101"),
            36009004,
            400,
        ),
        (
            "page_size missing",
            Raw::new("POST", SEARCH, tok()).q("shop_cipher", cipher),
            36009004,
            400,
        ),
        (
            "bad page_token",
            Raw::new("POST", SEARCH, tok())
                .q("shop_cipher", cipher)
                .q("page_size", "10")
                .q("page_token", "b2Zmc2V0PTAK"),
            36009004,
            400,
        ),
        (
            "bad sort_field",
            Raw::new("POST", SEARCH, tok())
                .q("shop_cipher", cipher)
                .q("page_size", "10")
                .q("sort_field", "price"),
            36009004,
            400,
        ),
        (
            "too many detail ids",
            Raw::new("GET", "/order/202507/orders", tok())
                .q("shop_cipher", cipher)
                .q("ids", &vec!["1"; 51].join(",")),
            36009004,
            400,
        ),
        (
            "order of another seller",
            Raw::new("GET", "/order/202507/orders", tok())
                .q("shop_cipher", cipher)
                .q("ids", "123"),
            21008111,
            200,
        ),
        (
            "unknown path",
            Raw::new("GET", "/order/202309/nothing", tok()).q("shop_cipher", cipher),
            36009009,
            404,
        ),
        (
            "wrong method",
            Raw::new("GET", SEARCH, tok()).q("shop_cipher", cipher),
            36009010,
            405,
        ),
    ]
}

#[tokio::test]
async fn every_bad_request_kind_gets_the_real_code() {
    let sb = start(small(2, 500)).await;
    let (token, cipher) = token_for(&sb).await;

    let good = Raw::new("POST", SEARCH, Some(token.clone()))
        .q("shop_cipher", &cipher)
        .q("page_size", "10");
    let (s, b, _) = good.send(&sb).await;
    assert_eq!((s, b["code"].as_i64()), (StatusCode::OK, Some(0)), "{b}");
    assert!(b["data"]["orders"].as_array().unwrap().len() == 10);

    let cases = auth_cases(&token, &cipher)
        .into_iter()
        .chain(request_cases(&token, &cipher));
    for (name, raw, code, status) in cases {
        let (s, b, _) = raw.send(&sb).await;
        assert_eq!(b["code"].as_i64(), Some(code), "{name}: {b}");
        assert_eq!(s.as_u16(), status, "{name}: {b}");
        assert!(b["data"].is_null(), "{name}: error data must be null");
        assert!(!b["message"].as_str().unwrap().is_empty(), "{name}");
    }
    a_body_the_signature_did_not_cover_is_rejected(&sb, &token, &cipher).await;
    bad_auth_codes_are_rejected_on_the_token_host(&sb).await;
}

async fn a_body_the_signature_did_not_cover_is_rejected(
    sb: &RunningSandbox,
    token: &str,
    cipher: &str,
) {
    let mut r = Raw::new("POST", SEARCH, Some(token.to_string()))
        .q("shop_cipher", cipher)
        .q("page_size", "10");
    r.body = r#"{"order_status":"COMPLETED"}"#;
    let signed_empty = sign::sign(
        SECRET,
        SEARCH,
        r.query.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        b"",
    );
    r.sign = Sign::Missing;
    r.query.push(("sign".into(), signed_empty));
    let (_, b, _) = r.send(sb).await;
    assert_eq!(b["code"], 106001, "{b}");
}

async fn bad_auth_codes_are_rejected_on_the_token_host(sb: &RunningSandbox) {
    let url = format!(
        "{}/api/v2/token/get?app_key={KEY}&app_secret={SECRET}&auth_code=WRONG&grant_type=authorized_code",
        sb.base_url()
    );
    let v: Value = reqwest::get(url).await.unwrap().json().await.unwrap();
    assert_eq!(v["code"], 36004004, "{v}");
    let url = format!(
        "{}/api/v2/token/get?app_key={KEY}&app_secret=wrong&auth_code=x&grant_type=authorized_code",
        sb.base_url()
    );
    let v: Value = reqwest::get(url).await.unwrap().json().await.unwrap();
    assert_eq!(v["code"], 36009004, "{v}");
}

#[tokio::test]
async fn expired_token_gets_105002() {
    let mut cfg = small(1, 100);
    cfg.token_ttl = std::time::Duration::ZERO;
    let sb = start(cfg).await;
    let url = format!(
        "{}/api/v2/token/get?app_key={KEY}&app_secret={SECRET}&auth_code={}&grant_type=authorized_code",
        sb.base_url(),
        sandbox::DEFAULT_AUTH_CODE
    );
    let v: Value = reqwest::get(url).await.unwrap().json().await.unwrap();
    let token = v["data"]["access_token"].as_str().unwrap().to_string();
    let (s, b, _) = Raw::new("GET", "/authorization/202309/shops", Some(token))
        .send(&sb)
        .await;
    assert_eq!((s.as_u16(), b["code"].as_i64()), (401, Some(105002)), "{b}");
}

#[tokio::test]
async fn rate_limit_answers_429_with_retry_after() {
    let mut cfg = small(1, 100);
    cfg.rps = 3.0;
    let sb = start(cfg).await;
    let (token, cipher) = token_for(&sb).await;
    let mut limited = None;
    for _ in 0..10 {
        let r = Raw::new("POST", "/order/202309/orders/search", Some(token.clone()))
            .q("shop_cipher", &cipher)
            .q("page_size", "1");
        let (s, b, ra) = r.send(&sb).await;
        if s == StatusCode::TOO_MANY_REQUESTS {
            limited = Some((b, ra));
            break;
        }
    }
    let (b, ra) = limited.expect("the 4th request within a second is limited");
    assert_eq!(b["code"], 36009002);
    assert!(ra.unwrap().parse::<u64>().unwrap() >= 1);
    // Limits are per endpoint: another endpoint is still open.
    let (_, b, _) = Raw::new("POST", "/product/202502/products/search", Some(token))
        .q("shop_cipher", &cipher)
        .q("page_size", "1")
        .send(&sb)
        .await;
    assert_eq!(b["code"], 0, "{b}");
}

#[tokio::test]
async fn same_seed_same_answers_and_consent_page() {
    let a = start(small(2, 300)).await;
    let b = start(small(2, 300)).await;
    let (ta, ca) = token_for(&a).await;
    let (tb, cb) = token_for(&b).await;
    assert_eq!(ca, cb, "shop ciphers derive from the seed");
    let strip = |mut v: Value| {
        v["request_id"] = Value::Null;
        v
    };
    let (_, pa, _) = Raw::new("POST", "/order/202309/orders/search", Some(ta))
        .q("shop_cipher", &ca)
        .q("page_size", "50")
        .send(&a)
        .await;
    let (_, pb, _) = Raw::new("POST", "/order/202309/orders/search", Some(tb))
        .q("shop_cipher", &cb)
        .q("page_size", "50")
        .send(&b)
        .await;
    assert_eq!(strip(pa), strip(pb));
    let html = reqwest::get(format!(
        "{}/oauth/authorize?app_key={KEY}&state=xyz",
        a.base_url()
    ))
    .await
    .unwrap()
    .text()
    .await
    .unwrap();
    assert!(html.contains(sandbox::DEFAULT_AUTH_CODE) && html.contains("xyz"));
}
