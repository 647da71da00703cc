//! Statements of SQL text, planned onto the engine's [`Statement`]s. Planning needs no
//! schema: names are checked by the engine when the statement runs, as PostgreSQL
//! checks them when it plans. Every clause the model does not honour is refused here
//! (0A000) rather than dropped.

use sim_runtime::time::Duration;
use sqlparser::ast::{self, SetExpr, TableFactor};

use super::expr::{column_type, expr, ident, object_name, syntax, unsupported, Place};
use crate::sql::error::SqlError;
use crate::sql::expr::{Expr, Func};
use crate::sql::schema::{
    CheckConstraint, Column, ColumnDefault, ForeignKey, TableSchema, UniqueConstraint,
};
use crate::sql::stmt::{
    Delete, Insert, InsertRow, InsertValue, IsolationLevel, Join, JoinKind, LockMode, LockWait,
    OnConflict, OrderBy, Overriding, Projection, RowLocking, Select, SelectItem, Setting,
    Statement, Update, Where,
};
use crate::sql::value::Value;

/// A statement planned from text: the engine's statement with `$n` left in its
/// expressions, and the parts that binding turns into plain values.
#[derive(Clone, Debug)]
pub(crate) struct Plan {
    pub(crate) stmt: Statement,
    /// LIMIT and OFFSET, when given (a number or a parameter).
    pub(crate) limit: Option<Expr>,
    pub(crate) offset: Option<Expr>,
}

pub(crate) fn plan(stmt: &ast::Statement) -> Result<Plan, SqlError> {
    let mut p = Plan {
        stmt: Statement::Commit,
        limit: None,
        offset: None,
    };
    p.stmt = match stmt {
        ast::Statement::Query(q) => query(q, &mut p)?,
        ast::Statement::Insert(i) => insert(i)?,
        ast::Statement::Update {
            table,
            assignments,
            from,
            selection,
            returning,
            or,
            limit,
        } => {
            if from.is_some() || or.is_some() || limit.is_some() {
                return Err(unsupported("UPDATE ... FROM"));
            }
            let (name, alias) = single_table(table)?;
            if alias.is_some() {
                return Err(unsupported("a table alias in UPDATE"));
            }
            Statement::Update(Update {
                table: name,
                filter: filter(selection.as_ref())?,
                set: assignments_of(assignments)?,
                returning: returning_of(returning.as_deref())?,
            })
        }
        ast::Statement::Delete(d) => delete(d)?,
        ast::Statement::CreateTable(c) => create_table(c)?,
        ast::Statement::CreateIndex(c) => create_index(c)?,
        ast::Statement::StartTransaction {
            modes,
            modifier: None,
            statements,
            exception: None,
            has_end_keyword: false,
            ..
        } if statements.is_empty() => Statement::Begin(isolation(modes)?),
        ast::Statement::Commit {
            chain: false,
            modifier: None,
            ..
        } => Statement::Commit,
        ast::Statement::Rollback {
            chain: false,
            savepoint,
        } => match savepoint {
            None => Statement::Rollback,
            Some(name) => Statement::RollbackToSavepoint(ident(name)),
        },
        ast::Statement::Savepoint { name } => Statement::Savepoint(ident(name)),
        ast::Statement::ReleaseSavepoint { name } => Statement::ReleaseSavepoint(ident(name)),
        ast::Statement::Set(set) => Statement::Set(setting(set)?),
        other => {
            let text = other.to_string();
            let words: Vec<&str> = text.split_whitespace().take(2).collect();
            return Err(unsupported(format!("the statement {}", words.join(" "))));
        }
    };
    Ok(p)
}

