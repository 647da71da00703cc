//! The engine's execution of the statement parts SQL text plans onto: expressions, joins,
//! grouping, ordering, RETURNING, multi-row INSERT, defaults, CHECK, foreign keys,
//! CREATE INDEX and savepoints. Sessions are interleaved by hand, statement by statement,
//! on the pure engine (no simulation, no network).

use sim_models::sql::expr::{AggFunc, Func};
use sim_models::sql::schema::{CheckConstraint, ColumnDefault, ForeignKey};
use sim_models::sql::stmt::{Join, JoinKind, OrderBy, Projection, SelectItem};
use sim_models::sql::{
    col, excluded, lit, ColumnType, Config, Delete, Engine, Expr, Insert, IsolationLevel,
    OnConflict, Row, Select, SessionId, SqlError, Statement, StmtResult, Submit, TableSchema,
    Update, Value,
};
use sim_models::sql_row;
use sim_runtime::time::{Duration, Instant};

fn config() -> Config {
    let mut serial = TableSchema::new("seq")
        .column("id", ColumnType::Int)
        .nullable_column("at", ColumnType::TimestampTz)
        .column("note", ColumnType::Text)
        .default_value("x")
        .primary_key(&["id"]);
    serial.columns[0].default = Some(ColumnDefault::Serial);
    serial.columns[1].default = Some(ColumnDefault::Now);
    let mut chk = TableSchema::new("chk")
        .column("id", ColumnType::Int)
        .nullable_column("qty", ColumnType::Int)
        .primary_key(&["id"]);
    chk.checks.push(CheckConstraint {
        name: "chk_qty".into(),
        expr: col("chk.qty").ge(0),
    });
    let mut child = TableSchema::new("child")
        .column("id", ColumnType::Int)
        .nullable_column("pid", ColumnType::Int)
        .primary_key(&["id"]);
    child.foreign_keys.push(ForeignKey {
        name: "child_pid_fkey".into(),
        columns: vec!["pid".into()],
        table: "parent".into(),
        ref_columns: vec!["id".into()],
    });
    Config::default()
        .table(
            TableSchema::new("t")
                .column("id", ColumnType::Int)
                .nullable_column("v", ColumnType::Int)
                .nullable_column("name", ColumnType::Text)
                .primary_key(&["id"]),
        )
        .table(
            TableSchema::new("emp")
                .column("id", ColumnType::Int)
                .column("dept", ColumnType::Text)
                .nullable_column("salary", ColumnType::Int)
                .primary_key(&["id"]),
        )
        .table(
            TableSchema::new("dept")
                .column("name", ColumnType::Text)
                .column("floor", ColumnType::Int)
                .primary_key(&["name"]),
        )
        .table(
            TableSchema::new("jobs")
                .column("id", ColumnType::Int)
                .column("prio", ColumnType::Int)
                .primary_key(&["id"]),
        )
        .table(
            TableSchema::new("kv")
                .column("k", ColumnType::Int)
                .column("v", ColumnType::Int)
                .primary_key(&["k"]),
        )
        .table(serial)
        .table(chk)
        .table(
            TableSchema::new("parent")
                .column("id", ColumnType::Int)
                .primary_key(&["id"]),
        )
        .table(child)
}

struct Db {
    e: Engine,
}

impl Db {
    fn new() -> Self {
        let mut db = Db {
            e: Engine::new(&config()),
        };
        let s = db.session();
        for (id, v, name) in [
            (1, Value::Int(10), Value::from("Ann")),
            (2, Value::Null, Value::from("bob")),
            (3, Value::Int(30), Value::Null),
        ] {
            db.ok(
                s,
                Insert::into("t", sql_row! {"id" => id, "v" => v, "name" => name}),
            );
        }
        for (id, dept, salary) in [
            (1, "eng", Value::Int(100)),
            (2, "eng", Value::Int(200)),
            (3, "ops", Value::Int(50)),
            (4, "ops", Value::Null),
            (5, "hr", Value::Int(70)),
        ] {
            db.ok(
                s,
                Insert::into(
                    "emp",
                    sql_row! {"id" => id, "dept" => dept, "salary" => salary},
                ),
            );
        }
        for (name, floor) in [("eng", 3), ("ops", 1), ("law", 9)] {
            db.ok(
                s,
                Insert::into("dept", sql_row! {"name" => name, "floor" => floor}),
            );
        }
        for (id, prio) in [(1, 5), (2, 9), (3, 7), (4, 1)] {
            db.ok(
                s,
                Insert::into("jobs", sql_row! {"id" => id, "prio" => prio}),
            );
        }
        db.e.close_session(s);
        db
    }

    fn session(&mut self) -> SessionId {
        self.e.open_session().unwrap()
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

    /// Runs a statement that must fail at once; its SQLSTATE.
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

    /// A statement in a fresh session of its own (an implicit transaction).
    fn run(&mut self, stmt: impl Into<Statement>) -> Result<StmtResult, SqlError> {
        let s = self.session();
        let stmt = stmt.into();
        let r = match self.e.submit(s, &stmt) {
            Submit::Done(Ok(r)) => self.e.finish(s).map(|_| r),
            Submit::Done(Err(e)) => Err(e),
            Submit::Blocked { .. } => panic!("{stmt} blocked"),
        };
        self.e.close_session(s);
        r
    }

    fn rows(&mut self, stmt: impl Into<Statement>) -> Vec<Row> {
        self.run(stmt).unwrap().rows
    }

    /// The value of one expression over the row of `t` with id 1.
    fn eval(&mut self, e: Expr) -> Result<Value, SqlError> {
        let q = Select {
            items: items(vec![("x", e)]),
            ..Select::from("t").key(1)
        };
        self.run(q).map(|r| r.rows[0].value("x").cloned().unwrap())
    }

    fn state(&mut self, e: Expr) -> &'static str {
        sqlstate(&self.eval(e).unwrap_err())
    }

    fn ids(&mut self, table: &str) -> Vec<i64> {
        let mut ids: Vec<i64> = self
            .e
            .committed_rows(table)
            .unwrap()
            .iter()
            .map(|r| r.value(r.columns()[0].as_str()).unwrap().as_int().unwrap())
            .collect();
        ids.sort_unstable();
        ids
    }
}

fn sqlstate(e: &SqlError) -> &'static str {
    e.sqlstate().expect("a server error")
}

fn items(list: Vec<(&str, Expr)>) -> Projection {
    Projection::Items(
        list.into_iter()
            .map(|(name, expr)| SelectItem {
                expr,
                name: name.into(),
            })
            .collect(),
    )
}

fn agg(f: AggFunc, arg: Expr) -> Expr {
    Expr::Agg(f, Some(Box::new(arg)))
}

fn count_star() -> Expr {
    Expr::Agg(AggFunc::Count, None)
}

fn func(f: Func, args: Vec<Expr>) -> Expr {
    Expr::Func(f, args)
}

fn order(e: Expr, desc: bool, nulls_first: Option<bool>) -> OrderBy {
    OrderBy {
        expr: e,
        desc,
        nulls_first,
    }
}

/// Column `c` of every row, in order.
fn column(rows: &[Row], c: &str) -> Vec<Value> {
    rows.iter().map(|r| r.value(c).cloned().unwrap()).collect()
}

fn ints(v: &[i64]) -> Vec<Value> {
    v.iter().map(|i| Value::Int(*i)).collect()
}

fn text(s: &str) -> Value {
    Value::Text(s.into())
}

fn neg(e: Expr) -> Expr {
    Expr::Neg(Box::new(e))
}

fn bin(op: sim_models::sql::BinOp, a: impl Into<Expr>, b: impl Into<Expr>) -> Expr {
    Expr::Bin(op, Box::new(a.into()), Box::new(b.into()))
}

fn in_list(e: Expr, list: Vec<Expr>, negated: bool) -> Expr {
    Expr::InList {
        expr: Box::new(e),
        list,
        negated,
    }
}

fn like(e: impl Into<Expr>, p: &str, case_insensitive: bool) -> Expr {
    Expr::Like {
        expr: Box::new(e.into()),
        pattern: Box::new(lit(p)),
        negated: false,
        case_insensitive,
    }
}

fn cast(e: impl Into<Expr>, ty: ColumnType) -> Expr {
    Expr::Cast(Box::new(e.into()), ty)
}

// ---------------------------------------------------------------- expressions

#[test]
fn arithmetic_minus_modulo_and_concatenation() {
    use sim_models::sql::BinOp::{Concat, Mod};
    let mut db = Db::new();
    assert_eq!(db.eval(neg(col("v"))).unwrap(), Value::Int(-10));
    assert_eq!(db.eval(neg(lit(1.5))).unwrap(), Value::Float(-1.5));
    assert_eq!(db.eval(neg(lit(Value::Null))).unwrap(), Value::Null);
    assert_eq!(db.state(neg(lit(i64::MIN))), "22003");
    assert_eq!(db.state(neg(lit("a"))), "42804");
    assert_eq!(db.eval(bin(Mod, 7, 3)).unwrap(), Value::Int(1));
    assert_eq!(db.eval(bin(Mod, -7, 3)).unwrap(), Value::Int(-1));
    assert_eq!(db.eval(bin(Mod, i64::MIN, -1)).unwrap(), Value::Int(0));
    assert_eq!(db.eval(bin(Mod, 7, Value::Null)).unwrap(), Value::Null);
    assert_eq!(db.state(bin(Mod, col("v"), 0)), "22012");
    assert_eq!(
        db.eval(bin(Concat, col("name"), "!")).unwrap(),
        text("Ann!")
    );
    assert_eq!(db.eval(bin(Concat, "n=", col("v"))).unwrap(), text("n=10"));
    assert_eq!(db.eval(bin(Concat, "x", 1.5)).unwrap(), text("x1.5"));
    assert_eq!(db.eval(bin(Concat, "x", true)).unwrap(), text("xtrue"));
    assert_eq!(db.eval(bin(Concat, "x", Value::Null)).unwrap(), Value::Null);
    assert_eq!(db.state(bin(Concat, 1, 2)), "42804");
}

