//! Statement execution inside one transaction: scans through a snapshot, row locks,
//! PostgreSQL's re-check of the latest row version after a lock wait (EvalPlanQual),
//! unique checks, writes, and the SSI bookkeeping of serializable transactions.
//!
//! Every statement is *re-runnable*: it takes all the row locks it needs and does every
//! check that may wait before it writes anything, so when it blocks, nothing but locks
//! has changed, and re-running it later with the same snapshot finds the same rows (the
//! locks it already holds are granted again at no cost). This is how the engine resumes a
//! statement that waited, without coroutines.

use std::collections::BTreeSet;

use super::engine::{Ctx, Engine, Stop, Undo};
use super::error::SqlError;
use super::expr::Expr;
use super::locks::Acquire;
use super::mvcc::{RowId, Version, Xid};
use super::schema::TableSchema;
use super::ssi::ReadPredicate;
use super::stmt::{
    CommandTag, Count, Delete, Insert, IsolationLevel, LockMode, LockWait, OnConflict, Select,
    Statement, StmtResult, Update, Where,
};
use super::value::Value;

/// Whether a tuple satisfies a bound WHERE (key already coerced to the column types).
fn where_matches(
    schema: &TableSchema,
    pk: &[usize],
    w: &Where,
    tuple: &[Value],
) -> Result<bool, SqlError> {
    if let Some(key) = &w.key {
        if pk.iter().zip(key).any(|(&c, k)| &tuple[c] != k) {
            return Ok(false);
        }
    }
    match &w.filter {
        Some(e) => e.matches(schema, tuple, None),
        None => Ok(true),
    }
}

/// Evaluates `SET` assignments against the old tuple (all of them see the old values, as
/// in SQL) and checks the new values against the column types and NOT NULL.
fn apply_set(
    schema: &TableSchema,
    old: &[Value],
    set: &[(usize, &Expr)],
    excluded: Option<&[Value]>,
) -> Result<Vec<Value>, SqlError> {
    let mut new = old.to_vec();
    for &(c, e) in set {
        let v = e.eval(schema, old, excluded)?;
        new[c] = schema.check_value(&schema.columns[c], v)?;
    }
    Ok(new)
}

