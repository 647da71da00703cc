//! Semantics of the pure engine, with sessions interleaved by hand statement by statement.
//! (The concurrent scenarios over the network live in `tests/sql_*.rs`.)

use super::*;
use crate::sql_row;

fn config() -> Config {
    Config::default()
        .table(
            TableSchema::new("accounts")
                .column("id", ColumnType::Int)
                .column("balance", ColumnType::Int)
                .primary_key(&["id"]),
        )
        .table(
            TableSchema::new("doctors")
                .column("name", ColumnType::Text)
                .column("on_call", ColumnType::Bool)
                .primary_key(&["name"]),
        )
        .table(
            TableSchema::new("bookings")
                .column("id", ColumnType::Int)
                .column("room", ColumnType::Int)
                .column("slot", ColumnType::Int)
                .primary_key(&["id"])
                .unique(&["room", "slot"]),
        )
        .table(
            TableSchema::new("free_bookings")
                .column("id", ColumnType::Int)
                .column("room", ColumnType::Int)
                .column("slot", ColumnType::Int)
                .primary_key(&["id"]),
        )
}

struct Db {
    e: Engine,
}

impl Db {
    fn new() -> Self {
        Self::with(config())
    }

    fn with(config: Config) -> Self {
        let mut db = Db {
            e: Engine::new(&config),
        };
        let s = db.session();
        for (id, balance) in [(1, 100), (2, 100)] {
            db.ok(
                s,
                Insert::into("accounts", sql_row! {"id" => id, "balance" => balance}),
            );
        }
        for name in ["alice", "bob"] {
            db.ok(
                s,
                Insert::into("doctors", sql_row! {"name" => name, "on_call" => true}),
            );
        }
        db.e.close_session(s);
        db
    }

    fn session(&mut self) -> SessionId {
        self.e.open_session().unwrap()
    }

    fn submit(&mut self, s: SessionId, stmt: impl Into<Statement>) -> Submit {
        self.e.submit(s, &stmt.into())
    }

    /// Runs a statement that must succeed at once, and finishes it.
    fn ok(&mut self, s: SessionId, stmt: impl Into<Statement>) -> StmtResult {
        let stmt = stmt.into();
        match self.e.submit(s, &stmt) {
            Submit::Done(Ok(r)) => {
                self.e.finish(s).expect("finish");
                r
            }
            other => panic!("{stmt}: expected success, got {other:?}"),
        }
    }

    /// Runs a statement that must fail at once.
    fn err(&mut self, s: SessionId, stmt: impl Into<Statement>) -> SqlError {
        let stmt = stmt.into();
        match self.e.submit(s, &stmt) {
            Submit::Done(Err(e)) => e,
            other => panic!("{stmt}: expected an error, got {other:?}"),
        }
    }

    fn blocked(&mut self, s: SessionId, stmt: impl Into<Statement>) {
        let stmt = stmt.into();
        assert!(
            matches!(self.e.submit(s, &stmt), Submit::Blocked { .. }),
            "{stmt} should block"
        );
    }

    /// The single completion expected now, for session `s`, finished.
    fn completed(&mut self, s: SessionId) -> Result<StmtResult, SqlError> {
        let mut c = self.e.take_completions();
        assert_eq!(c.len(), 1, "expected one completion, got {c:?}");
        let c = c.remove(0);
        assert_eq!(c.session, s);
        match c.result {
            Ok(r) => self.e.finish(s).map(|_| r),
            Err(e) => Err(e),
        }
    }

    fn begin(&mut self, s: SessionId, iso: IsolationLevel) {
        self.ok(s, Statement::Begin(Some(iso)));
    }

    fn commit(&mut self, s: SessionId) -> Result<StmtResult, SqlError> {
        match self.e.submit(s, &Statement::Commit) {
            Submit::Done(r) => r,
            Submit::Blocked { .. } => panic!("COMMIT never blocks"),
        }
    }