#[test]
fn in_lists_follow_sql_null_rules() {
    let mut db = Db::new();
    let v = || col("v");
    assert_eq!(
        db.eval(in_list(v(), vec![lit(1), lit(10)], false)).unwrap(),
        Value::Bool(true)
    );
    assert_eq!(
        db.eval(in_list(v(), vec![lit(1), lit(2)], false)).unwrap(),
        Value::Bool(false)
    );
    // No match and a NULL in the list: unknown, either way round.
    assert_eq!(
        db.eval(in_list(v(), vec![lit(1), lit(Value::Null)], false))
            .unwrap(),
        Value::Null
    );
    assert_eq!(
        db.eval(in_list(v(), vec![lit(1), lit(Value::Null)], true))
            .unwrap(),
        Value::Null
    );
    // A match wins over the NULL.
    assert_eq!(
        db.eval(in_list(v(), vec![lit(Value::Null), lit(10)], false))
            .unwrap(),
        Value::Bool(true)
    );
    assert_eq!(
        db.eval(in_list(v(), vec![lit(10)], true)).unwrap(),
        Value::Bool(false)
    );
    assert_eq!(
        db.eval(in_list(lit(Value::Null), vec![lit(1)], false))
            .unwrap(),
        Value::Null
    );
    assert_eq!(
        db.eval(in_list(v(), vec![lit(10.0)], false)).unwrap(),
        Value::Bool(true)
    );
    // A quoted literal takes the other side's type, as in PostgreSQL: 'a' is no bigint.
    assert_eq!(db.state(in_list(v(), vec![lit("a")], false)), "22P02");
    // In a WHERE: rows with NULL drop out of NOT IN.
    let q = Select::from("t").filter(in_list(col("v"), vec![lit(30)], true));
    assert_eq!(column(&db.rows(q), "id"), ints(&[1]));
}

#[test]
fn like_and_ilike_match_with_wildcards_and_escapes() {
    let mut db = Db::new();
    let cases = [
        ("Ann", "A%", false, true),
        ("Ann", "a%", false, false),
        ("Ann", "a%", true, true),
        ("Ann", "_nn", false, true),
        ("Ann", "_n", false, false),
        ("Ann", "%", false, true),
        ("", "%", false, true),
        ("", "_", false, false),
        ("a%b", "a\\%b", false, true),
        ("axb", "a\\%b", false, false),
        ("a_b", "a\\_b", false, true),
        ("abcabd", "%ab_", false, true),
        ("abcabd", "%abc", false, false),
        ("mississippi", "%iss%ipp%", false, true),
        ("ÉTÉ", "été", true, true),
    ];
    for (s, p, ci, want) in cases {
        assert_eq!(
            db.eval(like(lit(s), p, ci)).unwrap(),
            Value::Bool(want),
            "{s:?} LIKE {p:?} (ci {ci})"
        );
    }
    let not_like = Expr::Like {
        expr: Box::new(col("name")),
        pattern: Box::new(lit("b%")),
        negated: true,
        case_insensitive: false,
    };
    assert_eq!(db.eval(not_like).unwrap(), Value::Bool(true));
    assert_eq!(
        db.eval(like(lit(Value::Null), "%", false)).unwrap(),
        Value::Null
    );
    assert_eq!(db.state(like(col("v"), "1%", false)), "42804");
    let q = Select::from("t").filter(like(col("name"), "%B%", true));
    assert_eq!(column(&db.rows(q), "id"), ints(&[2]));
}

#[test]
fn scalar_functions() {
    let mut db = Db::new();
    let null = || lit(Value::Null);
    let cases = [
        (
            func(Func::Coalesce, vec![null(), col("v"), lit(3)]),
            Value::Int(10),
        ),
        (func(Func::Coalesce, vec![null(), null()]), Value::Null),
        (func(Func::Lower, vec![col("name")]), text("ann")),
        (func(Func::Upper, vec![col("name")]), text("ANN")),
        (func(Func::Lower, vec![null()]), Value::Null),
        (func(Func::Length, vec![lit("héllo")]), Value::Int(5)),
        (func(Func::Abs, vec![lit(-4)]), Value::Int(4)),
        (func(Func::Abs, vec![lit(-4.5)]), Value::Float(4.5)),
        (
            func(Func::Greatest, vec![lit(1), null(), lit(7), lit(3)]),
            Value::Int(7),
        ),
        (
            func(Func::Least, vec![lit(4), null(), lit(2)]),
            Value::Int(2),
        ),
        (func(Func::Least, vec![lit(4), lit(2.5)]), Value::Float(2.5)),
        (
            func(Func::Greatest, vec![lit(4), lit(2.5)]),
            Value::Float(4.0),
        ),
        (func(Func::Greatest, vec![null(), null()]), Value::Null),
        (func(Func::Greatest, vec![lit("b"), lit("ab")]), text("b")),
    ];
    for (e, want) in cases {
        assert_eq!(db.eval(e.clone()).unwrap(), want, "{e}");
    }
    // Coalesce stops at the first non-NULL: the division by zero is never evaluated.
    let lazy = func(Func::Coalesce, vec![lit(1), lit(1).divided_by(0)]);
    assert_eq!(db.eval(lazy).unwrap(), Value::Int(1));
    assert_eq!(db.state(func(Func::Abs, vec![lit(i64::MIN)])), "22003");
    assert_eq!(db.state(func(Func::Lower, vec![lit(1)])), "42883");
    assert_eq!(
        db.state(func(Func::Lower, vec![lit("a"), lit("b")])),
        "42883"
    );
    assert_eq!(db.state(func(Func::Now, vec![lit(1)])), "42883");
    assert_eq!(db.state(func(Func::Coalesce, vec![])), "42883");
}

#[test]
fn casts_follow_postgres_input_and_output_rules() {
    use ColumnType::{Bool, Float, Int, Text, Timestamp};
    let mut db = Db::new();
    let cases: Vec<(Expr, Value)> = vec![
        (cast(lit(3), Float), Value::Float(3.0)),
        // float8 to bigint rounds half to even (rint), as PostgreSQL's dtoi8.
        (cast(lit(2.5), Int), Value::Int(2)),
        (cast(lit(3.5), Int), Value::Int(4)),
        (cast(lit(-2.5), Int), Value::Int(-2)),
        (cast(lit(2.4), Int), Value::Int(2)),
        (cast(lit(12), Text), text("12")),
        (cast(lit(1.5), Text), text("1.5")),
        (cast(lit(3.0), Text), text("3")),
        (cast(lit(1e20), Text), text("1e+20")),
        (cast(lit(1.5e-7), Text), text("1.5e-07")),
        (cast(lit(f64::INFINITY), Text), text("Infinity")),
        (cast(lit(true), Text), text("true")),
        (cast(lit(" 42 "), Int), Value::Int(42)),
        (cast(lit("-7"), Int), Value::Int(-7)),
        (cast(lit("+7"), Int), Value::Int(7)),
        (cast(lit("2.5"), Float), Value::Float(2.5)),
        (cast(lit(" 1e3"), Float), Value::Float(1000.0)),
        (
            cast(lit("-Infinity"), Float),
            Value::Float(f64::NEG_INFINITY),
        ),
        (cast(lit("t"), Bool), Value::Bool(true)),
        (cast(lit("YES"), Bool), Value::Bool(true)),
        (cast(lit(" off "), Bool), Value::Bool(false)),
        (cast(lit("0"), Bool), Value::Bool(false)),
        (cast(lit("fal"), Bool), Value::Bool(false)),
        (
            cast(
                lit("1970-01-01 00:00:00.000001+00"),
                ColumnType::TimestampTz,
            ),
            Value::timestamptz_at(Instant::from_nanos(1_000)),
        ),
        (cast(lit("x"), Text), text("x")),
        (cast(lit(Value::Null), Int), Value::Null),
        (cast(col("v"), Float), Value::Float(10.0)),
    ];
    for (e, want) in cases {
        assert_eq!(db.eval(e.clone()).unwrap(), want, "{e}");
    }
    for (e, state) in [
        (cast(lit("1.5"), Int), "22P02"),
        (cast(lit("abc"), Int), "22P02"),
        (cast(lit(""), Int), "22P02"),
        (cast(lit("99999999999999999999"), Int), "22003"),
        (cast(lit("x1"), Float), "22P02"),
        (cast(lit("1e400"), Float), "22003"),
        (cast(lit("maybe"), Bool), "22P02"),
        (cast(lit("o"), Bool), "22P02"),
        // PostgreSQL reads 'yesterday'; the model refuses what it does not read.
        (cast(lit("yesterday"), Timestamp), "0A000"),
        (cast(lit("2023-02-30"), Timestamp), "22008"),
        (cast(lit(1e30), Int), "22003"),
        (cast(lit(f64::NAN), Int), "22003"),
        (cast(lit(1.5), Timestamp), "42846"),
        (cast(lit(true), Float), "42846"),
    ] {
        assert_eq!(db.state(e.clone()), state, "{e}");
    }
}

