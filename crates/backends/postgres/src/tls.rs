//! TLS to the server, when the URL asks for it: `sslmode` and
//! `sslrootcert` are read here and taken out of the URL before the client
//! parses the rest (it knows neither `verify-ca`, `verify-full` nor
//! `sslrootcert`).
//!
//! * `disable`, `allow`, `prefer` (the default): no TLS. A connection
//!   that would accept any certificate protects from no one able to
//!   intercept it, so this backend never makes one.
//! * `require` and `verify-full`: TLS, the server's certificate checked
//!   against the trusted roots and the host name. (`require` checks more
//!   than libpq's, which trusts any certificate unless a root file exists.)
//! * `verify-ca`: TLS, the certificate checked against the roots, not the
//!   host name; only with a root file (with the public roots, a
//!   certificate for any name they signed would pass).
//!
//! The roots are the certificates in the PEM file `sslrootcert` names, or
//! the Mozilla set built in (`sslrootcert=system`, or none given). A root
//! file named without an `sslmode` asks for `verify-full`. Client
//! certificates (`sslcert`, `sslkey`) are not supported.

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use std::sync::Arc;
use tokio_postgres_rustls::MakeRustlsConnect;

/// What a URL asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Tls {
    /// No TLS.
    Off,
    /// TLS, the certificate checked against `roots` (`None`: the built-in
    /// set), and the host name if `name`; `mode` is the `sslmode` given.
    Verify {
        mode: &'static str,
        roots: Option<String>,
        name: bool,
    },
}

impl Tls {
    /// How messages show it: the `sslmode` given, and the root file.
    pub(crate) fn shown(&self) -> Option<String> {
        match self {
            Tls::Off => None,
            Tls::Verify { mode, roots, .. } => Some(match roots {
                Some(path) => format!("sslmode={mode}&sslrootcert={path}"),
                None => format!("sslmode={mode}"),
            }),
        }
    }
}

/// Why a URL's TLS settings are refused.
#[derive(Debug)]
pub(crate) enum Refused {
    /// A value that means nothing.
    Invalid(String),
    /// Something this backend does not do (client certificates).
    Unsupported(String),
}

/// Takes `sslmode`, `sslrootcert`, `sslcert` and `sslkey` out of `url`
/// (a `postgres://` URL's query, or a `key=value` string's pairs): the
/// rest of the URL, and the TLS it asks for — where the URL says nothing,
/// what `PGSSLMODE` and `PGSSLROOTCERT` say, as libpq reads them (`env`
/// reads a variable).
pub(crate) fn take(
    url: &str,
    env: impl Fn(&str) -> Option<String>,
) -> Result<(String, Tls), Refused> {
    if !url.contains("://") && (url.starts_with("postgres:") || url.starts_with("postgresql:")) {
        // Not echoed: it may hold a password.
        return Err(Refused::Invalid(
            "write postgres://user@host/database (two slashes)".into(),
        ));
    }
    let mut mode = None;
    let mut roots = None;
    let mut keep = |key: &str, value: String| -> Result<bool, Refused> {
        match key {
            "sslmode" => {
                mode = Some(value);
                Ok(false)
            }
            "sslrootcert" => {
                roots = Some(value);
                Ok(false)
            }
            "sslcert" | "sslkey" => Err(Refused::Unsupported(format!(
                "{key}: client certificates are not supported (authenticate with a password)"
            ))),
            _ => Ok(true),
        }
    };
    let rest = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        // The query starts where the client finds it: at the first `?`
        // after the user name and password (up to the first `@`), which
        // may hold an unencoded `?`.
        let scheme = url.find("://").map_or(0, |at| at + 3);
        let host = url[scheme..].find('@').map_or(scheme, |at| scheme + at + 1);
        match url[host..].find('?').map(|at| url.split_at(host + at)) {
            None => url.to_owned(),
            Some((base, query)) => {
                let query = &query[1..];
                let mut kept = Vec::new();
                for pair in query.split('&').filter(|pair| !pair.is_empty()) {
                    // Decoded as the client decodes them: `%` only.
                    let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
                    let decode = |text: &str| {
                        percent_encoding::percent_decode_str(text)
                            .decode_utf8_lossy()
                            .into_owned()
                    };
                    if keep(&decode(key), decode(value))? {
                        kept.push(pair);
                    }
                }
                if kept.is_empty() {
                    base.to_owned()
                } else {
                    format!("{base}?{}", kept.join("&"))
                }
            }
        }
    } else {
        let mut kept = Vec::new();
        for (key, value, span) in pairs(url)? {
            if keep(&key, value)? {
                kept.push(span);
            }
        }
        kept.join(" ")
    };
    let mode = mode.or_else(|| env("PGSSLMODE"));
    let roots = roots.or_else(|| env("PGSSLROOTCERT"));
    // A root file named without a mode asks for TLS (as libpq's
    // `sslrootcert=system` does): the checks verify-full makes.
    let mode = match (mode.as_deref(), &roots) {
        (None, Some(_)) => Some("verify-full"),
        (mode, _) => mode,
    };
    let roots = roots.filter(|r| r != "system");
    let (mode, name) = match mode {
        None | Some("disable" | "allow" | "prefer") => return Ok((rest, Tls::Off)),
        Some("require") => ("require", true),
        Some("verify-full") => ("verify-full", true),
        // With the public roots, any certificate a public authority
        // signed for any name would pass: only with the server's own.
        Some("verify-ca") if roots.is_none() => {
            return Err(Refused::Invalid(
                "sslmode=verify-ca needs sslrootcert=/path/ca.pem, the authority that signed \
                 the server's certificate (without a name check, the public roots would let \
                 any certificate they signed pass)"
                    .into(),
            ));
        }
        Some("verify-ca") => ("verify-ca", false),
        Some(other) => {
            return Err(Refused::Invalid(format!(
                "sslmode={other}: not one of disable, allow, prefer, require, verify-ca, verify-full"
            )));
        }
    };
    Ok((rest, Tls::Verify { mode, roots, name }))
}

