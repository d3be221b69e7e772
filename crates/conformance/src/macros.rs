//! `event_log_tests!`, `blob_store_tests!` and `log_store_tests!`: one
//! `#[test]` per case.

/// Expands to a module of tests, one per [`event_log`](crate::event_log)
/// case, each on a fresh log from `factory` (a closure returning a future of
/// the log).
///
/// ```
/// use infinisheet_memory::MemoryEventLog;
///
/// infinisheet_conformance::event_log_tests!(
///     || async { MemoryEventLog::new() },
///     // A second handle on the same log: a clone shares its state.
///     open_again = |log: &MemoryEventLog| std::future::ready(log.clone()),
/// );
/// // A second module name lets one file test two configurations.
/// infinisheet_conformance::event_log_tests!(mod small_pages, || async {
///     MemoryEventLog::with_page_size(3)
/// });
/// # fn main() {}
/// ```
///
/// A persistent backend passes a way to reopen a log (it gets the old
/// handle, drops it, and opens the same storage), and a way to open a
/// second, independent handle on the same storage while the first stays
/// open, as another process would (it gets the first by reference and
/// returns a future that does not borrow it: take what it needs first):
///
/// ```text
/// infinisheet_conformance::event_log_tests!(
///     mod durable_log,
///     || async { MyLog::temporary().await.unwrap() },
///     reopen = |log: MyLog| async move { log.reopen().await.unwrap() },
///     open_again = |log: &MyLog| {
///         let path = log.path().to_owned();
///         async move { MyLog::open(path).await.unwrap() }
///     },
/// );
/// ```
///
/// The second-handle cases run through both handles; without `open_again`
/// they are skipped (loudly) for a volatile backend and fail for a
/// persistent one. The module is `event_log_conformance` unless named; it
/// `use`s everything from the calling module, so the closures may name
/// anything in scope there.
#[macro_export]
macro_rules! event_log_tests {
    (mod $module:ident, $factory:expr $(, reopen = $reopen:expr)? $(, open_again = $again:expr)? $(,)?) => {
        $crate::__event_log_tests!(
            $module,
            $factory,
            $crate::__reopen!($($reopen)?),
            $crate::__open_again!($($again)?)
        );
    };
    ($factory:expr $(, reopen = $reopen:expr)? $(, open_again = $again:expr)? $(,)?) => {
        $crate::event_log_tests!(
            mod event_log_conformance,
            $factory
            $(, reopen = $reopen)?
            $(, open_again = $again)?
        );
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __reopen {
    () => {
        ::core::option::Option::None::<fn(_) -> $crate::__private::Ready<_>>
    };
    ($reopen:expr) => {
        ::core::option::Option::Some($reopen)
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __open_again {
    () => {
        ::core::option::Option::None::<fn(&_) -> $crate::__private::Ready<_>>
    };
    ($again:expr) => {
        ::core::option::Option::Some($again)
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __event_log_tests {
    ($module:ident, $factory:expr, $reopen:expr, $again:expr) => {
        $crate::__cases!(
            $module, event_log, $factory, $reopen, $again;
            plain: [
                empty_log_is_empty,
                empty_log_query_past_end_is_range_error,
                empty_log_set_metadata_is_range_error,
                empty_log_truncate,
                add_entry_appends_in_order,
                add_entry_conflict_reports_next,
                add_entry_conflict_changes_nothing,
                add_entry_keeps_metadata,
                add_entry_metadata_strings_round_trip,
                set_metadata_sets_each_field_alone,
                set_metadata_clears_each_field_alone,
                set_metadata_mixed_update,
                set_metadata_keep_all_changes_nothing,
                set_metadata_leaves_other_entries_alone,
                set_metadata_never_changes_payload,
                set_metadata_outside_log_is_range_error,
                truncate_removes_earlier_entries,
                truncate_repeated,
                truncate_to_end_keeps_end,
                truncate_outside_log_is_range_error,
                truncate_then_query_below_start,
                query_range_in_middle,
                query_range_error_names_the_bounds,
                query_end_before_start_is_empty,
                query_end_past_log_end_stops_at_end,
                query_start_at_end_is_empty,
                query_start_past_end_is_range_error,
                query_pages_cover_the_log,
                query_pages_continue_while_appending,
                query_snapshot_start_without_snapshot_is_first_entry,
                query_is_repeatable,
                query_snapshot_start_is_latest_snapshot,
                query_reports_newer_snapshot,
                empty_query_names_newest_snapshot,
                query_no_reply_when_known_is_newest,
                replies_name_no_snapshot_when_not_tracked,
                add_reports_newer_snapshot,
                add_no_reply_when_known_is_newest,
                newer_snapshot_after_truncate,
                cleared_snapshot_is_no_longer_newest,
                appended_snapshot_metadata_counts,
                republished_snapshot_keeps_its_entry,
                racing_writers_one_winner_per_id,
                racing_appenders_lose_nothing,
                batch_appends_all_in_order,
                batch_conflict_appends_nothing,
                empty_batch,
                batch_reports_newer_snapshot,
                racing_batches_are_all_or_nothing,
                lost_reply_then_retry_lands_once,
                retried_append_reports_newer_snapshot,
                a_token_never_takes_another_writers_id,
                racing_retries_land_once,
                tokens_survive_truncating_other_entries,
                concurrent_metadata_updates_lose_nothing,
                payload_empty,
                payload_one_byte,
                payload_binary,
                payload_four_mib,
                tail_catches_up_then_follows,
                tail_resumes_from_any_id,
                tail_follows_concurrent_appenders,
                tail_truncated_past_is_fell_behind,
                tail_past_end_is_an_error,
                tail_reports_new_snapshots,
                tail_reads_again_when_wake_ups_are_lost,
            ];
            reopen: [
                log_entries_survive_reopen,
                log_truncate_survives_reopen,
                tokens_survive_reopen,
            ];
            again: [
                second_handle_sees_appends,
                stale_handle_append_is_a_conflict,
                second_handle_sees_metadata_and_truncation,
                token_retried_through_second_handle_lands_once,
                racing_through_two_handles_one_winner_per_id,
                appends_through_a_second_handle_wake_tails,
                stale_handle_below_the_start_is_a_range_error,
                metadata_through_two_handles_loses_nothing,
                second_handle_hears_of_each_snapshot,
                old_tokens_are_honoured_through_a_second_handle,
            ];
            model: event_log_matches_reference;
        );
    };
}

/// Expands to a module of tests, one per [`blob_store`](crate::blob_store)
/// case, each on a fresh store from `factory`. Takes the same forms as
/// [`event_log_tests!`] (`reopen`, `open_again`); the module is
/// `blob_store_conformance` unless named.
///
/// ```
/// use infinisheet_memory::MemoryBlobStore;
///
/// infinisheet_conformance::blob_store_tests!(
///     || async { MemoryBlobStore::new() },
///     open_again = |store: &MemoryBlobStore| std::future::ready(store.clone()),
/// );
/// # fn main() {}
/// ```
#[macro_export]
macro_rules! blob_store_tests {
    (mod $module:ident, $factory:expr $(, reopen = $reopen:expr)? $(, open_again = $again:expr)? $(,)?) => {
        $crate::__blob_store_tests!(
            $module,
            $factory,
            $crate::__reopen!($($reopen)?),
            $crate::__open_again!($($again)?)
        );
    };
    ($factory:expr $(, reopen = $reopen:expr)? $(, open_again = $again:expr)? $(,)?) => {
        $crate::blob_store_tests!(
            mod blob_store_conformance,
            $factory
            $(, reopen = $reopen)?
            $(, open_again = $again)?
        );
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __blob_store_tests {
    ($module:ident, $factory:expr, $reopen:expr, $again:expr) => {
        $crate::__cases!(
            $module, blob_store, $factory, $reopen, $again;
            plain: [
                name_empty_rejected,
                name_length_limit,
                name_dots_rejected,
                name_separators_rejected,
                name_control_characters_rejected,
                name_unicode_accepted,
                longest_names_accepted,
                read_missing_is_not_found,
                write_then_read,
                write_replaces,
                remove_blob_removes,
                remove_missing_blob_is_ok,
                read_dir_is_wrong_kind,
                write_over_dir_is_wrong_kind,
                remove_dir_as_blob_is_wrong_kind,
                dir_over_blob_is_wrong_kind,
                empty_dirs_are_invisible,
                dir_reappears_when_written,
                names_change_kind_once_free,
                nested_dirs,
                dir_handles_share_content,
                remove_all_is_recursive,
                remove_all_leaves_siblings,
                remove_all_then_write_again,
                remove_all_root,
                deep_nesting_lists_and_removes,
                write_over_empty_dir_never_deletes_a_racing_blob,
                write_beneath_a_dir_replaced_by_a_blob_is_wrong_kind,
                list_empty_dir,
                list_reports_kinds,
                list_sizes_are_the_blobs_lengths,
                list_pages_cover_every_name,
                list_ten_full_pages,
                continuation_replay,
                continuation_from_other_dir_rejected,
                continuation_garbage_rejected,
                list_while_writing,
                blob_empty,
                blob_binary,
                blob_sixteen_mib,
                concurrent_writers_leave_one_whole_version,
                concurrent_write_and_remove,
            ];
            reopen: [
                blobs_survive_reopen,
                removals_survive_reopen,
            ];
            again: [
                second_handle_sees_blobs,
                second_handle_sees_kinds_change,
            ];
            model: blob_store_matches_reference;
        );
    };
}

/// Expands to a module of tests, one per [`log_store`](crate::log_store)
/// case, each on a fresh store from `factory`, and one per second-handle
/// case of the [`event_log`](crate::event_log) suite on two handles the
/// store gives out for one id (module `handles`).
///
/// ```
/// use infinisheet_memory::MemoryLogs;
///
/// infinisheet_conformance::log_store_tests!(|| async { MemoryLogs::new() });
/// # fn main() {}
/// ```
#[macro_export]
macro_rules! log_store_tests {
    (mod $module:ident, $factory:expr $(,)?) => {
        #[allow(unused_imports, clippy::redundant_closure_call)]
        mod $module {
            use super::*;

            $crate::__log_store_cases!(
                $factory;
                store_names_itself,
                unknown_log_without_create_is_not_found,
                invalid_ids_are_refused,
                created_log_opens_again,
                logs_are_independent,
                clear_empties_a_log,
            );

            /// The event log's second-handle cases on two handles of one
            /// log the store gave out.
            mod handles {
                use super::*;

                $crate::__log_store_handles!(
                    $factory;
                    second_handle_sees_appends,
                    stale_handle_append_is_a_conflict,
                    second_handle_sees_metadata_and_truncation,
                    token_retried_through_second_handle_lands_once,
                    racing_through_two_handles_one_winner_per_id,
                    appends_through_a_second_handle_wake_tails,
                    stale_handle_below_the_start_is_a_range_error,
                    metadata_through_two_handles_loses_nothing,
                    second_handle_hears_of_each_snapshot,
                    old_tokens_are_honoured_through_a_second_handle,
                );
            }
        }
    };
    ($factory:expr $(,)?) => {
        $crate::log_store_tests!(mod log_store_conformance, $factory);
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __log_store_cases {
    ($factory:expr; $($case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                $crate::run(async {
                    let store = ($factory)().await;
                    $crate::log_store::$case($crate::__private::Arc::new(store)).await;
                });
            }
        )*
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __log_store_handles {
    ($factory:expr; $($case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                $crate::run(async {
                    let store = ($factory)().await;
                    let id = $crate::log_store::fresh_id();
                    let (first, second) = $crate::log_store::two_handles(&store, &id).await;
                    $crate::event_log::$case(first, second).await;
                });
            }
        )*
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __cases {
    (
        $module:ident, $suite:ident, $factory:expr, $reopen:expr, $again:expr;
        plain: [$($case:ident),* $(,)?];
        reopen: [$($persist:ident),* $(,)?];
        again: [$($second:ident),* $(,)?];
        model: $model:ident;
    ) => {
        #[allow(unused_imports, clippy::redundant_closure_call)]
        mod $module {
            use super::*;

            $(
                #[test]
                fn $case() {
                    $crate::run(async {
                        let subject = ($factory)().await;
                        $crate::$suite::$case($crate::__private::Arc::new(subject)).await;
                    });
                }
            )*

            $(
                #[test]
                fn $persist() {
                    $crate::run(async {
                        let subject = ($factory)().await;
                        $crate::$suite::$persist(subject, $reopen).await;
                    });
                }
            )*

            $(
                #[test]
                fn $second() {
                    $crate::run(async {
                        let subject = ($factory)().await;
                        let persistent = $crate::$suite::persistent(&subject);
                        let handles = $crate::__private::second_handle(
                            stringify!($second),
                            persistent,
                            subject,
                            $again,
                        )
                        .await;
                        if let Some((first, second)) = handles {
                            $crate::$suite::$second(
                                $crate::__private::Arc::new(first),
                                $crate::__private::Arc::new(second),
                            )
                            .await;
                        }
                    });
                }
            )*

            #[test]
            fn $model() {
                $crate::$suite::$model($factory);
            }
        }
    };
}