#[test]
fn now_is_the_transaction_start() {
    let mut db = Db::new();
    let s = db.session();
    db.e.set_now(Instant::from_nanos(1_000));
    db.ok(s, Statement::Begin(Some(IsolationLevel::ReadCommitted)));
    db.e.set_now(Instant::from_nanos(5_000));
    let now = || Select {
        items: items(vec![("now", func(Func::Now, vec![]))]),
        ..Select::from("t").key(1)
    };
    let r = db.ok(s, now());
    assert_eq!(
        r.rows[0].value("now"),
        Some(&Value::timestamptz_at(Instant::from_nanos(1_000)))
    );
    db.ok(s, Insert::into("seq", sql_row! {"note" => "a"}));
    db.ok(s, Statement::Commit);
    let r = db.ok(s, now());
    assert_eq!(
        r.rows[0].value("now"),
        Some(&Value::timestamptz_at(Instant::from_nanos(5_000)))
    );
    // DEFAULT now() is the same start; 'now'::timestamp too.
    let rows = db.rows(Select::from("seq"));
    assert_eq!(
        rows[0].value("at"),
        Some(&Value::timestamptz_at(Instant::from_nanos(1_000)))
    );
    assert_eq!(
        db.eval(cast(lit("now"), ColumnType::TimestampTz)).unwrap(),
        Value::timestamptz_at(Instant::from_nanos(5_000))
    );
    // And it is usable in a WHERE.
    let q = Select::from("seq").filter(col("at").lt(func(Func::Now, vec![])));
    assert_eq!(db.rows(q).len(), 1);
}

#[test]
fn parameters_never_reach_the_engine() {
    let mut db = Db::new();
    let e = db
        .run(Select::from("t").filter(col("id").eq(Expr::Param(1))))
        .unwrap_err();
    assert_eq!(sqlstate(&e), "42P02");
    let e = db
        .run(Update::table("t").set("v", Expr::Param(2)))
        .unwrap_err();
    assert_eq!(e, SqlError::UndefinedParameter(2));
}

#[test]
fn aggregates_are_refused_outside_select_having_and_order_by() {
    let mut db = Db::new();
    let e = db
        .run(Select::from("t").filter(count_star().gt(1)))
        .unwrap_err();
    assert_eq!(sqlstate(&e), "42803");
    assert_eq!(
        e.to_string(),
        "aggregate functions are not allowed in WHERE"
    );
    let e = db
        .run(Update::table("t").set("v", agg(AggFunc::Max, col("v"))))
        .unwrap_err();
    assert_eq!(sqlstate(&e), "42803");
    let e = db
        .run(Delete {
            returning: items(vec![("n", count_star())]),
            ..Delete::from("t")
        })
        .unwrap_err();
    assert_eq!(sqlstate(&e), "42803");
    assert_eq!(
        e.to_string(),
        "aggregate functions are not allowed in RETURNING"
    );
    let e = db
        .run(
            Insert::into("kv", sql_row! {"k" => 1, "v" => 1})
                .on_conflict_do_update(&["k"], vec![("v", count_star())]),
        )
        .unwrap_err();
    assert_eq!(sqlstate(&e), "42803");
    let e = db
        .run(Select {
            group_by: vec![count_star()],
            ..Select::from("t")
        })
        .unwrap_err();
    assert_eq!(sqlstate(&e), "42803");
    let nested = Select {
        items: items(vec![("x", agg(AggFunc::Sum, count_star()))]),
        ..Select::from("t")
    };
    assert_eq!(sqlstate(&db.run(nested).unwrap_err()), "42803");
    // Nothing was written.
    assert_eq!(db.ids("kv"), Vec::<i64>::new());
}

// ---------------------------------------------------------------- column resolution

fn emp_join_dept(kind: JoinKind) -> Select {
    Select {
        alias: Some("e".into()),
        joins: vec![Join {
            kind,
            table: "dept".into(),
            alias: Some("d".into()),
            on: col("e.dept").eq(col("d.name")),
        }],
        ..Select::from("emp")
    }
}

#[test]
fn columns_resolve_by_qualifier_or_uniquely() {
    let mut db = Db::new();
    let q = Select {
        items: items(vec![("id", col("e.id")), ("floor", col("floor"))]),
        order_by: vec![order(col("e.id"), false, None)],
        ..emp_join_dept(JoinKind::Inner)
    };
    let rows = db.rows(q);
    assert_eq!(column(&rows, "id"), ints(&[1, 2, 3, 4]));
    assert_eq!(column(&rows, "floor"), ints(&[3, 3, 1, 1]));
    // A one-table statement may qualify by the table's name (or its alias).
    let rows = db.rows(Select::from("t").filter(col("t.id").eq(2)));
    assert_eq!(column(&rows, "id"), ints(&[2]));
    let q = Select {
        alias: Some("x".into()),
        ..Select::from("t").filter(col("x.v").eq(30))
    };
    assert_eq!(column(&db.rows(q), "id"), ints(&[3]));
    let r = db
        .run(
            Update::table("t")
                .set("v", col("t.v").plus(1))
                .filter(col("t.id").eq(1)),
        )
        .unwrap();
    assert_eq!(r.rows[0].value("v"), Some(&Value::Int(11)));
    let errors = [
        (col("nope"), "42703"),
        (col("e.nope"), "42703"),
        (col("zz.id"), "42P01"),
        // With an alias, the table's own name no longer names it.
        (col("emp.id"), "42P01"),
    ];
    for (e, state) in errors {
        let q = Select {
            items: items(vec![("x", e.clone())]),
            ..emp_join_dept(JoinKind::Inner)
        };
        assert_eq!(sqlstate(&db.run(q).unwrap_err()), state, "{e}");
    }
    let t_join_jobs = |e: Expr| Select {
        items: items(vec![("x", e)]),
        joins: vec![Join {
            kind: JoinKind::Inner,
            table: "jobs".into(),
            alias: None,
            on: col("t.id").eq(col("jobs.id")),
        }],
        ..Select::from("t")
    };
    let e = db.run(t_join_jobs(col("id"))).unwrap_err();
    assert_eq!(sqlstate(&e), "42702");
    assert_eq!(e.to_string(), "column reference \"id\" is ambiguous");
    let rows = db.rows(t_join_jobs(col("jobs.id").plus(col("t.id"))));
    assert_eq!(column(&rows, "x"), ints(&[2, 4, 6]));
    let q = Select {
        joins: vec![Join {
            kind: JoinKind::Inner,
            table: "t".into(),
            alias: None,
            on: lit(true),
        }],
        ..Select::from("t")
    };
    assert_eq!(sqlstate(&db.run(q).unwrap_err()), "42712");
    // ON sees only the tables joined so far.
    let mut q = emp_join_dept(JoinKind::Inner);
    q.joins[0].on = col("e.id").eq(col("z.id"));
    q.joins.push(Join {
        kind: JoinKind::Inner,
        table: "t".into(),
        alias: Some("z".into()),
        on: lit(true),
    });
    assert_eq!(sqlstate(&db.run(q).unwrap_err()), "42P01");
}

// ---------------------------------------------------------------- SELECT

#[test]
fn inner_and_left_joins() {
    let mut db = Db::new();
    let inner = Select {
        order_by: vec![order(col("e.id"), false, None)],
        ..emp_join_dept(JoinKind::Inner)
    };
    let rows = db.rows(inner);
    // hr has no department row: gone from the inner join.
    assert_eq!(column(&rows, "id"), ints(&[1, 2, 3, 4]));
    // SELECT *: every column of both tables, in order.
    assert_eq!(rows[0].columns(), ["id", "dept", "salary", "name", "floor"]);
    let left = Select {
        order_by: vec![order(col("e.id"), false, None)],
        ..emp_join_dept(JoinKind::Left)
    };
    let rows = db.rows(left);
    assert_eq!(column(&rows, "id"), ints(&[1, 2, 3, 4, 5]));
    assert_eq!(rows[4].value("floor"), Some(&Value::Null));
    assert_eq!(rows[4].value("name"), Some(&Value::Null));
    // The WHERE applies after the join: IS NULL finds the unmatched rows.
    let orphans = Select {
        items: items(vec![("id", col("e.id"))]),
        ..emp_join_dept(JoinKind::Left).filter(col("d.name").is_null())
    };
    assert_eq!(column(&db.rows(orphans), "id"), ints(&[5]));
    // Repeated names: the later one is qualified.
    let q = Select {
        joins: vec![Join {
            kind: JoinKind::Inner,
            table: "jobs".into(),
            alias: Some("j".into()),
            on: col("t.id").eq(col("j.id")),
        }],
        ..Select::from("t").key(1)
    };
    let rows = db.rows(q);
    assert_eq!(rows[0].columns(), ["id", "v", "name", "j.id", "prio"]);
    assert_eq!(rows[0].value("prio"), Some(&Value::Int(5)));
    // Any ON condition: a theta join.
    let q = Select {
        items: items(vec![("e", col("e.id")), ("d", col("d.name"))]),
        order_by: vec![order(col("e"), false, None), order(col("d"), false, None)],
        ..emp_join_dept(JoinKind::Inner)
    };
    let mut q = q;
    q.joins[0].on = col("d.floor").gt(2).and(col("e.id").le(2));
    let rows = db.rows(q);
    assert_eq!(column(&rows, "e"), ints(&[1, 1, 2, 2]));
    assert_eq!(
        column(&rows, "d"),
        vec![text("eng"), text("law"), text("eng"), text("law")]
    );
    // Row locks over a join are refused.
    let e = db
        .run(emp_join_dept(JoinKind::Inner).for_update())
        .unwrap_err();
    assert_eq!(sqlstate(&e), "0A000");
}