    fn balance(&mut self, s: SessionId, id: i64) -> i64 {
        self.ok(s, Select::from("accounts").key(id))
            .first()
            .expect("account exists")
            .get("balance")
            .unwrap()
    }

    fn committed_balance(&self, id: i64) -> i64 {
        self.e
            .committed_rows("accounts")
            .unwrap()
            .into_iter()
            .find(|r| r.get::<_, i64>("id").unwrap() == id)
            .unwrap()
            .get("balance")
            .unwrap()
    }
}

fn set_balance(id: i64, v: i64) -> Update {
    Update::table("accounts").set("balance", v).key(id)
}

fn debit(id: i64, v: i64) -> Update {
    Update::table("accounts")
        .set("balance", col("balance").minus(v))
        .key(id)
}

const LEVELS: [IsolationLevel; 3] = [
    IsolationLevel::ReadCommitted,
    IsolationLevel::RepeatableRead,
    IsolationLevel::Serializable,
];

#[test]
fn no_dirty_reads_at_any_level() {
    for iso in LEVELS {
        let mut db = Db::new();
        let (w, r) = (db.session(), db.session());
        db.begin(w, IsolationLevel::ReadCommitted);
        db.ok(w, set_balance(1, 999));
        db.begin(r, iso);
        assert_eq!(db.balance(r, 1), 100, "{iso}: uncommitted write seen");
        assert_eq!(
            db.ok(r, Count::from("accounts").filter(col("balance").eq(999)))
                .affected,
            0
        );
        db.ok(w, Statement::Rollback);
        assert_eq!(db.balance(r, 1), 100);
        db.commit(r).unwrap();
    }
}

#[test]
fn read_committed_sees_new_commits_each_statement_repeatable_read_does_not() {
    let mut db = Db::new();
    let (w, rc, rr) = (db.session(), db.session(), db.session());
    db.begin(rc, IsolationLevel::ReadCommitted);
    db.begin(rr, IsolationLevel::RepeatableRead);
    assert_eq!(db.balance(rc, 1), 100);
    assert_eq!(db.balance(rr, 1), 100);
    db.ok(w, set_balance(1, 50));
    assert_eq!(db.balance(rc, 1), 50, "RC: a new statement sees the commit");
    assert_eq!(db.balance(rr, 1), 100, "RR: one snapshot per transaction");
    db.commit(rc).unwrap();
    db.commit(rr).unwrap();
}

#[test]
fn repeatable_read_snapshot_starts_at_first_statement_not_begin() {
    let mut db = Db::new();
    let (w, rr) = (db.session(), db.session());
    db.begin(rr, IsolationLevel::RepeatableRead);
    db.ok(w, set_balance(1, 7));
    assert_eq!(db.balance(rr, 1), 7);
}

#[test]
fn read_committed_update_waits_then_applies_to_latest_version() {
    let mut db = Db::new();
    let (a, b) = (db.session(), db.session());
    db.begin(a, IsolationLevel::ReadCommitted);
    db.begin(b, IsolationLevel::ReadCommitted);
    db.ok(a, debit(1, 10));
    db.blocked(b, debit(1, 10));
    assert!(db.e.take_completions().is_empty());
    db.commit(a).unwrap();
    let r = db.completed(b).unwrap();
    assert_eq!(r.rows[0].get::<_, i64>("balance").unwrap(), 80);
    db.commit(b).unwrap();
    assert_eq!(db.committed_balance(1), 80, "atomic updates lose nothing");
}

#[test]
fn a_blocked_statement_names_the_transaction_it_waits_for() {
    let mut db = Db::new();
    let (a, b) = (db.session(), db.session());
    db.begin(a, IsolationLevel::ReadCommitted);
    db.ok(a, debit(1, 1));
    let holder = db.e.transaction_of(a).unwrap();
    match db.submit(b, debit(1, 1)) {
        Submit::Blocked { waiting_for } => assert_eq!(waiting_for, [holder].into()),
        other => panic!("{other:?}"),
    }
    assert!(db.e.wait_state(b).is_some());
    db.commit(a).unwrap();
    db.completed(b).unwrap();
    assert!(db.e.wait_state(b).is_none());
}

