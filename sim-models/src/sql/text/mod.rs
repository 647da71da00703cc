//! SQL text: PostgreSQL statements with `$1..$n` parameters, parsed by `sqlparser`'s
//! PostgreSQL dialect and planned onto the engine's [`Statement`]s ([`plan`], [`expr`]).
//!
//! A text is parsed once: [`prepare`] keeps plans by their text, as a driver keeps
//! prepared statements, so a statement run in a loop costs a lookup and a bind, not a
//! parse. Binding ([`Prepared::bind`]) puts the parameters' values in place of
//! `$n` and checks their count.
//!
//! What PostgreSQL accepts and the model would answer differently is refused with
//! SQLSTATE 0A000 naming the construct; text that does not parse gets 42601.
//!
//! ```
//! use sim_models::sql::text::prepare;
//! use sim_models::sql::{Statement, Value};
//! let p = prepare("UPDATE stock SET n = n - 1 WHERE id = $1 AND n > 0 RETURNING n").unwrap();
//! assert_eq!(p.param_count(), 1);
//! let Statement::Update(u) = p.bind(&[&7_i64]).unwrap() else { unreachable!() };
//! assert_eq!(u.filter.filter.unwrap().to_string(), "((id = 7) AND (n > 0))");
//! assert_eq!(prepare("SELECT 1 FROM t UNION SELECT 2 FROM u").unwrap_err().sqlstate(), Some("0A000"));
//! ```

mod command;
mod expr;
mod plan;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt;
use std::rc::Rc;

use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::Parser;

use super::command::Command;
use super::error::SqlError;
use super::expr::Expr;
use super::params::ToSql;
use super::schema::ColumnDefault;
use super::stmt::{InsertValue, OnConflict, Projection, Statement};
use super::value::Value;
use plan::Plan;

/// A planned statement, ready to bind: what `Client::prepare` returns.
#[derive(Clone)]
pub struct Prepared {
    text: Rc<str>,
    plan: Rc<Plan>,
    params: usize,
}

impl fmt::Debug for Prepared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Prepared")
            .field("text", &self.text)
            .field("params", &self.params)
            .finish()
    }
}

/// The most plans kept: a service that inlines values into its texts makes a new text per
/// call, and the cache must not grow with them.
const CACHED_PLANS_MAX: usize = 4096;

thread_local! {
    /// Plans by text. A plan is a function of its text alone, so sharing plans between
    /// the simulations a thread runs cannot change any of them; it spares each seed of an
    /// exploration the parsing of the same texts again.
    static PLANS: RefCell<BTreeMap<Rc<str>, Result<Prepared, SqlError>>> =
        const { RefCell::new(BTreeMap::new()) };
}

/// Parses and plans `sql`, or takes the plan made for the same text before.
pub fn prepare(sql: &str) -> Result<Prepared, SqlError> {
    if let Some(hit) = PLANS.with(|p| p.borrow().get(sql).cloned()) {
        return hit;
    }
    let planned = parse(sql);
    PLANS.with(|p| {
        let mut plans = p.borrow_mut();
        if plans.len() >= CACHED_PLANS_MAX {
            plans.clear();
        }
        plans.insert(Rc::from(sql), planned.clone());
    });
    planned
}

fn parse(sql: &str) -> Result<Prepared, SqlError> {
    if let Some(plan) = command::reset(sql) {
        return Ok(Prepared {
            text: Rc::from(sql),
            plan: Rc::new(plan?),
            params: 0,
        });
    }
    let stripped = plan::overriding(sql);
    let text = stripped.as_ref().map_or(sql, |(t, _)| t.as_str());
    let statements =
        Parser::parse_sql(&PostgreSqlDialect {}, text).map_err(|e| SqlError::SyntaxError {
            message: e
                .to_string()
                .trim_start_matches("sql parser error: ")
                .to_string(),
        })?;
    let statement = match statements.as_slice() {
        [one] => one,
        [] => return Err(expr::syntax("an empty query")),
        _ => {
            return Err(expr::syntax(
                "cannot insert multiple commands into a prepared statement",
            ))
        }
    };
    let mut plan = match command::plan(statement) {
        Some(p) => p?,
        None => plan::plan(statement)?,
    };
    if let (Some((_, which)), Statement::Insert(i)) = (stripped, &mut plan.stmt) {
        i.overriding = Some(which);
    }
    let params = param_count(&plan);
    Ok(Prepared {
        text: Rc::from(sql),
        plan: Rc::new(plan),
        params,
    })
}