#[test]
fn group_by_having_and_aggregates() {
    let mut db = Db::new();
    let q = Select {
        items: items(vec![
            ("dept", col("dept")),
            ("n", count_star()),
            ("paid", agg(AggFunc::Count, col("salary"))),
            ("total", agg(AggFunc::Sum, col("salary"))),
            ("lo", agg(AggFunc::Min, col("salary"))),
            ("hi", agg(AggFunc::Max, col("salary"))),
            ("mean", agg(AggFunc::Avg, col("salary"))),
        ]),
        group_by: vec![col("dept")],
        ..Select::from("emp")
    };
    let rows = db.rows(q.clone());
    // Groups come out in key order.
    assert_eq!(
        column(&rows, "dept"),
        vec![text("eng"), text("hr"), text("ops")]
    );
    assert_eq!(column(&rows, "n"), ints(&[2, 1, 2]));
    assert_eq!(column(&rows, "paid"), ints(&[2, 1, 1]));
    assert_eq!(column(&rows, "total"), ints(&[300, 70, 50]));
    assert_eq!(column(&rows, "lo"), ints(&[100, 70, 50]));
    assert_eq!(column(&rows, "hi"), ints(&[200, 70, 50]));
    assert_eq!(
        column(&rows, "mean"),
        [
            "150.0000000000000000",
            "70.0000000000000000",
            "50.0000000000000000"
        ]
        .map(|n| Value::numeric(sim_models::sql::value::Numeric::parse(n).unwrap())),
        "avg() of integers is numeric, as in PostgreSQL"
    );
    let having = Select {
        having: Some(count_star().gt(1)),
        order_by: vec![order(agg(AggFunc::Sum, col("salary")), true, None)],
        ..q.clone()
    };
    assert_eq!(
        column(&db.rows(having), "dept"),
        vec![text("eng"), text("ops")]
    );
    // An aggregate over an expression, grouped by an expression.
    let q = Select {
        items: items(vec![
            ("big", col("salary").ge(100)),
            ("s", agg(AggFunc::Sum, col("salary").times(2))),
        ]),
        group_by: vec![col("salary").ge(100)],
        ..Select::from("emp")
    };
    let rows = db.rows(q);
    // In key order: the NULL group, false, true.
    assert_eq!(
        column(&rows, "big"),
        vec![Value::Null, Value::Bool(false), Value::Bool(true)]
    );
    assert_eq!(
        column(&rows, "s"),
        vec![Value::Null, Value::Int(240), Value::Int(600)]
    );
    // Float sums and averages.
    let q = Select {
        items: items(vec![
            ("s", agg(AggFunc::Sum, col("salary").times(0.5))),
            ("a", agg(AggFunc::Avg, col("id"))),
        ]),
        ..Select::from("emp")
    };
    let rows = db.rows(q);
    assert_eq!(rows[0].value("s"), Some(&Value::Float(210.0)));
    assert_eq!(
        rows[0].value("a").map(Value::to_string).as_deref(),
        Some("3.0000000000000000"),
        "avg() of integers is numeric"
    );
}

#[test]
fn aggregates_without_group_by_over_no_rows_give_one_row() {
    let mut db = Db::new();
    let q = Select {
        items: items(vec![
            ("n", count_star()),
            ("c", agg(AggFunc::Count, col("salary"))),
            ("s", agg(AggFunc::Sum, col("salary"))),
            ("m", agg(AggFunc::Max, col("salary"))),
            ("a", agg(AggFunc::Avg, col("salary"))),
        ]),
        ..Select::from("emp").filter(col("id").gt(100))
    };
    let rows = db.rows(q);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].value("n"), Some(&Value::Int(0)));
    assert_eq!(rows[0].value("c"), Some(&Value::Int(0)));
    assert_eq!(rows[0].value("s"), Some(&Value::Null));
    assert_eq!(rows[0].value("m"), Some(&Value::Null));
    assert_eq!(rows[0].value("a"), Some(&Value::Null));
    // With GROUP BY, no rows make no groups.
    let q = Select {
        items: items(vec![("n", count_star())]),
        group_by: vec![col("dept")],
        ..Select::from("emp").filter(col("id").gt(100))
    };
    assert!(db.rows(q).is_empty());
    // HAVING without GROUP BY filters the one group.
    let q = Select {
        items: items(vec![("n", count_star())]),
        having: Some(count_star().gt(100)),
        ..Select::from("emp")
    };
    assert!(db.rows(q).is_empty());
}

#[test]
fn grouping_errors() {
    let mut db = Db::new();
    let q = Select {
        items: items(vec![("dept", col("dept")), ("s", col("salary"))]),
        group_by: vec![col("dept")],
        ..Select::from("emp")
    };
    let e = db.run(q).unwrap_err();
    assert_eq!(sqlstate(&e), "42803");
    assert_eq!(
        e.to_string(),
        "column \"emp.salary\" must appear in the GROUP BY clause or be used in an aggregate \
         function"
    );
    // An aggregate makes the query grouped: a bare column is then an error.
    let q = Select {
        items: items(vec![("id", col("id")), ("n", count_star())]),
        ..Select::from("emp")
    };
    assert_eq!(sqlstate(&db.run(q).unwrap_err()), "42803");
    // In ORDER BY and HAVING too.
    let q = Select {
        items: items(vec![("n", count_star())]),
        group_by: vec![col("dept")],
        order_by: vec![order(col("salary"), false, None)],
        ..Select::from("emp")
    };
    assert_eq!(sqlstate(&db.run(q).unwrap_err()), "42803");
    let q = Select {
        items: items(vec![("n", count_star())]),
        group_by: vec![col("dept")],
        having: Some(col("salary").gt(1)),
        ..Select::from("emp")
    };
    assert_eq!(sqlstate(&db.run(q).unwrap_err()), "42803");
    // Columns of a table whose primary key is grouped are allowed (functional
    // dependency), also through SELECT *.
    let q = Select {
        items: items(vec![
            ("id", col("id")),
            ("dept", col("dept")),
            ("n", count_star()),
        ]),
        group_by: vec![col("emp.id")],
        ..Select::from("emp")
    };
    let rows = db.rows(q);
    assert_eq!(rows.len(), 5);
    assert_eq!(rows[2].value("dept"), Some(&text("ops")));
    let q = Select {
        group_by: vec![col("id")],
        ..Select::from("emp")
    };
    assert_eq!(db.rows(q).len(), 5);
    // Sums overflow like bigint.
    db.run(Insert::into(
        "emp",
        sql_row! {"id" => 6, "dept" => "x", "salary" => i64::MAX},
    ))
    .unwrap();
    let q = Select {
        items: items(vec![("s", agg(AggFunc::Sum, col("salary")))]),
        ..Select::from("emp")
    };
    assert_eq!(sqlstate(&db.run(q).unwrap_err()), "22003");
    let q = Select {
        items: items(vec![("s", agg(AggFunc::Sum, col("dept")))]),
        ..Select::from("emp")
    };
    assert_eq!(sqlstate(&db.run(q).unwrap_err()), "42883");
    // FOR UPDATE with grouping.
    let q = Select {
        items: items(vec![("n", count_star())]),
        ..Select::from("emp").for_update()
    };
    assert_eq!(sqlstate(&db.run(q).unwrap_err()), "0A000");
}

#[test]
fn order_by_directions_nulls_aliases_offset_and_limit() {
    let mut db = Db::new();
    let by = |o: Vec<OrderBy>| Select {
        order_by: o,
        ..Select::from("emp")
    };
    let ids = |db: &mut Db, q: Select| column(&db.rows(q), "id");
    // NULLs are larger than every value: last ascending, first descending.
    assert_eq!(
        ids(&mut db, by(vec![order(col("salary"), false, None)])),
        ints(&[3, 5, 1, 2, 4])
    );
    assert_eq!(
        ids(&mut db, by(vec![order(col("salary"), true, None)])),
        ints(&[4, 2, 1, 5, 3])
    );
    assert_eq!(
        ids(&mut db, by(vec![order(col("salary"), false, Some(true))])),
        ints(&[4, 3, 5, 1, 2])
    );
    assert_eq!(
        ids(&mut db, by(vec![order(col("salary"), true, Some(false))])),
        ints(&[2, 1, 5, 3, 4])
    );
    // Several keys; ties keep scan order (stable).
    assert_eq!(
        ids(
            &mut db,
            by(vec![
                order(col("dept"), true, None),
                order(col("id"), true, None)
            ])
        ),
        ints(&[4, 3, 5, 2, 1])
    );
    assert_eq!(
        ids(&mut db, by(vec![order(col("dept"), false, None)])),
        ints(&[1, 2, 5, 3, 4])
    );
    // An expression, and an output column's alias.
    assert_eq!(
        ids(&mut db, by(vec![order(neg(col("id")), false, None)])),
        ints(&[5, 4, 3, 2, 1])
    );
    let q = Select {
        items: items(vec![
            ("id", col("id")),
            ("m", bin(sim_models::sql::BinOp::Mod, col("id"), 3)),
        ]),
        order_by: vec![order(col("m"), false, None), order(col("id"), true, None)],
        ..Select::from("emp")
    };
    assert_eq!(ids(&mut db, q), ints(&[3, 4, 1, 5, 2]));
    // OFFSET then LIMIT.
    let q = Select {
        offset: Some(1),
        limit: Some(2),
        ..by(vec![order(col("id"), true, None)])
    };
    assert_eq!(ids(&mut db, q), ints(&[4, 3]));
    let q = Select {
        offset: Some(10),
        ..by(vec![order(col("id"), true, None)])
    };
    assert!(ids(&mut db, q).is_empty());
    let q = Select {
        offset: Some(3),
        ..Select::from("emp")
    };
    assert_eq!(ids(&mut db, q), ints(&[4, 5]));
    // Two output columns with the name: ambiguous.
    let q = Select {
        items: items(vec![("x", col("id")), ("x", col("salary"))]),
        order_by: vec![order(col("x"), false, None)],
        ..Select::from("emp")
    };
    assert_eq!(sqlstate(&db.run(q).unwrap_err()), "42702");
}

#[test]
fn select_items_name_the_output_columns() {
    let mut db = Db::new();
    let q = Select {
        items: items(vec![("double", col("v").times(2)), ("who", col("name"))]),
        ..Select::from("t").filter(col("v").is_not_null())
    };
    let rows = db.rows(q);
    assert_eq!(rows[0].columns(), ["double", "who"]);
    assert_eq!(column(&rows, "double"), ints(&[20, 60]));
    assert_eq!(column(&rows, "who"), vec![text("Ann"), Value::Null]);
}