fn bind_set<'a>(
    schema: &TableSchema,
    set: &'a [(String, Expr)],
) -> Result<Vec<(usize, &'a Expr)>, SqlError> {
    set.iter()
        .map(|(c, e)| {
            e.check_columns(schema)?;
            Ok((schema.require_column(c)?, e))
        })
        .collect()
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

    /// Checks the WHERE's columns and coerces its key to the key column types.
    fn bind_where(&self, t: usize, w: &Where) -> Result<Where, SqlError> {
        let schema = &self.tables[t].schema;
        if let Some(e) = &w.filter {
            e.check_columns(schema)?;
        }
        let key = match &w.key {
            None => None,
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
        Ok(Where {
            key,
            filter: w.filter.clone(),
        })
    }

    /// The rows the statement's snapshot sees that match `w`, as (row, visible version).
    /// Serializable transactions record the read and their rw-conflicts out.
    fn scan(&mut self, ctx: &Ctx, t: usize, w: &Where) -> Result<Vec<(RowId, usize)>, Stop> {
        let table = &self.tables[t];
        let schema = &table.schema;
        let pk = &table.indexes[0].columns;
        let serializable = self.ssi.is_tracked(ctx.xid);
        let mut out = Vec::new();
        let mut writers: BTreeSet<Xid> = BTreeSet::new();
        let mut visit = |row: RowId, chain: &[Version]| -> Result<(), SqlError> {
            let vis = chain.iter().rposition(|v| v.visible_to(ctx.xid, &ctx.snap));
            if let Some(vi) = vis {
                let v = &chain[vi];
                if where_matches(schema, pk, w, &v.tuple)? {
                    out.push((row, vi));
                    // A concurrent transaction deleted or replaced a row we read.
                    if let Some(x) = v.xmax.filter(|x| !ctx.snap.sees(ctx.xid, *x)) {
                        if serializable {
                            writers.insert(x);
                        }
                    }
                }
            }
            if serializable {
                // Versions a concurrent transaction created that we would have read.
                for v in chain {
                    if !ctx.snap.sees(ctx.xid, v.xmin)
                        && where_matches(schema, pk, w, &v.tuple).unwrap_or(true)
                    {
                        writers.insert(v.xmin);
                    }
                }
            }
            Ok(())
        };
        // Straight through the chains, in row order, rather than looking each row up.
        match &w.key {
            Some(k) => {
                for row in table.key_rows(0, k) {
                    visit(row, &table.chains[&row])?;
                }
            }
            None => {
                for (&row, chain) in &table.chains {
                    visit(row, chain)?;
                }
            }
        }
        if serializable {
            self.ssi.record_read(
                ctx.xid,
                ReadPredicate {
                    table: t,
                    filter: w.clone(),
                },
            );
            for x in writers {
                if self.ssi.add_conflict(ctx.xid, x, ctx.xid).is_err() {
                    return Err(Stop::Fail(SqlError::rw_dependencies()));
                }
            }
        }
        Ok(out)
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
        if where_matches(&table.schema, self.pk(t), w, &tail.tuple)? {
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
            && self
                .ssi
                .has_read(ctx.xid, t, &table.schema, self.pk(t), &tail.tuple)
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
        let table = &self.tables[t];
        self.ssi
            .write_conflicts(
                ctx.xid,
                t,
                &table.schema,
                &table.indexes[0].columns,
                old,
                new,
            )
            .map_err(|_| Stop::Fail(SqlError::rw_dependencies()))
    }

    fn push_undo(&mut self, ctx: &Ctx, u: Undo) {
        if let Some(txn) = self.txns.get_mut(&ctx.xid) {
            txn.undo.push(u);
        }
    }

    fn exec_select(&mut self, ctx: &Ctx, s: &Select) -> Result<StmtResult, Stop> {
        let t = self.table_id(&s.table)?;
        let w = self.bind_where(t, &s.filter)?;
        let targets = self.scan(ctx, t, &w)?;
        let limit = s.limit.unwrap_or(usize::MAX);
        let mut rows = Vec::new();
        match s.lock {
            None => {
                for (row, vi) in targets.into_iter().take(limit) {
                    let table = &self.tables[t];
                    rows.push(table.row(table.chains[&row][vi].tuple.clone()));
                }
            }
            Some(l) => {
                for (row, vi) in targets {
                    if rows.len() >= limit {
                        break;
                    }
                    if !self.lock_row(ctx, t, row, l.mode, l.wait)? {
                        continue;
                    }
                    if let Some(tuple) = self.recheck(ctx, t, row, vi, &w)? {
                        rows.push(self.tables[t].row(tuple));
                    }
                }
            }
        }
        Ok(StmtResult::rows(CommandTag::Select, rows))
    }

    fn exec_count(&mut self, ctx: &Ctx, c: &Count) -> Result<StmtResult, Stop> {
        let t = self.table_id(&c.table)?;
        let w = self.bind_where(t, &c.filter)?;
        let n = self.scan(ctx, t, &w)?.len() as u64;
        Ok(StmtResult {
            tag: CommandTag::Count,
            rows: Vec::new(),
            affected: n,
        })
    }

    /// Locks every target (waiting as needed), then re-checks each: the rows to write.
    fn lock_targets(
        &mut self,
        ctx: &Ctx,
        t: usize,
        w: &Where,
    ) -> Result<Vec<(RowId, Vec<Value>)>, Stop> {
        let targets = self.scan(ctx, t, w)?;
        for &(row, _) in &targets {
            self.lock_row(ctx, t, row, LockMode::Update, LockWait::Wait)?;
        }
        let mut work = Vec::with_capacity(targets.len());
        for (row, vi) in targets {
            if let Some(tuple) = self.recheck(ctx, t, row, vi, w)? {
                work.push((row, tuple));
            }
        }
        Ok(work)
    }

    fn exec_update(&mut self, ctx: &Ctx, u: &Update) -> Result<StmtResult, Stop> {
        let t = self.table_id(&u.table)?;
        let schema = self.tables[t].schema.clone();
        let set = bind_set(&schema, &u.set)?;
        let w = self.bind_where(t, &u.filter)?;
        let work = self.lock_targets(ctx, t, &w)?;
        let news = work
            .iter()
            .map(|(_, old)| apply_set(&schema, old, &set, None))
            .collect::<Result<Vec<_>, _>>()?;
        self.check_new_keys(ctx, t, &work, &news)?;
        let mut rows = Vec::with_capacity(news.len());
        for ((row, old), new) in work.into_iter().zip(news) {
            self.ssi_write(ctx, t, Some(&old), Some(&new))?;
            rows.push(self.tables[t].row(new.clone()));
            self.tables[t].update(ctx.xid, row, new);
            self.push_undo(ctx, Undo::Update(t, row));
        }
        Ok(StmtResult::rows(CommandTag::Update, rows))
    }

    fn exec_delete(&mut self, ctx: &Ctx, d: &Delete) -> Result<StmtResult, Stop> {
        let t = self.table_id(&d.table)?;
        let w = self.bind_where(t, &d.filter)?;
        let work = self.lock_targets(ctx, t, &w)?;
        let mut rows = Vec::with_capacity(work.len());
        for (row, old) in work {
            self.ssi_write(ctx, t, Some(&old), None)?;
            rows.push(self.tables[t].row(old));
            self.tables[t].delete(ctx.xid, row);
            self.push_undo(ctx, Undo::Delete(t, row));
        }
        Ok(StmtResult::rows(CommandTag::Delete, rows))
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

    fn exec_insert(&mut self, ctx: &Ctx, ins: &Insert) -> Result<StmtResult, Stop> {
        let t = self.table_id(&ins.table)?;
        let schema = self.tables[t].schema.clone();
        let [row] = ins.rows.as_slice() else {
            return Err(Stop::Fail(SqlError::FeatureNotSupported {
                feature: "multi-row INSERT".into(),
            }));
        };
        let tuple = schema.tuple_from_row(row)?;
        let arbiter = match &ins.on_conflict {
            OnConflict::Error | OnConflict::DoNothing { target: None } => None,
            OnConflict::DoNothing { target: Some(cols) }
            | OnConflict::DoUpdate { target: cols, .. } => Some(self.arbiter(t, cols)?),
        };
        let set = match &ins.on_conflict {
            OnConflict::DoUpdate { set, filter, .. } => {
                if let Some(f) = filter {
                    f.check_columns(&schema)?;
                }
                bind_set(&schema, set)?
            }
            _ => Vec::new(),
        };
        // The arbiter index first, as PostgreSQL's speculative insertion checks it first.
        let n = self.tables[t].indexes.len();
        let order = arbiter
            .into_iter()
            .chain((0..n).filter(|i| Some(*i) != arbiter));
        let mut conflict = None;
        for idx in order {
            let Some(k) = self.tables[t].indexes[idx].key_of(&tuple) else {
                continue;
            };
            if let Some(row) = self.check_unique(ctx, t, idx, &k, None)? {
                conflict = Some((idx, row, k));
                break;
            }
        }
        let Some((idx, row, key)) = conflict else {
            self.ssi_write(ctx, t, None, Some(&tuple))?;
            let out = self.tables[t].row(tuple.clone());
            let row = self.tables[t].insert(ctx.xid, tuple);
            self.push_undo(ctx, Undo::Insert(t, row));
            return Ok(StmtResult::rows(CommandTag::Insert, vec![out]));
        };
        let handled = match &ins.on_conflict {
            OnConflict::Error => false,
            OnConflict::DoNothing { target: None } => true,
            _ => Some(idx) == arbiter,
        };
        if !handled {
            return Err(self.unique_error(ctx, t, idx, row, &key));
        }
        let existing = self.tables[t].tail(row).clone();
        let existing_key: Vec<Value> = self
            .pk(t)
            .iter()
            .map(|&c| existing.tuple[c].clone())
            .collect();
        if let OnConflict::DoUpdate { filter, .. } = &ins.on_conflict {
            self.lock_row(ctx, t, row, LockMode::Update, LockWait::Wait)?;
            // Under RR/SERIALIZABLE, a conflicting row our snapshot cannot see was
            // committed concurrently: updating it would be a lost update (40001).
            if ctx.iso.uses_transaction_snapshot() && !ctx.snap.sees(ctx.xid, existing.xmin) {
                return Err(Stop::Fail(SqlError::concurrent_update()));
            }
            self.ssi.record_read(
                ctx.xid,
                ReadPredicate {
                    table: t,
                    filter: Where {
                        key: Some(existing_key),
                        filter: None,
                    },
                },
            );
            if let Some(f) = filter {
                if !f.matches(&schema, &existing.tuple, Some(&tuple))? {
                    return Ok(StmtResult::rows(CommandTag::Insert, Vec::new()));
                }
            }
            let new = apply_set(&schema, &existing.tuple, &set, Some(&tuple))?;
            let olds = [(row, existing.tuple.clone())];
            self.check_new_keys(ctx, t, &olds, std::slice::from_ref(&new))?;
            self.ssi_write(ctx, t, Some(&existing.tuple), Some(&new))?;
            let out = self.tables[t].row(new.clone());
            self.tables[t].update(ctx.xid, row, new);
            self.push_undo(ctx, Undo::Update(t, row));
            return Ok(StmtResult::rows(CommandTag::Insert, vec![out]));
        }
        // DO NOTHING.
        if ctx.iso.uses_transaction_snapshot() && !ctx.snap.sees(ctx.xid, existing.xmin) {
            return Err(Stop::Fail(SqlError::concurrent_update()));
        }
        self.ssi.record_read(
            ctx.xid,
            ReadPredicate {
                table: t,
                filter: Where {
                    key: Some(existing_key),
                    filter: None,
                },
            },
        );
        Ok(StmtResult::rows(CommandTag::Insert, Vec::new()))
    }
}
