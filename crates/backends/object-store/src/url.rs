//! Stores from URLs, configured by `object_store`'s own parsing: the scheme
//! picks the store (`s3://`, `gs://`, `az://`, `file://`, `memory://`, and
//! the HTTPS forms of each), options and the environment configure it.

use object_store::ObjectStore;
use object_store::path::Path;
use std::sync::Arc;

/// Error of [`parse_url`] and [`parse_url_opts`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UrlError {
    /// The text is not a URL.
    #[error("{url:?} is not a URL: {source}")]
    NotAUrl {
        /// The text given.
        url: String,
        /// Why it does not parse.
        source: url::ParseError,
    },
    /// `object_store` does not know the scheme, or the configuration is
    /// incomplete or invalid (for example an S3 URL without a region).
    #[error("cannot open a store for {url}: {source}")]
    Store {
        /// The URL given.
        url: String,
        /// What `object_store` said.
        source: object_store::Error,
    },
}

/// Prefixes of the environment variables that configure stores, as
/// `object_store`'s builders read them (`AWS_ENDPOINT`, `AWS_REGION`,
/// `GOOGLE_SERVICE_ACCOUNT`, `AZURE_STORAGE_ACCOUNT_NAME`, ...).
const ENV_PREFIXES: [&str; 3] = ["AWS_", "GOOGLE_", "AZURE_"];

/// Variables naming the bucket or container: the URL names it instead.
const ENV_BUCKETS: [&str; 4] = [
    "AWS_BUCKET",
    "AWS_BUCKET_NAME",
    "GOOGLE_BUCKET",
    "AZURE_CONTAINER_NAME",
];

/// The store and key prefix `url` names, configured from the environment
/// as `object_store`'s builders read it (`AWS_*`, `GOOGLE_*`, `AZURE_*`;
/// the URL's bucket wins over one named there).
///
/// `memory://` gives a new, empty in-memory store on every call.
///
/// ```
/// let (store, prefix) = infinisheet_object_store::parse_url("memory:///sheets/q3").unwrap();
/// assert_eq!(prefix.as_ref(), "sheets/q3");
/// # drop(store);
/// ```
///
/// # Errors
///
/// [`UrlError`] if the text is not a URL or `object_store` cannot build a
/// store from it.
pub fn parse_url(url: &str) -> Result<(Arc<dyn ObjectStore>, Path), UrlError> {
    let env = std::env::vars().filter(|(key, _)| {
        ENV_PREFIXES.iter().any(|prefix| key.starts_with(prefix))
            && !ENV_BUCKETS.contains(&key.as_str())
    });
    parse_url_opts(url, env)
}

/// The store and key prefix `url` names, configured by `options` only
/// (keys as `object_store`'s builders name them, for example
/// `("aws_endpoint", "http://127.0.0.1:9000")`; unknown keys are ignored).
///
/// # Errors
///
/// As [`parse_url`].
pub fn parse_url_opts<K, V>(
    url: &str,
    options: impl IntoIterator<Item = (K, V)>,
) -> Result<(Arc<dyn ObjectStore>, Path), UrlError>
where
    K: AsRef<str>,
    V: Into<String>,
{
    let parsed = url::Url::parse(url).map_err(|source| UrlError::NotAUrl {
        url: url.to_owned(),
        source,
    })?;
    let (store, prefix) =
        object_store::parse_url_opts(&parsed, options).map_err(|source| UrlError::Store {
            url: url.to_owned(),
            source,
        })?;
    Ok((Arc::from(store), prefix))
}