#[test]
fn order_by_limit_for_update_skip_locked_hands_out_different_jobs() {
    let mut db = Db::new();
    let (w1, w2) = (db.session(), db.session());
    let next_job = || Select {
        order_by: vec![order(col("prio"), true, None)],
        ..Select::from("jobs").for_update().skip_locked().limit(1)
    };
    db.ok(w1, Statement::Begin(Some(IsolationLevel::ReadCommitted)));
    db.ok(w2, Statement::Begin(Some(IsolationLevel::ReadCommitted)));
    let a = db.ok(w1, next_job());
    let b = db.ok(w2, next_job());
    assert_eq!(column(&a.rows, "id"), ints(&[2]), "highest priority first");
    assert_eq!(
        column(&b.rows, "id"),
        ints(&[3]),
        "the next one, not the locked one"
    );
    db.ok(w1, Delete::from("jobs").key(2));
    db.ok(w1, Statement::Commit);
    // Without SKIP LOCKED, a worker waits for the locked head of the queue and then
    // takes the next row in the order (the head is gone).
    let w3 = db.session();
    db.ok(w3, Statement::Begin(Some(IsolationLevel::ReadCommitted)));
    let waiting = Select {
        order_by: vec![order(col("prio"), true, None)],
        ..Select::from("jobs").for_update().limit(1)
    };
    db.blocked(w3, waiting);
    db.ok(w2, Delete::from("jobs").key(3));
    db.ok(w2, Statement::Commit);
    let r = db.completed(w3).unwrap();
    assert_eq!(column(&r.rows, "id"), ints(&[1]));
    // OFFSET counts locked rows.
    let w4 = db.session();
    let q = Select {
        order_by: vec![order(col("prio"), true, None)],
        offset: Some(1),
        ..Select::from("jobs").for_update().skip_locked()
    };
    let r = db.ok(w4, q);
    assert_eq!(
        column(&r.rows, "id"),
        Vec::<Value>::new(),
        "1 is locked, 4 is offset"
    );
}

// ---------------------------------------------------------------- RETURNING

#[test]
fn returning_projections_and_affected_counts() {
    let mut db = Db::new();
    let r = db
        .run(Update {
            returning: Projection::Nothing,
            ..Update::table("emp").set("salary", col("salary").plus(1))
        })
        .unwrap();
    assert!(r.rows.is_empty());
    assert_eq!(r.affected, 5);
    let r = db
        .run(Update {
            returning: items(vec![("id", col("id")), ("new", col("salary"))]),
            ..Update::table("emp")
                .set("salary", 0)
                .filter(col("dept").eq("ops"))
        })
        .unwrap();
    assert_eq!(r.affected, 2);
    assert_eq!(r.rows[0].columns(), ["id", "new"]);
    assert_eq!(column(&r.rows, "new"), ints(&[0, 0]));
    let r = db
        .run(Delete {
            returning: items(vec![("gone", col("emp.id").times(10))]),
            ..Delete::from("emp").filter(col("dept").eq("eng"))
        })
        .unwrap();
    assert_eq!(column(&r.rows, "gone"), ints(&[10, 20]), "the old rows");
    let r = db
        .run(Delete {
            returning: Projection::Nothing,
            ..Delete::from("emp")
        })
        .unwrap();
    assert_eq!((r.rows.len(), r.affected), (0, 3));
    let r = db
        .run(Insert {
            rows: vec![
                sql_row! {"k" => 1, "v" => 1}.into(),
                sql_row! {"k" => 2, "v" => 2}.into(),
            ],
            returning: items(vec![("k2", col("k").plus(col("v")))]),
            ..Insert::into("kv", Row::new())
        })
        .unwrap();
    assert_eq!(r.affected, 2);
    assert_eq!(column(&r.rows, "k2"), ints(&[2, 4]));
    let r = db
        .run(Insert {
            rows: vec![sql_row! {"k" => 3, "v" => 3}.into()],
            returning: Projection::Nothing,
            ..Insert::into("kv", Row::new())
        })
        .unwrap();
    assert_eq!((r.rows.len(), r.affected), (0, 1));
    // DO UPDATE returns (and counts) the updated row; DO NOTHING skips.
    let r = db
        .run(Insert {
            rows: vec![
                sql_row! {"k" => 1, "v" => 9}.into(),
                sql_row! {"k" => 7, "v" => 7}.into(),
            ],
            returning: items(vec![("v", col("v"))]),
            ..Insert::into("kv", Row::new())
                .on_conflict_do_update(&["k"], vec![("v", excluded("v").plus(col("kv.v")))])
        })
        .unwrap();
    assert_eq!(r.affected, 2);
    assert_eq!(column(&r.rows, "v"), ints(&[10, 7]));
    let r = db
        .run(Insert {
            rows: vec![
                sql_row! {"k" => 1, "v" => 0}.into(),
                sql_row! {"k" => 8, "v" => 8}.into(),
            ],
            ..Insert::into("kv", Row::new()).on_conflict_do_nothing()
        })
        .unwrap();
    assert_eq!(r.affected, 1);
    assert_eq!(column(&r.rows, "k"), ints(&[8]));
    // The builder's default is RETURNING *.
    let r = db.run(Update::table("kv").set("v", 5).key(8)).unwrap();
    assert_eq!(r.rows[0], sql_row! {"k" => 8, "v" => 5});
}

// ---------------------------------------------------------------- multi-row INSERT

fn kv_rows(pairs: &[(i64, i64)]) -> Insert {
    Insert {
        rows: pairs
            .iter()
            .map(|(k, v)| sql_row! {"k" => *k, "v" => *v}.into())
            .collect(),
        ..Insert::into("kv", Row::new())
    }
}

#[test]
fn multi_row_insert_is_atomic() {
    let mut db = Db::new();
    db.run(kv_rows(&[(1, 1), (2, 2)])).unwrap();
    // The third row collides with the first: nothing of the statement stays.
    let e = db.run(kv_rows(&[(3, 3), (4, 4), (3, 5)])).unwrap_err();
    assert_eq!(sqlstate(&e), "23505");
    let e = db.run(kv_rows(&[(5, 5), (1, 1)])).unwrap_err();
    assert_eq!(sqlstate(&e), "23505");
    assert_eq!(db.ids("kv"), [1, 2]);
    // DO NOTHING skips the later duplicate.
    let r = db
        .run(kv_rows(&[(3, 3), (3, 4), (1, 9)]).on_conflict_do_nothing())
        .unwrap();
    assert_eq!(r.affected, 1);
    assert_eq!(db.ids("kv"), [1, 2, 3]);
    // DO UPDATE on a row the statement itself inserted or updated: 21000.
    let upsert = |pairs: &[(i64, i64)]| {
        kv_rows(pairs).on_conflict_do_update(&["k"], vec![("v", excluded("v"))])
    };
    let e = db.run(upsert(&[(9, 1), (9, 2)])).unwrap_err();
    assert_eq!(sqlstate(&e), "21000");
    let e = db.run(upsert(&[(1, 5), (1, 6)])).unwrap_err();
    assert_eq!(sqlstate(&e), "21000");
    assert_eq!(db.ids("kv"), [1, 2, 3]);
    let r = db.run(upsert(&[(1, 5), (2, 6), (4, 4)])).unwrap();
    assert_eq!(r.affected, 3);
    // Inside a block, the failed statement leaves nothing behind either.
    let s = db.session();
    db.ok(s, Statement::Begin(Some(IsolationLevel::ReadCommitted)));
    db.ok(s, Statement::Savepoint("a".into()));
    db.ok(s, kv_rows(&[(10, 1)]));
    assert_eq!(sqlstate(&db.err(s, kv_rows(&[(11, 1), (10, 2)]))), "23505");
    db.ok(s, Statement::RollbackToSavepoint("a".into()));
    db.ok(s, kv_rows(&[(11, 1)]));
    db.ok(s, Statement::Commit);
    assert_eq!(db.ids("kv"), [1, 2, 3, 4, 11]);
}

#[test]
fn multi_row_insert_waits_for_a_concurrent_insert_then_resumes() {
    let mut db = Db::new();
    let (a, b) = (db.session(), db.session());
    // The other transaction commits: the key is taken, 23505, nothing of ours stays.
    db.ok(a, Statement::Begin(Some(IsolationLevel::ReadCommitted)));
    db.ok(a, kv_rows(&[(2, 0)]));
    db.blocked(b, kv_rows(&[(1, 1), (2, 2), (3, 3)]));
    db.ok(a, Statement::Commit);
    assert_eq!(sqlstate(&db.completed(b).unwrap_err()), "23505");
    assert_eq!(db.ids("kv"), [2]);
    // The other transaction rolls back: all our rows go in.
    db.ok(a, Statement::Begin(Some(IsolationLevel::ReadCommitted)));
    db.ok(a, kv_rows(&[(5, 0)]));
    db.blocked(b, kv_rows(&[(4, 4), (5, 5), (6, 6)]));
    // While b waits, its first row is not there (nothing but locks changed).
    assert_eq!(db.ids("kv"), [2]);
    db.ok(a, Statement::Rollback);
    let r = db.completed(b).unwrap();
    assert_eq!(r.affected, 3);
    assert_eq!(db.ids("kv"), [2, 4, 5, 6]);
    // DO NOTHING waits too, then skips the committed key.
    db.ok(a, Statement::Begin(Some(IsolationLevel::ReadCommitted)));
    db.ok(a, kv_rows(&[(8, 0)]));
    db.blocked(b, kv_rows(&[(7, 7), (8, 8)]).on_conflict_do_nothing());
    db.ok(a, Statement::Commit);
    assert_eq!(db.completed(b).unwrap().affected, 1);
    assert_eq!(db.ids("kv"), [2, 4, 5, 6, 7, 8]);
}

// ---------------------------------------------------------------- defaults

