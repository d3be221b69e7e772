//! Every case is in its macro: a `pub async fn` in `src/event_log` or
//! `src/blob_store` that `event_log_tests!` or `blob_store_tests!` does not
//! name would never run for any backend. (The model tests that take a
//! factory of several handles are plain `pub fn`s, called by hand.)

use std::path::Path;

fn cases_in(dir: &Path) -> Vec<String> {
    let mut cases = Vec::new();
    for entry in std::fs::read_dir(dir).expect("reading the case modules") {
        let path = entry.expect("listing the case modules").path();
        let text = std::fs::read_to_string(&path).expect("reading a case module");
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("pub async fn ") {
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                cases.push(name);
            }
        }
    }
    cases.sort();
    cases
}

fn listed(macros: &str, case: &str) -> bool {
    macros
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .any(|word| word == case)
}

#[test]
fn every_case_is_named_by_its_macro() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let macros = std::fs::read_to_string(src.join("macros.rs")).expect("reading macros.rs");
    let mut missing = Vec::new();
    let mut count = 0;
    for module in ["event_log", "blob_store", "log_store"] {
        for case in cases_in(&src.join(module)) {
            count += 1;
            if !listed(&macros, &case) {
                missing.push(format!("{module}::{case}"));
            }
        }
    }
    assert!(
        count > 90,
        "only {count} cases found: is the layout the same?"
    );
    assert!(missing.is_empty(), "cases no macro runs: {missing:?}");
}
