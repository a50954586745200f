//! Connecting to a database target over tokio-postgres, with TLS when the URL asks for it.
//!
//! `sslmode` follows libpq: `disable` (plain), `prefer` (TLS when offered), `require`
//! (TLS, certificate not checked — what Supabase's connection strings use), `verify-ca` and
//! `verify-full` (TLS with the certificate checked against `sslrootcert`, else the public web
//! roots). URLs are never shown with their password.

use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use tokio_postgres::config::SslMode;

use crate::config::Config;
use crate::redact::redact_url;

/// Why a database target could not be used. [`crate::error`] maps each to the reply's outcome.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    /// The config has no `[targets]` at all.
    #[error(
        "No database targets are configured, so there is no `{name}`. Add [targets.{name}] url_env = \"...\" to the config."
    )]
    NoneConfigured {
        /// The name asked for.
        name: String,
    },
    /// No target by that name.
    #[error("Target `{name}` is not configured. Targets: {configured}.")]
    Unknown {
        /// The name asked for.
        name: String,
        /// The configured names, comma-separated.
        configured: String,
    },
    /// Its URL variable is not set.
    #[error(
        "Target {name}: {var} is not set, so drbot cannot connect. Set it in drbot's environment."
    )]
    UrlUnset {
        /// The target.
        name: String,
        /// The variable its URL should be in.
        var: String,
    },
    /// Its URL does not parse.
    #[error("Target {name}: its URL is not a valid PostgreSQL URL ({reason}).")]
    BadUrl {
        /// The target.
        name: String,
        /// What is wrong (no password in it).
        reason: String,
    },
    /// The server did not take the connection.
    #[error("Cannot connect to target {name} ({host}): {reason}.")]
    Connect {
        /// The target.
        name: String,
        /// Where it points.
        host: String,
        /// PostgreSQL's or the network's reason.
        reason: String,
    },
    /// The `sslrootcert` file is unusable.
    #[error("sslrootcert {path} is unusable: {reason}.")]
    RootCert {
        /// The file.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// TLS could not be set up at all.
    #[error("TLS setup failed: {0}")]
    Tls(String),
}

/// A database target from the config with its URL read from the environment.
#[derive(Clone)]
pub struct Target {
    /// The target's name (`production`, `staging`).
    pub name: String,
    /// The connection URL (holds the password: never show it; use [`Target::shown`]).
    url: String,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Target({}, {})", self.name, self.shown())
    }
}

impl Target {
    /// A target from a name and URL (tests, and `serve`'s control socket later).
    pub fn new(name: impl Into<String>, url: impl Into<String>) -> Target {
        Target {
            name: name.into(),
            url: url.into(),
        }
    }