fn query(q: &ast::Query, p: &mut Plan) -> Result<Statement, SqlError> {
    if q.with.is_some() {
        return Err(unsupported("WITH (common table expressions)"));
    }
    if q.fetch.is_some() || q.for_clause.is_some() || !q.pipe_operators.is_empty() {
        return Err(unsupported(format!("{q}")));
    }
    let s = match q.body.as_ref() {
        SetExpr::Select(s) => s,
        SetExpr::SetOperation { op, .. } => return Err(unsupported(format!("{op}"))),
        SetExpr::Values(_) => return Err(unsupported("VALUES as a query")),
        _ => return Err(unsupported(format!("the query {q}"))),
    };
    if s.distinct.is_some() {
        return Err(unsupported("SELECT DISTINCT"));
    }
    if s.into.is_some() {
        return Err(unsupported("SELECT INTO"));
    }
    if !s.named_window.is_empty() || s.qualify.is_some() || s.top.is_some() {
        return Err(unsupported(format!("{s}")));
    }
    if s.from.is_empty() {
        return select_without_from(s, q);
    }
    let [from] = s.from.as_slice() else {
        return Err(unsupported("several tables in FROM (write a JOIN ... ON)"));
    };
    let (table, alias) = table_factor(&from.relation)?;
    let mut joins = Vec::new();
    for j in &from.joins {
        let (kind, constraint) = match &j.join_operator {
            ast::JoinOperator::Join(c) | ast::JoinOperator::Inner(c) => (JoinKind::Inner, c),
            ast::JoinOperator::Left(c) | ast::JoinOperator::LeftOuter(c) => (JoinKind::Left, c),
            other => return Err(unsupported(format!("the join {other:?}"))),
        };
        let ast::JoinConstraint::On(on) = constraint else {
            return Err(unsupported("a join without ON (USING, NATURAL, CROSS)"));
        };
        let (table, alias) = table_factor(&j.relation)?;
        joins.push(Join {
            kind,
            table,
            alias,
            on: expr(on, Place::Scalar)?,
        });
    }
    let items = projection(&s.projection, Place::Aggregates)?;
    let group_by = match &s.group_by {
        ast::GroupByExpr::Expressions(exprs, modifiers) if modifiers.is_empty() => exprs
            .iter()
            .map(|e| expr(e, Place::Scalar))
            .collect::<Result<_, _>>()?,
        other => return Err(unsupported(format!("{other}"))),
    };
    let having = s
        .having
        .as_ref()
        .map(|e| expr(e, Place::Aggregates))
        .transpose()?;
    let order_by = match &q.order_by {
        None => Vec::new(),
        Some(o) => order_by(o, &items)?,
    };
    if let Some(limit) = &q.limit_clause {
        match limit {
            ast::LimitClause::LimitOffset {
                limit,
                offset,
                limit_by,
            } if limit_by.is_empty() => {
                p.limit = limit.as_ref().map(|e| expr(e, Place::Scalar)).transpose()?;
                p.offset = offset
                    .as_ref()
                    .map(|o| expr(&o.value, Place::Scalar))
                    .transpose()?;
            }
            other => return Err(unsupported(format!("{other}"))),
        }
    }
    let lock = match q.locks.as_slice() {
        [] => None,
        [l] => {
            if l.of.is_some() {
                return Err(unsupported("FOR UPDATE OF"));
            }
            Some(RowLocking {
                mode: match l.lock_type {
                    ast::LockType::Update => LockMode::Update,
                    ast::LockType::Share => LockMode::Share,
                },
                wait: match l.nonblock {
                    None => LockWait::Wait,
                    Some(ast::NonBlock::Nowait) => LockWait::NoWait,
                    Some(ast::NonBlock::SkipLocked) => LockWait::SkipLocked,
                },
            })
        }
        _ => return Err(unsupported("several locking clauses")),
    };
    Ok(Statement::Select(Select {
        table,
        alias,
        joins,
        items,
        filter: filter(s.selection.as_ref())?,
        group_by,
        having,
        order_by,
        lock,
        limit: None,
        offset: None,
    }))
}

/// `SELECT pg_sleep(seconds)`, a statement of its own (it takes virtual time), or a list
/// of expressions without FROM (one row).
fn select_without_from(s: &ast::Select, q: &ast::Query) -> Result<Statement, SqlError> {
    if let [ast::SelectItem::UnnamedExpr(ast::Expr::Function(f))] = s.projection.as_slice() {
        if object_name(&f.name)? == "pg_sleep" && s.selection.is_none() {
            if let ast::FunctionArguments::List(list) = &f.args {
                if let [ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(e))] =
                    list.args.as_slice()
                {
                    // Any number of seconds: a sleep's length needs no exact arithmetic.
                    let seconds = match e {
                        ast::Expr::Value(v) => match &v.value {
                            ast::Value::Number(n, _) => n.parse::<f64>().ok(),
                            _ => None,
                        },
                        _ => None,
                    }
                    .filter(|s| s.is_finite() && *s >= 0.0)
                    .ok_or_else(|| unsupported("pg_sleep() of anything but a number"))?;
                    return Ok(Statement::Sleep(Duration::from_secs_f64(seconds)));
                }
            }
        }
    }
    if s.selection.is_some()
        || s.having.is_some()
        || s.distinct.is_some()
        || q.order_by.is_some()
        || q.limit_clause.is_some()
        || !matches!(&s.group_by, ast::GroupByExpr::Expressions(e, m) if e.is_empty() && m.is_empty())
    {
        return Err(unsupported(format!(
            "a SELECT without FROM with clauses other than its list ({q})"
        )));
    }
    let Projection::Items(items) = projection(&s.projection, Place::Aggregates)? else {
        return Err(syntax("SELECT * with no tables specified is not valid"));
    };
    if let Some(item) = items.iter().find(|i| i.expr.has_agg()) {
        return Err(unsupported(format!(
            "the aggregate {} without FROM",
            item.expr
        )));
    }
    Ok(Statement::Compute(items))
}

