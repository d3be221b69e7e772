//! Stores from URLs, configured by `object_store`'s own builders: the scheme
//! picks the store (`s3://`, `gs://`, `az://`, `memory://`, and the HTTPS
//! forms of each), options and the environment configure it. This is the
//! one place that builds a store from a URL: the facade's storage URLs and
//! [`parse_url`] both come here, with the same retry settings.

use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreScheme};
use std::sync::Arc;
#[cfg(any(feature = "aws", feature = "gcp", feature = "azure", feature = "http"))]
use std::time::Duration;

/// Error of [`parse_url`] and [`parse_url_opts`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UrlError {
    /// The text is not a URL.
    #[error("{url:?} is not a URL")]
    NotAUrl {
        /// The text given.
        url: String,
        /// Why it does not parse.
        source: url::ParseError,
    },
    /// The URL names a kind of store this build has no support for: the
    /// crate feature that adds it (`aws`, `gcp`, `azure`, `http`) is off.
    #[error(
        "{url} needs the {feature:?} feature of infinisheet-object-store, which this build lacks"
    )]
    NotBuilt {
        /// The URL given.
        url: String,
        /// The feature that adds the store.
        feature: &'static str,
    },
    /// An `s3://` URL without credentials (no access key, web identity
    /// token, container credentials or `aws_skip_signature`) while
    /// `AWS_EC2_METADATA_DISABLED` forbids the instance metadata service,
    /// the one place left to ask.
    #[error(
        "no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or \
         AWS_WEB_IDENTITY_TOKEN_FILE, or AWS_SKIP_SIGNATURE=true for a public bucket); \
         AWS_EC2_METADATA_DISABLED is set, so the instance metadata service was not asked"
    )]
    NoCredentials {
        /// The URL given.
        url: String,
    },
    /// `object_store` does not know the scheme, or the configuration is
    /// incomplete or invalid (for example an S3 URL without a region).
    #[error("cannot open a store for {url}")]
    Store {
        /// The URL given.
        url: String,
        /// What `object_store` said.
        source: object_store::Error,
    },
}

/// A store built from a URL: the store, its paginated listing where it has
/// one (S3, GCS, Azure), and the key prefix the URL names.
#[derive(Clone)]
pub struct UrlStore {
    /// The store.
    pub store: Arc<dyn ObjectStore>,
    /// The same store's paginated listing, if it has one; give it to
    /// [`ObjectStoreBlobStore::with_paginated_listing`](crate::ObjectStoreBlobStore::with_paginated_listing).
    pub lister: Option<Arc<dyn object_store::list::PaginatedListStore>>,
    /// The key prefix the URL's path names.
    pub prefix: Path,
}

impl std::fmt::Debug for UrlStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UrlStore")
            .field("store", &self.store)
            .field("paginated", &self.lister.is_some())
            .field("prefix", &self.prefix)
            .finish()
    }
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

/// How often and how long a cloud store retries a failed request: a few
/// seconds rather than `object_store`'s three minutes, so an unreachable
/// endpoint is an error a person sees soon (the event log and the engine
/// retry on their own, knowing what is safe to retry).
#[cfg(any(feature = "aws", feature = "gcp", feature = "azure", feature = "http"))]
fn retry() -> object_store::RetryConfig {
    object_store::RetryConfig {
        max_retries: 2,
        retry_timeout: Duration::from_secs(10),
        ..object_store::RetryConfig::default()
    }
}

/// A cloud store's builder: TLS chosen, `options` applied (keys the
/// builder does not know are ignored), the URL and the one retry setting.
#[cfg(any(feature = "aws", feature = "gcp", feature = "azure", feature = "http"))]
macro_rules! configured {
    ($builder:ty, $options:expr, $url:expr) => {{
        crate::install_tls();
        let mut builder = <$builder>::new();
        for (key, value) in $options {
            let key: &str = key.as_ref();
            if let Ok(key) = key.parse() {
                builder = builder.with_config(key, value);
            }
        }
        builder.with_url($url).with_retry(retry()).build()
    }};
}

/// Whether an S3 store configured by `options` has credentials or a way to
/// find them other than the instance metadata service, or may still ask
/// that service (`aws_ec2_metadata_disabled`, as the AWS CLI reads
/// `AWS_EC2_METADATA_DISABLED`, is not true).
#[cfg(feature = "aws")]
fn has_aws_credentials(options: &[(String, String)]) -> bool {
    let set = |key: &str| {
        options
            .iter()
            .any(|(k, v)| k == key && !v.trim().is_empty())
    };
    let yes = |key: &str| {
        options.iter().any(|(k, v)| {
            k == key && matches!(v.trim().to_ascii_lowercase().as_str(), "true" | "1")
        })
    };
    (set("aws_access_key_id") && set("aws_secret_access_key"))
        || set("aws_web_identity_token_file")
        || set("aws_container_credentials_relative_uri")
        || set("aws_container_credentials_full_uri")
        || yes("aws_skip_signature")
        || !yes("aws_ec2_metadata_disabled")
}

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
/// [`UrlError`] if the text is not a URL, names a store this build lacks,
/// or `object_store` cannot build a store from it.
pub fn parse_url(url: &str) -> Result<(Arc<dyn ObjectStore>, Path), UrlError> {
    open_url(url).map(|opened| (opened.store, opened.prefix))
}