    /// Looks up `name` in `[targets]` and reads its URL from the environment.
    pub fn resolve(
        config: &Config,
        name: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Target, TargetError> {
        let Some(t) = config.targets.get(name) else {
            let configured: Vec<String> = config.targets.keys().cloned().collect();
            return Err(if configured.is_empty() {
                TargetError::NoneConfigured {
                    name: name.to_string(),
                }
            } else {
                TargetError::Unknown {
                    name: name.to_string(),
                    configured: configured.join(", "),
                }
            });
        };
        let url = env(&t.url_env)
            .filter(|u| !u.trim().is_empty())
            .ok_or_else(|| TargetError::UrlUnset {
                name: name.to_string(),
                var: t.url_env.clone(),
            })?;
        Ok(Target {
            name: name.to_string(),
            url: url.trim().to_string(),
        })
    }

    /// The same server and credentials, another database (a drill's scratch database).
    pub fn with_database(&self, name: &str, database: &str) -> Target {
        let url = if let Some((scheme, rest)) = self.url.split_once("://") {
            let (main, query) = match rest.split_once('?') {
                Some((m, q)) => (m, Some(q)),
                None => (rest, None),
            };
            let authority = main.split_once('/').map_or(main, |(a, _)| a);
            let mut u = format!("{scheme}://{authority}/{database}");
            if let Some(q) = query {
                u.push('?');
                u.push_str(q);
            }
            u
        } else {
            // key=value form: replace or add dbname.
            let mut kept: Vec<&str> = self
                .url
                .split_whitespace()
                .filter(|kv| !kv.starts_with("dbname="))
                .collect();
            let db = format!("dbname={database}");
            kept.push(&db);
            kept.join(" ")
        };
        Target {
            name: name.to_string(),
            url,
        }
    }

    /// The same, its sessions named `name` in `pg_stat_activity` (`application_name`).
    pub fn with_application_name(&self, name: &str) -> Target {
        let encoded: String = name
            .bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect();
        let url = if self.url.contains("://") {
            let (base, query) = self.url.split_once('?').unwrap_or((&self.url, ""));
            let mut kept: Vec<String> = query
                .split('&')
                .filter(|kv| !kv.is_empty() && !kv.starts_with("application_name="))
                .map(str::to_string)
                .collect();
            kept.push(format!("application_name={encoded}"));
            format!("{base}?{}", kept.join("&"))
        } else {
            let mut kept: Vec<String> = self
                .url
                .split_whitespace()
                .filter(|kv| !kv.starts_with("application_name="))
                .map(str::to_string)
                .collect();
            kept.push(format!(
                "application_name='{}'",
                name.replace(['\\', '\''], "")
            ));
            kept.join(" ")
        };
        Target {
            name: self.name.clone(),
            url,
        }
    }

    /// The configured target this one points at (same host, port and database), if any.
    pub fn configured_as(
        &self,
        config: &Config,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Option<String>, TargetError> {
        let at = self.address()?;
        Ok(config
            .targets
            .keys()
            .find(|name| {
                Target::resolve(config, name, env).is_ok_and(|t| t.address().is_ok_and(|a| a == at))
            })
            .cloned())
    }

    /// Where it points, for telling two targets apart: host (loopback names as one), port and
    /// database.
    pub fn address(&self) -> Result<(String, u16, String), TargetError> {
        let (config, _) = self.pg_config()?;
        let host = config
            .get_hosts()
            .first()
            .map(|h| match h {
                tokio_postgres::config::Host::Tcp(s) => s.to_ascii_lowercase(),
                tokio_postgres::config::Host::Unix(p) => p.display().to_string(),
            })
            .unwrap_or_default();
        let host = match host.as_str() {
            "localhost" | "127.0.0.1" | "::1" | "[::1]" | "" => "loopback".to_string(),
            _ => host,
        };
        let port = config.get_ports().first().copied().unwrap_or(5432);
        let db = config
            .get_dbname()
            .or(config.get_user())
            .unwrap_or_default()
            .to_string();
        Ok((host, port, db))
    }

    /// The URL with its password removed.
    pub fn shown(&self) -> String {
        redact_url(&self.url)
    }

    /// The parsed connection settings and the TLS verification the URL asks for.
    pub(crate) fn pg_config(&self) -> Result<(tokio_postgres::Config, Verify), TargetError> {
        parse_url(&self.url).map_err(|reason| TargetError::BadUrl {
            name: self.name.clone(),
            reason,
        })
    }

    /// Connects, with TLS as the URL says; the connection runs on its own task.
    pub async fn connect(&self) -> Result<tokio_postgres::Client, TargetError> {
        let (config, verify) = self.pg_config()?;
        let fail = |e: tokio_postgres::Error| TargetError::Connect {
            name: self.name.clone(),
            host: host_of(&config),
            reason: pg_error(&e),
        };
        // tokio-postgres bounds only the TCP connect by connect_timeout: a server that accepts
        // and then never answers would hold the command for ever. The whole handshake gets the
        // same bound.
        let limit = config
            .get_connect_timeout()
            .copied()
            .unwrap_or(Duration::from_secs(10));
        let silent = || TargetError::Connect {
            name: self.name.clone(),
            host: host_of(&config),
            reason: format!(
                "the server accepted the connection but did not answer within {} s",
                limit.as_secs()
            ),
        };
        let client = if config.get_ssl_mode() == SslMode::Disable {
            let (client, conn) = tokio::time::timeout(limit, config.connect(tokio_postgres::NoTls))
                .await
                .map_err(|_| silent())?
                .map_err(fail)?;
            tokio::spawn(async move {
                if let Err(e) = conn.await {
                    tracing::debug!(error = %e, "database connection ended");
                }
            });
            client
        } else {
            let tls = tokio_postgres_rustls::MakeRustlsConnect::new(tls_config(&verify)?);
            let (client, conn) = tokio::time::timeout(limit, config.connect(tls))
                .await
                .map_err(|_| silent())?
                .map_err(fail)?;
            tokio::spawn(async move {
                if let Err(e) = conn.await {
                    tracing::debug!(error = %e, "database connection ended");
                }
            });
            client
        };
        Ok(client)
    }
}

/// How the server's certificate is checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Verify {
    /// Not checked (`prefer`, `require`), as libpq does.
    None,
    /// Checked against these roots (`verify-ca`, `verify-full`); `None` means the web roots.
    Roots(Option<std::path::PathBuf>),
}

/// Parses a URL, taking out the TLS settings tokio-postgres does not understand itself.
fn parse_url(url: &str) -> Result<(tokio_postgres::Config, Verify), String> {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, q),
        None => (url, ""),
    };
    let mut kept = Vec::new();
    let mut mode = None;
    let mut root = None;
    for kv in query.split('&').filter(|s| !s.is_empty()) {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        match k {
            "sslmode" => mode = Some(v.to_string()),
            "sslrootcert" => root = Some(std::path::PathBuf::from(v)),
            _ => kept.push(kv),
        }
    }
    let rebuilt = if kept.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    let mut config: tokio_postgres::Config =
        rebuilt.parse().map_err(|e: tokio_postgres::Error| {
            // tokio-postgres's parse errors do not contain the URL.
            e.to_string()
        })?;
    let verify = match mode.as_deref() {
        None | Some("prefer") | Some("allow") => {
            config.ssl_mode(SslMode::Prefer);
            Verify::None
        }
        Some("disable") => {
            config.ssl_mode(SslMode::Disable);
            Verify::None
        }
        Some("require") => {
            config.ssl_mode(SslMode::Require);
            // libpq: require with a root certificate file behaves as verify-ca.
            match root {
                Some(r) => Verify::Roots(Some(r)),
                None => Verify::None,
            }
        }
        Some("verify-ca") | Some("verify-full") => {
            config.ssl_mode(SslMode::Require);
            Verify::Roots(root)
        }
        Some(other) => {
            return Err(format!(
                "sslmode={other} is not one of disable, prefer, require, verify-ca, verify-full"
            ));
        }
    };
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(Duration::from_secs(10));
    }
    if config.get_application_name().is_none() {
        config.application_name("drbot");
    }
    Ok((config, verify))
}