#[test]
fn defaults_fill_missing_columns_and_serials_never_repeat() {
    let mut db = Db::new();
    let s = db.session();
    let r = db.ok(s, Insert::into("seq", sql_row! {"note" => "a"}));
    assert_eq!(r.rows[0].value("id"), Some(&Value::Int(1)));
    // A given value draws no number.
    db.ok(s, Insert::into("seq", sql_row! {"id" => 100}));
    let r = db.ok(s, Insert::into("seq", Row::new()));
    assert_eq!(r.rows[0].value("id"), Some(&Value::Int(2)));
    assert_eq!(r.rows[0].value("note"), Some(&text("x")));
    // A rolled-back draw is not reused.
    db.ok(s, Statement::Begin(Some(IsolationLevel::ReadCommitted)));
    db.ok(s, Insert::into("seq", Row::new()));
    db.ok(s, Statement::Rollback);
    // A failed statement's draw neither.
    let e = db.err(s, Insert::into("seq", sql_row! {"note" => Value::Null}));
    assert_eq!(sqlstate(&e), "23502");
    let r = db.ok(
        s,
        Insert {
            rows: vec![Row::new().into(), Row::new().into()],
            ..Insert::into("seq", Row::new())
        },
    );
    assert_eq!(column(&r.rows, "id"), ints(&[5, 6]));
    // An explicit NULL is not "not given".
    let e = db.err(s, Insert::into("seq", sql_row! {"id" => Value::Null}));
    assert_eq!(sqlstate(&e), "23502");
    assert_eq!(db.ids("seq"), [1, 2, 5, 6, 100]);
    // After a crash, numbers handed out before are never handed out again.
    db.e.close_session(s);
    let s = db.session();
    db.ok(s, Statement::Begin(Some(IsolationLevel::ReadCommitted)));
    db.ok(s, Insert::into("seq", Row::new()));
    db.e.crash();
    let s = db.session();
    let r = db.ok(s, Insert::into("seq", Row::new()));
    assert_eq!(
        r.rows[0].value("id"),
        Some(&Value::Int(8)),
        "7 went with the crash"
    );
    assert_eq!(db.ids("seq"), [1, 2, 5, 6, 8, 100]);
}

// ---------------------------------------------------------------- CHECK

#[test]
fn check_constraints_refuse_false_and_pass_null() {
    let mut db = Db::new();
    db.run(Insert::into("chk", sql_row! {"id" => 1, "qty" => 0}))
        .unwrap();
    db.run(Insert::into(
        "chk",
        sql_row! {"id" => 2, "qty" => Value::Null},
    ))
    .unwrap();
    let e = db
        .run(Insert::into("chk", sql_row! {"id" => 3, "qty" => -1}))
        .unwrap_err();
    assert_eq!(sqlstate(&e), "23514");
    assert_eq!(
        e.to_string(),
        "new row for relation \"chk\" violates check constraint \"chk_qty\""
    );
    let e = db
        .run(Update::table("chk").set("qty", col("qty").minus(1)).key(1))
        .unwrap_err();
    assert_eq!(sqlstate(&e), "23514");
    let e = db
        .run(
            Insert::into("chk", sql_row! {"id" => 1, "qty" => 5})
                .on_conflict_do_update(&["id"], vec![("qty", lit(-5))]),
        )
        .unwrap_err();
    assert_eq!(sqlstate(&e), "23514");
    db.run(
        Insert::into("chk", sql_row! {"id" => 1, "qty" => 5})
            .on_conflict_do_update(&["id"], vec![("qty", excluded("qty"))]),
    )
    .unwrap();
    assert_eq!(db.ids("chk"), [1, 2]);
    // Declaring a CHECK: its columns must exist, no aggregates.
    let mut bad = TableSchema::new("bad")
        .column("id", ColumnType::Int)
        .primary_key(&["id"]);
    bad.checks.push(CheckConstraint {
        name: "c".into(),
        expr: col("nope").gt(0),
    });
    let create = |schema: TableSchema| Statement::CreateTable {
        schema,
        if_not_exists: false,
    };
    assert_eq!(sqlstate(&db.run(create(bad.clone())).unwrap_err()), "42703");
    bad.checks[0].expr = count_star().gt(0);
    assert_eq!(sqlstate(&db.run(create(bad)).unwrap_err()), "42803");
}

// ---------------------------------------------------------------- savepoints

#[test]
fn savepoints_need_a_transaction_block() {
    let mut db = Db::new();
    let s = db.session();
    for stmt in [
        Statement::Savepoint("a".into()),
        Statement::RollbackToSavepoint("a".into()),
        Statement::ReleaseSavepoint("a".into()),
    ] {
        let e = db.err(s, stmt);
        assert_eq!(sqlstate(&e), "25P01");
    }
    assert_eq!(
        db.err(s, Statement::Savepoint("a".into())).to_string(),
        "SAVEPOINT can only be used in transaction blocks"
    );
    db.ok(s, Statement::Begin(Some(IsolationLevel::ReadCommitted)));
    let e = db.err(s, Statement::RollbackToSavepoint("nope".into()));
    assert_eq!(sqlstate(&e), "3B001");
    // Without savepoints, that error failed the whole block.
    assert_eq!(sqlstate(&db.err(s, Select::from("t"))), "25P02");
    db.ok(s, Statement::Rollback);
    db.ok(s, Statement::Begin(Some(IsolationLevel::ReadCommitted)));
    db.ok(s, Statement::Savepoint("a".into()));
    assert_eq!(
        sqlstate(&db.err(s, Statement::ReleaseSavepoint("b".into()))),
        "3B001"
    );
    // The block failed, but savepoint a brings it back.
    db.ok(s, Statement::RollbackToSavepoint("a".into()));
    db.ok(s, Select::from("t"));
    db.ok(s, Statement::Commit);
}

#[test]
fn rollback_to_savepoint_undoes_later_writes_and_keeps_the_savepoint() {
    let mut db = Db::new();
    let s = db.session();
    db.ok(s, Statement::Begin(Some(IsolationLevel::ReadCommitted)));
    db.ok(s, kv_rows(&[(1, 1)]));
    db.ok(s, Statement::Savepoint("a".into()));
    db.ok(s, kv_rows(&[(2, 2)]));
    db.ok(s, Update::table("kv").set("v", 10).key(1));
    db.ok(s, Statement::Savepoint("b".into()));
    db.ok(s, Delete::from("kv").key(2));
    let r = db.ok(s, Statement::RollbackToSavepoint("b".into()));
    assert_eq!(r.tag, sim_models::sql::CommandTag::Rollback);
    assert_eq!(db.ok(s, Select::from("kv")).rows.len(), 2);
    db.ok(s, Statement::RollbackToSavepoint("a".into()));
    let rows = db.ok(s, Select::from("kv")).rows;
    assert_eq!(rows, vec![sql_row! {"k" => 1, "v" => 1}]);
    // a is still there (b is gone): roll back to it again.
    db.ok(s, kv_rows(&[(3, 3)]));
    db.ok(s, Statement::RollbackToSavepoint("a".into()));
    assert_eq!(
        sqlstate(&db.err(s, Statement::RollbackToSavepoint("b".into()))),
        "3B001"
    );
    db.ok(s, Statement::RollbackToSavepoint("a".into()));
    // RELEASE keeps the writes.
    db.ok(s, kv_rows(&[(4, 4)]));
    let r = db.ok(s, Statement::ReleaseSavepoint("a".into()));
    assert_eq!(r.tag, sim_models::sql::CommandTag::Release);
    assert_eq!(
        sqlstate(&db.err(s, Statement::RollbackToSavepoint("a".into()))),
        "3B001"
    );
    db.ok(s, Statement::Rollback);
    db.ok(s, Statement::Begin(Some(IsolationLevel::ReadCommitted)));
    db.ok(s, kv_rows(&[(1, 1)]));
    db.ok(s, Statement::Savepoint("a".into()));
    db.ok(s, kv_rows(&[(4, 4)]));
    db.ok(s, Statement::ReleaseSavepoint("a".into()));
    db.ok(s, Statement::Commit);
    assert_eq!(db.ids("kv"), [1, 4]);
}

#[test]
fn savepoints_with_one_name_nest_and_the_latest_wins() {
    let mut db = Db::new();
    let s = db.session();
    db.ok(s, Statement::Begin(Some(IsolationLevel::ReadCommitted)));
    db.ok(s, Statement::Savepoint("a".into()));
    db.ok(s, kv_rows(&[(1, 1)]));
    db.ok(s, Statement::Savepoint("a".into()));
    db.ok(s, kv_rows(&[(2, 2)]));
    db.ok(s, Statement::RollbackToSavepoint("a".into()));
    assert_eq!(db.ok(s, Select::from("kv")).rows.len(), 1);
    // Releasing the latest a uncovers the first.
    db.ok(s, Statement::ReleaseSavepoint("a".into()));
    db.ok(s, Statement::RollbackToSavepoint("a".into()));
    assert_eq!(db.ok(s, Select::from("kv")).rows.len(), 0);
    db.ok(s, Statement::Commit);
}

#[test]
fn a_failed_statement_after_a_savepoint_keeps_the_transaction() {
    let mut db = Db::new();
    let (s, other) = (db.session(), db.session());
    db.ok(s, Statement::Begin(Some(IsolationLevel::ReadCommitted)));
    db.ok(s, kv_rows(&[(1, 1)]));
    db.ok(s, Statement::Savepoint("a".into()));
    db.ok(s, kv_rows(&[(2, 2)]));
    assert_eq!(sqlstate(&db.err(s, kv_rows(&[(1, 9)]))), "23505");
    assert_eq!(sqlstate(&db.err(s, Select::from("kv"))), "25P02");
    assert_eq!(
        sqlstate(&db.err(s, Statement::Savepoint("b".into()))),
        "25P02"
    );
    assert_eq!(
        sqlstate(&db.err(s, Statement::ReleaseSavepoint("a".into()))),
        "25P02"
    );
    // The writes before the savepoint are still ours: another insert of key 1 waits.
    db.blocked(other, kv_rows(&[(1, 5)]));
    db.ok(s, Statement::RollbackToSavepoint("a".into()));
    let rows = db.ok(s, Select::from("kv")).rows;
    assert_eq!(rows, vec![sql_row! {"k" => 1, "v" => 1}]);
    db.ok(s, kv_rows(&[(3, 3)]));
    db.ok(s, Statement::Commit);
    assert_eq!(sqlstate(&db.completed(other).unwrap_err()), "23505");
    assert_eq!(db.ids("kv"), [1, 3]);
    // COMMIT of a failed block with savepoints rolls everything back.
    db.ok(s, Statement::Begin(Some(IsolationLevel::ReadCommitted)));
    db.ok(s, Statement::Savepoint("a".into()));
    db.ok(s, kv_rows(&[(4, 4)]));
    db.err(s, kv_rows(&[(1, 1)]));
    let r = db.ok(s, Statement::Commit);
    assert_eq!(r.tag, sim_models::sql::CommandTag::Rollback);
    assert_eq!(db.ids("kv"), [1, 3]);
    assert_eq!(db.e.running_transactions(), 0);
}