#[test]
fn read_committed_loses_read_modify_write_updates() {
    let mut db = Db::new();
    let (a, b) = (db.session(), db.session());
    db.begin(a, IsolationLevel::ReadCommitted);
    db.begin(b, IsolationLevel::ReadCommitted);
    let va = db.balance(a, 1);
    let vb = db.balance(b, 1);
    db.ok(a, set_balance(1, va + 10));
    db.blocked(b, set_balance(1, vb + 10));
    db.commit(a).unwrap();
    db.completed(b).unwrap();
    db.commit(b).unwrap();
    assert_eq!(
        db.committed_balance(1),
        110,
        "one deposit is lost, as in PostgreSQL"
    );
}

#[test]
fn repeatable_read_refuses_updating_a_concurrently_updated_row() {
    for iso in [IsolationLevel::RepeatableRead, IsolationLevel::Serializable] {
        let mut db = Db::new();
        let (a, b) = (db.session(), db.session());
        db.begin(a, iso);
        db.begin(b, iso);
        let va = db.balance(a, 1);
        let vb = db.balance(b, 1);
        db.ok(a, set_balance(1, va + 10));
        db.blocked(b, set_balance(1, vb + 10));
        db.commit(a).unwrap();
        let e = db.completed(b).unwrap_err();
        assert_eq!(e.sqlstate(), Some("40001"), "{iso}");
        assert_eq!(
            e.to_string(),
            "could not serialize access due to concurrent update"
        );
        // The block is failed until ROLLBACK; COMMIT reports ROLLBACK.
        assert_eq!(
            db.err(b, Select::from("accounts")).sqlstate(),
            Some("25P02")
        );
        assert_eq!(db.commit(b).unwrap().tag, CommandTag::Rollback);
        assert_eq!(db.committed_balance(1), 110);
    }
}

#[test]
fn repeatable_read_fails_at_once_when_the_updater_already_committed() {
    let mut db = Db::new();
    let (a, b) = (db.session(), db.session());
    db.begin(b, IsolationLevel::RepeatableRead);
    assert_eq!(db.balance(b, 1), 100);
    db.ok(a, set_balance(1, 1));
    assert_eq!(db.err(b, debit(1, 1)).sqlstate(), Some("40001"));
    // A deleted row gives the "concurrent delete" flavour.
    db.ok(b, Statement::Rollback);
    db.begin(b, IsolationLevel::RepeatableRead);
    assert_eq!(db.balance(b, 2), 100);
    db.ok(a, Delete::from("accounts").key(2));
    let e = db.err(b, Select::from("accounts").key(2).for_update());
    assert_eq!(
        e.to_string(),
        "could not serialize access due to concurrent delete"
    );
}

#[test]
fn repeatable_read_waiter_proceeds_when_the_holder_rolls_back() {
    let mut db = Db::new();
    let (a, b) = (db.session(), db.session());
    db.begin(a, IsolationLevel::RepeatableRead);
    db.begin(b, IsolationLevel::RepeatableRead);
    db.ok(a, debit(1, 1));
    db.blocked(b, debit(1, 5));
    db.ok(a, Statement::Rollback);
    db.completed(b).unwrap();
    db.commit(b).unwrap();
    assert_eq!(db.committed_balance(1), 95);
}

#[test]
fn read_committed_recheck_skips_rows_that_no_longer_match() {
    let mut db = Db::new();
    let (a, b) = (db.session(), db.session());
    db.begin(a, IsolationLevel::ReadCommitted);
    db.ok(a, set_balance(1, 0));
    db.blocked(
        b,
        Update::table("accounts")
            .set("balance", col("balance").plus(1))
            .filter(col("balance").eq(100)),
    );
    db.commit(a).unwrap();
    let r = db.completed(b).unwrap();
    // Row 1 no longer matches after the re-check; row 2 was never locked by a.
    assert_eq!(r.affected, 1);
    assert_eq!(r.rows[0].get::<_, i64>("id").unwrap(), 2);
    assert_eq!(db.committed_balance(1), 0);
}