fn tls_config(verify: &Verify) -> Result<rustls::ClientConfig, TargetError> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| TargetError::Tls(e.to_string()))?;
    Ok(match verify {
        Verify::None => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoCertCheck(provider)))
            .with_no_client_auth(),
        Verify::Roots(file) => {
            let mut roots = rustls::RootCertStore::empty();
            match file {
                Some(path) => {
                    let bad = |reason: String| TargetError::RootCert {
                        path: path.display().to_string(),
                        reason,
                    };
                    let pem =
                        std::fs::read(path).map_err(|e| bad(format!("it cannot be read ({e})")))?;
                    for cert in rustls::pki_types::pem::PemObject::pem_slice_iter(&pem) {
                        let cert: CertificateDer<'static> = cert
                            .map_err(|e| bad(format!("it is not a PEM certificate file ({e})")))?;
                        roots
                            .add(cert)
                            .map_err(|e| bad(format!("it holds an unusable certificate ({e})")))?;
                    }
                }
                None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
    })
}

/// `sslmode=require`: encrypt, but accept any certificate (libpq's meaning of require).
#[derive(Debug)]
struct NoCertCheck(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for NoCertCheck {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// `host:port/db` of a config, for messages.
pub(crate) fn host_of(config: &tokio_postgres::Config) -> String {
    let host = config
        .get_hosts()
        .first()
        .map(|h| match h {
            tokio_postgres::config::Host::Tcp(s) => s.clone(),
            tokio_postgres::config::Host::Unix(p) => p.display().to_string(),
        })
        .unwrap_or_else(|| "localhost".to_string());
    let port = config.get_ports().first().copied().unwrap_or(5432);
    format!(
        "{host}:{port}/{}",
        config.get_dbname().unwrap_or("postgres")
    )
}

/// A PostgreSQL error as one line: the server's message and code, or the client's error.
pub fn pg_error(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => {
            let mut s = format!("{} ({})", db.message(), db.code().code());
            if let Some(d) = db.detail() {
                s.push_str(&format!("; {d}"));
            }
            s
        }
        None => {
            let mut s = e.to_string();
            let mut src = std::error::Error::source(e);
            while let Some(inner) = src {
                s.push_str(&format!(": {inner}"));
                src = inner.source();
            }
            s
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_server_that_accepts_and_never_answers_is_given_up_on() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("test setup");
        let port = listener.local_addr().expect("test setup").port();
        let held = tokio::spawn(async move {
            let mut open = Vec::new();
            while let Ok((s, _)) = listener.accept().await {
                open.push(s); // accepted, never answered
            }
        });
        for mode in ["disable", "require"] {
            let t = Target::new(
                "silent",
                format!("postgres://u@127.0.0.1:{port}/db?sslmode={mode}&connect_timeout=1"),
            );
            let started = std::time::Instant::now();
            let e = t.connect().await.expect_err("no answer");
            assert!(started.elapsed() < Duration::from_secs(5), "{mode}");
            assert!(
                e.to_string().contains("did not answer within 1 s"),
                "{mode}: {e}"
            );
        }
        held.abort();
    }

    #[test]
    fn another_database_on_the_same_server_keeps_credentials_and_settings() {
        let t = Target::new(
            "drill",
            "postgres://u:p@db.example:6543/postgres?sslmode=require",
        );
        let s = t.with_database("scratch", "drbot_drill_3");
        assert_eq!(
            s.url,
            "postgres://u:p@db.example:6543/drbot_drill_3?sslmode=require"
        );
        assert_eq!(
            s.address().expect("parses"),
            ("db.example".to_string(), 6543, "drbot_drill_3".to_string())
        );
        let bare = Target::new("drill", "postgresql://localhost");
        assert_eq!(bare.with_database("s", "x").url, "postgresql://localhost/x");
        // Its sessions can be named, whatever the URL already says.
        let named = s.with_application_name("drbot DRILL-3 ab12");
        assert_eq!(
            named.url,
            "postgres://u:p@db.example:6543/drbot_drill_3?sslmode=require&application_name=drbot%20DRILL-3%20ab12"
        );
        assert_eq!(
            named.pg_config().expect("parses").0.get_application_name(),
            Some("drbot DRILL-3 ab12")
        );
        let kv = Target::new("drill", "host=127.0.0.1 dbname=postgres user=me");
        assert_eq!(
            kv.with_database("s", "x").url,
            "host=127.0.0.1 user=me dbname=x"
        );
        // localhost and 127.0.0.1 are one server.
        assert_eq!(
            Target::new("a", "postgres://localhost:5432/test")
                .address()
                .expect("parses"),
            Target::new("b", "postgres://x@127.0.0.1/test")
                .address()
                .expect("parses")
        );
    }

    #[test]
    fn urls_keep_their_tls_wishes() {
        let (c, v) = parse_url("postgres://u:p@h:6543/db?sslmode=require").expect("test setup");
        assert_eq!((c.get_ssl_mode(), v), (SslMode::Require, Verify::None));
        assert_eq!(host_of(&c), "h:6543/db");
        let (c, v) = parse_url(
            "postgresql://u@h/db?sslmode=verify-full&sslrootcert=/x/ca.pem&application_name=a",
        )
        .expect("test setup");
        assert_eq!(c.get_ssl_mode(), SslMode::Require);
        assert_eq!(v, Verify::Roots(Some("/x/ca.pem".into())));
        assert_eq!(c.get_application_name(), Some("a"));
        let (c, _) = parse_url("postgres://h/db").expect("test setup");
        assert_eq!(c.get_ssl_mode(), SslMode::Prefer);
        let (c, _) = parse_url("postgres://h/db?sslmode=disable").expect("test setup");
        assert_eq!(c.get_ssl_mode(), SslMode::Disable);
        let e = parse_url("postgres://u:hunter2@h/db?sslmode=bogus").unwrap_err();
        assert!(e.contains("sslmode=bogus") && !e.contains("hunter2"));
    }

    #[test]
    fn targets_never_show_their_password() {
        let t = Target::new("production", "postgres://app:hunter2@db:5432/postgres");
        assert_eq!(t.shown(), "postgres://app:***@db:5432/postgres");
        assert!(!format!("{t:?}").contains("hunter2"));
    }
}