#[test]
fn rollback_to_savepoint_releases_row_locks_taken_since() {
    let mut db = Db::new();
    let (a, b) = (db.session(), db.session());
    db.run(kv_rows(&[(1, 1), (2, 2)])).unwrap();
    db.ok(a, Statement::Begin(Some(IsolationLevel::ReadCommitted)));
    db.ok(a, Select::from("kv").key(1).for_update());
    db.ok(a, Statement::Savepoint("s".into()));
    db.ok(a, Update::table("kv").set("v", 20).key(2));
    db.blocked(b, Update::table("kv").set("v", 200).key(2));
    // Rolling back to s releases row 2: b goes on while a is still running.
    db.ok(a, Statement::RollbackToSavepoint("s".into()));
    let r = db.completed(b).unwrap();
    assert_eq!(r.rows[0].value("v"), Some(&Value::Int(200)));
    // Row 1, locked before the savepoint, stays locked.
    db.blocked(b, Update::table("kv").set("v", 100).key(1));
    db.ok(a, Statement::Commit);
    assert!(db.completed(b).is_ok());
    // A statement failing after a savepoint releases what the subtransaction locked.
    db.ok(a, Statement::Begin(Some(IsolationLevel::ReadCommitted)));
    db.ok(a, Statement::Savepoint("s".into()));
    db.ok(a, Update::table("kv").set("v", 0).key(2));
    db.blocked(b, Update::table("kv").set("v", 7).key(2));
    db.err(a, Update::table("kv").set("v", lit(1).divided_by(0)).key(1));
    assert_eq!(column(&db.completed(b).unwrap().rows, "v"), ints(&[7]));
    db.ok(a, Statement::Rollback);
}

#[test]
fn a_deadlock_victim_after_a_savepoint_can_roll_back_to_it_and_go_on() {
    let mut db = Db::new();
    let (a, b) = (db.session(), db.session());
    db.run(kv_rows(&[(1, 1), (2, 2)])).unwrap();
    for s in [a, b] {
        db.ok(s, Statement::Begin(Some(IsolationLevel::ReadCommitted)));
        db.ok(s, Statement::Savepoint("s".into()));
    }
    db.ok(a, Update::table("kv").set("v", 10).key(1));
    db.ok(b, Update::table("kv").set("v", 20).key(2));
    db.blocked(a, Update::table("kv").set("v", 10).key(2));
    db.blocked(b, Update::table("kv").set("v", 20).key(1));
    assert!(db.e.check_deadlock(b));
    // b's subtransaction is aborted: its lock on 2 goes, so a proceeds.
    let mut done = db.e.take_completions();
    assert_eq!(done.len(), 1);
    let c = done.remove(0);
    assert_eq!(c.session, a);
    db.e.finish(a).unwrap();
    db.ok(b, Statement::RollbackToSavepoint("s".into()));
    db.ok(b, kv_rows(&[(3, 3)]));
    db.ok(a, Statement::Commit);
    db.ok(b, Statement::Commit);
    assert_eq!(db.ids("kv"), [1, 2, 3]);
}

// ---------------------------------------------------------------- CREATE INDEX

fn create_index(name: &str, table: &str, cols: &[&str], unique: bool) -> Statement {
    Statement::CreateIndex {
        name: name.into(),
        table: table.into(),
        columns: cols.iter().map(|c| (*c).into()).collect(),
        unique,
        if_not_exists: false,
    }
}

#[test]
fn create_index_checks_names_and_unique_ones_constrain() {
    let mut db = Db::new();
    let r = db
        .run(create_index("emp_dept", "emp", &["dept"], false))
        .unwrap();
    assert_eq!(r.tag, sim_models::sql::CommandTag::CreateIndex);
    let states = [
        (create_index("x", "nope", &["a"], false), "42P01"),
        (create_index("x", "emp", &["nope"], false), "42703"),
        (create_index("emp_dept", "emp", &["id"], false), "42P07"),
        (create_index("emp_pkey", "emp", &["id"], true), "42P07"),
        (create_index("t", "emp", &["id"], true), "42P07"),
        // Two eng employees.
        (create_index("emp_dept_u", "emp", &["dept"], true), "23505"),
    ];
    for (stmt, state) in states {
        assert_eq!(
            sqlstate(&db.run(stmt.clone()).unwrap_err()),
            state,
            "{stmt}"
        );
    }
    let again = Statement::CreateIndex {
        name: "emp_dept".into(),
        table: "emp".into(),
        columns: vec!["id".into()],
        unique: true,
        if_not_exists: true,
    };
    db.run(again).unwrap();
    // A unique index over distinct values (NULLs are distinct) becomes a constraint.
    db.run(create_index("t_v_key", "t", &["v"], true)).unwrap();
    let e = db
        .run(Insert::into("t", sql_row! {"id" => 9, "v" => 10}))
        .unwrap_err();
    assert_eq!(
        e,
        SqlError::UniqueViolation {
            constraint: "t_v_key".into(),
            key: "(v)=(10)".into()
        }
    );
    db.run(Insert::into("t", sql_row! {"id" => 9, "v" => Value::Null}))
        .unwrap();
    // ... and an ON CONFLICT arbiter.
    let r = db
        .run(
            Insert::into("t", sql_row! {"id" => 10, "v" => 30})
                .on_conflict_do_update(&["v"], vec![("name", lit("z"))]),
        )
        .unwrap();
    assert_eq!(r.rows[0].value("id"), Some(&Value::Int(3)));
    // DDL runs outside transaction blocks only.
    let s = db.session();
    db.ok(s, Statement::Begin(Some(IsolationLevel::ReadCommitted)));
    let e = db.err(s, create_index("i2", "t", &["name"], false));
    assert_eq!(sqlstate(&e), "25001");
}

#[test]
fn a_unique_index_counts_rows_a_running_transaction_may_bring_back() {
    let mut db = Db::new();
    db.run(kv_rows(&[(1, 1), (2, 2)])).unwrap();
    let s = db.session();
    db.ok(s, Statement::Begin(Some(IsolationLevel::ReadCommitted)));
    // Moving row 2 to v = 1 and back would be fine; deleting row 1 while inserting
    // another v = 1 is not settled until the transaction ends.
    db.ok(s, Update::table("kv").set("v", 1).key(2));
    let e = db
        .run(create_index("kv_v", "kv", &["v"], true))
        .unwrap_err();
    assert_eq!(sqlstate(&e), "23505");
    db.ok(s, Statement::Rollback);
    db.run(create_index("kv_v", "kv", &["v"], true)).unwrap();
}

// ---------------------------------------------------------------- foreign keys

#[test]
fn foreign_keys_need_a_parent_and_protect_it() {
    let mut db = Db::new();
    db.run(Insert::into("parent", sql_row! {"id" => 1}))
        .unwrap();
    db.run(Insert::into("parent", sql_row! {"id" => 2}))
        .unwrap();
    db.run(Insert::into("child", sql_row! {"id" => 10, "pid" => 1}))
        .unwrap();
    // NULL references nothing.
    db.run(Insert::into(
        "child",
        sql_row! {"id" => 11, "pid" => Value::Null},
    ))
    .unwrap();
    let e = db
        .run(Insert::into("child", sql_row! {"id" => 12, "pid" => 3}))
        .unwrap_err();
    assert_eq!(sqlstate(&e), "23503");
    assert_eq!(
        e.to_string(),
        "insert or update on table \"child\" violates foreign key constraint \"child_pid_fkey\""
    );
    let e = db
        .run(Update::table("child").set("pid", 3).key(10))
        .unwrap_err();
    assert_eq!(sqlstate(&e), "23503");
    let e = db.run(Delete::from("parent").key(1)).unwrap_err();
    assert_eq!(sqlstate(&e), "23503");
    assert_eq!(
        e.to_string(),
        "update or delete on table \"parent\" violates foreign key constraint \
         \"child_pid_fkey\" on table \"child\""
    );
    let e = db
        .run(Update::table("parent").set("id", 5).key(1))
        .unwrap_err();
    assert_eq!(sqlstate(&e), "23503");
    // Changing a key nobody references, or anything but the key, is fine.
    db.run(Update::table("parent").set("id", 5).key(2)).unwrap();
    db.run(Update::table("child").set("pid", 5).key(10))
        .unwrap();
    db.run(Delete::from("parent").key(1)).unwrap();
    // A multi-row insert may reference a parent... not in the same table here; and a
    // child and its parent deleted by one transaction, child first, is fine.
    let s = db.session();
    db.ok(s, Statement::Begin(Some(IsolationLevel::ReadCommitted)));
    db.ok(s, Delete::from("child").key(10));
    db.ok(s, Delete::from("parent").key(5));
    db.ok(s, Statement::Commit);
    assert_eq!(db.ids("parent"), Vec::<i64>::new());
    assert_eq!(db.ids("child"), [11]);
}