/// [`parse_url`], with the store's paginated listing where it has one.
///
/// # Errors
///
/// As [`parse_url`].
pub fn open_url(url: &str) -> Result<UrlStore, UrlError> {
    let env = std::env::vars().filter(|(key, _)| {
        ENV_PREFIXES.iter().any(|prefix| key.starts_with(prefix))
            && !ENV_BUCKETS.contains(&key.as_str())
    });
    open_url_opts(
        url,
        env.map(|(key, value)| (key.to_ascii_lowercase(), value)),
    )
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
    open_url_opts(url, options).map(|opened| (opened.store, opened.prefix))
}

/// [`parse_url_opts`], with the store's paginated listing where it has one.
///
/// # Errors
///
/// As [`parse_url`].
pub fn open_url_opts<K, V>(
    url: &str,
    options: impl IntoIterator<Item = (K, V)>,
) -> Result<UrlStore, UrlError>
where
    K: AsRef<str>,
    V: Into<String>,
{
    let parsed = url::Url::parse(url).map_err(|source| UrlError::NotAUrl {
        url: url.to_owned(),
        source,
    })?;
    let store_error = |source: object_store::Error| UrlError::Store {
        url: url.to_owned(),
        source,
    };
    let (scheme, prefix) = ObjectStoreScheme::parse(&parsed).map_err(|e| store_error(e.into()))?;
    #[allow(unused_variables)]
    let not_built = |feature| UrlError::NotBuilt {
        url: url.to_owned(),
        feature,
    };
    #[cfg(not(any(feature = "aws", feature = "gcp", feature = "azure", feature = "http")))]
    let _ = options;
    let (store, lister): (
        Arc<dyn ObjectStore>,
        Option<Arc<dyn object_store::list::PaginatedListStore>>,
    ) = match scheme {
        ObjectStoreScheme::Memory => (Arc::new(object_store::memory::InMemory::new()), None),
        #[cfg(feature = "aws")]
        ObjectStoreScheme::AmazonS3 => {
            let options: Vec<(String, String)> = options
                .into_iter()
                .map(|(key, value)| (key.as_ref().to_ascii_lowercase(), value.into()))
                .collect();
            if !has_aws_credentials(&options) {
                return Err(UrlError::NoCredentials {
                    url: url.to_owned(),
                });
            }
            let store = Arc::new(
                configured!(object_store::aws::AmazonS3Builder, options, url)
                    .map_err(store_error)?,
            );
            (store.clone(), Some(store))
        }
        #[cfg(feature = "gcp")]
        ObjectStoreScheme::GoogleCloudStorage => {
            let store = Arc::new(
                configured!(object_store::gcp::GoogleCloudStorageBuilder, options, url)
                    .map_err(store_error)?,
            );
            (store.clone(), Some(store))
        }
        #[cfg(feature = "azure")]
        ObjectStoreScheme::MicrosoftAzure => {
            let store = Arc::new(
                configured!(object_store::azure::MicrosoftAzureBuilder, options, url)
                    .map_err(store_error)?,
            );
            (store.clone(), Some(store))
        }
        #[cfg(feature = "http")]
        ObjectStoreScheme::Http => {
            let store = configured!(
                object_store::http::HttpBuilder,
                options,
                &parsed[..url::Position::BeforePath]
            )
            .map_err(store_error)?;
            (Arc::new(store), None)
        }
        #[cfg(not(feature = "aws"))]
        ObjectStoreScheme::AmazonS3 => return Err(not_built("aws")),
        #[cfg(not(feature = "gcp"))]
        ObjectStoreScheme::GoogleCloudStorage => return Err(not_built("gcp")),
        #[cfg(not(feature = "azure"))]
        ObjectStoreScheme::MicrosoftAzure => return Err(not_built("azure")),
        #[cfg(not(feature = "http"))]
        ObjectStoreScheme::Http => return Err(not_built("http")),
        // `file://` (LocalFileSystem has no conditional replace, so it
        // cannot hold a log; a host app may still build one itself for
        // blobs) and schemes newer than this code.
        _ => return Err(not_built("a store for this scheme")),
    };
    Ok(UrlStore {
        store,
        lister,
        prefix,
    })
}