/// The `key=value` pairs of libpq's connection string (values bare or
/// single-quoted, with `\'` and `\\` escapes; spaces around `=`; any
/// Unicode space between pairs, as the client splits them), each with its
/// text as written.
fn pairs(text: &str) -> Result<Vec<(String, String, &str)>, Refused> {
    let invalid = |what: &str| Refused::Invalid(format!("a key=value string: {what}"));
    let mut pairs = Vec::new();
    let mut rest = text;
    let offset = |part: &str| text.len() - part.len();
    loop {
        rest = rest.trim_start();
        if rest.is_empty() {
            return Ok(pairs);
        }
        let start = offset(rest);
        let key_end = rest
            .find(|c: char| c == '=' || c.is_whitespace())
            .unwrap_or(rest.len());
        let key = rest[..key_end].to_owned();
        rest = rest[key_end..].trim_start();
        let Some(after) = rest.strip_prefix('=') else {
            // Not echoed: a mistyped URL may hold a password.
            return Err(invalid(
                "a word without `=` (give key=value pairs, or a postgres:// URL)",
            ));
        };
        rest = after.trim_start();
        let mut value = String::new();
        if let Some(quoted) = rest.strip_prefix('\'') {
            let mut chars = quoted.char_indices();
            loop {
                match chars.next() {
                    None => return Err(invalid("a quote is not closed")),
                    Some((at, '\'')) => {
                        rest = &quoted[at + 1..];
                        break;
                    }
                    Some((_, '\\')) => match chars.next() {
                        Some((_, c)) => value.push(c),
                        None => return Err(invalid("a quote is not closed")),
                    },
                    Some((_, c)) => value.push(c),
                }
            }
        } else {
            // Up to a space that no backslash escapes, as the client reads.
            let mut chars = rest.char_indices();
            let mut end = rest.len();
            while let Some((at, c)) = chars.next() {
                match c {
                    '\\' => match chars.next() {
                        Some((_, escaped)) => value.push(escaped),
                        None => return Err(invalid("a backslash ends the string")),
                    },
                    c if c.is_whitespace() => {
                        end = at;
                        break;
                    }
                    c => value.push(c),
                }
            }
            rest = &rest[end..];
        }
        pairs.push((key, value, &text[start..offset(rest)]));
    }
}

/// What connects with TLS: the client's connector.
#[derive(Clone)]
pub(crate) struct Connector(pub(crate) MakeRustlsConnect);

impl std::fmt::Debug for Connector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Connector(rustls)")
    }
}

/// The connector for `tls` (`None`: no TLS).
pub(crate) fn connector(tls: &Tls) -> Result<Option<Connector>, String> {
    let Tls::Verify { roots, name, .. } = tls else {
        return Ok(None);
    };
    let mut store = rustls::RootCertStore::empty();
    match roots {
        Some(path) => {
            let pem = std::fs::read(path)
                .map_err(|err| format!("sslrootcert={path}: cannot read it: {err}"))?;
            let certs: Vec<CertificateDer<'static>> =
                rustls_pemfile_certs(&pem).map_err(|err| format!("sslrootcert={path}: {err}"))?;
            let (added, _) = store.add_parsable_certificates(certs);
            if added == 0 {
                return Err(format!(
                    "sslrootcert={path}: holds no certificate (a PEM file of the CA's certificates)"
                ));
            }
        }
        None => {
            store.add_parsable_certificates(
                webpki_root_certs::TLS_SERVER_ROOT_CERTS.iter().cloned(),
            );
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
        Arc::new(store),
        provider.clone(),
    )
    .build()
    .map_err(|err| format!("TLS: {err}"))?;
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|err| format!("TLS: {err}"))?;
    let config = if *name {
        config.with_webpki_verifier(verifier)
    } else {
        config
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyName(verifier)))
    };
    Ok(Some(Connector(MakeRustlsConnect::new(
        config.with_no_client_auth(),
    ))))
}

