//! Replies where the model once differed from Redis 7.0.15 (found by the differential
//! suite in `tests/conformance/redis`), pinned as redis-cli transcripts against the pure
//! engine: each reply here is what the real server answered.

mod kv_support;

use kv_support::table::{engine, run_table};

const INVALID_ID: &str = "(error) ERR Invalid stream ID specified as stream command argument";

#[test]
fn a_subcommand_with_a_wrong_argument_count_dooms_the_transaction() {
    run_table(
        &mut engine(),
        r#"
        1 0 MULTI => OK
        1 0 SCRIPT LOAD => (error) ERR wrong number of arguments for 'script|load' command
        1 0 SCRIPT FLUSH a b => QUEUED
        1 0 SCRIPT BAD => (error) ERR unknown subcommand 'BAD'. Try SCRIPT HELP.
        1 0 EXEC => (error) EXECABORT Transaction discarded because of previous errors.
        1 0 SCRIPT FLUSH a b => (error) ERR SCRIPT FLUSH only support SYNC|ASYNC option
        1 0 SCRIPT => (error) ERR wrong number of arguments for 'script' command
        1 0 MULTI => OK
        1 0 XGROUP DESTROY k g extra => (error) ERR wrong number of arguments for 'xgroup|destroy' command
        1 0 XGROUP CREATE k => (error) ERR wrong number of arguments for 'xgroup|create' command
        1 0 XGROUP BAD k g => (error) ERR unknown subcommand 'BAD'. Try XGROUP HELP.
        1 0 EXEC => (error) EXECABORT Transaction discarded because of previous errors.
        1 0 PUBSUB NUMPAT x => (error) ERR wrong number of arguments for 'pubsub|numpat' command
    "#,
    );
}

#[test]
fn approximate_trimming_to_zero_removes_every_node() {
    run_table(
        &mut engine(),
        r#"
        1 0 XADD s 1-1 f v => "1-1"
        1 0 XADD s MAXLEN ~ 1 2-1 f v => "2-1"
        1 0 XLEN s => (integer) 2
        1 0 XADD s MAXLEN ~ 0 3-1 f v => "3-1"
        1 0 XLEN s => (integer) 0
        1 0 EXISTS s => (integer) 1
        1 0 XADD s MINID ~ 5 4-1 f v => "4-1"
        1 0 XLEN s => (integer) 0
        1 0 XTRIM s MAXLEN 1 LIMIT 5 => (error) ERR syntax error, LIMIT cannot be used without the special ~ option
    "#,
    );
}

#[test]
fn a_range_with_count_0_answers_a_null_array_for_an_existing_stream() {
    run_table(
        &mut engine(),
        r#"
        1 0 XADD s 1-1 f v => "1-1"
        1 0 XREVRANGE s + - COUNT 0 => (nil)
        1 0 XRANGE s - + COUNT -3 => (nil)
        1 0 XRANGE missing - + COUNT 0 => []
        1 0 XRANGE s - + COUNT 1 COUNT 5 => [["1-1", ["f", "v"]]]
        1 0 XRANGE s (18446744073709551615-18446744073709551615 + => (error) ERR invalid start ID for the interval
    "#,
    );
}

#[test]
fn xgroup_setid_checks_the_key_then_the_group_then_the_id() {
    run_table(
        &mut engine(),
        &format!(
            r#"
        1 0 XGROUP SETID nokey g x => (error) ERR The XGROUP subcommand requires the key to exist. Note that for CREATE you may want to use the MKSTREAM option to create an empty stream automatically.
        1 0 XADD s 5-1 f v => "5-1"
        1 0 XGROUP SETID s nog x => (error) NOGROUP No such consumer group 'nog' for key name 's'
        1 0 XGROUP CREATE s g 0 => OK
        1 0 XGROUP SETID s g x => {INVALID_ID}
        1 0 XGROUP SETID s g 0 ENTRIESREAD => (error) ERR unknown subcommand or wrong number of arguments for 'SETID'. Try XGROUP HELP.
        1 0 XGROUP SETID s g - => OK
        1 0 XGROUP CREATE s g2 - => {INVALID_ID}
        1 0 XGROUP CREATE s g2 0 ENTRIESREAD -2 => (error) ERR value for ENTRIESREAD must be positive or -1
    "#
        ),
    );
}

#[test]
fn xack_xdel_and_xclaim_look_the_key_and_group_up_before_their_arguments() {
    run_table(
        &mut engine(),
        &format!(
            r#"
        1 0 XACK nokey g x => (integer) 0
        1 0 XDEL nokey x => (integer) 0
        1 0 XADD s 1-1 f v => "1-1"
        1 0 XACK s nog x => (integer) 0
        1 0 XDEL s x => {INVALID_ID}
        1 0 XCLAIM s nog c 0 1-1 BAD => (error) NOGROUP No such key 's' or consumer group 'nog'
        1 0 XCLAIM s nog c x 1-1 => (error) NOGROUP No such key 's' or consumer group 'nog'
        1 0 XGROUP CREATE s g 0 => OK
        1 0 XACK s g x => {INVALID_ID}
        1 0 XCLAIM s g c x 1-1 => (error) ERR Invalid min-idle-time argument for XCLAIM
        1 0 XCLAIM s g c 0 1-1 BAD => (error) ERR Unrecognized XCLAIM option 'BAD'
        1 0 XCLAIM s g c 0 1-1 IDLE => (error) ERR Unrecognized XCLAIM option 'IDLE'
        1 0 XCLAIM s g c 0 1-1 IDLE x => (error) ERR Invalid IDLE option argument for XCLAIM
    "#
        ),
    );
}

#[test]
fn xclaim_force_counts_two_deliveries_and_creates_a_consumer_only_when_it_claims() {
    run_table(
        &mut engine(),
        r#"
        1 0 XADD s 1-1 f v => "1-1"
        1 0 XGROUP CREATE s g 0 => OK
        1 0 XCLAIM s g d 0 5-5 => []
        1 0 XGROUP CREATECONSUMER s g d => (integer) 1
        1 0 XCLAIM s g c 0 1-1 FORCE JUSTID => ["1-1"]
        1 0 XCLAIM s g c 0 1-1 RETRYCOUNT -1 => [["1-1", ["f", "v"]]]
        1 10 XPENDING s g - + 10 => [["1-1", "c", (integer) 10, (integer) 2]]
    "#,
    );
}

#[test]
fn sha1hex_of_nil_hashes_no_bytes() {
    run_table(
        &mut engine(),
        r#"
        1 0 EVAL return(redis.sha1hex(nil)) 0 => "da39a3ee5e6b4b0d3255bfef95601890afd80709"
        1 0 EVAL return(redis.sha1hex(ARGV[1])) 0 => "da39a3ee5e6b4b0d3255bfef95601890afd80709"
        1 0 EVAL return(redis.sha1hex(1.5)) 0 => "aa8f289ebe6d4db1b4a1038b8931ec8c2b5399fb"
    "#,
    );
}