/// A table in FROM: its name and alias.
fn table_factor(t: &TableFactor) -> Result<(String, Option<String>), SqlError> {
    match t {
        TableFactor::Table {
            name,
            alias,
            args: None,
            with_hints,
            version: None,
            with_ordinality: false,
            partitions,
            json_path: None,
            sample: None,
            index_hints,
        } if with_hints.is_empty() && partitions.is_empty() && index_hints.is_empty() => {
            let alias = match alias {
                None => None,
                Some(a) if a.columns.is_empty() => Some(ident(&a.name)),
                Some(_) => return Err(unsupported("column aliases on a table")),
            };
            Ok((object_name(name)?, alias))
        }
        TableFactor::Derived { .. } => Err(unsupported("subqueries")),
        other => Err(unsupported(format!("the table expression {other}"))),
    }
}

fn single_table(t: &ast::TableWithJoins) -> Result<(String, Option<String>), SqlError> {
    if !t.joins.is_empty() {
        return Err(unsupported("a join in UPDATE or DELETE"));
    }
    table_factor(&t.relation)
}

fn filter(selection: Option<&ast::Expr>) -> Result<Where, SqlError> {
    Ok(Where {
        key: None,
        filter: selection.map(|e| expr(e, Place::Scalar)).transpose()?,
    })
}

/// The name PostgreSQL gives an output column without an alias.
fn item_name(e: &ast::Expr) -> String {
    match e {
        ast::Expr::Identifier(i) => ident(i),
        ast::Expr::CompoundIdentifier(parts) => parts.last().map_or("?column?".into(), ident),
        ast::Expr::Function(f) => object_name(&f.name).unwrap_or_else(|_| "?column?".into()),
        ast::Expr::Cast { expr, .. } | ast::Expr::Nested(expr) => item_name(expr),
        _ => "?column?".into(),
    }
}

