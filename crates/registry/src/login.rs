//! `login`: checks a user name and secret against a registry the way Docker does, before
//! anything is stored: `GET /v2/` and, when the registry answers with a challenge, the
//! same request with basic credentials, or the token service the challenge names asked
//! for a token with them.
use std::time::Duration;

use reqwest::header::{HeaderValue, WWW_AUTHENTICATE};
use reqwest::StatusCode;

use crate::{Credentials, Insecure, RegistryError};

/// What a registry asks for on `/v2/`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Challenge {
    None,
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
    },
}

/// Checks `credentials` against `registry` (`host[:port]`).
pub async fn check_login(
    registry: &str,
    credentials: &Credentials,
    insecure: &Insecure,
) -> Result<(), RegistryError> {
    crate::tls::install_provider();
    let host = match registry {
        "docker.io" | "index.docker.io" => "registry-1.docker.io",
        other => other,
    };
    let scheme = if insecure.allows(registry) {
        "http"
    } else {
        "https"
    };
    let url = format!("{scheme}://{host}/v2/");
    let client = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(60))
        .timeout(Duration::from_secs(300))
        .user_agent(concat!("bulwark/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| RegistryError::Registry {
            registry: registry.to_owned(),
            reason: e.to_string(),
        })?;
    let connect = |url: &str| {
        let url = url.to_owned();
        move |e: reqwest::Error| RegistryError::Connect {
            url,
            reason: e.to_string(),
        }
    };
    let first = client.get(&url).send().await.map_err(connect(&url))?;
    let challenge = match first.status() {
        StatusCode::UNAUTHORIZED => parse_challenge(first.headers().get(WWW_AUTHENTICATE)),
        status if status.is_success() => Challenge::None,
        status => {
            return Err(RegistryError::Registry {
                registry: registry.to_owned(),
                reason: format!("GET {url}: {status}"),
            })
        }
    };
    let response = match challenge {
        // A registry without authentication takes any login, as Docker finds.
        Challenge::None => return Ok(()),
        Challenge::Basic => client
            .get(&url)
            .basic_auth(&credentials.username, Some(&credentials.secret))
            .send()
            .await
            .map_err(connect(&url))?,
        Challenge::Bearer { realm, service } => {
            let mut query = vec![("account", credentials.username.clone())];
            query.extend(service.map(|s| ("service", s)));
            client
                .get(&realm)
                .query(&query)
                .basic_auth(&credentials.username, Some(&credentials.secret))
                .send()
                .await
                .map_err(connect(&realm))?
        }
    };
    match response.status() {
        status if status.is_success() => Ok(()),
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Err(RegistryError::LoginRefused {
            registry: registry.to_owned(),
        }),
        status => Err(RegistryError::Registry {
            registry: registry.to_owned(),
            reason: format!("login: {status}"),
        }),
    }
}

/// `Basic realm="x"` or `Bearer realm="https://...",service="..."`.
fn parse_challenge(header: Option<&HeaderValue>) -> Challenge {
    let Some(text) = header.and_then(|h| h.to_str().ok()) else {
        return Challenge::Basic;
    };
    let (scheme, params) = text.trim().split_once(' ').unwrap_or((text.trim(), ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Challenge::Basic;
    }
    let mut realm = None;
    let mut service = None;
    for (key, value) in params_of(params) {
        match key.to_ascii_lowercase().as_str() {
            "realm" => realm = Some(value),
            "service" => service = Some(value),
            _ => {}
        }
    }
    match realm {
        Some(realm) => Challenge::Bearer { realm, service },
        None => Challenge::Basic,
    }
}

/// `k="v",k2="v, 2",k3=v3` -> pairs (quoted values may hold commas).
fn params_of(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = text.trim();
    while let Some((key, after)) = rest.split_once('=') {
        let key = key.trim().trim_start_matches(',').trim().to_owned();
        let after = after.trim_start();
        let (value, next) = match after.strip_prefix('"') {
            Some(quoted) => {
                let end = quoted.find('"').unwrap_or(quoted.len());
                (
                    quoted[..end].to_owned(),
                    quoted.get(end + 1..).unwrap_or(""),
                )
            }
            None => {
                let end = after.find(',').unwrap_or(after.len());
                (after[..end].trim().to_owned(), &after[end..])
            }
        };
        out.push((key, value));
        rest = next.trim_start().trim_start_matches(',');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_are_read_as_docker_reads_them() {
        let bearer = HeaderValue::from_static(
            r#"Bearer realm="http://127.0.0.1:5001/token",service="registry, test",scope="x""#,
        );
        assert_eq!(
            parse_challenge(Some(&bearer)),
            Challenge::Bearer {
                realm: "http://127.0.0.1:5001/token".into(),
                service: Some("registry, test".into())
            }
        );
        let basic = HeaderValue::from_static(r#"Basic realm="Registry Realm""#);
        assert_eq!(parse_challenge(Some(&basic)), Challenge::Basic);
        assert_eq!(parse_challenge(None), Challenge::Basic);
    }
}