#[test]
fn read_committed_does_not_see_rows_inserted_after_its_statement_began() {
    // The PostgreSQL read committed behaviour: the re-check covers the rows the
    // statement found, not new rows committed while it waited.
    let mut db = Db::new();
    let (a, b) = (db.session(), db.session());
    db.begin(a, IsolationLevel::ReadCommitted);
    db.ok(a, debit(1, 0));
    db.ok(
        a,
        Insert::into("accounts", sql_row! {"id" => 3, "balance" => 100}),
    );
    db.blocked(
        b,
        Update::table("accounts")
            .set("balance", 0)
            .filter(col("balance").eq(100)),
    );
    db.commit(a).unwrap();
    assert_eq!(db.completed(b).unwrap().affected, 2, "ids 1 and 2, not 3");
    assert_eq!(db.committed_balance(3), 100);
}

fn go_off_call(db: &mut Db, s: SessionId, me: &str) -> Result<(), SqlError> {
    let on_call = db
        .ok(s, Count::from("doctors").filter(col("on_call").eq(true)))
        .affected;
    if on_call >= 2 {
        match db.submit(s, Update::table("doctors").set("on_call", false).key(me)) {
            Submit::Done(Ok(_)) => db.e.finish(s)?,
            Submit::Done(Err(e)) => return Err(e),
            Submit::Blocked { .. } => panic!("no lock conflict expected"),
        }
    }
    Ok(())
}

#[test]
fn write_skew_commits_under_repeatable_read() {
    let mut db = Db::new();
    let (a, b) = (db.session(), db.session());
    db.begin(a, IsolationLevel::RepeatableRead);
    db.begin(b, IsolationLevel::RepeatableRead);
    go_off_call(&mut db, a, "alice").unwrap();
    go_off_call(&mut db, b, "bob").unwrap();
    db.commit(a).unwrap();
    db.commit(b).unwrap();
    let on_call =
        db.e.committed_rows("doctors")
            .unwrap()
            .iter()
            .filter(|r| r.get::<_, bool>("on_call").unwrap())
            .count();
    assert_eq!(on_call, 0, "write skew: nobody is on call");
}

#[test]
fn write_skew_is_prevented_under_serializable() {
    let mut db = Db::new();
    let (a, b) = (db.session(), db.session());
    db.begin(a, IsolationLevel::Serializable);
    db.begin(b, IsolationLevel::Serializable);
    go_off_call(&mut db, a, "alice").unwrap();
    let second = go_off_call(&mut db, b, "bob");
    let outcome = match second {
        Err(e) => Err(e),
        Ok(()) => {
            db.commit(a).unwrap();
            db.commit(b).map(|_| ())
        }
    };
    let e = outcome.unwrap_err();
    assert_eq!(e.sqlstate(), Some("40001"));
    assert_eq!(
        e.to_string(),
        "could not serialize access due to read/write dependencies among transactions"
    );
    let on_call =
        db.e.committed_rows("doctors")
            .unwrap()
            .iter()
            .filter(|r| r.get::<_, bool>("on_call").unwrap())
            .count();
    assert_eq!(on_call, 1);
}

fn book(db: &mut Db, s: SessionId, id: i64) -> Result<(), SqlError> {
    let taken = db
        .ok(
            s,
            Count::from("free_bookings").filter(col("room").eq(1).and(col("slot").eq(9))),
        )
        .affected;
    assert_eq!(taken, 0);
    match db.submit(
        s,
        Insert::into(
            "free_bookings",
            sql_row! {"id" => id, "room" => 1, "slot" => 9},
        ),
    ) {
        Submit::Done(r) => r.and_then(|_| db.e.finish(s)),
        Submit::Blocked { .. } => panic!("distinct ids do not conflict"),
    }
}

