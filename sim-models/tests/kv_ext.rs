//! The second list of kv commands (`kv::ext`) against the pure engine, table-driven: each
//! row is `client ms COMMAND => REPLY`, the reply a real Redis 7.0.15 gave (see
//! `kv_support::table`).
//! Random replies (SPOP, SRANDMEMBER) are checked by shape in the conformance suite.

mod kv_support;

use kv_support::table::{engine, run_table};

#[test]
fn incrbyfloat_adds_as_x87_long_doubles() {
    run_table(
        &mut engine(),
        r#"
        1 0 INCRBYFLOAT k 1234.5678 => "1234.56779999999999997"
        1 0 INCRBYFLOAT k 0.1 => "1234.66779999999999995"
        1 0 INCRBYFLOAT j 1e20 => "100000000000000000000"
        1 0 INCRBYFLOAT j 0.3 => "100000000000000000000"
        1 0 INCRBYFLOAT x 0x10 => "16"
        1 0 INCRBYFLOAT y inf => (error) ERR increment would produce NaN or Infinity
        1 0 INCRBYFLOAT y 1e-5000 => (error) ERR value is not a valid float
        1 0 HSET h g x => (integer) 1
        1 0 HINCRBYFLOAT h g 1 => (error) ERR hash value is not a float
        1 0 HINCRBYFLOAT h f inf => (error) ERR value is NaN or Infinity
        1 0 HINCRBYFLOAT h f 2.5 => "2.5"
    "#,
    );
}

#[test]
fn lmove_and_a_blocked_blmove() {
    run_table(
        &mut engine(),
        r#"
        1 0 LMOVE a b UP LEFT => (error) ERR syntax error
        1 0 LMOVE nos b LEFT LEFT => (nil)
        1 0 BLMOVE l b LEFT LEFT x => (error) ERR timeout is not a float or out of range
        1 0 BLMOVE l b LEFT LEFT -1 => (error) ERR timeout is negative
        1 0 BLMOVE src dst RIGHT LEFT 0 => (blocked)
        2 1 RPUSH src x y => (integer) 2 | served c1 "y"
        2 2 LRANGE dst 0 -1 => ["y"]
        2 3 RPOPLPUSH src src => "x"
        2 4 SET s v => OK
        2 5 LMOVE src s LEFT LEFT => (error) WRONGTYPE Operation against a key holding the wrong kind of value
        2 6 LLEN src => (integer) 1
    "#,
    );
}

#[test]
fn sorted_set_ranges_pops_and_counts() {
    run_table(
        &mut engine(),
        r#"
        1 0 ZADD z 1 a 2 b 3 c => (integer) 3
        1 0 ZRANGE z 0 -1 LIMIT 0 1 => (error) ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX
        1 0 ZRANGE z a b BYLEX WITHSCORES => (error) ERR syntax error, WITHSCORES not supported in combination with BYLEX
        1 0 ZRANGE z 0 -1 REV REV => (error) ERR syntax error
        1 0 ZRANGEBYLEX z a b => (error) ERR min or max not valid string range item
        1 0 ZREVRANGE z 0 -1 WITHSCORES => ["c", "3", "b", "2", "a", "1"]
        1 0 ZRANGE z (3 1 BYSCORE REV LIMIT 0 1 => ["b"]
        1 0 ZRANGEBYLEX z - + LIMIT 1 1 => ["b"]
        1 0 ZCOUNT z (1 +inf => (integer) 2
        1 0 ZLEXCOUNT z [b + => (integer) 2
        1 0 ZMSCORE z a nosuch => ["1", (nil)]
        1 0 ZREVRANK z a => (integer) 2
        1 0 ZPOPMIN z -1 => (error) ERR value is out of range, must be positive
        1 0 ZPOPMAX z 2 => ["c", "3", "b", "2"]
        1 0 ZREMRANGEBYRANK z 0 0 => (integer) 1
        1 0 EXISTS z => (integer) 0
        1 1 BZPOPMIN z 0 => (blocked)
        2 2 ZADD z 5 m => (integer) 1 | served c1 ["z", "m", "5"]
    "#,
    );
}

#[test]
fn strings_keys_and_scans() {
    run_table(
        &mut engine(),
        r#"
        1 0 SETRANGE nos -1 x => (error) ERR offset is out of range
        1 0 SETRANGE nos 536870912 x => (error) ERR string exceeds maximum allowed size (proto-max-bulk-len)
        1 0 SETRANGE k 2 xy => (integer) 4
        1 0 GETRANGE k -3 -1 => "\0xy"
        1 0 GETEX k PERSIST EX 10 => (error) ERR syntax error
        1 0 GETEX k EX 0 => (error) ERR invalid expire time in 'getex' command
        1 0 GETEX nos EX x => (nil)
        1 0 COPY k k => (error) ERR source and destination objects are the same
        1 0 COPY k k2 DB 16 => (error) ERR DB index is out of range
        1 0 COPY k k2 => (integer) 1
        1 0 RENAME nos nos => (error) ERR no such key
        1 0 RENAMENX k k2 => (integer) 0
        1 0 RENAME k k3 => OK
        1 0 SCAN x => (error) ERR invalid cursor
        1 0 SCAN 0 COUNT 0 => (error) ERR syntax error
        1 0 SCAN 0 TYPE nosuch => ["0", []]
        1 0 HSCAN nos 0 BAD => ["0", []]
        1 0 SSCAN k2 0 => (error) WRONGTYPE Operation against a key holding the wrong kind of value
    "#,
    );
}
