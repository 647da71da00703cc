//! Scripted interleavings of two or three sessions: the anomalies each isolation level
//! allows or prevents, and every way a statement can wait or fail for another session.

use super::case::{Case, Step};

const SCHEMA: [&str; 4] = [
    "CREATE TABLE acct (id bigint PRIMARY KEY, bal bigint NOT NULL, kind text NOT NULL)",
    "INSERT INTO acct (id, bal, kind) VALUES (1, 10, 'a'), (2, 10, 'a'), (3, 10, 'b'), \
     (4, 10, 'b')",
    "CREATE TABLE doctors (name text PRIMARY KEY, on_call boolean NOT NULL)",
    "INSERT INTO doctors (name, on_call) VALUES ('alice', true), ('bob', true)",
];

const FK_SCHEMA: [&str; 3] = [
    "CREATE TABLE parent (id bigint PRIMARY KEY, score bigint NOT NULL)",
    "CREATE TABLE child (id bigint PRIMARY KEY, parent_id bigint NOT NULL REFERENCES parent (id))",
    "INSERT INTO parent (id, score) VALUES (1, 0), (2, 0)",
];

/// The scripts: a name, the schema, and `(session, statement)` in order.
#[allow(clippy::type_complexity)]
const SCRIPTS: &[(&str, &[&str], &[(usize, &str)])] = &[
    ("lost update under READ COMMITTED", &SCHEMA, &[
        (0, "BEGIN"), (1, "BEGIN"),
        (0, "SELECT bal FROM acct WHERE id = 1"), (1, "SELECT bal FROM acct WHERE id = 1"),
        (0, "UPDATE acct SET bal = 15 WHERE id = 1"),
        (1, "UPDATE acct SET bal = 12 WHERE id = 1"),
        (0, "COMMIT"), (1, "COMMIT"),
    ]),
    ("read-modify-write re-checks the latest version under READ COMMITTED", &SCHEMA, &[
        (0, "BEGIN"), (0, "UPDATE acct SET bal = bal + 1 WHERE id = 1"),
        (1, "UPDATE acct SET bal = bal * 2 WHERE bal = 10 RETURNING id, bal"),
        (0, "COMMIT"),
    ]),
    ("a waiting update finds its row deleted", &SCHEMA, &[
        (0, "BEGIN"), (0, "DELETE FROM acct WHERE id = 1"),
        (1, "UPDATE acct SET bal = 0 WHERE id = 1"),
        (0, "COMMIT"),
    ]),
    ("non-repeatable read under READ COMMITTED", &SCHEMA, &[
        (0, "BEGIN"), (0, "SELECT bal FROM acct WHERE id = 1"),
        (1, "UPDATE acct SET bal = 20 WHERE id = 1"),
        (0, "SELECT bal FROM acct WHERE id = 1"), (0, "COMMIT"),
    ]),
    ("repeatable read sees its snapshot", &SCHEMA, &[
        (0, "BEGIN ISOLATION LEVEL REPEATABLE READ"), (0, "SELECT bal FROM acct WHERE id = 1"),
        (1, "UPDATE acct SET bal = 20 WHERE id = 1"),
        (1, "INSERT INTO acct (id, bal, kind) VALUES (9, 1, 'a')"),
        (0, "SELECT sum(bal), count(*) FROM acct"), (0, "COMMIT"),
    ]),
    ("concurrent update under REPEATABLE READ", &SCHEMA, &[
        (0, "BEGIN ISOLATION LEVEL REPEATABLE READ"), (0, "SELECT bal FROM acct WHERE id = 1"),
        (1, "UPDATE acct SET bal = 20 WHERE id = 1"),
        (0, "UPDATE acct SET bal = bal + 1 WHERE id = 1"), (0, "ROLLBACK"),
    ]),
    ("a waiting update under REPEATABLE READ fails once the other commits", &SCHEMA, &[
        (0, "BEGIN ISOLATION LEVEL REPEATABLE READ"), (0, "SELECT bal FROM acct WHERE id = 1"),
        (1, "BEGIN"), (1, "UPDATE acct SET bal = 20 WHERE id = 1"),
        (0, "UPDATE acct SET bal = bal + 1 WHERE id = 1"),
        (1, "COMMIT"), (0, "ROLLBACK"),
    ]),
    ("a waiting update under REPEATABLE READ goes on once the other rolls back", &SCHEMA, &[
        (0, "BEGIN ISOLATION LEVEL REPEATABLE READ"), (0, "SELECT bal FROM acct WHERE id = 1"),
        (1, "BEGIN"), (1, "UPDATE acct SET bal = 20 WHERE id = 1"),
        (0, "UPDATE acct SET bal = bal + 1 WHERE id = 1"),
        (1, "ROLLBACK"), (0, "COMMIT"),
    ]),
    ("write skew under REPEATABLE READ is allowed", &SCHEMA, &[
        (0, "BEGIN ISOLATION LEVEL REPEATABLE READ"), (1, "BEGIN ISOLATION LEVEL REPEATABLE READ"),
        (0, "SELECT count(*) FROM doctors WHERE on_call"),
        (1, "SELECT count(*) FROM doctors WHERE on_call"),
        (0, "UPDATE doctors SET on_call = false WHERE name = 'alice'"),
        (1, "UPDATE doctors SET on_call = false WHERE name = 'bob'"),
        (0, "COMMIT"), (1, "COMMIT"),
    ]),
    ("write skew under SERIALIZABLE fails the second commit", &SCHEMA, &[
        (0, "BEGIN ISOLATION LEVEL SERIALIZABLE"), (1, "BEGIN ISOLATION LEVEL SERIALIZABLE"),
        (0, "SELECT count(*) FROM doctors WHERE on_call"),
        (1, "SELECT count(*) FROM doctors WHERE on_call"),
        (0, "UPDATE doctors SET on_call = false WHERE name = 'alice'"),
        (1, "UPDATE doctors SET on_call = false WHERE name = 'bob'"),
        (0, "COMMIT"), (1, "COMMIT"),
    ]),
    ("SERIALIZABLE with disjoint predicates over a whole-table scan", &SCHEMA, &[
        (0, "BEGIN ISOLATION LEVEL SERIALIZABLE"), (1, "BEGIN ISOLATION LEVEL SERIALIZABLE"),
        (0, "SELECT sum(bal) FROM acct WHERE kind = 'a'"),
        (1, "SELECT sum(bal) FROM acct WHERE kind = 'b'"),
        (0, "UPDATE acct SET bal = bal + 1 WHERE kind = 'a'"),
        (1, "UPDATE acct SET bal = bal + 1 WHERE kind = 'b'"),
        (0, "COMMIT"), (1, "COMMIT"),
    ]),
    ("SERIALIZABLE reads of one key each, writes of the other's key", &SCHEMA, &[
        (0, "BEGIN ISOLATION LEVEL SERIALIZABLE"), (1, "BEGIN ISOLATION LEVEL SERIALIZABLE"),
        (0, "SELECT bal FROM acct WHERE id = 1"), (1, "SELECT bal FROM acct WHERE id = 2"),
        (0, "UPDATE acct SET bal = 0 WHERE id = 2"), (1, "UPDATE acct SET bal = 0 WHERE id = 1"),
        (0, "COMMIT"), (1, "COMMIT"),
    ]),
    ("deadlock: one victim, the other commits", &SCHEMA, &[
        (0, "BEGIN"), (1, "BEGIN"),
        (0, "UPDATE acct SET bal = bal - 1 WHERE id = 1"),
        (1, "UPDATE acct SET bal = bal - 1 WHERE id = 2"),
        (0, "UPDATE acct SET bal = bal + 1 WHERE id = 2"),
        (1, "UPDATE acct SET bal = bal + 1 WHERE id = 1"),
        (0, "COMMIT"), (1, "COMMIT"),
    ]),
    ("deadlock of three sessions", &SCHEMA, &[
        (0, "BEGIN"), (1, "BEGIN"), (2, "BEGIN"),
        (0, "SELECT * FROM acct WHERE id = 1 FOR UPDATE"),
        (1, "SELECT * FROM acct WHERE id = 2 FOR UPDATE"),
        (2, "SELECT * FROM acct WHERE id = 3 FOR UPDATE"),
        (0, "SELECT * FROM acct WHERE id = 2 FOR UPDATE"),
        (1, "SELECT * FROM acct WHERE id = 3 FOR UPDATE"),
        (2, "SELECT * FROM acct WHERE id = 1 FOR UPDATE"),
        (0, "COMMIT"), (1, "COMMIT"), (2, "COMMIT"),
    ]),
    ("SELECT FOR UPDATE blocks until the holder commits", &SCHEMA, &[
        (0, "BEGIN"), (0, "SELECT bal FROM acct WHERE id = 1 FOR UPDATE"),
        (1, "BEGIN"), (1, "SELECT bal FROM acct WHERE id = 1 FOR UPDATE"),
        (0, "UPDATE acct SET bal = 3 WHERE id = 1"), (0, "COMMIT"), (1, "COMMIT"),
    ]),
    ("FOR SHARE locks share, and block an update", &SCHEMA, &[
        (0, "BEGIN"), (1, "BEGIN"),
        (0, "SELECT bal FROM acct WHERE id = 1 FOR SHARE"),
        (1, "SELECT bal FROM acct WHERE id = 1 FOR SHARE"),
        (2, "UPDATE acct SET bal = 0 WHERE id = 1"),
        (0, "COMMIT"), (1, "COMMIT"),
    ]),
    ("SKIP LOCKED hands out the next free row", &SCHEMA, &[
        (0, "BEGIN"), (1, "BEGIN"), (2, "BEGIN"),
        (0, "SELECT id FROM acct ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED"),
        (1, "SELECT id FROM acct ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED"),
        (2, "SELECT id FROM acct ORDER BY id LIMIT 2 FOR UPDATE SKIP LOCKED"),
        (0, "COMMIT"), (1, "COMMIT"), (2, "COMMIT"),
    ]),
    ("NOWAIT fails at once", &SCHEMA, &[
        (0, "BEGIN"), (0, "SELECT bal FROM acct WHERE id = 1 FOR UPDATE"),
        (1, "BEGIN"), (1, "SELECT bal FROM acct WHERE id = 1 FOR UPDATE NOWAIT"),
        (1, "SELECT 1"), (1, "ROLLBACK"), (0, "COMMIT"),
    ]),
    ("lock_timeout ends a lock wait", &SCHEMA, &[
        (0, "BEGIN"), (0, "UPDATE acct SET bal = 1 WHERE id = 1"),
        (1, "SET lock_timeout = '40ms'"), (1, "UPDATE acct SET bal = 2 WHERE id = 1"),
        (0, "COMMIT"), (1, "SELECT bal FROM acct WHERE id = 1"),
    ]),
    ("statement_timeout ends a lock wait and a sleep", &SCHEMA, &[
        (0, "BEGIN"), (0, "UPDATE acct SET bal = 1 WHERE id = 1"),
        (1, "SET statement_timeout = '40ms'"), (1, "UPDATE acct SET bal = 2 WHERE id = 1"),
        (1, "SELECT pg_sleep(0.3)"), (1, "SELECT 1"), (0, "COMMIT"),
    ]),
    ("a second insert of a key waits, then fails once the first commits", &SCHEMA, &[
        (0, "BEGIN"), (0, "INSERT INTO acct (id, bal, kind) VALUES (9, 1, 'a')"),
        (1, "INSERT INTO acct (id, bal, kind) VALUES (9, 2, 'b')"),
        (0, "COMMIT"),
    ]),
    ("a second insert of a key waits, then succeeds once the first rolls back", &SCHEMA, &[
        (0, "BEGIN"), (0, "INSERT INTO acct (id, bal, kind) VALUES (9, 1, 'a')"),
        (1, "INSERT INTO acct (id, bal, kind) VALUES (9, 2, 'b')"),
        (0, "ROLLBACK"),
    ]),
    ("inserts of each other's keys deadlock", &SCHEMA, &[
        (0, "BEGIN"), (1, "BEGIN"),
        (0, "INSERT INTO acct (id, bal, kind) VALUES (10, 1, 'a')"),
        (1, "INSERT INTO acct (id, bal, kind) VALUES (11, 1, 'a')"),
        (0, "INSERT INTO acct (id, bal, kind) VALUES (11, 1, 'a')"),
        (1, "INSERT INTO acct (id, bal, kind) VALUES (10, 1, 'a')"),
        (0, "COMMIT"), (1, "COMMIT"),
    ]),
    ("upsert waits for a concurrent insert of its key", &SCHEMA, &[
        (0, "BEGIN"), (0, "INSERT INTO acct (id, bal, kind) VALUES (9, 1, 'a')"),
        (1, "INSERT INTO acct (id, bal, kind) VALUES (9, 5, 'b') ON CONFLICT (id) DO UPDATE SET bal = acct.bal + excluded.bal"),
        (0, "COMMIT"),
    ]),
    ("a foreign-key insert does not wait for a non-key update of its parent", &FK_SCHEMA, &[
        (0, "BEGIN"), (0, "UPDATE parent SET score = 1 WHERE id = 1"),
        (1, "INSERT INTO child (id, parent_id) VALUES (1, 1)"),
        (0, "COMMIT"),
    ]),
    ("a foreign-key insert waits for the delete of its parent", &FK_SCHEMA, &[
        (0, "BEGIN"), (0, "DELETE FROM parent WHERE id = 1"),
        (1, "INSERT INTO child (id, parent_id) VALUES (1, 1)"),
        (0, "COMMIT"),
    ]),
    ("a parent delete waits for an uncommitted child insert", &FK_SCHEMA, &[
        (0, "BEGIN"), (0, "INSERT INTO child (id, parent_id) VALUES (1, 1)"),
        (1, "DELETE FROM parent WHERE id = 1"),
        (0, "COMMIT"),
    ]),
    ("a rolled-back savepoint releases nothing it did not take", &SCHEMA, &[
        (0, "BEGIN"), (0, "SAVEPOINT a"), (0, "UPDATE acct SET bal = 0 WHERE id = 1"),
        (0, "ROLLBACK TO SAVEPOINT a"), (1, "UPDATE acct SET bal = 7 WHERE id = 1"),
        (0, "COMMIT"),
    ]),
    ("an error aborts the block until ROLLBACK", &SCHEMA, &[
        (0, "BEGIN"), (0, "SELECT 1 / 0"), (0, "SELECT 1"), (0, "COMMIT"), (0, "SELECT 2"),
    ]),
    ("float to bigint casts round half to even", &SCHEMA, &[
        (0, "SELECT CAST(2.5 AS float8)::bigint, CAST(3.5 AS float8)::bigint, CAST(-2.5 AS float8)::bigint"),
    ]),
    ("operand types are checked per row, not when planning", &SCHEMA, &[
        (0, "DELETE FROM acct"), (0, "SELECT * FROM acct WHERE kind > 1"),
    ]),
    ("no assignment casts", &SCHEMA, &[
        (0, "INSERT INTO acct (id, bal, kind) VALUES (7, 1.5, 'a')"),
    ]),
    ("LIMIT 0 reads no row, and constants are folded first", &SCHEMA, &[
        (0, "SELECT bal / 0 FROM acct LIMIT 0"), (0, "SELECT count(*) FROM acct LIMIT 0"),
        (0, "SELECT id FROM acct WHERE 1 / 0 = 1 LIMIT 0"),
        (0, "BEGIN"), (0, "SELECT id FROM acct ORDER BY id LIMIT 0 FOR UPDATE"),
        (1, "UPDATE acct SET bal = 0 WHERE id = 1"), (0, "COMMIT"),
    ]),
    ("float8 overflow and underflow (22003)", &[
        "CREATE TABLE m (id bigint PRIMARY KEY, x float8)",
        "INSERT INTO m (id, x) VALUES (1, 1000000000.0)",
    ], &[
        (0, "UPDATE m SET x = x * x"), (0, "UPDATE m SET x = x * x"),
        (0, "UPDATE m SET x = x * x"), (0, "UPDATE m SET x = x * x"),
        (0, "UPDATE m SET x = x * x"), (0, "UPDATE m SET x = x * x"),
        (0, "SELECT x / 1e-300 FROM m"), (0, "SELECT x + x * 1e20 FROM m"),
        (0, "SELECT 1e-300 * x * 1e-300 * 1e-300 FROM m"), (0, "SELECT x - x, 0 * x FROM m"),
        (0, "SELECT 1 / x FROM m"), (0, "INSERT INTO m (id, x) VALUES (2, 1.7e308)"),
        (0, "SELECT sum(x) FROM m"), (0, "SELECT avg(x) FROM m WHERE id = 2"),
        (0, "UPDATE m SET x = x + 1.7e308 WHERE id = 2"), (0, "SELECT * FROM m ORDER BY id"),
    ]),
    ("assignment casts: floats round into bigint, anything prints into text, quoted literals are read by the column's type", &[
        "CREATE TABLE t (id bigint PRIMARY KEY, n bigint, s text)",
    ], &[
        (0, "INSERT INTO t (id, n, s) VALUES (1, 2.5::float8, 5), (2, 3.5::float8, true), \
             (3, -2.5::float8, 1.5::float8), (4, 0.5::float8, '{\"a\": 1}'::jsonb), \
             (5, NULL, 12.50)"),
        (0, "SELECT * FROM t ORDER BY id"), (0, "INSERT INTO t (id, n, s) VALUES (6, 1e20::float8, NULL)"),
        (0, "UPDATE t SET n = 7.5::float8, s = 0.1::float8 + 0.2::float8 WHERE id = 1 RETURNING *"),
        (0, "INSERT INTO t (id, n, s) VALUES (7, '42', 'x'), (8, ' -3 ', 'y')"),
        (0, "UPDATE t SET n = '9' WHERE id = 7"), (0, "INSERT INTO t (id, n) VALUES (9, 'x')"),
        (0, "UPDATE t SET n = '1.5' WHERE id = 99"), (0, "UPDATE t SET n = upper('7') WHERE id = 7"),
        (0, "UPDATE t SET n = true WHERE id = 7"), (0, "SELECT * FROM t ORDER BY id"),
    ]),
    ("an ON CONFLICT target that is no constraint, and a NULL", &SCHEMA, &[
        (0, "INSERT INTO acct (id, bal, kind) VALUES (8, NULL, 'a') ON CONFLICT (bal) DO NOTHING"),
    ]),
    ("CREATE TABLE inside a transaction", &SCHEMA, &[
        (0, "BEGIN"), (0, "CREATE TABLE t2 (id bigint PRIMARY KEY)"),
        (0, "INSERT INTO t2 (id) VALUES (1)"), (0, "ROLLBACK"),
    ]),
    // Long-run case 1429: T_in only locks its row (FOR UPDATE is no write), so it is
    // read-only at its commit and the pivot's update of that row commits. T_in commits
    // before the update here: in the long run's order the update waits for T_in's lock,
    // and PostgreSQL answers 40001 or not depending on whether its conflict check runs
    // before or after T_in's commit is seen (both came back from the same server).
    ("serializable: a transaction that wrote nothing is read-only", &SCHEMA, &[
        (1, "BEGIN ISOLATION LEVEL SERIALIZABLE"), (2, "BEGIN ISOLATION LEVEL SERIALIZABLE"),
        (2, "INSERT INTO acct (id, bal, kind) VALUES (5, 1, 'a')"),
        (0, "BEGIN ISOLATION LEVEL SERIALIZABLE"), (0, "SELECT sum(bal), count(*) FROM acct"),
        (1, "SELECT bal FROM acct WHERE id = 2 FOR UPDATE"), (2, "COMMIT"),
        (1, "COMMIT"), (0, "UPDATE acct SET bal = bal + 3 WHERE id = 2"), (0, "COMMIT"),
    ]),
    // Long-run case 5135: T_out commits, then the pivot; the reader of the pivot's write
    // fails although no running transaction overlaps T_out any more.
    ("serializable: the reader of a committed pivot fails", &SCHEMA, &[
        (2, "BEGIN ISOLATION LEVEL SERIALIZABLE"), (1, "BEGIN ISOLATION LEVEL SERIALIZABLE"),
        (0, "BEGIN ISOLATION LEVEL SERIALIZABLE"),
        (0, "UPDATE acct SET bal = bal + -2 WHERE id = 3"),
        (2, "INSERT INTO acct (id, bal, kind) VALUES (5, 1, 'a')"), (2, "COMMIT"),
        (1, "SELECT bal FROM acct WHERE id = 5"), (0, "COMMIT"),
        (1, "SELECT sum(bal), count(*) FROM acct"), (1, "ROLLBACK"),
    ]),
    ("a sequence's values are not rolled back; currval and lastval per session", &[
        "CREATE TABLE t (id bigint PRIMARY KEY)",
        "CREATE SEQUENCE seq_a",
    ], &[
        (1, "SELECT currval('seq_a')"), (1, "SELECT lastval()"),
        (0, "BEGIN"), (0, "SELECT nextval('seq_a')"), (1, "SELECT nextval('seq_a')"),
        (0, "ROLLBACK"), (0, "SELECT nextval('seq_a')"), (0, "SELECT currval('seq_a')"),
        (1, "SELECT lastval()"), (1, "SELECT setval('seq_a', 10)"),
        (0, "SELECT nextval('seq_a')"), (1, "SELECT currval('seq_a')"),
        (1, "SELECT setval('seq_a', 20, false)"), (1, "SELECT nextval('seq_a')"),
        (0, "SELECT nextval('nope')"), (0, "SELECT setval('seq_a', 0)"),
    ]),
    ("nextval inside an UPDATE that waits for a row lock", &[
        "CREATE TABLE t (id bigint PRIMARY KEY, v bigint NOT NULL)",
        "INSERT INTO t (id, v) VALUES (1, 0), (2, 0)",
        "CREATE SEQUENCE seq_x",
    ], &[
        (0, "BEGIN"), (0, "UPDATE t SET v = 100 WHERE id = 1"),
        (1, "UPDATE t SET v = nextval('seq_x') RETURNING id, v"),
        (0, "COMMIT"), (1, "SELECT currval('seq_x')"),
        (0, "BEGIN"), (0, "UPDATE t SET v = 7 WHERE id = 2"),
        (1, "UPDATE t SET v = v + nextval('seq_x') WHERE id >= 1 RETURNING id, v"),
        (0, "ROLLBACK"), (1, "SELECT nextval('seq_x')"),
        (1, "SELECT id, v * 10 + currval('seq_x') FROM t WHERE id = 2"),
    ]),
    ("sequence bounds, CYCLE and descending sequences", &[
        "CREATE TABLE t (id bigint PRIMARY KEY)",
        "CREATE SEQUENCE seq_b MAXVALUE 2",
        "CREATE SEQUENCE seq_c MINVALUE 5 MAXVALUE 6 CYCLE",
        "CREATE SEQUENCE seq_d INCREMENT -3 START -2",
    ], &[
        (0, "SELECT nextval('seq_b')"), (0, "SELECT nextval('seq_b')"),
        (0, "SELECT nextval('seq_b')"),
        (0, "SELECT nextval('seq_c')"), (0, "SELECT nextval('seq_c')"),
        (0, "SELECT nextval('seq_c')"),
        (0, "SELECT nextval('seq_d')"), (0, "SELECT nextval('seq_d')"),
        (0, "CREATE SEQUENCE seq_b"), (0, "CREATE SEQUENCE IF NOT EXISTS seq_b"),
        (0, "CREATE SEQUENCE seq_e INCREMENT 0"), (0, "CREATE SEQUENCE seq_e START 0"),
        (0, "DROP SEQUENCE seq_b"), (0, "SELECT nextval('seq_b')"),
        (0, "DROP SEQUENCE seq_b"), (0, "DROP SEQUENCE IF EXISTS seq_b"),
    ]),
    ("SET LOCAL ends with the transaction, ROLLBACK undoes SET", &SCHEMA, &[
        (0, "SET lock_timeout = '2s'"), (0, "BEGIN"), (0, "SET LOCAL lock_timeout = 150"),
        (0, "SHOW lock_timeout"), (0, "COMMIT"), (0, "SHOW lock_timeout"),
        (0, "BEGIN"), (0, "SET statement_timeout = '1min'"), (0, "SHOW statement_timeout"),
        (0, "ROLLBACK"), (0, "SHOW statement_timeout"),
        (0, "BEGIN"), (0, "SET lock_timeout = 90000"), (0, "SELECT 1 / 0"), (0, "ROLLBACK"),
        (0, "SHOW lock_timeout"), (0, "RESET lock_timeout"), (0, "SHOW lock_timeout"),
        (0, "SET LOCAL lock_timeout = 5"), (0, "SHOW lock_timeout"),
        (0, "SHOW transaction_isolation"), (0, "BEGIN ISOLATION LEVEL REPEATABLE READ"),
        (0, "SHOW transaction_isolation"), (0, "SHOW default_transaction_isolation"),
        (0, "COMMIT"), (0, "SHOW no_such_setting"),
    ]),
    ("SET LOCAL lock_timeout ends a row lock wait", &SCHEMA, &[
        (0, "BEGIN"), (0, "UPDATE acct SET bal = 1 WHERE id = 1"),
        (1, "BEGIN"), (1, "SET LOCAL lock_timeout = '40ms'"),
        (1, "UPDATE acct SET bal = 2 WHERE id = 1"), (1, "ROLLBACK"), (0, "COMMIT"),
    ]),
    // Advisory keys are server-wide: each case uses its own.
    ("a session advisory lock survives COMMIT and blocks until unlocked", &SCHEMA, &[
        (0, "BEGIN"), (0, "SELECT pg_advisory_lock(9001)"), (0, "COMMIT"),
        (1, "SELECT pg_try_advisory_lock(9001)"), (1, "SELECT pg_advisory_lock(9001)"),
        (0, "SELECT pg_advisory_unlock(9001)"), (1, "SELECT pg_advisory_unlock(9001)"),
        (1, "SELECT pg_advisory_unlock(9001)"),
    ]),
    ("an xact advisory lock is released at COMMIT; shared ones coexist", &SCHEMA, &[
        (0, "BEGIN"), (0, "SELECT pg_advisory_xact_lock(9002)"),
        (1, "SELECT pg_advisory_xact_lock(9002)"), (0, "COMMIT"),
        (0, "SELECT pg_advisory_lock_shared(9003)"),
        (1, "SELECT pg_try_advisory_lock_shared(9003)"),
        (2, "SELECT pg_try_advisory_lock(9003)"), (2, "SELECT pg_try_advisory_xact_lock(9003)"),
        (0, "SELECT pg_advisory_unlock_shared(9003)"),
        (1, "SELECT pg_advisory_unlock_all()"), (2, "SELECT pg_try_advisory_lock(9003)"),
    ]),
    ("advisory keys: (int, int) and bigint are separate", &SCHEMA, &[
        (0, "SELECT pg_advisory_lock(9004, 2)"), (1, "SELECT pg_try_advisory_lock(9004, 2)"),
        (1, "SELECT pg_try_advisory_lock(38671885533186)"),
        (0, "SELECT pg_advisory_unlock_all()"), (1, "SELECT pg_try_advisory_lock(9004, 2)"),
        (1, "SELECT pg_advisory_unlock_all()"),
    ]),
    ("advisory locks deadlock: one victim", &SCHEMA, &[
        (0, "BEGIN"), (1, "BEGIN"),
        (0, "SELECT pg_advisory_xact_lock(9005)"), (1, "SELECT pg_advisory_xact_lock(9006)"),
        (0, "SELECT pg_advisory_xact_lock(9006)"), (1, "SELECT pg_advisory_xact_lock(9005)"),
        (0, "ROLLBACK"), (1, "COMMIT"),
    ]),
    ("an advisory lock and a row lock deadlock", &SCHEMA, &[
        (0, "BEGIN"), (1, "BEGIN"),
        (0, "SELECT pg_advisory_xact_lock(9007)"), (1, "UPDATE acct SET bal = 3 WHERE id = 1"),
        (0, "UPDATE acct SET bal = 4 WHERE id = 1"), (1, "SELECT pg_advisory_xact_lock(9007)"),
        (0, "ROLLBACK"), (1, "ROLLBACK"),
    ]),
    ("INSERT VALUES with expressions, DEFAULT and DEFAULT VALUES", &[
        "CREATE SEQUENCE s1",
        "CREATE TABLE t (id bigint PRIMARY KEY, v bigint, note text DEFAULT 'none', \
         ok boolean DEFAULT now() <= current_timestamp, \
         len bigint DEFAULT length(gen_random_uuid()::text))",
    ], &[
        (0, "INSERT INTO t (id, v) VALUES (1, 2 * 3 + 1)"),
        (0, "INSERT INTO t (id, v, note) VALUES (nextval('s1'), currval('s1') * 10, upper('ab'))"),
        (0, "INSERT INTO t (id, v, note) VALUES (nextval('s1') + 10, abs(-5), DEFAULT), \
             (nextval('s1') + 10, lastval(), 'x') RETURNING id, v, note, ok, len"),
        (0, "INSERT INTO t (v, id) VALUES (nextval('s1'), nextval('s1') + 100) RETURNING id, v"),
        (0, "INSERT INTO t (v, id) VALUES (nextval('s1'), nextval('s1') + 100), \
             (nextval('s1'), nextval('s1') + 100) RETURNING id, v"),
        (0, "INSERT INTO t (id, v) VALUES (50, 1 / 0)"),
        (0, "INSERT INTO t (id, v) VALUES (51, '7'::bigint + 1) RETURNING v"),
        (0, "INSERT INTO t (id, v) VALUES (52, nope)"),
        (0, "INSERT INTO t (id, id) VALUES (53, 1)"),
        (0, "INSERT INTO t DEFAULT VALUES"),
        (0, "INSERT INTO t (id, v) VALUES (54, DEFAULT) RETURNING *"),
        (0, "INSERT INTO t (id, note) VALUES (55, NULL), (56, DEFAULT) RETURNING id, note"),
        (0, "INSERT INTO t (id, v) VALUES (coalesce(NULL, 57), greatest(1, 9, 4))"),
        (0, "SELECT currval('s1'), lastval()"),
    ]),
    ("serial and identity columns draw from their own sequences", &[
        "CREATE TABLE s (id serial PRIMARY KEY, k bigint UNIQUE, \
         g bigint GENERATED ALWAYS AS IDENTITY, b bigint GENERATED BY DEFAULT AS IDENTITY)",
    ], &[
        (0, "SELECT currval('s_id_seq')"),
        (0, "INSERT INTO s (k) VALUES (1) RETURNING id, g, b"),
        (0, "SELECT currval('s_id_seq'), currval(pg_get_serial_sequence('s', 'g')), lastval()"),
        (0, "INSERT INTO s (k) VALUES (1)"),
        (0, "INSERT INTO s (k, g) VALUES (2, 5)"),
        (0, "INSERT INTO s (k, g) VALUES (2, DEFAULT) RETURNING id, g, b"),
        (0, "INSERT INTO s (k, g) OVERRIDING SYSTEM VALUE VALUES (3, 100) RETURNING id, g, b"),
        (0, "INSERT INTO s (k, b) VALUES (4, 200) RETURNING id, g, b"),
        (0, "INSERT INTO s (k, b) OVERRIDING USER VALUE VALUES (5, 300) RETURNING id, g, b"),
        (0, "INSERT INTO s (id, k) VALUES (DEFAULT, 6), (DEFAULT, 7) RETURNING id, g, b"),
        (0, "INSERT INTO s DEFAULT VALUES RETURNING id, k, g, b"),
        (0, "INSERT INTO s (id, k) VALUES (NULL, 11)"),
        (0, "BEGIN"), (0, "INSERT INTO s (k) VALUES (8)"), (0, "ROLLBACK"),
        (0, "INSERT INTO s (k) VALUES (9) RETURNING id, g, b"),
        (0, "UPDATE s SET g = 1 WHERE k = 9"),
        (0, "UPDATE s SET b = 1 WHERE k = 9 RETURNING b"),
        (0, "SELECT setval('s_id_seq', 50)"), (0, "INSERT INTO s (k) VALUES (10) RETURNING id"),
        (0, "SELECT pg_get_serial_sequence('s', 'k') IS NULL"),
        (0, "SELECT nextval('s_b_seq')"),
        (0, "CREATE SEQUENCE s_id_seq"),
        (0, "DROP SEQUENCE s_id_seq"),
        (0, "DROP SEQUENCE s_g_seq"),
    ]),
    ("a serial INSERT that waits for a duplicate key draws its number once", &[
        "CREATE TABLE q (id bigserial PRIMARY KEY, k bigint UNIQUE)",
    ], &[
        (0, "BEGIN"), (0, "INSERT INTO q (k) VALUES (1) RETURNING id"),
        (1, "INSERT INTO q (k) VALUES (1) RETURNING id"),
        (0, "ROLLBACK"), (1, "SELECT currval('q_id_seq')"),
        (0, "INSERT INTO q (k) VALUES (2) RETURNING id"),
        (0, "BEGIN"), (0, "INSERT INTO q (k) VALUES (5) RETURNING id"),
        (1, "INSERT INTO q (k) VALUES (5) RETURNING id"),
        (0, "COMMIT"), (1, "INSERT INTO q (k) VALUES (6) RETURNING id"),
        (0, "BEGIN ISOLATION LEVEL SERIALIZABLE"), (0, "INSERT INTO q (k) VALUES (7) RETURNING id"),
        (1, "BEGIN ISOLATION LEVEL SERIALIZABLE"), (1, "INSERT INTO q (k) VALUES (7) RETURNING id"),
        (0, "COMMIT"), (1, "ROLLBACK"), (1, "SELECT lastval()"),
    ]),
    ("column defaults that call functions", &[
        "CREATE SEQUENCE ds START 100",
        "CREATE TABLE d (id bigint PRIMARY KEY DEFAULT nextval('ds'), \
         n bigint DEFAULT currval('ds') + 1, txt text DEFAULT upper('x'), \
         two bigint DEFAULT 1 + 1 CHECK (two > 0))",
    ], &[
        (0, "INSERT INTO d DEFAULT VALUES RETURNING *"),
        (0, "INSERT INTO d (n) VALUES (nextval('ds')) RETURNING *"),
        (0, "INSERT INTO d (n) VALUES (nextval('ds')), (nextval('ds')) RETURNING *"),
        (0, "INSERT INTO d (id, n) VALUES (1, 2) RETURNING *"),
        (0, "INSERT INTO d (two) VALUES (0)"),
        (0, "INSERT INTO d (two) VALUES (DEFAULT) RETURNING id"),
        (0, "CREATE TABLE d2 (id bigint PRIMARY KEY DEFAULT nextval('missing'))"),
        (0, "INSERT INTO d (id) VALUES (DEFAULT) RETURNING id, n"),
    ]),
    ("SELECT without FROM", &[
        "CREATE TABLE t (id bigint PRIMARY KEY)",
        "CREATE SEQUENCE s2",
    ], &[
        (0, "SELECT 1 + 1, 7 / 2, -3, 2.5 * 2"),
        (0, "SELECT 1 AS a, 'x' AS b, NULL::bigint AS c"),
        (0, "SELECT nextval('s2'), nextval('s2') * 10, currval('s2')"),
        (0, "SELECT now() = current_timestamp, now() IS NOT NULL"),
        (0, "SELECT length(gen_random_uuid()::text), gen_random_uuid() = gen_random_uuid()"),
        (0, "SELECT 1 / 0"),
        (0, "SELECT nope"),
        (0, "SELECT abs(-4), lower('AbC'), coalesce(NULL, 'd')"),
        (0, "BEGIN"), (0, "SELECT nextval('s2') + 1 AS n"), (0, "ROLLBACK"),
        (0, "SELECT currval('s2'), lastval()"),
    ]),
    ("lock_timeout ends an advisory lock wait", &SCHEMA, &[
        (0, "SELECT pg_advisory_lock(9008)"), (1, "SET lock_timeout = '40ms'"),
        (1, "SELECT pg_advisory_lock(9008)"), (0, "SELECT pg_advisory_unlock(9008)"),
    ]),
];

