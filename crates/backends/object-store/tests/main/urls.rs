//! Stores from URLs through the one constructor (`open_url_opts`): each
//! scheme builds its store with the key prefix the URL names and its
//! paginated listing; GCS is built and parsed here, not tested against a
//! server (none runs on this machine).

#![allow(clippy::unwrap_used)] // tests fail by panicking

use infinisheet_object_store::{UrlError, open_url_opts};

fn open(
    url: &str,
    options: &[(&str, &str)],
) -> Result<infinisheet_object_store::UrlStore, UrlError> {
    open_url_opts(url, options.iter().map(|(k, v)| (*k, *v)))
}

#[test]
fn memory_urls_give_a_store_and_a_prefix() {
    let opened = open("memory:///sheets/q3", &[]).unwrap();
    assert_eq!(opened.prefix.as_ref(), "sheets/q3");
    assert!(opened.lister.is_none());
}

#[cfg(feature = "aws")]
#[test]
fn s3_urls_take_options_and_list_by_page() {
    let opened = open(
        "s3://bucket/a/b",
        &[
            ("aws_region", "eu-west-1"),
            ("aws_access_key_id", "k"),
            ("aws_secret_access_key", "s"),
        ],
    )
    .unwrap();
    assert_eq!(opened.prefix.as_ref(), "a/b");
    assert!(opened.lister.is_some());
    assert!(
        opened.store.to_string().contains("bucket"),
        "{}",
        opened.store
    );
}

#[cfg(feature = "gcp")]
#[test]
fn gcs_urls_build_a_google_cloud_store() {
    let opened = open("gs://sheets-bucket/team/q3", &[]).unwrap();
    assert_eq!(opened.prefix.as_ref(), "team/q3");
    assert!(opened.lister.is_some());
    assert!(
        opened
            .store
            .to_string()
            .contains("GoogleCloudStorage(sheets-bucket)"),
        "{}",
        opened.store
    );
}

#[cfg(feature = "azure")]
#[test]
fn azure_urls_build_an_azure_store() {
    let opened = open(
        "az://container/team/q3",
        &[
            ("azure_storage_account_name", "account"),
            ("azure_storage_account_key", "a2V5"),
        ],
    )
    .unwrap();
    assert_eq!(opened.prefix.as_ref(), "team/q3");
    assert!(opened.lister.is_some());
    assert!(
        opened.store.to_string().contains("container"),
        "{}",
        opened.store
    );
}

#[test]
fn what_is_not_a_store_url_says_so() {
    assert!(matches!(
        open("not a url", &[]),
        Err(UrlError::NotAUrl { .. })
    ));
    assert!(matches!(
        open("ftp://host/x", &[]),
        Err(UrlError::Store { .. })
    ));
    // Local files cannot hold a log (no conditional replace): not offered.
    assert!(matches!(
        open("file:///tmp/x", &[]),
        Err(UrlError::NotBuilt { .. })
    ));
}