#[test]
fn select_then_insert_double_books_under_repeatable_read_not_serializable() {
    let mut db = Db::new();
    let (a, b) = (db.session(), db.session());
    db.begin(a, IsolationLevel::RepeatableRead);
    db.begin(b, IsolationLevel::RepeatableRead);
    book(&mut db, a, 1).unwrap();
    book(&mut db, b, 2).unwrap();
    db.commit(a).unwrap();
    db.commit(b).unwrap();
    assert_eq!(db.e.committed_rows("free_bookings").unwrap().len(), 2);

    let mut db = Db::new();
    let (a, b) = (db.session(), db.session());
    db.begin(a, IsolationLevel::Serializable);
    db.begin(b, IsolationLevel::Serializable);
    book(&mut db, a, 1).unwrap();
    book(&mut db, b, 2).unwrap();
    db.commit(a).unwrap();
    assert_eq!(db.commit(b).unwrap_err().sqlstate(), Some("40001"));
    assert_eq!(db.e.committed_rows("free_bookings").unwrap().len(), 1);
}

#[test]
fn serializable_lets_disjoint_key_updates_commit_but_not_disjoint_scans() {
    let mut db = Db::new();
    let (a, b) = (db.session(), db.session());
    db.begin(a, IsolationLevel::Serializable);
    db.begin(b, IsolationLevel::Serializable);
    let va = db.balance(a, 1);
    let vb = db.balance(b, 2);
    db.ok(a, set_balance(1, va + 1));
    db.ok(b, set_balance(2, vb + 1));
    db.commit(a).unwrap();
    db.commit(b).unwrap();
    // Bookings of different slots checked without an index are whole-table scans to
    // PostgreSQL, whose relation-level SIREAD locks make each insert conflict with the
    // other's check: the second commit fails, as on the real server.
    let (c, d) = (db.session(), db.session());
    db.begin(c, IsolationLevel::Serializable);
    db.begin(d, IsolationLevel::Serializable);
    for (s, id, slot) in [(c, 1, 1), (d, 2, 2)] {
        let n = db
            .ok(s, Count::from("free_bookings").filter(col("slot").eq(slot)))
            .affected;
        assert_eq!(n, 0);
        db.ok(
            s,
            Insert::into(
                "free_bookings",
                sql_row! {"id" => id, "room" => 1, "slot" => slot},
            ),
        );
    }
    db.commit(c).unwrap();
    assert_eq!(db.commit(d).unwrap_err().sqlstate(), Some("40001"));
}

#[test]
fn serializable_read_only_anomaly_is_prevented() {
    // The classic batch-processing example (Fekete et al.): a report that sees the
    // batch closed but not a deposit of that batch would be inconsistent.
    let mut db = Db::new();
    let (t1, t2, t3) = (db.session(), db.session(), db.session());
    for s in [t1, t2, t3] {
        db.begin(s, IsolationLevel::Serializable);
    }
    // t2 (deposit) reads the batch counter (account 2) and writes account 1.
    db.balance(t2, 2);
    db.ok(t2, debit(1, -10));
    // t1 closes the batch: writes account 2, commits.
    db.ok(t1, debit(2, -1));
    db.commit(t1).unwrap();
    // t3 (report) reads both: sees the batch closed but not the deposit.
    db.balance(t3, 2);
    let r3 = match db.submit(t3, Select::from("accounts").key(1)) {
        Submit::Done(r) => r.and_then(|r| db.e.finish(t3).map(|_| r)),
        Submit::Blocked { .. } => panic!(),
    };
    let c3 = r3.and_then(|_| db.commit(t3));
    let c2 = db.commit(t2);
    assert!(
        c3.is_err() || c2.is_err(),
        "one of the report or the deposit must fail"
    );
}

