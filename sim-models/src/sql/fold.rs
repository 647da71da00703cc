//! PostgreSQL's planner evaluates a statement's constant subexpressions before the
//! statement runs (`eval_const_expressions`), so their errors come first and do not need
//! a row: `SELECT nextval('s'), 7 / 0` fails with 22012 without drawing from the
//! sequence, and `DELETE FROM t WHERE id > 0 AND 1 / 0 = 1` fails on an empty table. The
//! model plans nothing ahead; before a statement touches a row it walks the statement's
//! expressions in the planner's order and evaluates what the planner would, and the
//! first error is the statement's. The expressions themselves still run per row.
//!
//! What the planner folds: operators and immutable functions whose arguments are all
//! constants, a literal's cast (read by its type's input function), and AND, OR and
//! `coalesce` up to their first deciding constant, whose later arguments it never looks
//! at. Columns, aggregates' results, `now()` (stable), casts to and from the timestamp
//! types (stable: they depend on the time zone) and the volatile functions (`nextval`,
//! `gen_random_uuid`, ...) are not constants, though their arguments are folded.

use std::borrow::Cow;

use super::engine::Ctx;
use super::error::SqlError;
use super::expr::{literal_type, read_literal, BinOp, Expr, Func, Scope, TupleEnv};
use super::schema::{Column, TableSchema};
use super::stmt::Projection;
use super::value::{ColumnType, Value};

/// What folding made of an expression: a literal stays borrowed.
enum Folded<'a> {
    Const(Cow<'a, Value>),
    /// Depends on a row or on something the planner must not evaluate early.
    Var,
}

/// An expression of a statement, and the column it is assigned to, if any (an UPDATE's
/// SET, an INSERT's VALUES): the planner folds the conversion to the column's type too,
/// so `999999.995` assigned to a `numeric(8, 2)` fails with 22003 with no row.
pub(crate) type Planned<'a> = (&'a Expr, Option<&'a Column>);

/// What folding reads beside the expressions: an empty row to evaluate constants in,
/// and the statement's tables, whose column types a quoted literal compared with a
/// column takes.
struct Cx<'s> {
    env: TupleEnv<'s>,
    scope: Option<&'s Scope<'s>>,
}

/// Evaluates the constant subexpressions of `exprs`, in order, as PostgreSQL's planner
/// does, and reads each quoted literal compared with a column of `scope` by that
/// column's type, as its parser does; the first error is the one the statement fails
/// with.
pub(crate) fn check_constants<'a>(
    ctx: &Ctx,
    scope: Option<&Scope<'_>>,
    exprs: impl IntoIterator<Item = Planned<'a>>,
) -> Result<(), SqlError> {
    let empty = TableSchema::new(String::new());
    let cx = Cx {
        env: TupleEnv {
            schema: &empty,
            tuple: &[],
            excluded: None,
            ctx: Some(ctx),
        },
        scope,
    };
    for (e, column) in exprs {
        if let (Folded::Const(_), Some(c)) = (fold(e, &cx)?, column) {
            e.eval_assigned(&cx.env, c.ty)?.coerce(c.ty, &c.name)?;
        }
    }
    Ok(())
}

/// PostgreSQL's parser gives a quoted literal beside a column the type the operator
/// wants there and reads it at once: `id = 'bad-uuid'` fails with 22P02 on any table.
fn read_literals_beside(op: BinOp, a: &Expr, b: &Expr, cx: &Cx<'_>) -> Result<(), SqlError> {
    let Some(scope) = cx.scope else {
        return Ok(());
    };
    for (x, y) in [(a, b), (b, a)] {
        if let (Expr::Col(c), Expr::Lit(Value::Text(text))) = (x, y) {
            let ty = scope.column_type(c).and_then(|t| literal_type(op, t));
            if let Some(ty) = ty {
                read_literal(text, ty, &cx.env)?;
            }
        }
    }
    Ok(())
}

/// Expressions assigned to no column.
pub(crate) fn unassigned<'a>(
    exprs: impl IntoIterator<Item = &'a Expr>,
) -> impl Iterator<Item = Planned<'a>> {
    exprs.into_iter().map(|e| (e, None))
}

/// `(column, expression)` pairs of `schema` as assigned expressions.
pub(crate) fn assigned<'a, S: AsRef<str> + 'a>(
    schema: &'a TableSchema,
    pairs: impl IntoIterator<Item = (&'a S, &'a Expr)>,
) -> impl Iterator<Item = Planned<'a>> {
    pairs.into_iter().map(|(name, e)| {
        let column = schema
            .column_index(name.as_ref())
            .map(|i| &schema.columns[i]);
        (e, column)
    })
}

