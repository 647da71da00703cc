//! Statement execution inside one transaction: scans through a snapshot, row locks,
//! PostgreSQL's re-check of the latest row version after a lock wait (EvalPlanQual),
//! unique, CHECK and foreign key checks, writes, SELECT's joins, grouping and ordering,
//! RETURNING, and the SSI bookkeeping of serializable transactions.
//!
//! Every statement is *re-runnable*: when it blocks (waits for another transaction),
//! the engine undoes the writes it made so far (keeping its row locks), so nothing but
//! locks has changed, and re-running it later with the same snapshot finds the same rows
//! (the locks it already holds are granted again at no cost). This is how the engine
//! resumes a statement that waited, without coroutines. Most statements also take their
//! locks and do the checks that may wait before they write.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;

use sim_runtime::time::Instant;

use super::engine::{Ctx, Engine, Stop, Undo};
use super::error::SqlError;
use super::expr::{
    sort_cmp, sum_or_avg, AggFunc, BinOp, Env, Expr, Func, JoinedEnv, Scope, TupleEnv,
};
use super::fold::{assigned, check_constants, projected, unassigned, Planned};
use super::locks::Acquire;
use super::mvcc::{RowId, UniqueIndex, Version, Xid};
use super::row::Row;
use super::schema::{ColumnDefault, TableSchema};
use super::ssi::ReadPredicate;
use super::stmt::{
    CommandTag, Count, Delete, Insert, InsertRow, InsertValue, IsolationLevel, JoinKind, LockMode,
    LockWait, OnConflict, OrderBy, Overriding, Projection, Select, SelectItem, Statement,
    StmtResult, Update, Where,
};
use super::value::{ColumnType, Value};

/// Whether a tuple satisfies a bound WHERE (key already coerced to the column types).
fn where_matches(
    schema: &TableSchema,
    pk: &[usize],
    w: &Where,
    tuple: &[Value],
    ctx: &Ctx,
) -> Result<bool, SqlError> {
    if let Some(key) = &w.key {
        if pk.iter().zip(key).any(|(&c, k)| &tuple[c] != k) {
            return Ok(false);
        }
    }
    match &w.filter {
        Some(e) => e.matches_in(&TupleEnv {
            schema,
            tuple,
            excluded: None,
            ctx: Some(ctx),
        }),
        None => Ok(true),
    }
}

/// The key of the index over `columns` that a bound WHERE pins down (`id = $1 AND stock >
/// 0`: every index column equal to a constant in a top-level conjunct), coerced to the
/// columns' types, so that the statement reads the key's rows through the index instead
/// of every row. The filter still runs on those rows: the key only narrows what is
/// scanned, never the answer.
fn key_of_filter(schema: &TableSchema, columns: &[usize], filter: &Expr) -> Option<Vec<Value>> {
    let mut key: Vec<Option<Value>> = vec![None; columns.len()];
    let mut conjuncts = vec![filter];
    while let Some(e) = conjuncts.pop() {
        match e {
            Expr::Bin(BinOp::And, a, b) => {
                conjuncts.push(a);
                conjuncts.push(b);
            }
            Expr::Bin(BinOp::Eq, a, b) => {
                let ((Expr::Col(c), Expr::Lit(v)) | (Expr::Lit(v), Expr::Col(c))) = (&**a, &**b)
                else {
                    continue;
                };
                let Some(i) = schema.column_index(c) else {
                    continue;
                };
                if let Some(k) = columns.iter().position(|&p| p == i) {
                    let column = &schema.columns[i];
                    // NULL matches nothing, and a value of another type is for the filter
                    // to judge (or refuse) row by row, as before.
                    match v.clone().coerce(column.ty, &column.name) {
                        Ok(v) if !v.is_null() => key[k] = Some(v),
                        _ => return None,
                    }
                }
            }
            _ => {}
        }
    }
    key.into_iter().collect()
}

/// Whether equal values of the type are exactly the equal keys of an index (`Value`'s
/// total order), so that a lookup by key finds every row the `=` of the WHERE matches.
/// Floats are not (`0 = -0` in SQL, two keys in the index), nor types added later until
/// someone checks them.
fn exact_keys(ty: ColumnType) -> bool {
    matches!(
        ty,
        ColumnType::Bool | ColumnType::Int | ColumnType::Text | ColumnType::Timestamp
    )
}

/// Evaluates `SET` assignments against the old tuple (all of them see the old values, as
/// in SQL) and checks the new values against the column types and NOT NULL.
fn apply_set(
    schema: &TableSchema,
    old: &[Value],
    set: &[(usize, Cow<'_, Expr>)],
    excluded: Option<&[Value]>,
    ctx: &Ctx,
) -> Result<Vec<Value>, SqlError> {
    let mut new = old.to_vec();
    let env = TupleEnv {
        schema,
        tuple: old,
        excluded,
        ctx: Some(ctx),
    };
    for (c, e) in set {
        let v = e.eval_assigned(&env, schema.columns[*c].ty)?;
        new[*c] = schema.check_value(&schema.columns[*c], v)?;
    }
    Ok(new)
}

/// Binds `SET` assignments: known target columns, expressions over the table (and
/// `EXCLUDED` in an upsert), no aggregates.
fn bind_set<'a>(
    schema: &TableSchema,
    set: &'a [(String, Expr)],
    upsert: bool,
) -> Result<Vec<(usize, Cow<'a, Expr>)>, SqlError> {
    let scope = Scope::single(&schema.name, schema);
    set.iter()
        .map(|(c, e)| {
            e.no_agg("UPDATE")?;
            let e = e.bind_cow(&scope, upsert.then_some(schema))?;
            let i = schema.require_column(c)?;
            if schema.columns[i].default == Some(ColumnDefault::Identity { always: true }) {
                return Err(SqlError::GeneratedAlways {
                    message: format!("column \"{c}\" can only be updated to DEFAULT"),
                });
            }
            Ok((i, e))
        })
        .collect()
}

/// A check of a target row's visible version, run before its lock is tried: an UPDATE
/// computes the row's new version there, as PostgreSQL does before `heap_update`, and
/// keeps it for when the row has not changed by the time it holds the lock.
type RowCheck<'a> = dyn Fn(&[Value]) -> Result<Option<Vec<Value>>, SqlError> + 'a;

/// A row to write, locked: its latest version, and what the [`RowCheck`] computed from
/// that version (`None` without a check).
type Target = (RowId, Vec<Value>, Option<Vec<Value>>);

/// 23514 unless every CHECK of the table holds for `tuple` (NULL passes).
fn check_constraints(schema: &TableSchema, tuple: &[Value], ctx: &Ctx) -> Result<(), SqlError> {
    for c in &schema.checks {
        let env = TupleEnv {
            schema,
            tuple,
            excluded: None,
            ctx: Some(ctx),
        };
        match c.expr.eval_in(&env)? {
            Value::Bool(false) => {
                return Err(SqlError::CheckViolation {
                    table: schema.name.clone(),
                    constraint: c.name.clone(),
                })
            }
            Value::Bool(true) | Value::Null => {}
            v => {
                return Err(SqlError::DatatypeMismatch {
                    detail: format!(
                        "argument of CHECK must be type boolean, not {}",
                        v.type_name()
                    ),
                })
            }
        }
    }
    Ok(())
}

/// What a write returns for each row it wrote, bound.
enum Returning<'a> {
    All,
    Items(Rc<[String]>, Vec<Cow<'a, Expr>>),
    Nothing,
}

impl<'a> Returning<'a> {
    fn bind(schema: &TableSchema, p: &'a Projection) -> Result<Self, SqlError> {
        Ok(match p {
            Projection::All => Returning::All,
            Projection::Nothing => Returning::Nothing,
            Projection::Items(items) => {
                let scope = Scope::single(&schema.name, schema);
                let exprs = items
                    .iter()
                    .map(|i| {
                        i.expr.no_agg("RETURNING")?;
                        i.expr.bind_cow(&scope, None)
                    })
                    .collect::<Result<_, _>>()?;
                Returning::Items(items.iter().map(|i| i.name.clone()).collect(), exprs)
            }
        })
    }

    /// The returned row for `tuple` (a row of `names`), if any.
    fn row(
        &self,
        schema: &TableSchema,
        names: &Rc<[String]>,
        tuple: &[Value],
        ctx: &Ctx,
    ) -> Result<Option<Row>, SqlError> {
        match self {
            Returning::All => Ok(Some(Row::from_tuple(names, tuple.to_vec()))),
            _ => self.row_of(schema, names, Cow::Borrowed(tuple), ctx),
        }
    }

    /// [`Returning::row`] of a tuple the caller no longer needs (`RETURNING *` keeps it
    /// without a copy).
    fn row_of(
        &self,
        schema: &TableSchema,
        names: &Rc<[String]>,
        tuple: Cow<'_, [Value]>,
        ctx: &Ctx,
    ) -> Result<Option<Row>, SqlError> {
        Ok(match self {
            Returning::All => Some(Row::from_tuple(names, tuple.into_owned())),
            Returning::Nothing => None,
            Returning::Items(names, exprs) => {
                let env = TupleEnv {
                    schema,
                    tuple: &tuple,
                    excluded: None,
                    ctx: Some(ctx),
                };
                let values = exprs
                    .iter()
                    .map(|e| e.eval_in(&env))
                    .collect::<Result<Vec<_>, _>>()?;
                Some(Row::from_tuple(names, values))
            }
        })
    }
}

/// The result of a write: its rows and how many rows it wrote.
fn written(tag: CommandTag, rows: Vec<Row>, affected: usize) -> StmtResult {
    StmtResult {
        tag,
        rows,
        affected: affected as u64,
    }
}

/// One ORDER BY key, bound: an output column, or an expression over the input.
enum OrderKey {
    Output(usize),
    Input(Expr),
}

/// A SELECT's bound clauses.
struct Query {
    /// `None`: every column of the joined tuple.
    items: Option<Vec<Expr>>,
    names: Rc<[String]>,
    grouped: bool,
    group_by: Vec<Expr>,
    having: Option<Expr>,
    order: Vec<(OrderKey, bool, bool)>,
}

/// The order of two ORDER BY key lists: each key ascending or descending, NULLs first or
/// last.
fn order_cmp(order: &[(OrderKey, bool, bool)], a: &[Value], b: &[Value]) -> Ordering {
    for ((_, desc, nulls_first), (x, y)) in order.iter().zip(a.iter().zip(b)) {
        let o = match (x.is_null(), y.is_null()) {
            (true, true) => Ordering::Equal,
            (true, false) => {
                if *nulls_first {
                    Ordering::Less
                } else {
                    Ordering::Greater
                }
            }
            (false, true) => {
                if *nulls_first {
                    Ordering::Greater
                } else {
                    Ordering::Less
                }
            }
            (false, false) => {
                let o = sort_cmp(x, y);
                if *desc {
                    o.reverse()
                } else {
                    o
                }
            }
        };
        if o != Ordering::Equal {
            return o;
        }
    }
    Ordering::Equal
}

/// A group of a grouped query: its key values and its rows.
struct GroupEnv<'a> {
    scope: &'a Scope<'a>,
    keys: &'a [Expr],
    key: &'a [Value],
    rows: &'a [&'a [Value]],
    ctx: &'a Ctx,
}