#[test]
fn self_referencing_rows_may_come_in_one_statement() {
    let mut db = Db::new();
    let mut emp = TableSchema::new("staff")
        .column("id", ColumnType::Int)
        .nullable_column("boss", ColumnType::Int)
        .primary_key(&["id"]);
    emp.foreign_keys.push(ForeignKey {
        name: "staff_boss_fkey".into(),
        columns: vec!["boss".into()],
        table: "staff".into(),
        ref_columns: vec![],
    });
    db.run(Statement::CreateTable {
        schema: emp,
        if_not_exists: false,
    })
    .unwrap();
    // The first row names the second: checked at the end of the statement.
    let rows = vec![
        sql_row! {"id" => 2, "boss" => 1},
        sql_row! {"id" => 1, "boss" => Value::Null},
    ];
    db.run(Insert {
        rows: rows.into_iter().map(Into::into).collect(),
        ..Insert::into("staff", Row::new())
    })
    .unwrap();
    assert_eq!(
        sqlstate(&db.run(Delete::from("staff").key(1)).unwrap_err()),
        "23503"
    );
    // Both at once is fine.
    db.run(Delete::from("staff")).unwrap();
}

#[test]
fn foreign_key_declarations_are_checked() {
    let mut db = Db::new();
    let with_fk = |table: &str, cols: &[&str], refs: &[&str]| {
        let mut s = TableSchema::new("c2")
            .column("id", ColumnType::Int)
            .column("a", ColumnType::Int)
            .column("name", ColumnType::Text)
            .primary_key(&["id"]);
        s.foreign_keys.push(ForeignKey {
            name: "c2_fk".into(),
            columns: cols.iter().map(|c| (*c).into()).collect(),
            table: table.into(),
            ref_columns: refs.iter().map(|c| (*c).into()).collect(),
        });
        Statement::CreateTable {
            schema: s,
            if_not_exists: false,
        }
    };
    let cases = [
        (with_fk("nope", &["a"], &["id"]), "42P01"),
        (with_fk("emp", &["a"], &["salary"]), "42830"),
        (with_fk("emp", &["a"], &["id", "dept"]), "42830"),
        (with_fk("emp", &["zz"], &["id"]), "42703"),
        (with_fk("emp", &["a"], &["zz"]), "42703"),
        (with_fk("emp", &["name"], &["id"]), "42804"),
    ];
    for (stmt, state) in cases {
        let Statement::CreateTable { schema, .. } = &stmt else {
            unreachable!()
        };
        let fk = schema.foreign_keys[0].clone();
        assert_eq!(sqlstate(&db.run(stmt).unwrap_err()), state, "{fk:?}");
    }
    // A unique constraint (here one made by CREATE UNIQUE INDEX) may be referenced.
    db.run(create_index("dept_floor_key", "dept", &["floor"], true))
        .unwrap();
    db.run(with_fk("dept", &["a"], &["floor"])).unwrap();
    db.run(Insert::into(
        "c2",
        sql_row! {"id" => 1, "a" => 3, "name" => "x"},
    ))
    .unwrap();
    let e = db
        .run(Insert::into(
            "c2",
            sql_row! {"id" => 2, "a" => 4, "name" => "x"},
        ))
        .unwrap_err();
    assert_eq!(sqlstate(&e), "23503");
    assert_eq!(
        sqlstate(&db.run(Delete::from("dept").key("eng")).unwrap_err()),
        "23503"
    );
}

#[test]
fn a_child_insert_and_a_parent_delete_wait_for_each_other() {
    let mut db = Db::new();
    db.run(Insert::into("parent", sql_row! {"id" => 1}))
        .unwrap();
    let (c, p) = (db.session(), db.session());
    // The child first: the parent's delete waits, then finds the child.
    db.ok(c, Statement::Begin(Some(IsolationLevel::ReadCommitted)));
    db.ok(c, Insert::into("child", sql_row! {"id" => 1, "pid" => 1}));
    db.blocked(p, Delete::from("parent").key(1));
    db.ok(c, Statement::Commit);
    assert_eq!(sqlstate(&db.completed(p).unwrap_err()), "23503");
    // If the child's transaction rolls back, the delete goes through.
    db.run(Delete::from("child")).unwrap();
    db.ok(c, Statement::Begin(Some(IsolationLevel::ReadCommitted)));
    db.ok(c, Insert::into("child", sql_row! {"id" => 2, "pid" => 1}));
    db.blocked(p, Delete::from("parent").key(1));
    db.ok(c, Statement::Rollback);
    assert_eq!(db.completed(p).unwrap().affected, 1);
    // The delete first: the child's insert waits, then finds no parent.
    db.run(Insert::into("parent", sql_row! {"id" => 2}))
        .unwrap();
    db.ok(p, Statement::Begin(Some(IsolationLevel::ReadCommitted)));
    db.ok(p, Delete::from("parent").key(2));
    db.blocked(c, Insert::into("child", sql_row! {"id" => 3, "pid" => 2}));
    db.ok(p, Statement::Commit);
    assert_eq!(sqlstate(&db.completed(c).unwrap_err()), "23503");
    // If the delete rolls back, the child goes in.
    db.run(Insert::into("parent", sql_row! {"id" => 3}))
        .unwrap();
    db.ok(p, Statement::Begin(Some(IsolationLevel::ReadCommitted)));
    db.ok(p, Delete::from("parent").key(3));
    db.blocked(c, Insert::into("child", sql_row! {"id" => 4, "pid" => 3}));
    db.ok(p, Statement::Rollback);
    assert_eq!(db.completed(c).unwrap().affected, 1);
    assert_eq!(db.ids("child"), [4]);
    assert_eq!(db.ids("parent"), [3]);
}

#[test]
fn repeatable_read_child_insert_after_a_concurrent_parent_delete_fails_to_serialize() {
    let mut db = Db::new();
    db.run(Insert::into("parent", sql_row! {"id" => 1}))
        .unwrap();
    let (c, p) = (db.session(), db.session());
    db.ok(c, Statement::Begin(Some(IsolationLevel::RepeatableRead)));
    db.ok(c, Select::from("t"));
    db.run(Delete::from("parent").key(1)).unwrap();
    let e = db.err(c, Insert::into("child", sql_row! {"id" => 1, "pid" => 1}));
    assert_eq!(sqlstate(&e), "40001");
    db.ok(c, Statement::Rollback);
    // And a RR parent delete that finds a child committed after its snapshot: 40001.
    db.run(Insert::into("parent", sql_row! {"id" => 2}))
        .unwrap();
    db.ok(p, Statement::Begin(Some(IsolationLevel::RepeatableRead)));
    db.ok(p, Select::from("t"));
    db.run(Insert::into("child", sql_row! {"id" => 2, "pid" => 2}))
        .unwrap();
    let e = db.err(p, Delete::from("parent").key(2));
    assert_eq!(sqlstate(&e), "40001");
}

#[test]
fn builder_statements_behave_as_before() {
    // A time-sensitive default is the transaction's start even if the clock moves.
    let mut db = Db::new();
    db.e.set_now(Instant::START + Duration::from_secs(3));
    let r = db.run(Insert::into("seq", Row::new())).unwrap();
    assert_eq!(
        r.rows[0].value("at"),
        Some(&Value::timestamptz_at(
            Instant::START + Duration::from_secs(3)
        ))
    );
    // Insert RETURNING * with affected 1; ON CONFLICT DO NOTHING that skips: 0 rows.
    let r = db
        .run(Insert::into("kv", sql_row! {"k" => 1, "v" => 1}))
        .unwrap();
    assert_eq!((r.rows.len(), r.affected), (1, 1));
    let r = db
        .run(Insert::into("kv", sql_row! {"k" => 1, "v" => 2}).on_conflict_do_nothing())
        .unwrap();
    assert_eq!((r.rows.len(), r.affected), (0, 0));
    let r = db.run(Insert {
        on_conflict: OnConflict::DoNothing {
            target: Some(vec!["k".into()]),
        },
        ..Insert::into("kv", sql_row! {"k" => 2, "v" => 2})
    });
    assert_eq!(r.unwrap().affected, 1);
}

#[test]
fn serializable_catches_write_skew_through_an_aggregate_read() {
    let mut db = Db::new();
    let (a, b) = (db.session(), db.session());
    let eng_count = || Select {
        items: items(vec![("n", count_star())]),
        ..Select::from("emp").filter(col("dept").eq("eng"))
    };
    for s in [a, b] {
        db.ok(s, Statement::Begin(Some(IsolationLevel::Serializable)));
        let r = db.ok(s, eng_count());
        assert_eq!(r.rows[0].value("n"), Some(&Value::Int(2)));
    }
    // Each leaves one engineer, given the other stays.
    db.ok(a, Delete::from("emp").key(1));
    db.ok(b, Delete::from("emp").key(2));
    let first = db.e.submit(a, &Statement::Commit);
    let second = db.e.submit(b, &Statement::Commit);
    let failures = [first, second]
        .into_iter()
        .filter(|r| matches!(r, Submit::Done(Err(e)) if sqlstate(e) == "40001"))
        .count();
    assert_eq!(failures, 1, "one of the two must not commit");
    assert_eq!(db.ids("emp").iter().filter(|id| **id <= 2).count(), 1);
    // A join reads both tables.
    let (c, d) = (db.session(), db.session());
    db.ok(c, Statement::Begin(Some(IsolationLevel::Serializable)));
    db.ok(d, Statement::Begin(Some(IsolationLevel::Serializable)));
    db.ok(c, emp_join_dept(JoinKind::Inner));
    db.ok(d, Select::from("t"));
    db.ok(d, Update::table("dept").set("floor", 4).key("ops"));
    db.ok(c, Update::table("t").set("v", 0).key(1));
    db.ok(d, Statement::Commit);
    // c read dept (which d changed) and wrote t (which d read): a cycle c -> d -> c in
    // which d committed first, so c must not commit.
    let r = db.e.submit(c, &Statement::Commit);
    assert!(
        matches!(&r, Submit::Done(Err(e)) if sqlstate(e) == "40001"),
        "{r:?}"
    );
}
