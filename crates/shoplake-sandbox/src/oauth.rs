//! OAuth on the sandbox: the consent page, token get (auth code → tokens), token refresh,
//! and Get Authorized Shops. Token endpoints are not signed: like the real token host they
//! take `app_key` and `app_secret` in the query.

use serde::Serialize;

use super::gate::{ApiFault, TokenKind};
use super::{Ctx, Sandbox};

#[derive(Serialize)]
struct TokenData {
    access_token: String,
    access_token_expire_in: i64,
    refresh_token: String,
    refresh_token_expire_in: i64,
    open_id: &'static str,
    seller_name: &'static str,
    seller_base_region: &'static str,
    user_type: i64,
    granted_scopes: &'static [&'static str],
}

const SCOPES: &[&str] = &[
    "seller.authorization.info",
    "seller.order.info",
    "seller.product.basic",
    "seller.finance.info",
    "seller.fulfillment.basic",
    "data.shop_analytics.public.read",
];

fn check_app(sb: &Sandbox, ctx: &Ctx) -> Result<(), ApiFault> {
    let ok = ctx.q("app_key") == Some(sb.config.app_key.as_str())
        && ctx.q("app_secret").is_some_and(|s| {
            bool::from(subtle::ConstantTimeEq::ct_eq(
                s.as_bytes(),
                sb.app_secret().as_bytes(),
            ))
        });
    if ok {
        Ok(())
    } else {
        Err(ApiFault::new(
            axum::http::StatusCode::UNAUTHORIZED,
            36009004,
            "Invalid app_key or app_secret.",
        ))
    }
}

fn grant(sb: &Sandbox, refresh: Option<(String, i64)>) -> Vec<u8> {
    let now = super::unix_now();
    let nonce = sb.next_nonce();
    let access_exp = now + sb.config.token_ttl.as_secs() as i64;
    let (refresh_token, refresh_exp) = refresh.unwrap_or_else(|| {
        let exp = now + sb.config.refresh_ttl.as_secs() as i64;
        (sb.mint.mint(TokenKind::Refresh, exp, nonce), exp)
    });
    let data = TokenData {
        access_token: sb.mint.mint(TokenKind::Access, access_exp, nonce),
        access_token_expire_in: access_exp,
        refresh_token,
        refresh_token_expire_in: refresh_exp,
        open_id: "7010736057180325637",
        seller_name: "Sandbox Seller",
        seller_base_region: "US",
        user_type: 0,
        granted_scopes: SCOPES,
    };
    serde_json::to_vec(&data).expect("serializable")
}

/// `GET /api/v2/token/get?app_key&app_secret&auth_code&grant_type=authorized_code`.
pub fn token_get(sb: &Sandbox, ctx: &Ctx) -> Result<Vec<u8>, ApiFault> {
    check_app(sb, ctx)?;
    if ctx.q("grant_type") != Some("authorized_code") {
        return Err(ApiFault::param("grant_type must be authorized_code"));
    }
    if ctx.q("auth_code") != Some(sb.config.auth_code.as_str()) {
        return Err(ApiFault::new(
            axum::http::StatusCode::OK,
            36004004,
            "Invalid auth code.",
        ));
    }
    Ok(grant(sb, None))
}

/// `GET /api/v2/token/refresh?app_key&app_secret&refresh_token&grant_type=refresh_token`.
/// A new access token; the refresh token and its expiry stay the same.
pub fn token_refresh(sb: &Sandbox, ctx: &Ctx) -> Result<Vec<u8>, ApiFault> {
    check_app(sb, ctx)?;
    if ctx.q("grant_type") != Some("refresh_token") {
        return Err(ApiFault::param("grant_type must be refresh_token"));
    }
    let token = ctx.q("refresh_token").unwrap_or("");
    match sb.mint.check(token, TokenKind::Refresh) {
        Some(exp) if exp > super::unix_now() => Ok(grant(sb, Some((token.to_string(), exp)))),
        Some(_) => Err(ApiFault::new(
            axum::http::StatusCode::OK,
            105002,
            "Expired credentials. The refresh_token has expired.",
        )),
        None => Err(ApiFault::new(
            axum::http::StatusCode::OK,
            36004004,
            "Invalid refresh token.",
        )),
    }
}

/// `GET /authorization/202309/shops`.
pub fn shops(sb: &Sandbox, _ctx: &Ctx) -> Result<Vec<u8>, ApiFault> {
    #[derive(Serialize)]
    struct ShopJson<'a> {
        id: &'a str,
        name: &'a str,
        region: &'a str,
        seller_type: &'a str,
        cipher: &'a str,
        code: &'a str,
    }
    #[derive(Serialize)]
    struct Out<'a> {
        shops: Vec<ShopJson<'a>>,
    }
    let shops = sb
        .data
        .shops
        .iter()
        .enumerate()
        .map(|(i, s)| ShopJson {
            id: &s.id,
            name: &s.name,
            region: if sb.config.realism.unknown_region_shop == Some(i) {
                super::realism::NEW_MARKET
            } else {
                s.region.code
            },
            seller_type: s.seller_type,
            cipher: &s.cipher,
            code: &s.code,
        })
        .collect();
    Ok(serde_json::to_vec(&Out { shops }).expect("serializable"))
}

/// The consent page a seller would see: shows the sandbox's fixed authorization code.
pub fn authorize_page(app_key: &str, state: &str, code: &str) -> String {
    let esc = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
    };
    format!(
        "<!doctype html><title>shoplake sandbox: authorize</title>\
         <h1>Sandbox Seller authorized app {}</h1>\
         <p>Authorization code: <code id=\"code\">{}</code> (state <code>{}</code>)</p>\
         <p>Run <code>shoplake auth exchange --code {}</code></p>",
        esc(app_key),
        esc(code),
        esc(state),
        esc(code)
    )
}