/// The certificates of a PEM file.
fn rustls_pemfile_certs(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
    use rustls::pki_types::pem::PemObject;
    CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| format!("not a PEM file of certificates: {err}"))
}

/// `verify-ca`: the chain checked as for any name, the name not at all.
#[derive(Debug)]
struct AnyName(Arc<rustls::client::WebPkiServerVerifier>);

impl ServerCertVerifier for AnyName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(rustls::CertificateError::NotValidForName))
            | Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn take(url: &str) -> Result<(String, Tls), Refused> {
        super::take(url, |_| None)
    }

    #[test]
    fn the_environment_says_what_the_url_does_not() {
        let env = |name: &str| match name {
            "PGSSLMODE" => Some("require".to_owned()),
            _ => None,
        };
        let (_, tls) = super::take("postgres://u@h/db", env).unwrap();
        assert_eq!(
            tls,
            Tls::Verify {
                mode: "require",
                roots: None,
                name: true
            }
        );
        let (_, tls) = super::take("postgres://u@h/db?sslmode=disable", env).unwrap();
        assert_eq!(tls, Tls::Off);
        let env = |name: &str| (name == "PGSSLROOTCERT").then(|| "/ca.pem".to_owned());
        let (_, tls) = super::take("postgres://u@h/db", env).unwrap();
        assert_eq!(
            tls,
            Tls::Verify {
                mode: "verify-full",
                roots: Some("/ca.pem".into()),
                name: true
            }
        );
    }

    #[test]
    fn mistyped_urls_are_not_echoed() {
        for typo in [
            "postgres:/app:secret@db/x",
            "postgres:app:secret@db",
            "app:secret@db",
        ] {
            let Err(Refused::Invalid(problem)) = take(typo) else {
                panic!("{typo} was taken")
            };
            assert!(!problem.contains("secret"), "{problem}");
        }
        let (rest, _) = take(r"password=a\ b sslmode=require host=h").unwrap();
        assert_eq!(
            rest, r"password=a\ b host=h",
            "an escaped space is in the value"
        );
    }

    #[test]
    fn the_url_loses_what_this_module_reads() {
        let (rest, tls) =
            take("postgres://u@h/db?application_name=x&sslmode=verify-ca&sslrootcert=%2Fca.pem")
                .unwrap();
        assert_eq!(rest, "postgres://u@h/db?application_name=x");
        assert_eq!(
            tls,
            Tls::Verify {
                mode: "verify-ca",
                roots: Some("/ca.pem".into()),
                name: false
            }
        );
        let (rest, tls) = take("host=h dbname = 'a db' sslmode='require'").unwrap();
        assert_eq!(rest, "host=h dbname = 'a db'");
        assert_eq!(
            tls,
            Tls::Verify {
                mode: "require",
                roots: None,
                name: true
            }
        );
        assert_eq!(
            take("postgres://u@h/db?sslmode=prefer").unwrap(),
            ("postgres://u@h/db".into(), Tls::Off)
        );
        assert!(take("postgres://u@h/db?sslmode=bogus").is_err());
        assert!(take("host=h sslmode='require").is_err());
        assert_eq!(
            take("postgres://u:pa?ss@h/db?sslmode=require").unwrap(),
            (
                "postgres://u:pa?ss@h/db".into(),
                Tls::Verify {
                    mode: "require",
                    roots: None,
                    name: true
                }
            ),
            "the query is where the client finds it"
        );
        assert_eq!(
            take("dbname=d\u{a0}sslmode=require").unwrap(),
            (
                "dbname=d".into(),
                Tls::Verify {
                    mode: "require",
                    roots: None,
                    name: true
                }
            ),
            "any space between pairs, as the client reads them"
        );
        assert!(take("postgres://u@h/db?sslmode=verify-ca").is_err());
        assert!(take("postgres://u@h/db?sslmode=verify-ca&sslrootcert=system").is_err());
        assert_eq!(
            take("postgres://u@h/db?sslrootcert=/ca.pem").unwrap().1,
            Tls::Verify {
                mode: "verify-full",
                roots: Some("/ca.pem".into()),
                name: true
            },
            "a root file asks for TLS"
        );
        assert_eq!(
            take("host=h ssl%6Dode=require").unwrap().1,
            Tls::Off,
            "a key=value string decodes nothing"
        );
        assert_eq!(
            take("postgres://u@h/db?ssl%6Dode=require").unwrap().1,
            Tls::Verify {
                mode: "require",
                roots: None,
                name: true
            },
            "a URL's keys are percent-decoded"
        );
        assert!(take("postgres://u@h/db?sslcert=/c.pem").is_err());
        assert_eq!(
            take("postgres://u@h/db?sslrootcert=system&sslmode=verify-full")
                .unwrap()
                .1,
            Tls::Verify {
                mode: "verify-full",
                roots: None,
                name: true
            }
        );
    }
}