/// The expressions of a select list or RETURNING.
pub(crate) fn projected(p: &Projection) -> impl Iterator<Item = &Expr> {
    let items = match p {
        Projection::Items(items) => &items[..],
        Projection::All | Projection::Nothing => &[],
    };
    items.iter().map(|i| &i.expr)
}

fn fold<'a>(e: &'a Expr, cx: &Cx<'_>) -> Result<Folded<'a>, SqlError> {
    Ok(match e {
        Expr::Col(_) | Expr::Excluded(_) | Expr::Param(_) => Folded::Var,
        Expr::Lit(v) => Folded::Const(Cow::Borrowed(v)),
        Expr::Agg(_, arg) => {
            if let Some(a) = arg {
                fold(a, cx)?;
            }
            Folded::Var
        }
        Expr::Bin(op @ (BinOp::And | BinOp::Or), a, b) => {
            // A constant FALSE (for AND; TRUE for OR) decides the whole and the planner
            // stops there: `false AND 1 / 0 = 1` is false, `1 / 0 = 1 AND false` fails.
            let decisive = Value::Bool(*op == BinOp::Or);
            let mut constant = true;
            for x in [a, b] {
                match fold(x, cx)? {
                    Folded::Const(v) if *v == decisive => return Ok(Folded::Const(v)),
                    Folded::Const(_) => {}
                    Folded::Var => constant = false,
                }
            }
            evaluated_if(constant, e, cx)?
        }
        Expr::Bin(op, a, b) => {
            read_literals_beside(*op, a, b, cx)?;
            all_constant(e, [&**a, &**b], cx)?
        }
        Expr::Not(a) | Expr::IsNull(a) | Expr::Neg(a) => all_constant(e, [&**a], cx)?,
        // A literal's cast is its type's input function, called while the statement is
        // parsed: `'x'::uuid` fails even if no row reaches it.
        Expr::Cast(a, _) if matches!(**a, Expr::Lit(_)) => evaluated_if(true, e, cx)?,
        Expr::Cast(a, ty) => match fold(a, cx)? {
            Folded::Const(v) if !stable_cast(&v, *ty) => evaluated_if(true, e, cx)?,
            _ => Folded::Var,
        },
        Expr::InList { expr, list, .. } => {
            for item in list {
                read_literals_beside(BinOp::Eq, expr, item, cx)?;
            }
            all_constant(e, std::iter::once(&**expr).chain(list), cx)?
        }
        Expr::Like { expr, pattern, .. } => all_constant(e, [&**expr, &**pattern], cx)?,
        Expr::Func(Func::Coalesce, args) => {
            // The first constant that is not NULL is the value, and no later argument is
            // looked at.
            let mut constant = true;
            for a in args {
                match fold(a, cx)? {
                    Folded::Const(v) if v.is_null() => {}
                    Folded::Const(v) if constant => return Ok(Folded::Const(v)),
                    Folded::Const(_) => return Ok(Folded::Var),
                    Folded::Var => constant = false,
                }
            }
            evaluated_if(constant, e, cx)?
        }
        Expr::Func(f, args) if immutable(*f) => all_constant(e, args, cx)?,
        Expr::Func(_, args) => {
            for a in args {
                fold(a, cx)?;
            }
            Folded::Var
        }
    })
}

/// Folds every argument, then the expression itself if they were all constants.
fn all_constant<'a>(
    e: &'a Expr,
    args: impl IntoIterator<Item = &'a Expr>,
    cx: &Cx<'_>,
) -> Result<Folded<'a>, SqlError> {
    let mut constant = true;
    for a in args {
        if let Folded::Var = fold(a, cx)? {
            constant = false;
        }
    }
    evaluated_if(constant, e, cx)
}

fn evaluated_if<'a>(constant: bool, e: &'a Expr, cx: &Cx<'_>) -> Result<Folded<'a>, SqlError> {
    Ok(match constant {
        true => Folded::Const(Cow::Owned(e.eval_in(&cx.env)?)),
        false => Folded::Var,
    })
}

/// PostgreSQL's immutable functions among the model's: the same arguments, the same
/// result, whenever they are called.
fn immutable(f: Func) -> bool {
    match f {
        Func::Coalesce
        | Func::Lower
        | Func::Upper
        | Func::Length
        | Func::Abs
        | Func::Greatest
        | Func::Least
        | Func::Round => true,
        Func::Now
        | Func::GenRandomUuid
        | Func::Nextval
        | Func::Currval
        | Func::Setval
        | Func::Lastval
        | Func::PgGetSerialSequence => false,
    }
}

/// Casts to and from the timestamp types depend on the session's time zone or date
/// style, so PostgreSQL marks them stable and does not fold them.
fn stable_cast(v: &Value, to: ColumnType) -> bool {
    matches!(to, ColumnType::Timestamp | ColumnType::TimestampTz)
        || matches!(v, Value::Timestamp(_) | Value::TimestampTz(_))
}