fn projection(items: &[ast::SelectItem], place: Place) -> Result<Projection, SqlError> {
    if let [ast::SelectItem::Wildcard(options)] = items {
        if options.opt_exclude.is_some()
            || options.opt_except.is_some()
            || options.opt_replace.is_some()
            || options.opt_rename.is_some()
            || options.opt_ilike.is_some()
        {
            return Err(unsupported("options of *"));
        }
        return Ok(Projection::All);
    }
    items
        .iter()
        .map(|item| match item {
            ast::SelectItem::UnnamedExpr(e) => Ok(SelectItem {
                expr: expr(e, place)?,
                name: item_name(e),
            }),
            ast::SelectItem::ExprWithAlias { expr: e, alias } => Ok(SelectItem {
                expr: expr(e, place)?,
                name: ident(alias),
            }),
            ast::SelectItem::Wildcard(_) | ast::SelectItem::QualifiedWildcard(..) => Err(
                unsupported("* or t.* beside other output columns (name the columns)"),
            ),
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Projection::Items)
}

fn returning_of(items: Option<&[ast::SelectItem]>) -> Result<Projection, SqlError> {
    match items {
        None => Ok(Projection::Nothing),
        Some(items) => projection(items, Place::Scalar),
    }
}

fn order_by(o: &ast::OrderBy, items: &Projection) -> Result<Vec<OrderBy>, SqlError> {
    if o.interpolate.is_some() {
        return Err(unsupported("ORDER BY ... INTERPOLATE"));
    }
    let ast::OrderByKind::Expressions(exprs) = &o.kind else {
        return Err(unsupported("ORDER BY ALL"));
    };
    exprs
        .iter()
        .map(|o| {
            if o.with_fill.is_some() {
                return Err(unsupported("ORDER BY ... WITH FILL"));
            }
            let mut e = expr(&o.expr, Place::Aggregates)?;
            // `ORDER BY 2`: the second output column.
            if let Expr::Lit(Value::Int(k)) = e {
                let Projection::Items(items) = items else {
                    return Err(unsupported("ORDER BY a position with SELECT *"));
                };
                let item = usize::try_from(k)
                    .ok()
                    .and_then(|k| k.checked_sub(1))
                    .and_then(|k| items.get(k))
                    .ok_or_else(|| {
                        syntax(format!("ORDER BY position {k} is not in select list"))
                    })?;
                e = item.expr.clone();
            }
            Ok(OrderBy {
                expr: e,
                desc: o.options.asc == Some(false),
                nulls_first: o.options.nulls_first,
            })
        })
        .collect()
}

fn assignments_of(assignments: &[ast::Assignment]) -> Result<Vec<(String, Expr)>, SqlError> {
    assignments
        .iter()
        .map(|a| match &a.target {
            ast::AssignmentTarget::ColumnName(name) => {
                if matches!(&a.value, ast::Expr::Identifier(i)
                    if i.quote_style.is_none() && i.value.eq_ignore_ascii_case("default"))
                {
                    return Err(unsupported("SET col = DEFAULT"));
                }
                Ok((object_name(name)?, expr(&a.value, Place::Scalar)?))
            }
            ast::AssignmentTarget::Tuple(_) => Err(unsupported("SET (a, b) = (...)")),
        })
        .collect()
}

fn insert(i: &ast::Insert) -> Result<Statement, SqlError> {
    let ast::TableObject::TableName(name) = &i.table else {
        return Err(unsupported("INSERT INTO a table function"));
    };
    if i.or.is_some()
        || i.ignore
        || i.overwrite
        || !i.assignments.is_empty()
        || i.partitioned.is_some()
        || !i.after_columns.is_empty()
        || i.replace_into
        || i.priority.is_some()
        || i.insert_alias.is_some()
        || i.settings.is_some()
        || i.format_clause.is_some()
        || i.table_alias.is_some()
    {
        return Err(unsupported(format!("{i}")));
    }
    let columns: Vec<String> = i.columns.iter().map(ident).collect();
    let rows = match &i.source {
        // DEFAULT VALUES: one row of defaults.
        None if columns.is_empty() => vec![InsertRow::default()],
        None => return Err(syntax("at or near \"DEFAULT\"")),
        Some(source) => {
            let SetExpr::Values(values) = source.body.as_ref() else {
                return Err(unsupported("INSERT ... SELECT"));
            };
            if source.order_by.is_some() || source.limit_clause.is_some() || source.with.is_some() {
                return Err(unsupported(format!("{source}")));
            }
            if columns.is_empty() {
                return Err(unsupported(
                    "INSERT without a column list (name the columns: the model plans without \
                     the schema)",
                ));
            }
            let mut rows = Vec::with_capacity(values.rows.len());
            for row in &values.rows {
                if row.len() != columns.len() {
                    return Err(syntax(if row.len() > columns.len() {
                        "INSERT has more expressions than target columns"
                    } else {
                        "INSERT has more target columns than expressions"
                    }));
                }
                let row = columns
                    .iter()
                    .zip(row)
                    .map(|(c, e)| Ok((c.clone(), insert_value(e)?)))
                    .collect::<Result<Vec<_>, SqlError>>()?;
                rows.push(InsertRow(row));
            }
            rows
        }
    };
    let on_conflict = match &i.on {
        None => OnConflict::Error,
        Some(ast::OnInsert::OnConflict(c)) => {
            let target = match &c.conflict_target {
                None => None,
                Some(ast::ConflictTarget::Columns(cols)) => Some(cols.iter().map(ident).collect()),
                Some(ast::ConflictTarget::OnConstraint(_)) => {
                    return Err(unsupported("ON CONFLICT ON CONSTRAINT (name the columns)"))
                }
            };
            match &c.action {
                ast::OnConflictAction::DoNothing => OnConflict::DoNothing { target },
                ast::OnConflictAction::DoUpdate(u) => OnConflict::DoUpdate {
                    target: target.ok_or_else(|| {
                        syntax("ON CONFLICT DO UPDATE requires inference specification or constraint name")
                    })?,
                    set: assignments_of(&u.assignments)?,
                    filter: u
                        .selection
                        .as_ref()
                        .map(|e| expr(e, Place::Scalar))
                        .transpose()?,
                },
            }
        }
        Some(other) => return Err(unsupported(format!("{other}"))),
    };
    Ok(Statement::Insert(Insert {
        table: object_name(name)?,
        rows,
        overriding: None,
        on_conflict,
        returning: returning_of(i.returning.as_deref())?,
    }))
}

/// One value of VALUES: an expression (evaluated when the row is inserted), or DEFAULT.
fn insert_value(e: &ast::Expr) -> Result<InsertValue, SqlError> {
    if let ast::Expr::Identifier(i) = e {
        if i.quote_style.is_none() && i.value.eq_ignore_ascii_case("default") {
            return Ok(InsertValue::Default);
        }
    }
    let planned = expr(e, Place::Scalar)?;
    if planned.has_agg() {
        return Err(SqlError::GroupingError {
            message: "aggregate functions are not allowed in VALUES".into(),
        });
    }
    Ok(InsertValue::Expr(planned))
}

/// `OVERRIDING {SYSTEM | USER} VALUE` of an INSERT, which sqlparser does not read: the
/// text without the clause, and the clause. `None` when the text has no such clause.
pub(super) fn overriding(sql: &str) -> Option<(String, Overriding)> {
    use sqlparser::tokenizer::{Token, Tokenizer};
    let dialect = sqlparser::dialect::PostgreSqlDialect {};
    let tokens = Tokenizer::new(&dialect, sql).tokenize().ok()?;
    let words: Vec<String> = tokens
        .iter()
        .filter(|t| !matches!(t, Token::Whitespace(_)))
        .map(|t| match t {
            Token::Word(w) if w.quote_style.is_none() => w.value.to_ascii_uppercase(),
            _ => String::new(),
        })
        .collect();
    if words.first().map(String::as_str) != Some("INSERT") {
        return None;
    }
    let at = words.windows(3).position(|w| {
        w[0] == "OVERRIDING" && (w[1] == "SYSTEM" || w[1] == "USER") && w[2] == "VALUE"
    })?;
    let which = if words[at + 1] == "SYSTEM" {
        Overriding::System
    } else {
        Overriding::User
    };
    // The clause is three bare words: cut the first place the text spells them.
    let upper = sql.to_ascii_uppercase();
    let mut from = 0;
    while let Some(pos) = upper[from..].find("OVERRIDING") {
        let start = from + pos;
        let rest: Vec<&str> = upper[start..].split_whitespace().take(3).collect();
        if rest.len() == 3 && rest[1] == words[at + 1] && rest[2].starts_with("VALUE") {
            let value = upper[start..]
                .find(rest[2])
                .map(|p| start + p + "VALUE".len())?;
            let mut out = String::with_capacity(sql.len());
            out.push_str(&sql[..start]);
            out.push(' ');
            out.push_str(&sql[value..]);
            return Some((out, which));
        }
        from = start + "OVERRIDING".len();
    }
    None
}

fn delete(d: &ast::Delete) -> Result<Statement, SqlError> {
    if !d.tables.is_empty() || d.using.is_some() || !d.order_by.is_empty() || d.limit.is_some() {
        return Err(unsupported(format!("{d}")));
    }
    let tables = match &d.from {
        ast::FromTable::WithFromKeyword(t) => t,
        ast::FromTable::WithoutKeyword(_) => return Err(syntax("DELETE needs FROM")),
    };
    let [table] = tables.as_slice() else {
        return Err(unsupported("DELETE from several tables"));
    };
    let (name, alias) = single_table(table)?;
    if alias.is_some() {
        return Err(unsupported("a table alias in DELETE"));
    }
    Ok(Statement::Delete(Delete {
        table: name,
        filter: filter(d.selection.as_ref())?,
        returning: returning_of(d.returning.as_deref())?,
    }))
}

/// BEGIN's level, if it names one.
fn isolation(modes: &[ast::TransactionMode]) -> Result<Option<IsolationLevel>, SqlError> {
    let mut level = None;
    for m in modes {
        match m {
            ast::TransactionMode::IsolationLevel(l) => {
                level = Some(match l {
                    ast::TransactionIsolationLevel::ReadUncommitted
                    | ast::TransactionIsolationLevel::ReadCommitted => {
                        IsolationLevel::ReadCommitted
                    }
                    ast::TransactionIsolationLevel::RepeatableRead => {
                        IsolationLevel::RepeatableRead
                    }
                    ast::TransactionIsolationLevel::Serializable => IsolationLevel::Serializable,
                    other => return Err(unsupported(format!("ISOLATION LEVEL {other}"))),
                })
            }
            ast::TransactionMode::AccessMode(m) => return Err(unsupported(format!("BEGIN {m}"))),
        }
    }
    Ok(level)
}

fn setting(set: &ast::Set) -> Result<Setting, SqlError> {
    let ast::Set::SingleAssignment {
        scope,
        hivevar: false,
        variable,
        values,
    } = set
    else {
        return Err(match set {
            ast::Set::SetTransaction { .. } => {
                unsupported("SET TRANSACTION (give the isolation level to BEGIN)")
            }
            other => unsupported(format!("{other}")),
        });
    };
    if matches!(scope, Some(ast::ContextModifier::Local)) {
        return Err(unsupported("SET LOCAL"));
    }
    let name = object_name(variable)?;
    let [value] = values.as_slice() else {
        return Err(syntax(format!("SET {name} takes one value")));
    };
    let value = match value {
        ast::Expr::Value(v) => match &v.value {
            ast::Value::Number(n, _) => n.clone(),
            ast::Value::SingleQuotedString(s) => s.clone(),
            other => return Err(syntax(format!("SET {name} to {other}"))),
        },
        ast::Expr::Identifier(i) => i.value.clone(),
        other => return Err(syntax(format!("SET {name} to {other}"))),
    };
    match name.as_str() {
        "lock_timeout" => Ok(Setting::LockTimeout(timeout(&name, &value)?)),
        "statement_timeout" => Ok(Setting::StatementTimeout(timeout(&name, &value)?)),
        "default_transaction_isolation" => {
            let level = match value.to_lowercase().as_str() {
                "read committed" | "read uncommitted" => IsolationLevel::ReadCommitted,
                "repeatable read" => IsolationLevel::RepeatableRead,
                "serializable" => IsolationLevel::Serializable,
                _ => {
                    return Err(SqlError::InvalidParameterValue {
                        message: format!("invalid value for parameter \"{name}\": \"{value}\""),
                    })
                }
            };
            Ok(Setting::DefaultIsolation(level))
        }
        other => Err(unsupported(format!("the setting {other}"))),
    }
}

/// A timeout as PostgreSQL reads it: milliseconds, or a number with a unit; 0 is none.
fn timeout(name: &str, value: &str) -> Result<Option<Duration>, SqlError> {
    let bad = || SqlError::InvalidParameterValue {
        message: format!("invalid value for parameter \"{name}\": \"{value}\""),
    };
    let v = value.trim();
    let split = v
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(v.len());
    let (number, unit) = v.split_at(split);
    let number: f64 = number.parse().map_err(|_| bad())?;
    let ms_per = match unit.trim() {
        "" | "ms" => 1.0,
        "s" => 1e3,
        "min" => 60e3,
        "h" => 3600e3,
        "d" => 86_400e3,
        "us" => 1e-3,
        _ => return Err(bad()),
    };
    let ms = number * ms_per;
    if !ms.is_finite() || ms < 0.0 || ms > i32::MAX as f64 {
        return Err(bad());
    }
    Ok((ms > 0.0).then(|| Duration::from_secs_f64(ms / 1e3)))
}

fn create_table(c: &ast::CreateTable) -> Result<Statement, SqlError> {
    if c.or_replace || c.temporary || c.external || c.query.is_some() || c.like.is_some() {
        return Err(unsupported(format!(
            "CREATE {}TABLE ... {}",
            if c.temporary { "TEMPORARY " } else { "" },
            if c.query.is_some() { "AS" } else { "" }
        )));
    }
    let table = object_name(&c.name)?;
    let mut schema = TableSchema::new(table.clone());
    for col in &c.columns {
        let name = ident(&col.name);
        let (ty, serial) = column_type(&col.data_type)?;
        let mut column = Column {
            name: name.clone(),
            ty,
            nullable: !serial,
            default: serial.then_some(ColumnDefault::Serial),
        };
        for option in &col.options {
            match &option.option {
                ast::ColumnOption::Null => column.nullable = true,
                ast::ColumnOption::NotNull => column.nullable = false,
                ast::ColumnOption::Default(e) => column.default = Some(default_of(e)?),
                ast::ColumnOption::Unique {
                    is_primary: true,
                    characteristics: None,
                } => {
                    if !schema.primary_key.is_empty() {
                        return Err(multiple_primary_keys(&table));
                    }
                    schema.primary_key = vec![name.clone()];
                }
                ast::ColumnOption::Unique {
                    is_primary: false,
                    characteristics: None,
                } => schema.unique.push(UniqueConstraint {
                    name: option
                        .name
                        .as_ref()
                        .map_or_else(|| format!("{table}_{name}_key"), ident),
                    columns: vec![name.clone()],
                }),
                ast::ColumnOption::Check(e) => schema.checks.push(CheckConstraint {
                    name: option
                        .name
                        .as_ref()
                        .map_or_else(|| format!("{table}_{name}_check"), ident),
                    expr: expr(e, Place::Scalar)?,
                }),
                ast::ColumnOption::ForeignKey {
                    foreign_table,
                    referred_columns,
                    on_delete,
                    on_update,
                    characteristics: None,
                } => {
                    no_action(on_delete.as_ref(), on_update.as_ref())?;
                    schema.foreign_keys.push(ForeignKey {
                        name: option
                            .name
                            .as_ref()
                            .map_or_else(|| format!("{table}_{name}_fkey"), ident),
                        columns: vec![name.clone()],
                        table: object_name(foreign_table)?,
                        ref_columns: referred_columns.iter().map(ident).collect(),
                    });
                }
                ast::ColumnOption::Generated {
                    generated_as: which @ (ast::GeneratedAs::ByDefault | ast::GeneratedAs::Always),
                    sequence_options,
                    generation_expr: None,
                    ..
                } => {
                    if sequence_options.as_ref().is_some_and(|o| !o.is_empty()) {
                        return Err(unsupported("sequence options of an identity column"));
                    }
                    if serial || column.default.is_some() {
                        return Err(SqlError::SyntaxError {
                            message: format!(
                                "multiple default values specified for column \"{name}\" of table \"{table}\""
                            ),
                        });
                    }
                    column.default = Some(ColumnDefault::Identity {
                        always: matches!(which, ast::GeneratedAs::Always),
                    });
                    column.nullable = false;
                }
                other => return Err(unsupported(format!("the column option {other}"))),
            }
        }
        schema.columns.push(column);
    }
    for constraint in &c.constraints {
        let columns_of = |cols: &[ast::IndexColumn]| -> Result<Vec<String>, SqlError> {
            cols.iter()
                .map(|c| match &c.column.expr {
                    ast::Expr::Identifier(i) if c.operator_class.is_none() => Ok(ident(i)),
                    other => Err(unsupported(format!("the key part {other}"))),
                })
                .collect()
        };
        match constraint {
            ast::TableConstraint::PrimaryKey {
                name: _,
                columns,
                characteristics: None,
                ..
            } => {
                if !schema.primary_key.is_empty() {
                    return Err(multiple_primary_keys(&table));
                }
                schema.primary_key = columns_of(columns)?;
            }
            ast::TableConstraint::Unique {
                name,
                columns,
                characteristics: None,
                ..
            } => {
                let columns = columns_of(columns)?;
                schema.unique.push(UniqueConstraint {
                    name: name
                        .as_ref()
                        .map_or_else(|| format!("{table}_{}_key", columns.join("_")), ident),
                    columns,
                });
            }
            ast::TableConstraint::ForeignKey {
                name,
                columns,
                foreign_table,
                referred_columns,
                on_delete,
                on_update,
                characteristics: None,
                ..
            } => {
                no_action(on_delete.as_ref(), on_update.as_ref())?;
                let columns: Vec<String> = columns.iter().map(ident).collect();
                schema.foreign_keys.push(ForeignKey {
                    name: name
                        .as_ref()
                        .map_or_else(|| format!("{table}_{}_fkey", columns.join("_")), ident),
                    columns,
                    table: object_name(foreign_table)?,
                    ref_columns: referred_columns.iter().map(ident).collect(),
                });
            }
            ast::TableConstraint::Check {
                name,
                expr: e,
                enforced: None | Some(true),
            } => schema.checks.push(CheckConstraint {
                name: name
                    .as_ref()
                    .map_or_else(|| format!("{table}_check"), ident),
                expr: expr(e, Place::Scalar)?,
            }),
            other => return Err(unsupported(format!("the table constraint {other}"))),
        }
    }
    // Primary key columns are NOT NULL.
    for c in &mut schema.columns {
        if schema.primary_key.contains(&c.name) {
            c.nullable = false;
        }
    }
    if schema.primary_key.is_empty() {
        return Err(unsupported(
            "a table without a primary key (the model keys every table)",
        ));
    }
    Ok(Statement::CreateTable {
        schema,
        if_not_exists: c.if_not_exists,
    })
}

fn multiple_primary_keys(table: &str) -> SqlError {
    SqlError::InvalidTableDefinition {
        message: format!("multiple primary keys for table \"{table}\" are not allowed"),
    }
}

/// ON DELETE / ON UPDATE: only the default NO ACTION (and RESTRICT, which differs only in
/// when the check runs, and the model checks at once).
fn no_action(
    on_delete: Option<&ast::ReferentialAction>,
    on_update: Option<&ast::ReferentialAction>,
) -> Result<(), SqlError> {
    for (what, action) in [("ON DELETE", on_delete), ("ON UPDATE", on_update)] {
        match action {
            None
            | Some(ast::ReferentialAction::NoAction)
            | Some(ast::ReferentialAction::Restrict) => {}
            Some(other) => return Err(unsupported(format!("{what} {other}"))),
        }
    }
    Ok(())
}

/// A column's DEFAULT: a constant is kept as its value; anything else is evaluated for
/// each row that takes it. Like PostgreSQL, a default may not name a column (0A000) nor
/// aggregate (42803).
fn default_of(e: &ast::Expr) -> Result<ColumnDefault, SqlError> {
    let planned = expr(e, Place::Scalar)?;
    if planned.has_agg() {
        return Err(SqlError::GroupingError {
            message: "aggregate functions are not allowed in DEFAULT expressions".into(),
        });
    }
    let mut column = None;
    planned.visit(&mut |e| {
        if let Expr::Col(c) | Expr::Excluded(c) = e {
            column.get_or_insert_with(|| c.clone());
        }
        Ok(())
    })?;
    if column.is_some() {
        return Err(unsupported("a column reference in a DEFAULT expression"));
    }
    match planned {
        Expr::Lit(v) => Ok(ColumnDefault::Value(v)),
        Expr::Func(Func::Now, args) if args.is_empty() => Ok(ColumnDefault::Now),
        Expr::Cast(inner, ty) if matches!(*inner, Expr::Lit(_)) => {
            let Expr::Lit(v) = *inner else {
                unreachable!("matched above")
            };
            // A cast that needs the clock (`'now'::timestamptz`) is evaluated per row.
            let clock = std::cell::Cell::new(false);
            let cast = crate::sql::expr::cast(v.clone(), ty, || {
                clock.set(true);
                Err(unsupported("'now'"))
            });
            match cast {
                Ok(v) => Ok(ColumnDefault::Value(v)),
                Err(_) if clock.get() => {
                    Ok(ColumnDefault::Expr(Expr::Cast(Box::new(Expr::Lit(v)), ty)))
                }
                Err(e) => Err(e),
            }
        }
        other => Ok(ColumnDefault::Expr(other)),
    }
}

fn create_index(c: &ast::CreateIndex) -> Result<Statement, SqlError> {
    if c.predicate.is_some() {
        return Err(unsupported("partial indexes (CREATE INDEX ... WHERE)"));
    }
    if !c.include.is_empty() || c.using.is_some() || !c.with.is_empty() {
        return Err(unsupported(format!("{c}")));
    }
    let Some(name) = &c.name else {
        return Err(unsupported("CREATE INDEX without a name"));
    };
    let columns = c
        .columns
        .iter()
        .map(|col| match &col.column.expr {
            ast::Expr::Identifier(i) => Ok(ident(i)),
            other => Err(unsupported(format!("an index on the expression {other}"))),
        })
        .collect::<Result<_, _>>()?;
    Ok(Statement::CreateIndex {
        name: object_name(name)?,
        table: object_name(&c.table_name)?,
        columns,
        unique: c.unique,
        if_not_exists: c.if_not_exists,
    })
}