#[test]
fn unique_constraint_turns_double_booking_into_23505() {
    let mut db = Db::new();
    let (a, b) = (db.session(), db.session());
    db.begin(a, IsolationLevel::ReadCommitted);
    db.begin(b, IsolationLevel::ReadCommitted);
    db.ok(
        a,
        Insert::into("bookings", sql_row! {"id" => 1, "room" => 1, "slot" => 9}),
    );
    db.blocked(
        b,
        Insert::into("bookings", sql_row! {"id" => 2, "room" => 1, "slot" => 9}),
    );
    db.commit(a).unwrap();
    let e = db.completed(b).unwrap_err();
    assert_eq!(e.sqlstate(), Some("23505"));
    assert_eq!(
        e.to_string(),
        "duplicate key value violates unique constraint \"bookings_room_slot_key\""
    );
    // Had the first rolled back, the second would have gone through.
    db.ok(b, Statement::Rollback);
    db.begin(a, IsolationLevel::ReadCommitted);
    db.ok(
        a,
        Insert::into("bookings", sql_row! {"id" => 3, "room" => 2, "slot" => 9}),
    );
    db.blocked(
        b,
        Insert::into("bookings", sql_row! {"id" => 4, "room" => 2, "slot" => 9}),
    );
    db.ok(a, Statement::Rollback);
    db.completed(b).unwrap();
    // Same primary key in one session: immediate 23505 on the pkey.
    let e = db.err(
        b,
        Insert::into("bookings", sql_row! {"id" => 4, "room" => 3, "slot" => 1}),
    );
    assert!(
        matches!(e, SqlError::UniqueViolation { ref constraint, .. } if constraint == "bookings_pkey")
    );
}

#[test]
fn serializable_duplicate_after_a_failed_lookup_is_a_serialization_failure() {
    let mut db = Db::new();
    let (a, b) = (db.session(), db.session());
    db.begin(a, IsolationLevel::Serializable);
    db.begin(b, IsolationLevel::Serializable);
    for s in [a, b] {
        let n = db
            .ok(
                s,
                Count::from("bookings").filter(col("room").eq(1).and(col("slot").eq(9))),
            )
            .affected;
        assert_eq!(n, 0);
    }
    db.ok(
        a,
        Insert::into("bookings", sql_row! {"id" => 1, "room" => 1, "slot" => 9}),
    );
    db.commit(a).unwrap();
    let e = db.err(
        b,
        Insert::into("bookings", sql_row! {"id" => 2, "room" => 1, "slot" => 9}),
    );
    assert_eq!(e.sqlstate(), Some("40001"));
}

#[test]
fn opposite_lock_order_deadlocks_and_one_victim_is_aborted() {
    let mut db = Db::new();
    let (a, b) = (db.session(), db.session());
    db.begin(a, IsolationLevel::ReadCommitted);
    db.begin(b, IsolationLevel::ReadCommitted);
    db.ok(a, Select::from("accounts").key(1).for_update());
    db.ok(b, Select::from("accounts").key(2).for_update());
    db.blocked(a, debit(2, 1));
    assert!(!db.e.check_deadlock(a), "no cycle yet");
    db.blocked(b, debit(1, 1));
    // b's deadlock_timeout fires first in this interleaving: b is the victim.
    assert!(db.e.check_deadlock(b));
    // a's statement went through as b's locks were released.
    db.completed(a).unwrap();
    db.commit(a).unwrap();
    assert_eq!(db.e.stats().deadlocks, 1);
    assert_eq!(db.committed_balance(2), 99);
    assert_eq!(db.committed_balance(1), 100);
    assert_eq!(db.commit(b).unwrap().tag, CommandTag::Rollback);
}

#[test]
fn share_locks_nowait_and_skip_locked() {
    let mut db = Db::new();
    let (a, b, c) = (db.session(), db.session(), db.session());
    db.begin(a, IsolationLevel::ReadCommitted);
    db.begin(b, IsolationLevel::ReadCommitted);
    db.ok(a, Select::from("accounts").key(1).for_share());
    db.ok(b, Select::from("accounts").key(1).for_share());
    db.blocked(c, debit(1, 1));
    db.commit(a).unwrap();
    assert!(db.e.take_completions().is_empty(), "b still shares the row");
    db.commit(b).unwrap();
    db.completed(c).unwrap();

    db.begin(a, IsolationLevel::ReadCommitted);
    db.ok(a, Select::from("accounts").key(1).for_update());
    let e = db.err(b, Select::from("accounts").for_update().nowait());
    assert_eq!(e.sqlstate(), Some("55P03"));
    let r = db.ok(
        c,
        Select::from("accounts").for_update().skip_locked().limit(5),
    );
    assert_eq!(r.affected, 1);
    assert_eq!(r.rows[0].get::<_, i64>("id").unwrap(), 2);
}

