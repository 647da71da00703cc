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
    // A string is read by the column type's input function, as PostgreSQL reads a quoted
    // literal or a parameter sent as text.
    assert_eq!(
        db.err(s, Update::table("accounts").set("balance", "x").key(1))
            .sqlstate(),
        Some("22P02")
    );
    assert_eq!(
        db.err(s, Update::table("accounts").set("balance", true).key(1))
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

/// SQL text planned and bound, as a client sends it.
fn sql(text: &str, params: &[&dyn ToSql]) -> Statement {
    text::prepare(text).unwrap().bind(params).unwrap()
}

/// `slots` with a plain index on `doctor_id` and `twin` without one, each with the same
/// 60 rows over 6 doctors.
fn slots_db() -> Db {
    let mut db = Db::new();
    let s = db.session();
    for t in ["slots", "twin"] {
        db.ok(
            s,
            sql(
                &format!("CREATE TABLE {t} (id bigint PRIMARY KEY, doctor_id bigint NOT NULL, starts_at float8, taken boolean NOT NULL)"),
                &[],
            ),
        );
    }
    db.ok(
        s,
        sql("CREATE INDEX slots_doctor ON slots (doctor_id)", &[]),
    );
    db.ok(
        s,
        sql("CREATE INDEX slots_starts ON slots (starts_at)", &[]),
    );
    for t in ["slots", "twin"] {
        for id in 0..60_i64 {
            let (doctor, at) = (id % 6, id as f64);
            db.ok(
                s,
                sql(
                    &format!("INSERT INTO {t} (id, doctor_id, starts_at, taken) VALUES ($1, $2, $3, false)"),
                    &[&id, &doctor, &at],
                ),
            );
        }
    }
    db.e.close_session(s);
    db
}

fn ids(r: &StmtResult) -> Vec<i64> {
    r.rows
        .iter()
        .map(|row| row.get::<_, i64>("id").unwrap())
        .collect()
}

#[test]
fn lookups_choose_the_primary_key_then_a_unique_index_then_a_plain_one() {
    let mut db = slots_db();
    let s = db.session();
    db.ok(
        s,
        sql("CREATE UNIQUE INDEX slots_at ON slots (doctor_id, id)", &[]),
    );
    let t = db.e.table_id("slots").unwrap();
    let chosen = |db: &Db, text: &str, params: &[&dyn ToSql], serializable: bool| {
        let Statement::Select(sel) = sql(text, params) else {
            panic!("{text} is a SELECT")
        };
        let w = db.e.bind_where(t, &sel.filter, "slots").unwrap();
        db.e.index_lookup(t, &w, serializable)
            .map(|(index, key)| (index.name.clone(), key))
    };
    let one = Value::Int(1);
    // The primary key needs no other index.
    assert_eq!(
        chosen(
            &db,
            "SELECT id FROM slots WHERE id = 7 AND doctor_id = 1",
            &[],
            false
        ),
        None
    );
    assert_eq!(
        chosen(
            &db,
            "SELECT id FROM slots WHERE doctor_id = $1 AND taken = false",
            &[&1_i64],
            false
        ),
        Some(("slots_doctor".into(), vec![one.clone()]))
    );
    assert_eq!(
        chosen(
            &db,
            "SELECT id FROM slots WHERE doctor_id = 1 AND 3 = id + 0",
            &[],
            false
        ),
        Some(("slots_doctor".into(), vec![one.clone()]))
    );
    // A unique index pinned whole wins over the plain one.
    assert_eq!(
        chosen(
            &db,
            "SELECT id FROM slots WHERE 1 = doctor_id AND (taken OR id = 3) AND id + 0 = 1",
            &[],
            false
        ),
        Some(("slots_doctor".into(), vec![one.clone()]))
    );
    // No equality on the column, an OR, a float column (0 = -0 are two keys) or a
    // serializable read (whole-relation SIREAD lock): every row.
    for text in [
        "SELECT id FROM slots WHERE doctor_id > 1",
        "SELECT id FROM slots WHERE doctor_id = 1 OR taken",
        "SELECT id FROM slots WHERE starts_at = 1.0",
        "SELECT id FROM slots WHERE doctor_id = NULL",
    ] {
        assert_eq!(chosen(&db, text, &[], false), None, "{text}");
    }
    assert_eq!(
        chosen(&db, "SELECT id FROM slots WHERE doctor_id = 1", &[], true),
        None
    );
    db.ok(
        s,
        sql(
            "CREATE TABLE pairs (id bigint PRIMARY KEY, a bigint, b bigint, UNIQUE (a, b))",
            &[],
        ),
    );
    db.ok(s, sql("CREATE INDEX pairs_a ON pairs (a)", &[]));
    let t = db.e.table_id("pairs").unwrap();
    let Statement::Select(sel) = sql("SELECT id FROM pairs WHERE a = 1 AND b = 2", &[]) else {
        unreachable!()
    };
    let w = db.e.bind_where(t, &sel.filter, "pairs").unwrap();
    let (index, key) = db.e.index_lookup(t, &w, false).unwrap();
    assert_eq!(
        (index.name.as_str(), key),
        ("pairs_a_b_key", vec![one, Value::Int(2)])
    );
}

/// Every statement through the index answers as the same statement over a table without
/// one, while other sessions' versions move rows between doctors.
#[test]
fn index_lookups_answer_as_full_scans() {
    for iso in LEVELS {
        let mut db = slots_db();
        let (w, r) = (db.session(), db.session());
        // Committed history: rows move to other doctors, some go.
        for t in ["slots", "twin"] {
            db.ok(
                w,
                sql(
                    &format!("UPDATE {t} SET doctor_id = 1 WHERE doctor_id = 2 AND id < 20"),
                    &[],
                ),
            );
            db.ok(
                w,
                sql(
                    &format!("DELETE FROM {t} WHERE doctor_id = 3 AND id > 30"),
                    &[],
                ),
            );
        }
        db.begin(r, iso);
        let q =
            |t: &str| format!("SELECT id FROM {t} WHERE doctor_id = $1 AND NOT taken ORDER BY id");
        let before: Vec<Vec<i64>> = (0..6_i64)
            .map(|d| ids(&db.ok(r, sql(&q("slots"), &[&d]))))
            .collect();
        for (d, rows) in before.iter().enumerate() {
            assert_eq!(
                rows,
                &ids(&db.ok(r, sql(&q("twin"), &[&(d as i64)]))),
                "{iso}: doctor {d}"
            );
        }
        assert_eq!(
            before[1],
            vec![1, 2, 7, 8, 13, 14, 19, 25, 31, 37, 43, 49, 55]
        );
        // Another transaction moves rows and inserts (uncommitted, then committed).
        db.begin(w, IsolationLevel::ReadCommitted);
        for t in ["slots", "twin"] {
            db.ok(
                w,
                sql(
                    &format!("UPDATE {t} SET doctor_id = 4 WHERE doctor_id = 1 AND id > 40"),
                    &[],
                ),
            );
            db.ok(
                w,
                sql(
                    &format!("INSERT INTO {t} (id, doctor_id, taken) VALUES (100, 1, false)"),
                    &[],
                ),
            );
        }
        for d in 0..6_i64 {
            let a = ids(&db.ok(r, sql(&q("slots"), &[&d])));
            assert_eq!(a, before[d as usize], "{iso}: uncommitted work seen");
        }
        db.commit(w).unwrap();
        for d in 0..6_i64 {
            let a = ids(&db.ok(r, sql(&q("slots"), &[&d])));
            assert_eq!(
                a,
                ids(&db.ok(r, sql(&q("twin"), &[&d]))),
                "{iso}: doctor {d}"
            );
            if iso == IsolationLevel::ReadCommitted {
                continue;
            }
            assert_eq!(
                a, before[d as usize],
                "{iso}: the snapshot keeps the old rows"
            );
        }
        db.commit(r).unwrap();
        let after = ids(&db.ok(r, sql(&q("slots"), &[&1_i64])));
        assert_eq!(after, vec![1, 2, 7, 8, 13, 14, 19, 25, 31, 37, 100]);
        let counted = sql("SELECT count(*) AS n FROM slots WHERE doctor_id = 4", &[]);
        let n: i64 = db.ok(r, counted).first().unwrap().get("n").unwrap();
        assert_eq!(n, 13);
    }
}

/// UPDATE, DELETE and SELECT FOR UPDATE through the index lock, wait and re-check as a
/// full scan does: a row moved off the doctor while the statement waited is skipped.
#[test]
fn index_lookups_lock_and_recheck_the_rows_they_write() {
    let mut db = slots_db();
    let (a, b) = (db.session(), db.session());
    db.begin(a, IsolationLevel::ReadCommitted);
    db.ok(a, sql("UPDATE slots SET doctor_id = 5 WHERE id = 1", &[]));
    db.begin(b, IsolationLevel::ReadCommitted);
    db.blocked(
        b,
        sql(
            "UPDATE slots SET taken = true WHERE doctor_id = 1 RETURNING id",
            &[],
        ),
    );
    db.commit(a).unwrap();
    let updated = db.completed(b).unwrap();
    assert_eq!(ids(&updated), vec![7, 13, 19, 25, 31, 37, 43, 49, 55]);
    // B holds those rows now: a locking read of the doctor skips them, a delete waits.
    let locked = sql(
        "SELECT id FROM slots WHERE doctor_id = 1 ORDER BY id LIMIT 2 FOR UPDATE SKIP LOCKED",
        &[],
    );
    assert!(db.ok(a, locked).rows.is_empty());
    db.begin(a, IsolationLevel::ReadCommitted);
    db.blocked(
        a,
        sql("DELETE FROM slots WHERE doctor_id = 1 RETURNING id", &[]),
    );
    db.ok(b, sql("UPDATE slots SET doctor_id = 2 WHERE id = 7", &[]));
    db.commit(b).unwrap();
    let deleted = db.completed(a).unwrap();
    assert_eq!(ids(&deleted), vec![13, 19, 25, 31, 37, 43, 49, 55]);
    db.commit(a).unwrap();
    let left = sql(
        "SELECT id FROM slots WHERE doctor_id = 1 OR id = 7 ORDER BY id",
        &[],
    );
    assert_eq!(ids(&db.ok(a, left)), vec![7]);
}

/// An update that changes a column of a plain index is no HOT update in PostgreSQL: it
/// inserts into every index, the primary key's leaf page included, so it conflicts with
/// a concurrent serializable key lookup; one that keeps the indexed columns does not.
#[test]
fn serializable_update_of_a_plainly_indexed_column_is_an_index_insertion() {
    for (set, fails) in [("taken = true", false), ("doctor_id = 5", true)] {
        let mut db = slots_db();
        let (a, b) = (db.session(), db.session());
        db.begin(a, IsolationLevel::Serializable);
        db.begin(b, IsolationLevel::Serializable);
        assert_eq!(
            ids(&db.ok(a, sql("SELECT id FROM slots WHERE id = 3", &[]))),
            vec![3]
        );
        assert_eq!(
            ids(&db.ok(b, sql("SELECT id FROM slots WHERE id = 4", &[]))),
            vec![4]
        );
        db.ok(a, sql(&format!("UPDATE slots SET {set} WHERE id = 3"), &[]));
        db.ok(b, sql(&format!("UPDATE slots SET {set} WHERE id = 4"), &[]));
        db.commit(a).unwrap();
        let second = db.commit(b);
        assert_eq!(second.is_err(), fails, "{set}: {second:?}");
    }
}

/// Two serializable transactions: `a` reads with `read` and then updates account 5 that
/// `b` looked up by key (b -> a); `b` updates account 4 (HOT: no index insertion). They
/// both commit exactly when `a`'s read did not lock account 4's tuple.
fn rw_pair_commits(read: &[&str]) -> bool {
    let mut db = Db::new();
    let s = db.session();
    for id in 3..=5_i64 {
        db.ok(
            s,
            Insert::into("accounts", sql_row! {"id" => id, "balance" => 100}),
        );
    }
    let (a, b) = (db.session(), db.session());
    db.begin(a, IsolationLevel::Serializable);
    db.begin(b, IsolationLevel::Serializable);
    for q in read {
        db.ok(a, sql(q, &[]));
    }
    db.ok(b, sql("SELECT balance FROM accounts WHERE id = 5", &[]));
    db.ok(a, sql("UPDATE accounts SET balance = 1 WHERE id = 5", &[]));
    db.ok(b, sql("UPDATE accounts SET balance = 1 WHERE id = 4", &[]));
    db.commit(a).unwrap();
    db.commit(b).is_ok()
}

/// SIREAD granularity as PostgreSQL 15's `pg_locks` shows it: an `ORDER BY id LIMIT n`
/// read through the key's index locks the index page and the tuples it fetched up to its
/// LIMIT, not the relation; without a LIMIT (a sort over a sequential scan) it locks the
/// relation; a transaction's third tuple lock on the (one) heap page becomes a lock on
/// the page, which every update of the table conflicts with.
#[test]
fn serializable_siread_locks_follow_the_index_scan_and_promote_to_the_page() {
    let ordered = "SELECT id FROM accounts ORDER BY id LIMIT 1 FOR UPDATE";
    assert!(rw_pair_commits(&[ordered]));
    assert!(rw_pair_commits(&[
        "SELECT id FROM accounts ORDER BY id DESC LIMIT 1"
    ]));
    // Two tuples, and the UPDATE's fetch of account 5 a third: promoted to the page (as
    // `pg_locks` shows after the same statements).
    assert!(!rw_pair_commits(&[
        "SELECT id FROM accounts ORDER BY id LIMIT 2"
    ]));
    assert!(!rw_pair_commits(&[
        "SELECT id FROM accounts ORDER BY id LIMIT 2 OFFSET 1"
    ]));
    assert!(!rw_pair_commits(&[
        "SELECT id FROM accounts ORDER BY id LIMIT 4"
    ]));
    assert!(!rw_pair_commits(&["SELECT id FROM accounts ORDER BY id"]));
    assert!(!rw_pair_commits(&[
        "SELECT id FROM accounts ORDER BY balance LIMIT 1"
    ]));
    let by_key = |id: i64| format!("SELECT balance FROM accounts WHERE id = {id}");
    let (one, two) = (by_key(1), by_key(2));
    // With the UPDATE's fetch of account 5: two tuple locks, then three.
    assert!(rw_pair_commits(&[&one]));
    assert!(
        rw_pair_commits(&[&one, &one]),
        "the same tuple twice is one lock"
    );
    assert!(!rw_pair_commits(&[&one, &two]));
    assert!(!rw_pair_commits(&[ordered, &two]));
}

/// A pivot `p` of `t_in -> p -> t_out` doomed by `t_in`'s read after `t_out` committed:
/// `t_in` runs on, `p` has not been told yet.
fn doomed_pivot() -> (Db, SessionId, SessionId) {
    let mut db = Db::new();
    let (p, t_out, t_in) = (db.session(), db.session(), db.session());
    for s in [p, t_out, t_in] {
        db.begin(s, IsolationLevel::Serializable);
    }
    db.ok(t_in, Select::from("doctors"));
    db.balance(p, 1);
    db.ok(t_out, debit(1, 1));
    db.commit(t_out).unwrap();
    db.ok(p, debit(2, 1));
    // t_in passes over p's new version of account 2: t_in -> p -> t_out, t_out first.
    db.balance(t_in, 2);
    (db, p, t_in)
}

/// As in PostgreSQL (case 1167 and its kin in the long conformance run), a doomed
/// transaction fails where PostgreSQL checks for it: at the first tuple a scan meets,
/// at a write, at COMMIT. A statement that meets no tuple still succeeds, and the one that
/// fails reports 40001 ahead of its own errors (a duplicate key, a WHERE that divides by
/// zero).
#[test]
fn a_doomed_transaction_fails_at_the_first_tuple_it_meets() {
    let (mut db, p, t_in) = doomed_pivot();
    db.ok(p, sql("SELECT 1", &[]));
    db.ok(p, Select::from("free_bookings"));
    db.ok(p, sql("SELECT * FROM accounts WHERE id = 7", &[]));
    let e = db.err(p, sql("SELECT * FROM accounts WHERE balance / 0 = 1", &[]));
    assert_eq!(e.sqlstate(), Some("40001"), "{e}");
    assert_eq!(
        db.err(p, sql("SELECT 1", &[])).sqlstate(),
        Some("25P02"),
        "the failure aborted the transaction"
    );
    db.commit(t_in).unwrap();

    let (mut db, p, _) = doomed_pivot();
    let e = db.err(
        p,
        Insert::into("accounts", sql_row! {"id" => 1, "balance" => 0}),
    );
    assert_eq!(e.sqlstate(), Some("40001"), "before the duplicate key: {e}");

    // An upsert that meets its arbiter's key writes no tuple, so it is not told yet; one
    // that inserts is.
    let (mut db, p, _) = doomed_pivot();
    let upsert = "INSERT INTO accounts (id, balance) VALUES ($1, 0) ON CONFLICT (id) DO NOTHING";
    db.ok(p, sql(upsert, &[&2i64]));
    let e = db.err(p, sql(upsert, &[&9i64]));
    assert_eq!(e.sqlstate(), Some("40001"), "{e}");

    let (mut db, p, _) = doomed_pivot();
    db.ok(p, Select::from("free_bookings"));
    assert_eq!(db.commit(p).unwrap_err().sqlstate(), Some("40001"));
}

/// PostgreSQL's planner folds constant subexpressions before the statement runs: their
/// errors need no row, come before anything the statement would do (a sequence draw),
/// and after the names are resolved (42P01). Each statement in turn, with the SQLSTATE
/// PostgreSQL 15.18 answered (`None`: success), checked with psql.
#[test]
fn constant_subexpressions_fail_before_the_statement_runs() {
    let mut db = Db::new();
    let s = db.session();
    // No row has key 99, and `item` stays empty: only planning can fail these.
    let script: &[(&str, Option<&str>)] = &[
        ("CREATE SEQUENCE s", None),
        (
            "CREATE TABLE item (id bigint PRIMARY KEY, price numeric(8, 2))",
            None,
        ),
        ("SELECT 9, nextval('s'), 7 / 0", Some("22012")),
        ("SELECT currval('s')", Some("55000")), // nothing was drawn
        (
            "DELETE FROM accounts WHERE id = 99 AND 1 / 0 = 1",
            Some("22012"),
        ),
        (
            "SELECT coalesce(balance, 1 / 0) FROM accounts WHERE id = 99",
            Some("22012"),
        ),
        (
            "UPDATE accounts SET balance = balance + 1 WHERE id = 99 RETURNING 1 / 0",
            Some("22012"),
        ),
        (
            "SELECT count(*) FROM accounts WHERE id = 99 GROUP BY balance HAVING sum(1 / 0) > 0",
            Some("22012"),
        ),
        // A literal's cast, and a literal beside a column, are read while parsing.
        (
            "SELECT id FROM accounts WHERE id = 99 AND 'x'::uuid IS NULL",
            Some("22P02"),
        ),
        (
            "SELECT id FROM accounts WHERE id = 99 AND balance = 'y'",
            Some("22P02"),
        ),
        (
            "DELETE FROM accounts WHERE id IN ('98', 'z')",
            Some("22P02"),
        ),
        (
            "SELECT count(*) FROM accounts WHERE 'x' < balance AND id = 99",
            Some("22P02"),
        ),
        ("SELECT id FROM accounts WHERE id = '1'", None),
        // A constant assigned to a column is converted to its type while planning.
        (
            "UPDATE item SET price = 999999.995 WHERE id = 1",
            Some("22003"),
        ),
        (
            "INSERT INTO item (id, price) VALUES (1, 1), (2, 999999.995) ON CONFLICT DO NOTHING",
            Some("22003"),
        ),
        // The planner stops at a deciding constant and folds no volatile function.
        ("SELECT id FROM accounts WHERE false AND 1 / 0 = 1", None),
        ("SELECT coalesce(1, 1 / 0)", None),
        (
            "SELECT id FROM accounts WHERE id = 99 AND nextval('s') > 0",
            None,
        ),
        ("SELECT currval('s')", Some("55000")),
        // LIMIT 0 stops the executor before it reads a row, after the planner folded.
        ("SELECT balance / 0 FROM accounts LIMIT 0", None),
        (
            "SELECT id FROM accounts WHERE 1 / 0 = 1 LIMIT 0",
            Some("22012"),
        ),
        // Names are resolved first.
        ("SELECT 1 / 0 FROM missing", Some("42P01")),
        ("SELECT nope, 1 / 0 FROM accounts", Some("42703")),
    ];
    for &(text, expected) in script {
        match expected {
            None => {
                db.ok(s, sql(text, &[]));
            }
            Some(code) => assert_eq!(db.err(s, sql(text, &[])).sqlstate(), Some(code), "{text}"),
        }
    }
}
