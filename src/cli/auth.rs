//! `shoplake auth …`: consent URL, code exchange, token refresh, key rotation.

use std::sync::Arc;

use anyhow::{Context, Result};
use clap::Subcommand;

use shoplake::api::ApiClient;
use shoplake::api::auth::{TokenStore, authorize_url, exchange_and_store};

use super::{Cli, config};

#[derive(Subcommand)]
pub enum AuthCommand {
    /// Seal every stored token under a new key (secrets/token.key; the previous key is
    /// kept as token.key.old until the next rotation).
    RotateKey,
    /// Print the URL a seller opens to authorize this app.
    Url {
        /// Opaque state echoed back to your redirect.
        #[arg(long, default_value = "shoplake")]
        state: String,
    },
    /// Exchange an authorization code for tokens and store one per authorized shop.
    Exchange {
        /// The auth code from the redirect (the sandbox's is SANDBOX_AUTH_CODE).
        #[arg(long)]
        code: String,
    },
    /// Refresh every stored access token now.
    Refresh,
}

pub async fn run(cli: &Cli, command: &AuthCommand) -> Result<()> {
    match command {
        AuthCommand::Url { state } => {
            let cc = config(cli)?.client_config()?;
            println!("{}", authorize_url(&cc.auth_base_url, &cc.app_key, state));
            Ok(())
        }
        AuthCommand::Exchange { code } => {
            let c = client(cli)?;
            let shops = exchange_and_store(&c, code)
                .await
                .context("exchanging the authorization code")?;
            for s in &shops {
                println!(
                    "authorized shop {} ({}, {}) cipher {}",
                    s.name, s.id, s.region, s.cipher
                );
            }
            if let Some(store) = c.tokens() {
                println!("tokens stored in {}", store.dir().display());
            }
            Ok(())
        }
        AuthCommand::RotateKey => {
            let n = token_store(cli)?.rotate_key()?;
            println!("sealed {n} token file(s) under a new key");
            Ok(())
        }
        AuthCommand::Refresh => {
            let c = client(cli)?;
            let store = c.tokens().context("no token store")?.clone();
            let n = store.refresh_all(&c).await.context("refreshing tokens")?;
            println!("refreshed {n} grant(s)");
            Ok(())
        }
    }
}

/// The token store in `--data-dir`.
fn token_store(cli: &Cli) -> Result<TokenStore> {
    Ok(TokenStore::open(
        cli.data_dir.join("secrets").join("tokens"),
    )?)
}

/// An API client from the config, with the token store.
fn client(cli: &Cli) -> Result<ApiClient> {
    let cc = config(cli)?.client_config()?;
    Ok(ApiClient::new(cc, Some(Arc::new(token_store(cli)?)))?)
}