impl Env for GroupEnv<'_> {
    /// A column outside GROUP BY and aggregates: allowed only when the table's primary key
    /// is grouped (checked before), so every row of the group has the same value.
    fn col(&self, name: &str) -> Result<&Value, SqlError> {
        const NULL: &Value = &Value::Null;
        let pos = self.scope.resolve(name)?;
        Ok(self.rows.first().map_or(NULL, |r| &r[pos]))
    }
    fn excluded(&self, _name: &str) -> Result<Value, SqlError> {
        Err(SqlError::UndefinedTable("excluded".into()))
    }
    fn now(&self) -> Result<Instant, SqlError> {
        Ok(self.ctx.now)
    }
    fn call(&self, f: Func, args: &[Value]) -> Result<Value, SqlError> {
        self.ctx.calls.call(f, args)
    }
    fn grouped(&self, e: &Expr) -> Option<Result<Value, SqlError>> {
        if let Expr::Agg(f, arg) = e {
            return Some(self.aggregate(*f, arg.as_deref()));
        }
        let i = self.keys.iter().position(|k| k == e)?;
        Some(Ok(self.key[i].clone()))
    }
}

impl GroupEnv<'_> {
    fn aggregate(&self, f: AggFunc, arg: Option<&Expr>) -> Result<Value, SqlError> {
        let Some(arg) = arg else {
            return Ok(Value::Int(self.rows.len() as i64));
        };
        let mut vals = Vec::with_capacity(self.rows.len());
        for r in self.rows {
            let v = arg.eval_in(&JoinedEnv {
                scope: self.scope,
                tuple: r,
                ctx: self.ctx,
            })?;
            if !v.is_null() {
                vals.push(v);
            }
        }
        Ok(match f {
            AggFunc::Count => Value::Int(vals.len() as i64),
            _ if vals.is_empty() => Value::Null,
            AggFunc::Min | AggFunc::Max => {
                let pick = vals.into_iter().reduce(|best, v| {
                    let o = sort_cmp(&v, &best);
                    let better = if f == AggFunc::Min {
                        o == Ordering::Less
                    } else {
                        o == Ordering::Greater
                    };
                    if better {
                        v
                    } else {
                        best
                    }
                });
                pick.unwrap_or_default()
            }
            AggFunc::Sum | AggFunc::Avg => sum_or_avg(f, &vals)?,
        })
    }
}

/// 42803 unless `e` only uses, outside aggregates, GROUP BY expressions and columns of
/// tables whose primary key is grouped (functionally dependent on it, as PostgreSQL
/// allows).
fn check_grouped(
    e: &Expr,
    keys: &[Expr],
    pk_grouped: &[bool],
    scope: &Scope<'_>,
) -> Result<(), SqlError> {
    if keys.contains(e) {
        return Ok(());
    }
    match e {
        Expr::Agg(..) => Ok(()),
        Expr::Col(c) => {
            let pos = scope.resolve(c)?;
            let (t, _, _) = scope.column_at(pos);
            if pk_grouped[t] {
                return Ok(());
            }
            Err(SqlError::GroupingError {
                message: format!(
                    "column \"{}\" must appear in the GROUP BY clause or be used in an \
                     aggregate function",
                    scope.qualified(pos)
                ),
            })
        }
        _ => e
            .children()
            .into_iter()
            .try_for_each(|c| check_grouped(c, keys, pk_grouped, scope)),
    }
}

/// Output names of `SELECT *` over a scope: every column in order, a name already taken
/// by an earlier column written `qual.col`.
fn star_names(scope: &Scope<'_>) -> Rc<[String]> {
    let mut names: Vec<String> = Vec::with_capacity(scope.width());
    for t in scope.tables() {
        for c in &t.schema.columns {
            if names.contains(&c.name) {
                names.push(format!("{}.{}", t.qual, c.name));
            } else {
                names.push(c.name.clone());
            }
        }
    }
    names.into()
}