impl Prepared {
    /// The text it was planned from.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// How many parameters it takes (the highest `$n`).
    pub fn param_count(&self) -> usize {
        self.params
    }

    /// The statement with `params` in place of `$1..$n`.
    pub fn bind(&self, params: &[&dyn ToSql]) -> Result<Statement, SqlError> {
        if params.len() != self.params {
            return Err(SqlError::ParameterCount {
                expected: self.params,
                given: params.len(),
            });
        }
        let values: Vec<Value> = params.iter().map(|p| p.to_sql()).collect();
        let plan = &*self.plan;
        let mut stmt = plan.stmt.clone();
        visit_exprs(&mut stmt, &mut |e| substitute(e, &values))?;
        if let Statement::Select(s) = &mut stmt {
            s.limit = count(plan.limit.as_ref(), "LIMIT", &values)?;
            s.offset = count(plan.offset.as_ref(), "OFFSET", &values)?;
        }
        Ok(stmt)
    }
}

/// LIMIT or OFFSET as a number (`None`: none, or LIMIT NULL, which PostgreSQL reads as
/// no limit).
fn count(e: Option<&Expr>, what: &str, values: &[Value]) -> Result<Option<usize>, SqlError> {
    let Some(e) = e else { return Ok(None) };
    let mut e = e.clone();
    substitute(&mut e, values)?;
    match e {
        Expr::Lit(Value::Null) => Ok(None),
        Expr::Lit(Value::Int(n)) if n >= 0 => Ok(Some(usize::try_from(n).unwrap_or(usize::MAX))),
        Expr::Lit(Value::Int(_)) => Err(SqlError::InvalidRowCount {
            message: format!("{what} must not be negative"),
        }),
        other => Err(expr::unsupported(format!("{what} {other}"))),
    }
}

/// Replaces every `$n` in `e` by its value.
fn substitute(e: &mut Expr, values: &[Value]) -> Result<(), SqlError> {
    visit_expr(e, &mut |e| {
        if let Expr::Param(n) = *e {
            let v = values
                .get(n - 1)
                .cloned()
                .ok_or(SqlError::UndefinedParameter(n))?;
            *e = Expr::Lit(v);
        }
        Ok(())
    })
}

/// The highest `$n` of a plan.
fn param_count(plan: &Plan) -> usize {
    let mut max = 0;
    let mut note = |e: &mut Expr| {
        visit_expr(e, &mut |e| {
            if let Expr::Param(n) = *e {
                max = max.max(n);
            }
            Ok(())
        })
    };
    let mut plan = plan.clone();
    let _ = visit_exprs(&mut plan.stmt, &mut note);
    for e in plan.limit.iter_mut().chain(plan.offset.iter_mut()) {
        let _ = note(e);
    }
    max
}

/// Calls `f` on every expression node of `e`, children first.
fn visit_expr(
    e: &mut Expr,
    f: &mut dyn FnMut(&mut Expr) -> Result<(), SqlError>,
) -> Result<(), SqlError> {
    match e {
        Expr::Col(_) | Expr::Excluded(_) | Expr::Lit(_) | Expr::Param(_) => {}
        Expr::Bin(_, a, b) => {
            visit_expr(a, f)?;
            visit_expr(b, f)?;
        }
        Expr::Not(a) | Expr::IsNull(a) | Expr::Neg(a) | Expr::Cast(a, _) => visit_expr(a, f)?,
        Expr::InList { expr, list, .. } => {
            visit_expr(expr, f)?;
            for e in list {
                visit_expr(e, f)?;
            }
        }
        Expr::Like { expr, pattern, .. } => {
            visit_expr(expr, f)?;
            visit_expr(pattern, f)?;
        }
        Expr::Func(_, args) => {
            for e in args {
                visit_expr(e, f)?;
            }
        }
        Expr::Agg(_, arg) => {
            if let Some(a) = arg {
                visit_expr(a, f)?;
            }
        }
    }
    f(e)
}