#[test]
fn cancel_rolls_back_and_wakes_waiters() {
    let mut db = Db::new();
    let (a, b, c) = (db.session(), db.session(), db.session());
    db.begin(a, IsolationLevel::ReadCommitted);
    db.begin(b, IsolationLevel::ReadCommitted);
    db.ok(a, debit(1, 1));
    db.ok(b, debit(2, 1));
    db.blocked(b, debit(1, 1));
    db.blocked(c, debit(2, 1));
    // b's lock_timeout fires: its transaction is rolled back, so c gets row 2.
    assert!(db.e.cancel(b));
    db.completed(c).unwrap();
    assert!(!db.e.cancel(b), "nothing in flight");
    db.commit(a).unwrap();
    assert_eq!(db.committed_balance(1), 99);
    assert_eq!(db.committed_balance(2), 99);
}

#[test]
fn upserts_do_nothing_and_do_update() {
    let mut db = Db::new();
    let (a, b) = (db.session(), db.session());
    let bump = || {
        Insert::into("accounts", sql_row! {"id" => 5, "balance" => 1}).on_conflict_do_update(
            &["id"],
            vec![("balance", col("balance").plus(excluded("balance")))],
        )
    };
    db.ok(a, bump());
    db.ok(a, bump());
    assert_eq!(db.committed_balance(5), 2);
    let r = db.ok(
        a,
        Insert::into("accounts", sql_row! {"id" => 5, "balance" => 9}).on_conflict_do_nothing(),
    );
    assert_eq!(r.affected, 0);
    // Concurrent: b's upsert waits for a's uncommitted insert, then updates it.
    db.begin(a, IsolationLevel::ReadCommitted);
    db.ok(
        a,
        Insert::into("accounts", sql_row! {"id" => 6, "balance" => 1}),
    );
    db.blocked(
        b,
        Insert::into("accounts", sql_row! {"id" => 6, "balance" => 1}).on_conflict_do_update(
            &["id"],
            vec![("balance", col("balance").plus(excluded("balance")))],
        ),
    );
    db.commit(a).unwrap();
    db.completed(b).unwrap();
    assert_eq!(db.committed_balance(6), 2);
    let e = db.err(
        a,
        Insert::into("accounts", sql_row! {"id" => 7, "balance" => 1})
            .on_conflict_do_update(&["balance"], vec![]),
    );
    assert_eq!(e.sqlstate(), Some("42P10"));
}

#[test]
fn repeatable_read_upsert_on_an_invisible_row_fails() {
    let mut db = Db::new();
    let (a, b) = (db.session(), db.session());
    db.begin(b, IsolationLevel::RepeatableRead);
    db.balance(b, 1);
    db.ok(
        a,
        Insert::into("accounts", sql_row! {"id" => 8, "balance" => 1}),
    );
    let e = db.err(
        b,
        Insert::into("accounts", sql_row! {"id" => 8, "balance" => 1}).on_conflict_do_nothing(),
    );
    assert_eq!(e.sqlstate(), Some("40001"));
}