const DOOM_SCHEMA: [&str; 5] = [
    SCHEMA[0],
    SCHEMA[1],
    SCHEMA[2],
    SCHEMA[3],
    "CREATE TABLE empty (id bigint PRIMARY KEY)",
];

/// Makes session 0 the pivot of `2 -> 0 -> 1` after 1 committed: session 2's read of
/// the row 0 wrote dooms 0, which is not told until it meets a tuple, writes or commits.
const DOOM_PRELUDE: &[(usize, &str)] = &[
    (0, "BEGIN ISOLATION LEVEL SERIALIZABLE"),
    (1, "BEGIN ISOLATION LEVEL SERIALIZABLE"),
    (2, "BEGIN ISOLATION LEVEL SERIALIZABLE"),
    (2, "SELECT on_call FROM doctors WHERE name = 'alice'"),
    (0, "SELECT bal FROM acct WHERE id = 1"),
    (1, "UPDATE acct SET bal = 11 WHERE id = 1"),
    (1, "COMMIT"),
    (0, "UPDATE acct SET bal = 12 WHERE id = 2"),
    (2, "SELECT bal FROM acct WHERE id = 2"),
];

/// What the doomed session 0 does next (long-run cases 1167, 2489, 2775, 3230, 4347,
/// 4777, 6563, 8110 and 8169 were of these kinds).
#[allow(clippy::type_complexity)]
const DOOMED: &[(&str, &[(usize, &str)])] = &[
    (
        "a doomed transaction's statements that meet no tuple succeed",
        &[
            (0, "SELECT 1"),
            (0, "SELECT bal FROM acct WHERE id = 7"),
            (0, "SELECT count(*) FROM empty"),
            (0, "SELECT count(*) FROM acct"),
            (0, "SELECT 1"),
            (2, "COMMIT"),
            (0, "ROLLBACK"),
        ],
    ),
    (
        "a doomed transaction that reads nothing fails at COMMIT",
        &[
            (0, "SELECT count(*) FROM empty"),
            (2, "COMMIT"),
            (0, "COMMIT"),
        ],
    ),
    (
        "a doomed transaction fails at a scan before its WHERE divides by zero",
        &[
            (0, "SELECT id FROM acct WHERE bal / 0 = 1"),
            (0, "ROLLBACK"),
            (2, "COMMIT"),
        ],
    ),
    (
        "a doomed transaction fails at an UPDATE's first tuple",
        &[
            (0, "UPDATE acct SET bal = 0 WHERE id = 3"),
            (0, "ROLLBACK"),
            (2, "COMMIT"),
        ],
    ),
    (
        "a doomed transaction's UPDATE of a missing key succeeds",
        &[
            (0, "UPDATE acct SET bal = 0 WHERE id = 9"),
            (0, "DELETE FROM acct WHERE id = 9"),
            (0, "COMMIT"),
            (2, "COMMIT"),
        ],
    ),
    (
        "a doomed transaction fails at an INSERT before its duplicate key",
        &[
            (0, "INSERT INTO acct (id, bal, kind) VALUES (1, 0, 'a')"),
            (0, "ROLLBACK"),
        ],
    ),
    (
        "a doomed transaction fails at an INSERT into an empty table",
        &[
            (0, "INSERT INTO empty (id) VALUES (1)"),
            (0, "ROLLBACK"),
            (2, "INSERT INTO empty (id) VALUES (1)"),
            (2, "COMMIT"),
        ],
    ),
    (
        "a doomed transaction's NOT NULL violation comes first",
        &[
            (0, "INSERT INTO acct (id, bal, kind) VALUES (8, NULL, 'a')"),
            (0, "ROLLBACK"),
        ],
    ),
    (
        "a doomed transaction's upsert that meets its arbiter's key writes nothing",
        &[
            (
                0,
                "INSERT INTO acct (id, bal, kind) VALUES (3, 1, 'b') ON CONFLICT (id) DO NOTHING",
            ),
            (
                0,
                "INSERT INTO acct (id, bal, kind) VALUES (4, 1, 'b') ON CONFLICT DO NOTHING",
            ),
            (
                0,
                "INSERT INTO acct (id, bal, kind) VALUES (9, 1, 'b') ON CONFLICT DO NOTHING",
            ),
            (0, "ROLLBACK"),
        ],
    ),
    (
        "a doomed transaction's upsert that updates fails",
        &[
            (
                0,
                "INSERT INTO acct (id, bal, kind) VALUES (3, 1, 'b') \
             ON CONFLICT (id) DO UPDATE SET bal = acct.bal + 1 WHERE acct.bal > 100",
            ),
            (
                0,
                "INSERT INTO acct (id, bal, kind) VALUES (3, 1, 'b') \
             ON CONFLICT (id) DO UPDATE SET bal = acct.bal + 1",
            ),
            (0, "ROLLBACK"),
        ],
    ),
    (
        "a doomed transaction's SELECT FOR UPDATE",
        &[
            (0, "SELECT id FROM acct WHERE id = 9 FOR UPDATE"),
            (0, "SELECT id FROM acct WHERE id = 4 FOR UPDATE"),
            (0, "ROLLBACK"),
            (1, "SELECT bal FROM acct WHERE id = 4 FOR UPDATE NOWAIT"),
        ],
    ),
    (
        "a doomed transaction fails before it would wait for a row lock",
        &[
            (1, "BEGIN"),
            (1, "UPDATE acct SET bal = 0 WHERE id = 3"),
            (0, "UPDATE acct SET bal = 1 WHERE id = 3"),
            (2, "COMMIT"),
            (1, "ROLLBACK"),
            (0, "ROLLBACK"),
        ],
    ),
    (
        "a doomed transaction's SAVEPOINT and ROLLBACK TO",
        &[
            (0, "SAVEPOINT s"),
            (0, "SELECT count(*) FROM acct"),
            (0, "ROLLBACK TO s"),
            (0, "SELECT count(*) FROM empty"),
            (0, "COMMIT"),
            (2, "COMMIT"),
        ],
    ),
];

/// Every scripted case.
pub fn cases() -> Vec<Case> {
    let doomed = DOOMED.iter().map(|(name, tail)| {
        let steps: Vec<(usize, &str)> = DOOM_PRELUDE.iter().chain(*tail).copied().collect();
        (*name, &DOOM_SCHEMA[..], steps)
    });
    SCRIPTS
        .iter()
        .map(|(name, schema, steps)| (*name, *schema, steps.to_vec()))
        .chain(doomed)
        .map(|(name, schema, steps)| Case {
            name: name.to_owned(),
            sessions: steps.iter().map(|(s, _)| s + 1).max().unwrap_or(1),
            setup: schema.iter().map(|s| s.to_string()).collect(),
            steps: steps
                .iter()
                .map(|(session, sql)| Step {
                    session: *session,
                    sql: (*sql).to_owned(),
                })
                .collect(),
            tables: schema
                .iter()
                .filter_map(|s| s.strip_prefix("CREATE TABLE "))
                .filter_map(|s| s.split_whitespace().next())
                .map(str::to_owned)
                .collect(),
        })
        .collect()
}