/// Calls `visit` on every top-level expression of a statement.
fn visit_exprs(
    stmt: &mut Statement,
    visit: &mut dyn FnMut(&mut Expr) -> Result<(), SqlError>,
) -> Result<(), SqlError> {
    let projection = |p: &mut Projection,
                      visit: &mut dyn FnMut(&mut Expr) -> Result<(), SqlError>|
     -> Result<(), SqlError> {
        if let Projection::Items(items) = p {
            for item in items {
                visit(&mut item.expr)?;
            }
        }
        Ok(())
    };
    match stmt {
        Statement::Select(s) => {
            projection(&mut s.items, visit)?;
            for j in &mut s.joins {
                visit(&mut j.on)?;
            }
            if let Some(e) = &mut s.filter.filter {
                visit(e)?;
            }
            for e in &mut s.group_by {
                visit(e)?;
            }
            if let Some(e) = &mut s.having {
                visit(e)?;
            }
            for o in &mut s.order_by {
                visit(&mut o.expr)?;
            }
        }
        Statement::Insert(i) => {
            for row in &mut i.rows {
                for (_, v) in &mut row.0 {
                    if let InsertValue::Expr(e) = v {
                        visit(e)?;
                    }
                }
            }
            if let OnConflict::DoUpdate { set, filter, .. } = &mut i.on_conflict {
                for (_, e) in set {
                    visit(e)?;
                }
                if let Some(e) = filter {
                    visit(e)?;
                }
            }
            projection(&mut i.returning, visit)?;
        }
        Statement::Update(u) => {
            for (_, e) in &mut u.set {
                visit(e)?;
            }
            if let Some(e) = &mut u.filter.filter {
                visit(e)?;
            }
            projection(&mut u.returning, visit)?;
        }
        Statement::Delete(d) => {
            if let Some(e) = &mut d.filter.filter {
                visit(e)?;
            }
            projection(&mut d.returning, visit)?;
        }
        Statement::CreateTable { schema, .. } => {
            for c in &mut schema.checks {
                visit(&mut c.expr)?;
            }
            for c in &mut schema.columns {
                if let Some(ColumnDefault::Expr(e)) = &mut c.default {
                    visit(e)?;
                }
            }
        }
        Statement::Compute(items) => {
            for item in items {
                visit(&mut item.expr)?;
            }
        }
        Statement::Command(Command::Call { args, .. }) => {
            for e in args {
                visit(e)?;
            }
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The statement `sql` plans to, bound with `params`, as the SQL the engine's
    /// statement prints.
    fn planned(sql: &str, params: &[&dyn ToSql]) -> String {
        prepare(sql)
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
            .bind(params)
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
            .to_string()
    }

    fn refused(sql: &str) -> (String, String) {
        let e = prepare(sql).and_then(|p| p.bind(&[])).expect_err(sql);
        (e.sqlstate().unwrap_or("-").to_string(), e.to_string())
    }

    #[test]
    fn each_statement_kind_plans_onto_the_engine() {
        let cases: Vec<(&str, Vec<&dyn ToSql>, &str)> = vec![
            (
                "SELECT id, stock AS left FROM items WHERE id = $1 AND stock > 0",
                vec![&7_i64],
                "SELECT id AS id, stock AS left FROM items WHERE ((id = 7) AND (stock > 0))",
            ),
            (
                "select * from Slots s where s.doctor in ('a', 'b') and s.note is not null \
                 order by s.start desc nulls last, s.slot limit $1 offset 5 for update skip locked",
                vec![&3_i64],
                "SELECT * FROM slots s WHERE ((s.doctor IN ('a', 'b')) AND (NOT (s.note IS NULL))) \
                 ORDER BY s.start DESC NULLS LAST, s.slot LIMIT 3 OFFSET 5 FOR UPDATE SKIP LOCKED",
            ),
            (
                "SELECT doctor, count(*), sum(fee) AS total FROM visits GROUP BY doctor \
                 HAVING count(*) > 1 ORDER BY total",
                vec![],
                "SELECT doctor AS doctor, count(*) AS count, sum(fee) AS total FROM visits \
                 GROUP BY doctor HAVING (count(*) > 1) ORDER BY total",
            ),
            (
                "SELECT a.id, b.name FROM a JOIN b ON a.b_id = b.id LEFT JOIN c ON c.a = a.id \
                 WHERE b.name LIKE 'x%' AND NOT a.gone",
                vec![],
                "SELECT a.id AS id, b.name AS name FROM a JOIN b ON (a.b_id = b.id) LEFT JOIN c ON \
                 (c.a = a.id) WHERE ((b.name LIKE 'x%') AND (NOT a.gone))",
            ),
            (
                "INSERT INTO orders (id, user_id, note, at) VALUES ($1, $2, DEFAULT, $3::bigint), \
                 ($4, 9, NULL, 0) ON CONFLICT (id) DO UPDATE SET note = EXCLUDED.note \
                 WHERE orders.note IS NULL RETURNING id",
                vec![&"o1", &1_i64, &5_i64, &"o2"],
                "INSERT INTO orders VALUES (id='o1', user_id=1, note=DEFAULT, \
                 at=CAST(5 AS bigint)), (id='o2', user_id=9, note=NULL, at=0) ON CONFLICT (id) DO UPDATE SET note = EXCLUDED.note WHERE \
                 (orders.note IS NULL) RETURNING id AS id",
            ),
            (
                "INSERT INTO t (id, v, at) VALUES (nextval('s') * 2, abs($1 - 10), now()), \
                 (DEFAULT, currval('s'), '2024-01-01'::timestamptz)",
                vec![&3_i64],
                "INSERT INTO t VALUES (id=(nextval('s') * 2), v=abs((3 - 10)), at=now()), \
                 (id=DEFAULT, v=currval('s'), at=CAST('2024-01-01' AS timestamp with time zone))",
            ),
            (
                "INSERT INTO t DEFAULT VALUES RETURNING id",
                vec![],
                "INSERT INTO t VALUES () RETURNING id AS id",
            ),
            (
                "INSERT INTO t (id, v) OVERRIDING SYSTEM VALUE VALUES (1, 'overriding')",
                vec![],
                "INSERT INTO t OVERRIDING SYSTEM VALUE VALUES (id=1, v='overriding')",
            ),
            (
                "insert into t (id) overriding user value values ($1)",
                vec![&5_i64],
                "INSERT INTO t OVERRIDING USER VALUE VALUES (id=5)",
            ),
            (
                "SELECT 1 + 1, nextval('s') AS n, now(), pg_get_serial_sequence('t', 'id')",
                vec![],
                "SELECT (1 + 1) AS ?column?, nextval('s') AS n, now() AS now, \
                 pg_get_serial_sequence('t', 'id') AS pg_get_serial_sequence",
            ),
            (
                "INSERT INTO t (id) VALUES (1) ON CONFLICT DO NOTHING",
                vec![],
                "INSERT INTO t VALUES (id=1) ON CONFLICT DO NOTHING",
            ),
            (
                "UPDATE products SET stock = stock - 1 WHERE id = $1 AND stock > 0 RETURNING stock",
                vec![&"p"],
                "UPDATE products SET stock = (stock - 1) WHERE ((id = 'p') AND (stock > 0)) \
                 RETURNING stock AS stock",
            ),
            (
                "DELETE FROM sessions WHERE expires < now() OR user_id BETWEEN 1 AND 3",
                vec![],
                "DELETE FROM sessions WHERE ((expires < now()) OR ((user_id >= 1) AND (user_id <= 3)))",
            ),
            ("BEGIN ISOLATION LEVEL SERIALIZABLE", vec![], "BEGIN ISOLATION LEVEL SERIALIZABLE"),
            (
                "START TRANSACTION ISOLATION LEVEL REPEATABLE READ",
                vec![],
                "BEGIN ISOLATION LEVEL REPEATABLE READ",
            ),
            ("BEGIN", vec![], "BEGIN"),
            ("COMMIT", vec![], "COMMIT"),
            ("ROLLBACK", vec![], "ROLLBACK"),
            ("SAVEPOINT before_fee", vec![], "SAVEPOINT before_fee"),
            ("ROLLBACK TO SAVEPOINT before_fee", vec![], "ROLLBACK TO SAVEPOINT before_fee"),
            ("RELEASE SAVEPOINT before_fee", vec![], "RELEASE SAVEPOINT before_fee"),
            ("SET lock_timeout = '2s'", vec![], "SET lock_timeout = 2000"),
            ("SET statement_timeout TO 150", vec![], "SET statement_timeout = 150"),
            ("SET lock_timeout = 0", vec![], "SET lock_timeout = 0"),
            (
                "SET default_transaction_isolation = 'repeatable read'",
                vec![],
                "SET default_transaction_isolation = 'REPEATABLE READ'",
            ),
            ("SELECT pg_sleep(1.5)", vec![], "SELECT pg_sleep(1.5)"),
            (
                "CREATE UNIQUE INDEX IF NOT EXISTS slot_once ON appointments (doctor, slot)",
                vec![],
                "CREATE UNIQUE INDEX IF NOT EXISTS slot_once ON appointments (doctor, slot)",
            ),
        ];
        for (sql, params, expected) in cases {
            assert_eq!(planned(sql, &params), expected, "{sql}");
        }
    }

    #[test]
    fn create_table_keeps_every_constraint() {
        let p = prepare(
            "CREATE TABLE IF NOT EXISTS appointments (
                id bigserial PRIMARY KEY,
                doctor text NOT NULL REFERENCES doctors (name),
                slot integer NOT NULL CHECK (slot >= 0),
                patient text,
                booked_at timestamptz NOT NULL DEFAULT now(),
                fee double precision DEFAULT 12.5::float8,
                paid boolean NOT NULL DEFAULT false,
                UNIQUE (doctor, slot),
                CONSTRAINT fee_positive CHECK (fee > 0)
            )",
        )
        .unwrap();
        let Statement::CreateTable {
            schema,
            if_not_exists,
        } = p.bind(&[]).unwrap()
        else {
            panic!("not a CREATE TABLE");
        };
        assert!(if_not_exists);
        assert_eq!(schema.name, "appointments");
        assert_eq!(schema.primary_key, ["id"]);
        let names: Vec<&str> = schema.columns.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "id",
                "doctor",
                "slot",
                "patient",
                "booked_at",
                "fee",
                "paid"
            ]
        );
        use crate::sql::schema::ColumnDefault;
        use crate::sql::value::ColumnType;
        let col = |n: &str| schema.columns.iter().find(|c| c.name == n).unwrap();
        assert_eq!(col("id").default, Some(ColumnDefault::Serial));
        assert!(!col("id").nullable);
        assert_eq!(col("slot").ty, ColumnType::Int);
        assert!(col("patient").nullable);
        assert_eq!(col("booked_at").default, Some(ColumnDefault::Now));
        assert_eq!(col("booked_at").ty, ColumnType::TimestampTz);
        assert_eq!(
            col("fee").default,
            Some(ColumnDefault::Value(Value::Float(12.5)))
        );
        assert_eq!(
            col("paid").default,
            Some(ColumnDefault::Value(Value::Bool(false)))
        );
        assert_eq!(schema.unique[0].name, "appointments_doctor_slot_key");
        let checks: Vec<(&str, String)> = schema
            .checks
            .iter()
            .map(|c| (c.name.as_str(), c.expr.to_string()))
            .collect();
        assert_eq!(
            checks,
            [
                ("appointments_slot_check", "(slot >= 0)".to_string()),
                ("fee_positive", "(fee > 0)".to_string())
            ]
        );
        let fk = &schema.foreign_keys[0];
        assert_eq!(
            (
                fk.name.as_str(),
                fk.table.as_str(),
                fk.columns.clone(),
                fk.ref_columns.clone()
            ),
            (
                "appointments_doctor_fkey",
                "doctors",
                vec!["doctor".to_string()],
                vec!["name".to_string()]
            )
        );
    }

    #[test]
    fn what_the_model_would_answer_differently_is_refused_by_name() {
        let cases = [
            ("SELEC 1", "42601", "SELEC"),
            (
                "SELECT * FROM a; SELECT * FROM b",
                "42601",
                "multiple commands",
            ),
            ("SELECT * FROM a UNION SELECT * FROM b", "0A000", "UNION"),
            (
                "WITH x AS (SELECT * FROM a) SELECT * FROM x",
                "0A000",
                "WITH",
            ),
            (
                "SELECT * FROM a WHERE id IN (SELECT id FROM b)",
                "0A000",
                "subqueries",
            ),
            ("SELECT DISTINCT doctor FROM a", "0A000", "DISTINCT"),
            ("SELECT * FROM a, b", "0A000", "several tables"),
            (
                "SELECT * FROM a RIGHT JOIN b ON a.id = b.id",
                "0A000",
                "join",
            ),
            ("SELECT * FROM a JOIN b USING (id)", "0A000", "USING"),
            ("SELECT CASE WHEN x THEN 1 END FROM a", "0A000", "CASE"),
            ("SELECT count(DISTINCT x) FROM a", "0A000", "DISTINCT"),
            ("SELECT md5(x) FROM a", "0A000", "md5"),
            ("SELECT * FROM a WHERE count(*) > 1", "42803", "aggregate"),
            ("SELECT 1 WHERE true", "0A000", "without FROM"),
            ("SELECT count(*)", "0A000", "without FROM"),
            ("INSERT INTO a VALUES (1)", "0A000", "column list"),
            (
                "INSERT INTO a (x) SELECT x FROM b",
                "0A000",
                "INSERT ... SELECT",
            ),
            ("INSERT INTO a (x) VALUES (count(*))", "42803", "aggregate"),
            (
                "CREATE TABLE t (id int PRIMARY KEY, x int DEFAULT id + 1)",
                "0A000",
                "column reference",
            ),
            (
                "CREATE TABLE t (id int PRIMARY KEY, x int DEFAULT max(1))",
                "42803",
                "aggregate",
            ),
            (
                "INSERT INTO a (x, y) VALUES (1)",
                "42601",
                "more target columns",
            ),
            (
                "UPDATE a SET x = 1 FROM b WHERE a.id = b.id",
                "0A000",
                "UPDATE ... FROM",
            ),
            ("CREATE TABLE t (id int)", "0A000", "without a primary key"),
            (
                "CREATE TABLE t (id int PRIMARY KEY, price numeric(0, 2))",
                "22023",
                "precision 0",
            ),
            (
                "CREATE TABLE t (id int PRIMARY KEY, d json)",
                "0A000",
                "jsonb",
            ),
            (
                "SELECT * FROM t WHERE at > timestamp(3) '2024-01-01'",
                "0A000",
                "timestamp",
            ),
            (
                "SELECT * FROM t WHERE at > now() - interval '1 fortnight'",
                "0A000",
                "interval",
            ),
            (
                "CREATE TABLE t (id int PRIMARY KEY, name varchar(20))",
                "0A000",
                "lengths",
            ),
            (
                "CREATE TABLE t (id int PRIMARY KEY, p int REFERENCES p (id) ON DELETE CASCADE)",
                "0A000",
                "ON DELETE CASCADE",
            ),
            (
                "CREATE TABLE t (id int PRIMARY KEY, x int PRIMARY KEY)",
                "42P16",
                "multiple primary keys",
            ),
            ("CREATE INDEX i ON t (lower(x))", "0A000", "expression"),
            ("CREATE INDEX i ON t (x) WHERE x > 0", "0A000", "partial"),
            ("SET LOCAL work_mem = 5", "0A000", "work_mem"),
            ("CREATE SEQUENCE s CACHE 10", "0A000", "CACHE"),
            ("SET lock_timeout = 'soon'", "22023", "lock_timeout"),
            ("SET work_mem = '4MB'", "0A000", "work_mem"),
            (
                "SET TRANSACTION ISOLATION LEVEL SERIALIZABLE",
                "0A000",
                "BEGIN",
            ),
            ("BEGIN READ ONLY", "0A000", "READ ONLY"),
            ("DROP TABLE a", "0A000", "DROP TABLE"),
            ("TRUNCATE a", "0A000", "TRUNCATE"),
            ("SELECT * FROM a LIMIT -1", "2201W", "LIMIT"),
        ];
        for (sql, state, needle) in cases {
            let (got, message) = refused(sql);
            assert_eq!(got, state, "{sql}: {message}");
            assert!(
                message.to_lowercase().contains(&needle.to_lowercase()),
                "{sql}: {message:?} should name {needle:?}"
            );
        }
    }

    #[test]
    fn the_value_types_plan_with_their_literals_casts_and_operators() {
        let cases: Vec<(&str, Vec<&dyn ToSql>, &str)> = vec![
            (
                "SELECT price * 2, price / 3 FROM items WHERE price >= 1.50 AND price < 1e3",
                vec![],
                "SELECT (price * 2) AS ?column?, (price / 3) AS ?column? FROM items \
                 WHERE ((price >= 1.50) AND (price < 1000))",
            ),
            (
                "SELECT doc -> 'a', doc ->> 0, doc #> '{a,b}' FROM d \
                 WHERE doc @> '{\"a\": 1}'::jsonb AND doc ? 'k' AND NOT doc <@ $1::jsonb",
                vec![&"{}"],
                "SELECT (doc -> 'a') AS ?column?, (doc ->> 0) AS ?column?, (doc #> '{a,b}') AS \
                 ?column? FROM d WHERE (((doc @> CAST('{\"a\": 1}' AS jsonb)) AND (doc ? 'k')) \
                 AND (NOT (doc <@ CAST('{}' AS jsonb))))",
            ),
            (
                "SELECT id FROM u WHERE id = $1::uuid OR id = uuid 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'",
                vec![&"x"],
                "SELECT id AS id FROM u WHERE ((id = CAST('x' AS uuid)) OR (id = \
                 CAST('a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11' AS uuid)))",
            ),
            (
                "SELECT at + interval '5 minutes' FROM e WHERE at > now() - INTERVAL '1 day' \
                 AND at::timestamptz < CAST('2024-01-01 10:00:00+00' AS timestamp with time zone)",
                vec![],
                "SELECT (at + interval '00:05:00') AS ?column? FROM e WHERE ((at > (now() - \
                 interval '1 day')) AND (CAST(at AS timestamp with time zone) < \
                 CAST('2024-01-01 10:00:00+00' AS timestamp with time zone)))",
            ),
        ];
        for (sql, params, expected) in cases {
            assert_eq!(planned(sql, &params), expected, "{sql}");
        }
        let p = prepare(
            "CREATE TABLE t (id uuid PRIMARY KEY, price numeric(10, 2) NOT NULL, total decimal, \
             doc jsonb DEFAULT '{}'::jsonb, at timestamptz, local timestamp)",
        )
        .unwrap();
        let Statement::CreateTable { schema, .. } = p.bind(&[]).unwrap() else {
            panic!("not a CREATE TABLE");
        };
        use crate::sql::value::{ColumnType, NumericTypmod};
        let types: Vec<ColumnType> = schema.columns.iter().map(|c| c.ty).collect();
        assert_eq!(
            types,
            [
                ColumnType::Uuid,
                ColumnType::Numeric(Some(NumericTypmod {
                    precision: 10,
                    scale: 2
                })),
                ColumnType::Numeric(None),
                ColumnType::Jsonb,
                ColumnType::TimestampTz,
                ColumnType::Timestamp
            ]
        );
    }

    #[test]
    fn parameters_are_counted_and_checked() {
        let p = prepare("SELECT * FROM t WHERE a = $2 OR b = $1 LIMIT $3").unwrap();
        assert_eq!(p.param_count(), 3);
        let e = p.bind(&[&1_i64]).unwrap_err();
        assert_eq!(e.sqlstate(), Some("08P01"), "{e}");
        assert_eq!(
            p.bind(&[&1_i64, &"two", &None::<i64>]).unwrap().to_string(),
            "SELECT * FROM t WHERE ((a = 'two') OR (b = 1))",
            "LIMIT NULL is no limit"
        );
        let e = prepare("SELECT * FROM t LIMIT $1")
            .unwrap()
            .bind(&[&"ten"])
            .unwrap_err();
        assert_eq!(e.sqlstate(), Some("0A000"), "{e}");
    }

    #[test]
    fn a_text_is_planned_once_per_simulation() {
        sim_runtime::Sim::new(1).run(|| async {
            let a = prepare("SELECT * FROM t WHERE id = $1").unwrap();
            let b = prepare("SELECT * FROM t WHERE id = $1").unwrap();
            assert!(
                Rc::ptr_eq(&a.plan, &b.plan),
                "the second prepare is a lookup"
            );
            let bad = prepare("SELEC").unwrap_err();
            assert_eq!(prepare("SELEC").unwrap_err(), bad);
        });
    }
}