/// Binds a SELECT's items, GROUP BY, HAVING and ORDER BY over its scope.
fn bind_query(
    s: &Select,
    scope: &Scope<'_>,
    star: Option<Rc<[String]>>,
) -> Result<Query, SqlError> {
    let group_by = s
        .group_by
        .iter()
        .map(|e| {
            e.no_agg("GROUP BY")?;
            e.bind(scope, None)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let (mut items, names) = match &s.items {
        Projection::All | Projection::Nothing => (None, star.unwrap_or_else(|| star_names(scope))),
        Projection::Items(items) => (
            Some(
                items
                    .iter()
                    .map(|i| i.expr.bind(scope, None))
                    .collect::<Result<Vec<_>, _>>()?,
            ),
            items.iter().map(|i| i.name.clone()).collect(),
        ),
    };
    let having = s.having.as_ref().map(|h| h.bind(scope, None)).transpose()?;
    let mut order = Vec::with_capacity(s.order_by.len());
    for OrderBy {
        expr,
        desc,
        nulls_first,
    } in &s.order_by
    {
        // A bare name of an output column is that column (SQL-92), before input columns.
        let output = match expr {
            Expr::Col(n) => {
                let mut hits = names.iter().enumerate().filter(|(_, m)| *m == n);
                match (hits.next(), hits.next()) {
                    (Some(_), Some(_)) => return Err(SqlError::AmbiguousColumn(n.clone())),
                    (Some((i, _)), None) => Some(i),
                    _ => None,
                }
            }
            _ => None,
        };
        let key = match output {
            Some(i) => OrderKey::Output(i),
            None => OrderKey::Input(expr.bind(scope, None)?),
        };
        order.push((key, *desc, nulls_first.unwrap_or(*desc)));
    }
    let has_agg = items.iter().flatten().any(Expr::has_agg)
        || having.as_ref().is_some_and(Expr::has_agg)
        || order
            .iter()
            .any(|(k, _, _)| matches!(k, OrderKey::Input(e) if e.has_agg()));
    let grouped = !group_by.is_empty() || having.is_some() || has_agg;
    if grouped {
        let pk_grouped: Vec<bool> = scope
            .tables()
            .map(|t| {
                t.schema.primary_key.iter().all(|c| {
                    scope
                        .resolve(&format!("{}.{c}", t.qual))
                        .is_ok_and(|pos| group_by.contains(&Expr::Col(scope.canonical(pos))))
                })
            })
            .collect();
        if items.is_none() {
            items = Some(
                (0..scope.width())
                    .map(|pos| Expr::Col(scope.canonical(pos)))
                    .collect(),
            );
        }
        let inputs = items
            .iter()
            .flatten()
            .chain(&having)
            .chain(order.iter().filter_map(|(k, _, _)| match k {
                OrderKey::Input(e) => Some(e),
                OrderKey::Output(_) => None,
            }));
        for e in inputs {
            check_grouped(e, &group_by, &pk_grouped, scope)?;
        }
    }
    Ok(Query {
        items,
        names,
        grouped,
        group_by,
        having,
        order,
    })
}

/// Whether PostgreSQL reads a SELECT of one table through its primary key's index in key
/// order and stops at the LIMIT (`ORDER BY` the key's columns, all ascending or all
/// descending with the default NULLs placement, a LIMIT, no grouping, no key lookup):
/// `Some(descending)`. Its SIREAD locks are then the index's leaf page and the tuples it
/// fetched, not the relation (checked on PostgreSQL 15's `pg_locks`). Only for bigint keys,
/// whose order is the same in both.
fn index_order(
    q: &Query,
    s: &Select,
    w: &Where,
    scope: &Scope<'_>,
    schema: &TableSchema,
    pk: &[usize],
) -> Option<bool> {
    if s.limit.is_none() || w.key.is_some() || q.grouped || q.order.len() != pk.len() {
        return None;
    }
    let desc = q.order.first()?.1;
    for ((key, d, nulls_first), &c) in q.order.iter().zip(pk) {
        let column = &schema.columns[c];
        if *d != desc || *nulls_first != desc || column.ty != ColumnType::Int {
            return None;
        }
        let expected = Expr::Col(scope.canonical(scope.resolve(&column.name).ok()?));
        let ordered = match (key, &q.items) {
            (OrderKey::Output(i), Some(items)) => items.get(*i)?.clone(),
            (OrderKey::Output(i), None) => Expr::Col(scope.canonical(*i)),
            (OrderKey::Input(e), _) => e.clone(),
        };
        if ordered != expected {
            return None;
        }
    }
    Some(desc)
}

/// The values of a query's ORDER BY keys for one output row.
fn order_values<E: Env>(
    order: &[(OrderKey, bool, bool)],
    values: &[Value],
    env: &E,
) -> Result<Vec<Value>, SqlError> {
    if order.is_empty() {
        return Ok(Vec::new());
    }
    order
        .iter()
        .map(|(k, _, _)| match k {
            OrderKey::Output(i) => Ok(values[*i].clone()),
            OrderKey::Input(e) => e.eval_in(env),
        })
        .collect()
}

/// The output values of a non-grouped query for one input tuple.
fn project<E: Env>(q: &Query, tuple: &[Value], env: &E) -> Result<Vec<Value>, SqlError> {
    match &q.items {
        None => Ok(tuple.to_vec()),
        Some(items) => items.iter().map(|e| e.eval_in(env)).collect(),
    }
}

/// Grouping, HAVING, projection, ORDER BY, OFFSET and LIMIT over the joined tuples that
/// passed the WHERE (a table's own tuples borrowed from storage: only what the query
/// returns is copied).
fn select_rows(
    s: &Select,
    q: &Query,
    scope: &Scope<'_>,
    inputs: Vec<Cow<'_, [Value]>>,
    ctx: &Ctx,
) -> Result<Vec<Row>, SqlError> {
    let mut out: Vec<(Vec<Value>, Vec<Value>)> = Vec::with_capacity(inputs.len());
    if q.grouped {
        let items = q.items.as_deref().unwrap_or_default();
        // Groups in key order, for determinism (before any ORDER BY).
        let mut groups: BTreeMap<Vec<Value>, Vec<usize>> = BTreeMap::new();
        for (i, r) in inputs.iter().enumerate() {
            let env = JoinedEnv {
                scope,
                tuple: r,
                ctx,
            };
            let key = q
                .group_by
                .iter()
                .map(|e| e.eval_in(&env))
                .collect::<Result<Vec<_>, _>>()?;
            groups.entry(key).or_default().push(i);
        }
        // Without GROUP BY, one group even of no rows.
        if q.group_by.is_empty() && groups.is_empty() {
            groups.insert(Vec::new(), Vec::new());
        }
        for (key, members) in &groups {
            let rows: Vec<&[Value]> = members.iter().map(|&i| &*inputs[i]).collect();
            let env = GroupEnv {
                scope,
                keys: &q.group_by,
                key,
                rows: &rows,
                ctx,
            };
            if let Some(h) = &q.having {
                if !h.matches_in(&env)? {
                    continue;
                }
            }
            let values = items
                .iter()
                .map(|e| e.eval_in(&env))
                .collect::<Result<Vec<_>, _>>()?;
            let keys = order_values(&q.order, &values, &env)?;
            out.push((keys, values));
        }
    } else {
        for r in inputs {
            let env = JoinedEnv {
                scope,
                tuple: &r,
                ctx,
            };
            let (keys, values) = match &q.items {
                None => (order_values(&q.order, &r, &env)?, r.into_owned()),
                Some(_) => {
                    let values = project(q, &r, &env)?;
                    (order_values(&q.order, &values, &env)?, values)
                }
            };
            out.push((keys, values));
        }
    }
    if !q.order.is_empty() {
        // Stable: rows equal on every key keep their scan order.
        out.sort_by(|a, b| order_cmp(&q.order, &a.0, &b.0));
    }
    Ok(out
        .into_iter()
        .skip(s.offset.unwrap_or(0))
        .take(s.limit.unwrap_or(usize::MAX))
        .map(|(_, values)| Row::from_tuple(&q.names, values))
        .collect())
}

/// `LIMIT 0`: PostgreSQL's executor stops before it reads a row, so nothing is scanned,
/// locked or evaluated per row (`SELECT x / 0 FROM t LIMIT 0` answers no row).
fn no_rows() -> StmtResult {
    StmtResult::rows(CommandTag::Select, Vec::new())
}

/// `SELECT expr, ...` without FROM: one row, its expressions evaluated in order (a
/// column named is 42703, as there is no table).
fn exec_compute(ctx: &Ctx, items: &[SelectItem]) -> Result<StmtResult, Stop> {
    let empty = TableSchema::new(String::new());
    let env = TupleEnv {
        schema: &empty,
        tuple: &[],
        excluded: None,
        ctx: Some(ctx),
    };
    check_constants(ctx, None, unassigned(items.iter().map(|i| &i.expr)))?;
    let names: Rc<[String]> = items.iter().map(|i| i.name.clone()).collect();
    let values = items
        .iter()
        .map(|i| i.expr.eval_in(&env))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(StmtResult::rows(
        CommandTag::Select,
        vec![Row::from_tuple(&names, values)],
    ))
}

impl Engine {
    pub(super) fn exec(&mut self, ctx: &Ctx, stmt: &Statement) -> Result<StmtResult, Stop> {
        match stmt {
            Statement::Select(s) => self.exec_select(ctx, s),
            Statement::Count(c) => self.exec_count(ctx, c),
            Statement::Insert(i) => self.exec_insert(ctx, i),
            Statement::Update(u) => self.exec_update(ctx, u),
            Statement::Delete(d) => self.exec_delete(ctx, d),
            Statement::Sleep(_) => Ok(StmtResult::tag(CommandTag::Sleep)),
            Statement::Compute(items) => exec_compute(ctx, items),
            Statement::Command(c) => self.exec_command(ctx, c),
            // Control statements are handled by the engine before execution.
            other => Err(Stop::Fail(SqlError::ActiveTransaction {
                statement: other.to_string(),
            })),
        }
    }

    /// The primary key's columns.
    fn pk(&self, t: usize) -> &[usize] {
        &self.tables[t].indexes[0].columns
    }

    /// Checks the WHERE's columns (named bare or by `qual`, the table's name or alias),
    /// writes them bare, and coerces its key to the key column types.
    pub(super) fn bind_where(&self, t: usize, w: &Where, qual: &str) -> Result<Where, SqlError> {
        let schema = &self.tables[t].schema;
        let filter = match &w.filter {
            None => None,
            Some(e) => {
                e.no_agg("WHERE")?;
                Some(e.bind(&Scope::single(qual, schema), None)?)
            }
        };
        let key = match &w.key {
            None => filter
                .as_ref()
                .and_then(|f| key_of_filter(schema, self.pk(t), f)),
            Some(k) => {
                let pk = self.pk(t);
                if k.len() != pk.len() {
                    return Err(SqlError::DatatypeMismatch {
                        detail: format!(
                            "primary key of \"{}\" has {} columns, {} given",
                            schema.name,
                            pk.len(),
                            k.len()
                        ),
                    });
                }
                let coerced = pk
                    .iter()
                    .zip(k)
                    .map(|(&c, v)| {
                        let col = &schema.columns[c];
                        v.clone().coerce(col.ty, &col.name)
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                Some(coerced)
            }
        };
        Ok(Where { key, filter })
    }

    /// The index (a unique non-key one before a plain one) and key that a bound WHERE
    /// without a primary key pins down, if any. Only for reads that take no SIREAD lock:
    /// a serializable read that is not a primary-key lookup locks the whole relation and
    /// must meet every concurrent version of it (see [`super::ssi`]), so it scans all.
    pub(super) fn index_lookup(
        &self,
        t: usize,
        w: &Where,
        serializable: bool,
    ) -> Option<(&UniqueIndex, Vec<Value>)> {
        let table = &self.tables[t];
        let filter = w.filter.as_ref()?;
        if w.key.is_some() || serializable || (table.indexes.len() == 1 && table.plain.is_empty()) {
            return None;
        }
        let schema = &table.schema;
        table.indexes[1..]
            .iter()
            .chain(&table.plain)
            .find_map(|index| {
                if !index
                    .columns
                    .iter()
                    .all(|&c| exact_keys(schema.columns[c].ty))
                {
                    return None;
                }
                Some((index, key_of_filter(schema, &index.columns, filter)?))
            })
    }

    /// The rows the statement's snapshot sees that match `w`, as (row, visible version),
    /// in row order. The rows visited are the primary key's if `w` has a key, else those
    /// of another index whose columns the WHERE pins ([`Engine::index_lookup`]), else all.
    /// Serializable transactions record the read and their rw-conflicts out.
    fn scan(&mut self, ctx: &Ctx, t: usize, w: &Where) -> Result<Vec<(RowId, usize)>, Stop> {
        self.scan_with(ctx, t, w, true)
    }

    /// [`Engine::scan`]; `record: false` leaves the SSI bookkeeping of a serializable read
    /// to the caller (which knows which rows an index-ordered LIMIT read, see
    /// [`Engine::ssi_ordered_read`]).
    fn scan_with(
        &mut self,
        ctx: &Ctx,
        t: usize,
        w: &Where,
        record: bool,
    ) -> Result<Vec<(RowId, usize)>, Stop> {
        let serializable = record && self.ssi.is_tracked(ctx.xid);
        let doomed = self.ssi.is_doomed(ctx.xid);
        let lookup = self.index_lookup(t, w, serializable);
        let table = &self.tables[t];
        let schema = &table.schema;
        let pk = &table.indexes[0].columns;
        let mut out = Vec::new();
        let mut writers: BTreeSet<Xid> = BTreeSet::new();
        // The heap tuples a key lookup fetched (its SIREAD tuple locks).
        let mut fetched: Vec<(RowId, Xid)> = Vec::new();
        let mut visit = |row: RowId, chain: &[Version]| -> Result<(), SqlError> {
            // A transaction another one doomed fails at the first tuple its scan meets,
            // before the rest of the WHERE (PostgreSQL's conflict-out check).
            if doomed && !chain.is_empty() {
                return Err(SqlError::rw_dependencies());
            }
            let vis = chain.iter().rposition(|v| v.visible_to(ctx.xid, &ctx.snap));
            if let Some(vi) = vis {
                let v = &chain[vi];
                if where_matches(schema, pk, w, &v.tuple, ctx)? {
                    out.push((row, vi));
                }
                if serializable {
                    fetched.push((row, v.xmin));
                }
                // A concurrent transaction deleted or replaced a row the scan passed over
                // (PostgreSQL checks each tuple it visits, before the rest of the WHERE).
                if let Some(x) = v.xmax.filter(|x| !ctx.snap.sees(ctx.xid, *x)) {
                    if serializable {
                        writers.insert(x);
                    }
                }
            }
            if serializable {
                // Versions a concurrent transaction created that the scan passed over.
                for v in chain {
                    if !ctx.snap.sees(ctx.xid, v.xmin) {
                        writers.insert(v.xmin);
                    }
                }
            }
            Ok(())
        };
        // Straight through the chains, in row order, rather than looking each row up.
        match (&w.key, &lookup) {
            (Some(k), _) => {
                for row in table.key_rows(0, k) {
                    visit(row, &table.chains[&row])?;
                }
            }
            (None, Some((index, k))) => {
                for row in index.rows(k) {
                    visit(row, &table.chains[&row])?;
                }
            }
            (None, None) => {
                for (&row, chain) in &table.chains {
                    visit(row, chain)?;
                }
            }
        }
        if serializable {
            let read = match &w.key {
                Some(k) => ReadPredicate::index(t, vec![k.clone()]),
                None => {
                    fetched.clear();
                    ReadPredicate::relation(t)
                }
            };
            self.ssi.record_read(ctx.xid, read, &fetched);
            for x in writers {
                if self.ssi.add_conflict(ctx.xid, x, ctx.xid).is_err() {
                    return Err(Stop::Fail(SqlError::rw_dependencies()));
                }
            }
        }
        Ok(out)
    }

    /// SSI for a serializable read through the primary key's index in key order (see
    /// [`index_order`]) that stopped at the row whose key is `stop` (`None`: it read to
    /// the end): as PostgreSQL's index scan, it locks the index's leaf page and the
    /// visible tuples of the index entries up to `stop`, matching the rest of the WHERE
    /// or not, and conflicts with the concurrent versions it passed over there.
    fn ssi_ordered_read(
        &mut self,
        ctx: &Ctx,
        t: usize,
        stop: Option<&[Value]>,
        desc: bool,
    ) -> Result<(), Stop> {
        let table = &self.tables[t];
        let pk = &table.indexes[0].columns;
        let before_stop = |tuple: &[Value]| {
            stop.is_none_or(|stop| {
                let key = pk.iter().map(|&c| &tuple[c]);
                let o = key.cmp(stop.iter());
                if desc {
                    o.is_ge()
                } else {
                    o.is_le()
                }
            })
        };
        let mut writers: BTreeSet<Xid> = BTreeSet::new();
        let mut fetched = Vec::new();
        let mut keys = Vec::new();
        for (&row, chain) in &table.chains {
            // Each version has its own index entry (the model's HOT updates included: it
            // would only lock more).
            if !chain.iter().any(|v| before_stop(&v.tuple)) {
                continue;
            }
            if let Some(v) = chain
                .iter()
                .rev()
                .find(|v| v.visible_to(ctx.xid, &ctx.snap))
            {
                fetched.push((row, v.xmin));
                keys.push(pk.iter().map(|&c| v.tuple[c].clone()).collect());
                if let Some(x) = v.xmax.filter(|x| !ctx.snap.sees(ctx.xid, *x)) {
                    writers.insert(x);
                }
            }
            for v in chain {
                if !ctx.snap.sees(ctx.xid, v.xmin) {
                    writers.insert(v.xmin);
                }
            }
        }
        self.ssi
            .record_read(ctx.xid, ReadPredicate::index(t, keys), &fetched);
        for x in writers {
            if self.ssi.add_conflict(ctx.xid, x, ctx.xid).is_err() {
                return Err(Stop::Fail(SqlError::rw_dependencies()));
            }
        }
        Ok(())
    }

    /// Takes a row lock. `Ok(false)`: the row is to be skipped (SKIP LOCKED).
    fn lock_row(
        &mut self,
        ctx: &Ctx,
        t: usize,
        row: RowId,
        mode: LockMode,
        wait: LockWait,
    ) -> Result<bool, Stop> {
        match self.locks.acquire((t, row), ctx.xid, mode) {
            Acquire::Granted => {
                if let Some(txn) = self.txns.get_mut(&ctx.xid) {
                    txn.locks.push((t, row));
                }
                Ok(true)
            }
            Acquire::AlreadyHeld => Ok(true),
            Acquire::Conflict(on) => match wait {
                LockWait::Wait => Err(Stop::Block(on)),
                LockWait::SkipLocked => Ok(false),
                LockWait::NoWait => Err(Stop::Fail(SqlError::LockNotAvailable {
                    message: format!(
                        "could not obtain lock on row in relation \"{}\"",
                        self.tables[t].schema.name
                    ),
                })),
            },
        }
    }

    /// Before locking a row found through the snapshot at version `vi`, what PostgreSQL's
    /// `heap_lock_tuple` and `heap_update` find without waiting: under REPEATABLE READ and
    /// SERIALIZABLE, a version that a committed transaction has replaced or deleted since
    /// the snapshot fails at once with 40001 (whoever locks the newer version); under
    /// READ COMMITTED a row a committed transaction deleted is skipped, and not locked.
    /// `Ok(false)`: skip the row.
    fn before_lock(&self, ctx: &Ctx, t: usize, row: RowId, vi: usize) -> Result<bool, Stop> {
        let chain = &self.tables[t].chains[&row];
        let committed = |x: &Xid| *x != ctx.xid && !self.txns.contains_key(x);
        let last = chain.len() - 1;
        if ctx.iso.uses_transaction_snapshot() {
            if chain[vi].xmax.as_ref().is_some_and(committed) {
                return Err(Stop::Fail(if vi == last {
                    SqlError::concurrent_delete()
                } else {
                    SqlError::concurrent_update()
                }));
            }
            return Ok(true);
        }
        Ok(!chain[last].xmax.as_ref().is_some_and(committed))
    }

    /// After locking a row found through the snapshot at version `vi`: the version to act
    /// on, `None` to skip the row, or a serialization failure.
    ///
    /// If no one changed the row since the snapshot, that is the visible version. If a
    /// concurrent transaction (committed by now: we hold the lock) updated or deleted it:
    /// READ COMMITTED follows to the latest version and re-evaluates the WHERE on it
    /// (EvalPlanQual), skipping deleted rows; REPEATABLE READ and SERIALIZABLE fail with
    /// 40001.
    fn recheck(
        &self,
        ctx: &Ctx,
        t: usize,
        row: RowId,
        vi: usize,
        w: &Where,
    ) -> Result<Option<Vec<Value>>, Stop> {
        let table = &self.tables[t];
        let chain = &table.chains[&row];
        let last = chain.len() - 1;
        let tail = &chain[last];
        if vi == last && tail.xmax.is_none() {
            return Ok(Some(tail.tuple.clone()));
        }
        if ctx.iso.uses_transaction_snapshot() {
            return Err(Stop::Fail(if tail.xmax.is_some() {
                SqlError::concurrent_delete()
            } else {
                SqlError::concurrent_update()
            }));
        }
        if tail.xmax.is_some() {
            return Ok(None);
        }
        if where_matches(&table.schema, self.pk(t), w, &tail.tuple, ctx)? {
            Ok(Some(tail.tuple.clone()))
        } else {
            Ok(None)
        }
    }

    /// Looks for a live row other than `exclude` holding `key` in unique index `idx`,
    /// judged on the latest versions (not the snapshot), as PostgreSQL's unique check does.
    /// If the holder is an in-progress insert, update or delete of another transaction,
    /// waits for it: its outcome decides whether the key is taken.
    fn check_unique(
        &self,
        ctx: &Ctx,
        t: usize,
        idx: usize,
        key: &[Value],
        exclude: Option<RowId>,
    ) -> Result<Option<RowId>, Stop> {
        let table = &self.tables[t];
        let index = &table.indexes[idx];
        let other_running = |x: Xid| x != ctx.xid && self.txns.contains_key(&x);
        for row in table.key_rows(idx, key) {
            if Some(row) == exclude {
                continue;
            }
            let chain = &table.chains[&row];
            let Some(pos) = chain.iter().rposition(|v| index.has_key(&v.tuple, key)) else {
                continue;
            };
            let v = &chain[pos];
            if other_running(v.xmin) {
                return Err(Stop::Block(BTreeSet::from([v.xmin])));
            }
            match v.xmax {
                None => return Ok(Some(row)),
                Some(x) if other_running(x) => return Err(Stop::Block(BTreeSet::from([x]))),
                // Deleted or moved to another key by us, or by a committed transaction.
                Some(_) => continue,
            }
        }
        Ok(None)
    }

    /// The error for a duplicate key in `idx`, held by `row`. A serializable transaction
    /// that had looked for that key and not seen it (a concurrent transaction inserted it)
    /// gets 40001 instead of 23505, as in PostgreSQL since 9.6.
    fn unique_error(&self, ctx: &Ctx, t: usize, idx: usize, row: RowId, key: &[Value]) -> Stop {
        let table = &self.tables[t];
        let tail = table.tail(row);
        if ctx.iso == IsolationLevel::Serializable
            && !ctx.snap.sees(ctx.xid, tail.xmin)
            && self.ssi.has_read(ctx.xid, t, self.pk(t), &tail.tuple)
        {
            return Stop::Fail(SqlError::rw_dependencies());
        }
        let index = &table.indexes[idx];
        let cols: Vec<&str> = index
            .columns
            .iter()
            .map(|&c| table.schema.columns[c].name.as_str())
            .collect();
        let vals: Vec<String> = key.iter().map(|v| v.to_string()).collect();
        Stop::Fail(SqlError::UniqueViolation {
            constraint: index.name.clone(),
            key: format!("({})=({})", cols.join(", "), vals.join(", ")),
        })
    }

    /// Unique checks for rows about to change from `olds` to `news` (one statement).
    fn check_new_keys(
        &self,
        ctx: &Ctx,
        t: usize,
        olds: &[(RowId, Vec<Value>)],
        news: &[Vec<Value>],
    ) -> Result<(), Stop> {
        let indexes = &self.tables[t].indexes;
        for (i, new) in news.iter().enumerate() {
            for (idx, index) in indexes.iter().enumerate() {
                let Some(k) = index.key_of(new) else { continue };
                if index.has_key(&olds[i].1, &k) {
                    continue;
                }
                let row = olds[i].0;
                if news[..i].iter().any(|n| index.has_key(n, &k)) {
                    return Err(self.unique_error(ctx, t, idx, row, &k));
                }
                if let Some(holder) = self.check_unique(ctx, t, idx, &k, Some(row))? {
                    return Err(self.unique_error(ctx, t, idx, holder, &k));
                }
            }
        }
        Ok(())
    }

    /// SSI: a write by a serializable transaction conflicts with concurrent reads of it.
    fn ssi_write(
        &mut self,
        ctx: &Ctx,
        t: usize,
        old: Option<&[Value]>,
        new: Option<&[Value]>,
    ) -> Result<(), Stop> {
        if !self.ssi.is_tracked(ctx.xid) {
            return Ok(());
        }
        self.fail_if_doomed(ctx)?;
        let table = &self.tables[t];
        // An insert, or an update that changes an indexed column (not a HOT update), adds
        // an entry to every index of the table.
        let index_insertion = match (old, new) {
            (None, Some(_)) => true,
            (Some(o), Some(n)) => table
                .indexes
                .iter()
                .chain(&table.plain)
                .any(|i| i.columns.iter().any(|&c| o[c] != n[c])),
            _ => false,
        };
        self.ssi
            .write_conflicts(
                ctx.xid,
                t,
                &table.indexes[0].columns,
                (old, new),
                index_insertion,
            )
            .map_err(|_| Stop::Fail(SqlError::rw_dependencies()))
    }

    /// A serializable transaction that another one doomed (the pivot of a dangerous
    /// structure) fails when it next meets a tuple or writes one, or at COMMIT, as in
    /// PostgreSQL; a statement that touches no tuple (`SELECT 1`, a scan of an empty
    /// table) still succeeds.
    fn fail_if_doomed(&self, ctx: &Ctx) -> Result<(), Stop> {
        if self.ssi.is_doomed(ctx.xid) {
            Err(Stop::Fail(SqlError::rw_dependencies()))
        } else {
            Ok(())
        }
    }

    fn push_undo(&mut self, ctx: &Ctx, u: Undo) {
        if let Some(txn) = self.txns.get_mut(&ctx.xid) {
            txn.undo.push(u);
        }
    }

    /// Foreign keys, child side: the row `new` of table `t` (formerly `old`) must
    /// reference existing parent rows. As PostgreSQL's `SELECT ... FOR KEY SHARE` of the
    /// parent, it takes a share lock on each parent row, so that a concurrent delete of the
    /// parent waits for us (or we for it); READ COMMITTED looks for the parent in a fresh
    /// snapshot, and re-checks the parent after waiting for its lock.
    fn check_parents(
        &mut self,
        ctx: &Ctx,
        t: usize,
        old: Option<&[Value]>,
        new: &[Value],
    ) -> Result<(), Stop> {
        if self.tables[t].foreign_keys.is_empty() {
            return Ok(());
        }
        let fks = self.tables[t].foreign_keys.clone();
        for fk in fks.iter() {
            let Some(key) = fk.key_of(new) else {
                continue;
            };
            if old.is_some_and(|o| fk.columns.iter().all(|&c| o[c] == new[c])) {
                continue;
            }
            let snap = if ctx.iso.uses_transaction_snapshot() {
                ctx.snap.clone()
            } else {
                self.take_snapshot()
            };
            let p = fk.parent;
            let parent = &self.tables[p];
            let index = &parent.indexes[fk.parent_index];
            let found = parent.key_rows(fk.parent_index, &key).find_map(|row| {
                let vi = parent.visible(row, ctx.xid, &snap)?;
                index
                    .has_key(&parent.chains[&row][vi].tuple, &key)
                    .then_some((row, vi))
            });
            let ok = match found {
                None => false,
                Some((row, vi)) => {
                    self.lock_row(ctx, p, row, LockMode::KeyShare, LockWait::Wait)?;
                    let parent = &self.tables[p];
                    let chain = &parent.chains[&row];
                    let tail = &chain[chain.len() - 1];
                    if vi == chain.len() - 1 && tail.xmax.is_none() {
                        true
                    } else if chain[vi]
                        .xmax
                        .is_some_and(|x| x != ctx.xid && self.txns.contains_key(&x))
                    {
                        // An update in progress that left the key alone (a key update or a
                        // delete would hold a lock that conflicts with ours): the key stays.
                        true
                    } else if ctx.iso.uses_transaction_snapshot() {
                        return Err(Stop::Fail(if tail.xmax.is_some() {
                            SqlError::concurrent_delete()
                        } else {
                            SqlError::concurrent_update()
                        }));
                    } else {
                        tail.xmax.is_none()
                            && parent.indexes[fk.parent_index].has_key(&tail.tuple, &key)
                    }
                }
            };
            if !ok {
                return Err(Stop::Fail(SqlError::ForeignKeyViolation {
                    constraint: fk.name.clone(),
                    message: format!(
                        "insert or update on table \"{}\" violates foreign key constraint \"{}\"",
                        self.tables[t].schema.name, fk.name
                    ),
                }));
            }
        }
        Ok(())
    }

    /// Foreign keys, parent side (NO ACTION, checked after the statement's writes): the
    /// key `old` of table `p` held, if no row of `p` holds it any more, must not be
    /// referenced by a row of a child table. A child row being written by a running
    /// transaction is waited for; under REPEATABLE READ, a referencing row our snapshot
    /// does not see is a serialization failure rather than 23503.
    fn check_children(
        &mut self,
        ctx: &Ctx,
        p: usize,
        old: &[Value],
        new: Option<&[Value]>,
    ) -> Result<(), Stop> {
        if self.tables[p].referenced_by.is_empty() {
            return Ok(());
        }
        let refs = self.tables[p].referenced_by.clone();
        let other_running = |me: &Engine, x: Xid| x != ctx.xid && me.txns.contains_key(&x);
        for (c, f) in refs {
            let fk = self.tables[c].foreign_keys[f].clone();
            let parent = &self.tables[p];
            let index = &parent.indexes[fk.parent_index];
            let Some(key) = index.key_of(old) else {
                continue;
            };
            if new.is_some_and(|n| index.has_key(n, &key)) {
                continue;
            }
            // Another row holds the key now (or still): the children reference it.
            let still_held = parent.key_rows(fk.parent_index, &key).any(|row| {
                let tail = parent.tail(row);
                tail.xmax.is_none() && index.has_key(&tail.tuple, &key)
            });
            if still_held {
                continue;
            }
            let child = &self.tables[c];
            let refers = |v: &Version| {
                fk.columns
                    .iter()
                    .zip(&key)
                    .all(|(&col, k)| v.tuple[col] == *k)
            };
            for chain in child.chains.values() {
                let last = chain.len() - 1;
                let tail = &chain[last];
                if other_running(self, tail.xmin) {
                    if refers(tail) || (last > 0 && refers(&chain[last - 1])) {
                        return Err(Stop::Block(BTreeSet::from([tail.xmin])));
                    }
                    continue;
                }
                if !refers(tail) {
                    continue;
                }
                match tail.xmax {
                    Some(x) if other_running(self, x) => {
                        return Err(Stop::Block(BTreeSet::from([x])))
                    }
                    Some(_) => continue,
                    None => {}
                }
                if ctx.iso.uses_transaction_snapshot() && !ctx.snap.sees(ctx.xid, tail.xmin) {
                    return Err(Stop::Fail(SqlError::concurrent_update()));
                }
                return Err(Stop::Fail(SqlError::ForeignKeyViolation {
                    constraint: fk.name.clone(),
                    message: format!(
                        "update or delete on table \"{}\" violates foreign key constraint \
                         \"{}\" on table \"{}\"",
                        parent.schema.name, fk.name, child.schema.name
                    ),
                }));
            }
        }
        Ok(())
    }

    fn exec_select(&mut self, ctx: &Ctx, s: &Select) -> Result<StmtResult, Stop> {
        let t = self.table_id(&s.table)?;
        let qual = s.alias.as_deref().unwrap_or(&s.table);
        if !s.joins.is_empty() {
            return self.exec_join(ctx, s, t, qual);
        }
        let w = self.bind_where(t, &s.filter, qual)?;
        let simple = matches!(s.items, Projection::All)
            && s.group_by.is_empty()
            && s.having.is_none()
            && s.order_by.is_empty();
        if simple {
            // The builder's SELECT: rows as stored, no query to bind.
            let scope = Scope::single(qual, &self.tables[t].schema);
            check_constants(ctx, Some(&scope), unassigned(&s.filter.filter))?;
            if s.limit == Some(0) {
                return Ok(no_rows());
            }
            let targets = self.scan(ctx, t, &w)?;
            let (offset, limit) = (s.offset.unwrap_or(0), s.limit.unwrap_or(usize::MAX));
            let mut rows = Vec::new();
            match s.lock {
                None => {
                    let table = &self.tables[t];
                    for (row, vi) in targets.into_iter().skip(offset).take(limit) {
                        rows.push(table.row(table.chains[&row][vi].tuple.clone()));
                    }
                }
                Some(l) => {
                    let mut seen = 0;
                    for (row, vi) in targets {
                        if rows.len() >= limit {
                            break;
                        }
                        if !self.before_lock(ctx, t, row, vi)?
                            || !self.lock_row(ctx, t, row, l.mode, l.wait)?
                        {
                            continue;
                        }
                        if let Some(tuple) = self.recheck(ctx, t, row, vi, &w)? {
                            // OFFSET skips rows after locking them, as PostgreSQL does.
                            seen += 1;
                            if seen > offset {
                                rows.push(self.tables[t].row(tuple));
                            }
                        }
                    }
                }
            }
            return Ok(StmtResult::rows(CommandTag::Select, rows));
        }
        let schema = self.tables[t].schema.clone();
        let scope = Scope::single(qual, &schema);
        let q = bind_query(s, &scope, Some(self.tables[t].column_names.clone()))?;
        check_constants(ctx, Some(&scope), unassigned(query_exprs(s)))?;
        if s.lock.is_some() && q.grouped {
            return Err(Stop::Fail(SqlError::FeatureNotSupported {
                feature: "FOR UPDATE/FOR SHARE with GROUP BY, HAVING or aggregates".into(),
            }));
        }
        if s.limit == Some(0) {
            return Ok(no_rows());
        }
        let pk = self.pk(t).to_vec();
        let ordered = match self.ssi.is_tracked(ctx.xid) {
            true => index_order(&q, s, &w, &scope, &schema, &pk),
            false => None,
        };
        let targets = self.scan_with(ctx, t, &w, ordered.is_none())?;
        let key_of =
            |tuple: &[Value]| -> Vec<Value> { pk.iter().map(|&c| tuple[c].clone()).collect() };
        let Some(l) = s.lock else {
            if let Some(desc) = ordered {
                // The index hands over matching rows in key order until OFFSET + LIMIT.
                let taken = s.offset.unwrap_or(0).saturating_add(s.limit.unwrap_or(0));
                let table = &self.tables[t];
                let mut keys: Vec<Vec<Value>> = targets
                    .iter()
                    .map(|&(row, vi)| key_of(&table.chains[&row][vi].tuple))
                    .collect();
                keys.sort();
                if desc {
                    keys.reverse();
                }
                let stop = taken.checked_sub(1).and_then(|i| keys.get(i)).cloned();
                let stop = match (taken, stop) {
                    // LIMIT 0 reads nothing past the first entry; lock that much.
                    (0, _) => keys.first().cloned(),
                    (_, stop) => stop,
                };
                self.ssi_ordered_read(ctx, t, stop.as_deref(), desc)?;
            }
            let table = &self.tables[t];
            let inputs: Vec<Cow<'_, [Value]>> = targets
                .into_iter()
                .map(|(row, vi)| Cow::Borrowed(&table.chains[&row][vi].tuple[..]))
                .collect();
            let rows = select_rows(s, &q, &scope, inputs, ctx)?;
            return Ok(StmtResult::rows(CommandTag::Select, rows));
        };
        // Sorted on the versions the snapshot sees, then locked in that order (rows
        // changed meanwhile keep their place, as in PostgreSQL); OFFSET and LIMIT count
        // the rows locked and still matching.
        let mut candidates = Vec::with_capacity(targets.len());
        for (row, vi) in targets {
            let tuple = &self.tables[t].chains[&row][vi].tuple;
            let keys = if q.order.is_empty() {
                Vec::new()
            } else {
                let env = JoinedEnv {
                    scope: &scope,
                    tuple,
                    ctx,
                };
                let values = project(&q, tuple, &env)?;
                order_values(&q.order, &values, &env)?
            };
            candidates.push((keys, row, vi));
        }
        candidates.sort_by(|a, b| order_cmp(&q.order, &a.0, &b.0));
        let (offset, limit) = (s.offset.unwrap_or(0), s.limit.unwrap_or(usize::MAX));
        let mut rows = Vec::new();
        let mut seen = 0;
        // The key of the last row the scan handed to the locking, for an index-ordered read.
        let mut stop: Option<Vec<Value>> = None;
        for (_, row, vi) in candidates {
            if rows.len() >= limit {
                break;
            }
            if ordered.is_some() {
                stop = Some(key_of(&self.tables[t].chains[&row][vi].tuple));
            }
            if !self.before_lock(ctx, t, row, vi)? || !self.lock_row(ctx, t, row, l.mode, l.wait)? {
                continue;
            }
            let Some(tuple) = self.recheck(ctx, t, row, vi, &w)? else {
                continue;
            };
            seen += 1;
            if seen > offset {
                let env = JoinedEnv {
                    scope: &scope,
                    tuple: &tuple,
                    ctx,
                };
                let values = project(&q, &tuple, &env)?;
                rows.push(Row::from_tuple(&q.names, values));
            }
        }
        if let Some(desc) = ordered {
            // Short of the LIMIT, the scan ran to the end of the index.
            let stop = if rows.len() >= limit { stop } else { None };
            self.ssi_ordered_read(ctx, t, stop.as_deref(), desc)?;
        }
        Ok(StmtResult::rows(CommandTag::Select, rows))
    }

    /// A SELECT with joins: nested loops over the rows the statement's snapshot sees.
    fn exec_join(
        &mut self,
        ctx: &Ctx,
        s: &Select,
        t: usize,
        qual: &str,
    ) -> Result<StmtResult, Stop> {
        if s.lock.is_some() {
            return Err(Stop::Fail(SqlError::FeatureNotSupported {
                feature: "FOR UPDATE/FOR SHARE with a join".into(),
            }));
        }
        let ids = s
            .joins
            .iter()
            .map(|j| self.table_id(&j.table))
            .collect::<Result<Vec<_>, _>>()?;
        let schema = self.tables[t].schema.clone();
        let schemas: Vec<Rc<TableSchema>> =
            ids.iter().map(|&j| self.tables[j].schema.clone()).collect();
        let mut scope = Scope::single(qual, &schema);
        for (j, js) in s.joins.iter().zip(&schemas) {
            let q = j.alias.as_deref().unwrap_or(&j.table);
            if scope.tables().any(|t| t.qual == q) {
                return Err(Stop::Fail(SqlError::DuplicateAlias(q.to_owned())));
            }
            scope.join(q, js);
        }
        // The key restricts the first table; the WHERE applies to joined rows.
        let base = Where {
            key: s.filter.key.clone(),
            filter: None,
        };
        let base = self.bind_where(t, &base, qual)?;
        let filter = match &s.filter.filter {
            None => None,
            Some(f) => {
                f.no_agg("WHERE")?;
                Some(f.bind(&scope, None)?)
            }
        };
        let mut ons = Vec::with_capacity(s.joins.len());
        for (i, j) in s.joins.iter().enumerate() {
            j.on.no_agg("JOIN conditions")?;
            // ON sees the tables joined so far.
            let prefix = scope.prefix(i + 2);
            ons.push((j.on.bind(&prefix, None)?, prefix));
        }
        let q = bind_query(s, &scope, None)?;
        check_constants(ctx, Some(&scope), unassigned(query_exprs(s)))?;
        if s.limit == Some(0) {
            return Ok(no_rows());
        }
        let targets = self.scan(ctx, t, &base)?;
        let table = &self.tables[t];
        let mut joined: Vec<Vec<Value>> = targets
            .into_iter()
            .map(|(row, vi)| table.chains[&row][vi].tuple.clone())
            .collect();
        for ((j, &jt), (on, prefix)) in s.joins.iter().zip(&ids).zip(&ons) {
            let right: Vec<Vec<Value>> = {
                let targets = self.scan(ctx, jt, &Where::default())?;
                let table = &self.tables[jt];
                targets
                    .into_iter()
                    .map(|(row, vi)| table.chains[&row][vi].tuple.clone())
                    .collect()
            };
            let width = self.tables[jt].schema.columns.len();
            let mut next = Vec::new();
            for l in joined {
                let mut matched = false;
                for r in &right {
                    let mut cand = l.clone();
                    cand.extend(r.iter().cloned());
                    let env = JoinedEnv {
                        scope: prefix,
                        tuple: &cand,
                        ctx,
                    };
                    if on.matches_in(&env)? {
                        next.push(cand);
                        matched = true;
                    }
                }
                if !matched && j.kind == JoinKind::Left {
                    let mut cand = l;
                    cand.resize(cand.len() + width, Value::Null);
                    next.push(cand);
                }
            }
            joined = next;
        }
        if let Some(f) = &filter {
            let mut kept = Vec::with_capacity(joined.len());
            for r in joined {
                let env = JoinedEnv {
                    scope: &scope,
                    tuple: &r,
                    ctx,
                };
                if f.matches_in(&env)? {
                    kept.push(r);
                }
            }
            joined = kept;
        }
        let joined = joined.into_iter().map(Cow::Owned).collect();
        let rows = select_rows(s, &q, &scope, joined, ctx)?;
        Ok(StmtResult::rows(CommandTag::Select, rows))
    }

    fn exec_count(&mut self, ctx: &Ctx, c: &Count) -> Result<StmtResult, Stop> {
        let t = self.table_id(&c.table)?;
        let w = self.bind_where(t, &c.filter, &c.table)?;
        let scope = Scope::single(&c.table, &self.tables[t].schema);
        check_constants(ctx, Some(&scope), unassigned(&c.filter.filter))?;
        let n = self.scan(ctx, t, &w)?.len() as u64;
        Ok(StmtResult {
            tag: CommandTag::Count,
            rows: Vec::new(),
            affected: n,
        })
    }

    /// The row lock an UPDATE takes, decided as PostgreSQL's `ExecUpdateLockMode` does,
    /// by the columns it sets: `FOR UPDATE` if one is in a unique index (a foreign key may
    /// reference it), else `FOR NO KEY UPDATE`, which lets foreign-key checks of the row
    /// (`FOR KEY SHARE`) through.
    fn update_lock_mode(&self, t: usize, set: &[(usize, Cow<'_, Expr>)]) -> LockMode {
        let sets_key = self.tables[t]
            .indexes
            .iter()
            .any(|i| i.columns.iter().any(|c| set.iter().any(|(s, _)| s == c)));
        if sets_key {
            LockMode::Update
        } else {
            LockMode::NoKeyUpdate
        }
    }

    /// Locks each target (waiting as needed) and re-checks it: the rows to write.
    /// `precheck` runs on each target's visible version before its lock is tried.
    fn lock_targets(
        &mut self,
        ctx: &Ctx,
        t: usize,
        w: &Where,
        mode: LockMode,
        precheck: Option<&RowCheck<'_>>,
    ) -> Result<Vec<Target>, Stop> {
        let targets = self.scan(ctx, t, w)?;
        let mut work = Vec::with_capacity(targets.len());
        for (row, vi) in targets {
            let computed = match precheck {
                Some(check) => check(&self.tables[t].chains[&row][vi].tuple)?,
                None => None,
            };
            if !self.before_lock(ctx, t, row, vi)? {
                continue;
            }
            self.lock_row(ctx, t, row, mode, LockWait::Wait)?;
            let unchanged = {
                let chain = &self.tables[t].chains[&row];
                vi == chain.len() - 1 && chain[vi].xmax.is_none()
            };
            if let Some(tuple) = self.recheck(ctx, t, row, vi, w)? {
                // A row that changed while the statement waited for it is checked again
                // on its latest version, at once (PostgreSQL's EvalPlanQual).
                let computed = match precheck {
                    Some(check) if !unchanged => check(&tuple)?,
                    _ => computed,
                };
                work.push((row, tuple, computed));
            }
        }
        Ok(work)
    }

    fn exec_update(&mut self, ctx: &Ctx, u: &Update) -> Result<StmtResult, Stop> {
        let t = self.table_id(&u.table)?;
        let schema = self.tables[t].schema.clone();
        let set = bind_set(&schema, &u.set, false)?;
        let w = self.bind_where(t, &u.filter, &u.table)?;
        let returning = Returning::bind(&schema, &u.returning)?;
        // The planner's order: the new values, RETURNING, then WHERE.
        let assignments = assigned(&schema, u.set.iter().map(|(c, e)| (c, e)));
        let scope = Scope::single(&u.table, &schema);
        check_constants(
            ctx,
            Some(&scope),
            assignments.chain(unassigned(projected(&u.returning).chain(&u.filter.filter))),
        )?;
        // PostgreSQL computes each row's new version from the version its snapshot sees
        // and checks NOT NULL and CHECK on it before it tries the row's lock: a violation
        // fails at once rather than after waiting for the lock's holder.
        let new_version = |old: &[Value]| -> Result<Vec<Value>, SqlError> {
            let new = apply_set(&schema, old, &set, None, ctx)?;
            check_constraints(&schema, &new, ctx)?;
            Ok(new)
        };
        let precheck = |seen: &[Value]| new_version(seen).map(Some);
        let mode = self.update_lock_mode(t, &set);
        let targets = self.lock_targets(ctx, t, &w, mode, Some(&precheck))?;
        let mut work = Vec::with_capacity(targets.len());
        let mut news = Vec::with_capacity(targets.len());
        for (row, old, computed) in targets {
            news.push(match computed {
                Some(new) => new,
                None => new_version(&old)?,
            });
            work.push((row, old));
        }
        self.check_new_keys(ctx, t, &work, &news)?;
        let names = self.tables[t].column_names.clone();
        let affected = news.len();
        let has_fks =
            !self.tables[t].foreign_keys.is_empty() || !self.tables[t].referenced_by.is_empty();
        let mut fk_work = Vec::new();
        let mut rows = Vec::new();
        for ((row, old), new) in work.into_iter().zip(news) {
            self.ssi_write(ctx, t, Some(&old), Some(&new))?;
            rows.extend(returning.row(&schema, &names, &new, ctx)?);
            if has_fks {
                fk_work.push((old, new.clone()));
            }
            self.tables[t].update(ctx.xid, row, new);
            self.push_undo(ctx, Undo::Update(t, row));
        }
        // Foreign keys after all the rows, as PostgreSQL's NO ACTION checks at the end of
        // the statement.
        for (old, new) in &fk_work {
            self.check_parents(ctx, t, Some(old), new)?;
            self.check_children(ctx, t, old, Some(new))?;
        }
        Ok(written(CommandTag::Update, rows, affected))
    }

    fn exec_delete(&mut self, ctx: &Ctx, d: &Delete) -> Result<StmtResult, Stop> {
        let t = self.table_id(&d.table)?;
        let w = self.bind_where(t, &d.filter, &d.table)?;
        let schema = self.tables[t].schema.clone();
        let returning = Returning::bind(&schema, &d.returning)?;
        let scope = Scope::single(&d.table, &schema);
        let exprs = unassigned(projected(&d.returning).chain(&d.filter.filter));
        check_constants(ctx, Some(&scope), exprs)?;
        let work = self.lock_targets(ctx, t, &w, LockMode::Update, None)?;
        let names = self.tables[t].column_names.clone();
        let affected = work.len();
        let referenced = !self.tables[t].referenced_by.is_empty();
        let mut gone = Vec::new();
        let mut rows = Vec::new();
        for (row, old, _) in work {
            self.ssi_write(ctx, t, Some(&old), None)?;
            self.tables[t].delete(ctx.xid, row);
            self.push_undo(ctx, Undo::Delete(t, row));
            if referenced {
                rows.extend(returning.row(&schema, &names, &old, ctx)?);
                gone.push(old);
            } else {
                rows.extend(returning.row_of(&schema, &names, Cow::Owned(old), ctx)?);
            }
        }
        for old in &gone {
            self.check_children(ctx, t, old, None)?;
        }
        Ok(written(CommandTag::Delete, rows, affected))
    }

    /// The unique index whose columns are exactly `target` (ON CONFLICT's arbiter).
    fn arbiter(&self, t: usize, target: &[String]) -> Result<usize, SqlError> {
        let table = &self.tables[t];
        let mut want: Vec<usize> = target
            .iter()
            .map(|c| table.schema.require_column(c))
            .collect::<Result<_, _>>()?;
        want.sort_unstable();
        table
            .indexes
            .iter()
            .position(|i| {
                let mut cols = i.columns.clone();
                cols.sort_unstable();
                cols == want
            })
            .ok_or(SqlError::InvalidConflictTarget)
    }

    /// The stored tuple for an inserted row: its expressions evaluated and the defaults
    /// of the columns it does not give (or gives as DEFAULT) filled, then each value
    /// coerced to its column's type and NOT NULL checked.
    ///
    /// The order of evaluation is PostgreSQL's, which matters once expressions draw from
    /// sequences: a single VALUES row is one target list in column order, defaults
    /// included; the rows of a multi-row VALUES are produced by a scan of the list as
    /// written (a DEFAULT evaluated in its place), and the defaults of the columns not
    /// named come after, in column order.
    fn new_tuple(
        &mut self,
        ctx: &Ctx,
        t: usize,
        given: &InsertRow,
        overriding: Option<Overriding>,
        single_row: bool,
    ) -> Result<Vec<Value>, SqlError> {
        let table = &self.tables[t];
        let schema = &*table.schema;
        let mut slots: Vec<Option<&InsertValue>> = vec![None; schema.columns.len()];
        let mut written = Vec::with_capacity(given.0.len());
        for (name, v) in &given.0 {
            let i = schema.require_column(name)?;
            if slots[i].is_some() {
                return Err(SqlError::DuplicateColumn(name.clone()));
            }
            let column = &schema.columns[i];
            let v = match (&column.default, v, overriding) {
                // OVERRIDING USER VALUE: an identity takes its own value, whatever given.
                (Some(ColumnDefault::Identity { .. }), _, Some(Overriding::User)) => {
                    &InsertValue::Default
                }
                (Some(ColumnDefault::Identity { always: true }), InsertValue::Expr(_), None) => {
                    return Err(SqlError::GeneratedAlways {
                        message: format!(
                            "cannot insert a non-DEFAULT value into column \"{name}\""
                        ),
                    })
                }
                _ => v,
            };
            slots[i] = Some(v);
            written.push(i);
        }
        let empty = TableSchema::new(String::new());
        let env = TupleEnv {
            schema: &empty,
            tuple: &[],
            excluded: None,
            ctx: Some(ctx),
        };
        let default = |i: usize| -> Result<Value, SqlError> {
            Ok(match &schema.columns[i].default {
                None => Value::Null,
                Some(ColumnDefault::Value(v)) => v.clone(),
                Some(ColumnDefault::Now) => Value::timestamptz_at(ctx.now),
                Some(ColumnDefault::Serial | ColumnDefault::Identity { .. }) => {
                    let name = table.sequences[i]
                        .as_deref()
                        .expect("CREATE TABLE made the sequence");
                    Value::Int(ctx.calls.nextval(name)?)
                }
                Some(ColumnDefault::Expr(e)) => e.eval_in(&env)?,
            })
        };
        let value = |i: usize| match slots[i] {
            Some(InsertValue::Expr(e)) => e.eval_assigned(&env, schema.columns[i].ty),
            Some(InsertValue::Default) | None => default(i),
        };
        let mut tuple = vec![Value::Null; schema.columns.len()];
        if single_row {
            for (i, v) in tuple.iter_mut().enumerate() {
                *v = value(i)?;
            }
        } else {
            for &i in &written {
                tuple[i] = value(i)?;
            }
            for i in (0..tuple.len()).filter(|i| slots[*i].is_none()) {
                tuple[i] = default(i)?;
            }
        }
        schema
            .columns
            .iter()
            .zip(tuple)
            .map(|(c, v)| schema.check_value(c, v))
            .collect()
    }

    /// INSERT of one or more rows, each in turn (a later row sees the earlier ones: a
    /// duplicate among them is 23505, skipped by DO NOTHING, and 21000 for DO UPDATE).
    fn exec_insert(&mut self, ctx: &Ctx, ins: &Insert) -> Result<StmtResult, Stop> {
        let t = self.table_id(&ins.table)?;
        let schema = self.tables[t].schema.clone();
        let arbiter = match &ins.on_conflict {
            OnConflict::Error | OnConflict::DoNothing { target: None } => None,
            OnConflict::DoNothing { target: Some(cols) }
            | OnConflict::DoUpdate { target: cols, .. } => Some(self.arbiter(t, cols)?),
        };
        let (set, filter) = match &ins.on_conflict {
            OnConflict::DoUpdate { set, filter, .. } => {
                let scope = Scope::single(&schema.name, &schema);
                let filter = match filter {
                    Some(f) => {
                        f.no_agg("WHERE")?;
                        Some(f.bind_cow(&scope, Some(&schema))?)
                    }
                    None => None,
                };
                (bind_set(&schema, set, true)?, filter)
            }
            _ => (Vec::new(), None),
        };
        let returning = Returning::bind(&schema, &ins.returning)?;
        let scope = Scope::single(&schema.name, &schema);
        check_constants(ctx, Some(&scope), insert_exprs(ins, &schema))?;
        let names = self.tables[t].column_names.clone();
        let mut rows = Vec::new();
        let mut affected = 0;
        // Rows this statement inserted or updated, which DO UPDATE must not update again.
        let mut touched: BTreeSet<RowId> = BTreeSet::new();
        let mut written_rows: Vec<(Option<Vec<Value>>, Vec<Value>)> = Vec::new();
        let has_fks =
            !self.tables[t].foreign_keys.is_empty() || !self.tables[t].referenced_by.is_empty();
        let single_row = ins.rows.len() == 1;
        for given in &ins.rows {
            let tuple = self.new_tuple(ctx, t, given, ins.overriding, single_row)?;
            check_constraints(&schema, &tuple, ctx)?;
            // The arbiter index first, as PostgreSQL's speculative insertion checks it
            // first.
            let n = self.tables[t].indexes.len();
            let order = arbiter
                .into_iter()
                .chain((0..n).filter(|i| Some(*i) != arbiter));
            let mut conflict = None;
            for idx in order {
                let Some(k) = self.tables[t].indexes[idx].key_of(&tuple) else {
                    continue;
                };
                // PostgreSQL writes the heap tuple (and so checks for a doomed transaction)
                // after the arbiter indexes' pre-check but before it looks for a duplicate
                // in any other index, which may mean waiting.
                if !handles_conflict(&ins.on_conflict, arbiter, idx) {
                    self.fail_if_doomed(ctx)?;
                }
                if let Some(row) = self.check_unique(ctx, t, idx, &k, None)? {
                    conflict = Some((idx, row, k));
                    break;
                }
            }
            let Some((idx, row, key)) = conflict else {
                self.ssi_write(ctx, t, None, Some(&tuple))?;
                rows.extend(returning.row(&schema, &names, &tuple, ctx)?);
                if has_fks {
                    written_rows.push((None, tuple.clone()));
                }
                let row = self.tables[t].insert(ctx.xid, tuple);
                self.push_undo(ctx, Undo::Insert(t, row));
                if matches!(ins.on_conflict, OnConflict::DoUpdate { .. }) {
                    touched.insert(row);
                }
                affected += 1;
                continue;
            };
            if !handles_conflict(&ins.on_conflict, arbiter, idx) {
                // PostgreSQL checks for SSI conflicts with the index page before it reports
                // the duplicate, so that a serialization failure is not masked by 23505.
                self.ssi_write(ctx, t, None, Some(&tuple))?;
                return Err(self.unique_error(ctx, t, idx, row, &key));
            }
            let existing = self.tables[t].tail(row).clone();
            let existing_key: Vec<Value> = self
                .pk(t)
                .iter()
                .map(|&c| existing.tuple[c].clone())
                .collect();
            let read = ReadPredicate::index(t, vec![existing_key]);
            if let OnConflict::DoUpdate { .. } = &ins.on_conflict {
                if touched.contains(&row) {
                    return Err(Stop::Fail(SqlError::CardinalityViolation));
                }
                let mode = self.update_lock_mode(t, &set);
                self.lock_row(ctx, t, row, mode, LockWait::Wait)?;
                // Under RR/SERIALIZABLE, a conflicting row our snapshot cannot see was
                // committed concurrently: updating it would be a lost update (40001).
                if ctx.iso.uses_transaction_snapshot() && !ctx.snap.sees(ctx.xid, existing.xmin) {
                    return Err(Stop::Fail(SqlError::concurrent_update()));
                }
                self.ssi.record_read(ctx.xid, read, &[]);
                if let Some(f) = &filter {
                    let env = TupleEnv {
                        schema: &schema,
                        tuple: &existing.tuple,
                        excluded: Some(&tuple),
                        ctx: Some(ctx),
                    };
                    if !f.matches_in(&env)? {
                        continue;
                    }
                }
                let new = apply_set(&schema, &existing.tuple, &set, Some(&tuple), ctx)?;
                check_constraints(&schema, &new, ctx)?;
                let olds = [(row, existing.tuple.clone())];
                self.check_new_keys(ctx, t, &olds, std::slice::from_ref(&new))?;
                self.ssi_write(ctx, t, Some(&existing.tuple), Some(&new))?;
                rows.extend(returning.row(&schema, &names, &new, ctx)?);
                if has_fks {
                    written_rows.push((Some(existing.tuple), new.clone()));
                }
                self.tables[t].update(ctx.xid, row, new);
                self.push_undo(ctx, Undo::Update(t, row));
                touched.insert(row);
                affected += 1;
                continue;
            }
            // DO NOTHING.
            if ctx.iso.uses_transaction_snapshot() && !ctx.snap.sees(ctx.xid, existing.xmin) {
                return Err(Stop::Fail(SqlError::concurrent_update()));
            }
            self.ssi.record_read(ctx.xid, read, &[]);
        }
        // Foreign keys after all the rows, as PostgreSQL's NO ACTION checks run at the end
        // of the statement (a row may reference one inserted after it).
        for (old, new) in &written_rows {
            self.check_parents(ctx, t, old.as_deref(), new)?;
            if let Some(old) = old {
                self.check_children(ctx, t, old, Some(new))?;
            }
        }
        Ok(written(CommandTag::Insert, rows, affected))
    }
}

/// Whether an INSERT's ON CONFLICT clause handles a duplicate in index `idx`: DO NOTHING
/// without a target handles every unique index, a target only its arbiter.
fn handles_conflict(on_conflict: &OnConflict, arbiter: Option<usize>, idx: usize) -> bool {
    match on_conflict {
        OnConflict::Error => false,
        OnConflict::DoNothing { target: None } => true,
        _ => Some(idx) == arbiter,
    }
}

/// A query's expressions in the order PostgreSQL's planner folds them: the select list
/// (with ORDER BY and GROUP BY, which join it), the join conditions and WHERE, HAVING.
fn query_exprs(s: &Select) -> impl Iterator<Item = &Expr> {
    projected(&s.items)
        .chain(s.order_by.iter().map(|o| &o.expr))
        .chain(&s.group_by)
        .chain(s.joins.iter().map(|j| &j.on))
        .chain(&s.filter.filter)
        .chain(&s.having)
}

/// An INSERT's expressions in the planner's order: a single row's values are its target
/// list and come first; several rows are a VALUES list, folded after RETURNING and ON
/// CONFLICT.
fn insert_exprs<'a>(ins: &'a Insert, schema: &'a TableSchema) -> impl Iterator<Item = Planned<'a>> {
    let values = ins
        .rows
        .iter()
        .flat_map(|r| &r.0)
        .filter_map(|(c, v)| match v {
            InsertValue::Expr(e) => Some((c, e)),
            InsertValue::Default => None,
        });
    let single = ins.rows.len() == 1;
    let (set, filter) = match &ins.on_conflict {
        OnConflict::DoUpdate { set, filter, .. } => (&set[..], filter.as_ref()),
        _ => (&[][..], None),
    };
    assigned(schema, values.clone().filter(move |_| single))
        .chain(unassigned(projected(&ins.returning)))
        .chain(assigned(schema, set.iter().map(|(c, e)| (c, e))))
        .chain(unassigned(filter))
        .chain(assigned(schema, values.filter(move |_| !single)))
}