#[test]
fn crash_keeps_exactly_the_committed_data() {
    let mut db = Db::new();
    let (a, b) = (db.session(), db.session());
    db.ok(a, set_balance(1, 1));
    db.begin(b, IsolationLevel::ReadCommitted);
    db.ok(b, set_balance(2, 2));
    db.ok(
        b,
        Insert::into("accounts", sql_row! {"id" => 3, "balance" => 3}),
    );
    let report = db.e.crash();
    assert_eq!(report.rolled_back.len(), 1);
    assert!(report.lost_commits.is_empty());
    assert_eq!(db.e.session_count(), 0);
    let rows = db.e.committed_rows("accounts").unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(db.committed_balance(1), 1);
    assert_eq!(db.committed_balance(2), 100);
    // Work goes on after recovery.
    let s = db.session();
    db.ok(s, set_balance(2, 5));
    assert_eq!(db.committed_balance(2), 5);
}

#[test]
fn asynchronous_commit_loses_the_commits_since_the_last_flush() {
    let mut db = Db::with(Config {
        synchronous_commit: false,
        ..config()
    });
    db.e.flush_wal();
    let s = db.session();
    db.ok(s, set_balance(1, 1));
    assert_eq!(db.e.flush_wal(), 1);
    db.ok(s, set_balance(1, 2));
    db.ok(s, set_balance(2, 2));
    db.ok(
        s,
        Insert::into("accounts", sql_row! {"id" => 3, "balance" => 3}),
    );
    assert_eq!(db.e.unflushed_commits(), 3);
    let report = db.e.crash();
    assert_eq!(report.lost_commits.len(), 3);
    assert_eq!(db.committed_balance(1), 1, "the flushed commit survives");
    assert_eq!(db.committed_balance(2), 100);
    assert_eq!(db.e.committed_rows("accounts").unwrap().len(), 2);
}

#[test]
fn vacuum_keeps_what_a_snapshot_needs_and_drops_the_rest() {
    let mut db = Db::with(Config {
        vacuum_every_commits: 1,
        ..config()
    });
    let (w, r) = (db.session(), db.session());
    db.begin(r, IsolationLevel::RepeatableRead);
    assert_eq!(db.balance(r, 1), 100);
    for v in 0..10 {
        db.ok(w, set_balance(1, v));
    }
    assert_eq!(db.balance(r, 1), 100, "the old version is kept for r");
    assert!(db.e.version_count("accounts").unwrap() > 2);
    db.commit(r).unwrap();
    db.ok(w, set_balance(1, 42));
    assert_eq!(db.e.version_count("accounts").unwrap(), 2);
    assert_eq!(db.committed_balance(1), 42);
}

#[test]
fn max_connections_refuses_with_53300() {
    let mut db = Db::with(Config {
        max_connections: 2,
        ..config()
    });
    let a = db.session();
    db.session();
    assert_eq!(db.e.open_session().unwrap_err().sqlstate(), Some("53300"));
    db.e.close_session(a);
    db.session();
}

#[test]
fn closing_a_session_rolls_back_and_releases_locks() {
    let mut db = Db::new();
    let (a, b) = (db.session(), db.session());
    db.begin(a, IsolationLevel::ReadCommitted);
    db.ok(a, set_balance(1, 0));
    db.blocked(b, debit(1, 1));
    db.e.close_session(a);
    db.completed(b).unwrap();
    assert_eq!(db.committed_balance(1), 99);
}

#[test]
fn errors_carry_sqlstates() {
    let mut db = Db::new();
    let s = db.session();
    assert_eq!(db.err(s, Select::from("nope")).sqlstate(), Some("42P01"));
    assert_eq!(
        db.err(s, Select::from("accounts").filter(col("nope").eq(1)))
            .sqlstate(),
        Some("42703")
    );
    assert_eq!(
        db.err(s, Insert::into("accounts", sql_row! {"id" => 9}))
            .sqlstate(),
        Some("23502")
    );
    assert_eq!(
        db.err(s, Update::table("accounts").set("balance", "x").key(1))
            .sqlstate(),
        Some("42804")
    );
    db.begin(s, IsolationLevel::ReadCommitted);
    let e = db.err(
        s,
        Statement::CreateTable {
            schema: TableSchema::new("x")
                .column("id", ColumnType::Int)
                .primary_key(&["id"]),
            if_not_exists: false,
        },
    );
    assert_eq!(e.sqlstate(), Some("25001"));
}
