//! Plans the SQL text of [`Command`]s: `CREATE`/`DROP SEQUENCE`, `SELECT f(...)` of a
//! sequence or advisory-lock function, `SET LOCAL`, `SHOW` and `RESET`. Everything else
//! goes to [`super::plan`].

use sqlparser::ast::{self, SelectItem, SetExpr};

use super::expr::{self as text_expr, Place};
use super::plan::{self, Plan};
use crate::sql::command::{CallFunc, Command};
use crate::sql::error::SqlError;
use crate::sql::sequence::SequenceDef;
use crate::sql::stmt::Statement;

fn with_stmt(stmt: Statement) -> Plan {
    Plan {
        stmt,
        limit: None,
        offset: None,
    }
}

/// `RESET name` and `RESET ALL`, which the parser does not know: read from the text.
pub(super) fn reset(sql: &str) -> Option<Result<Plan, SqlError>> {
    let text = sql.trim().trim_end_matches(';').trim();
    let mut words = text.split_whitespace();
    if !words.next()?.eq_ignore_ascii_case("reset") {
        return None;
    }
    let name = match (words.next(), words.next()) {
        (Some(n), None) => n.to_lowercase(),
        _ => return Some(Err(text_expr::syntax(format!("at or near \"{text}\"")))),
    };
    let name = (name != "all").then_some(name);
    Some(Ok(with_stmt(Statement::Command(Command::Reset(name)))))
}

/// The plan of `stmt` if it is a command.
pub(super) fn plan(stmt: &ast::Statement) -> Option<Result<Plan, SqlError>> {
    let planned = match stmt {
        ast::Statement::CreateSequence {
            temporary: false,
            if_not_exists,
            name,
            data_type: None,
            sequence_options,
            owned_by: None,
        } => create_sequence(name, *if_not_exists, sequence_options),
        ast::Statement::Drop {
            object_type: ast::ObjectType::Sequence,
            if_exists,
            names,
            cascade: false,
            ..
        } => names
            .iter()
            .map(text_expr::object_name)
            .collect::<Result<Vec<_>, _>>()
            .map(|names| Command::DropSequence {
                names,
                if_exists: *if_exists,
            }),
        ast::Statement::ShowVariable { variable } => Ok(Command::Show(
            variable
                .iter()
                .map(|i| i.value.to_lowercase())
                .collect::<Vec<_>>()
                .join(" "),
        )),
        ast::Statement::Set(ast::Set::SingleAssignment {
            scope: Some(ast::ContextModifier::Local),
            hivevar,
            variable,
            values,
        }) => {
            // The setting as a plain SET plans it.
            let plain = ast::Statement::Set(ast::Set::SingleAssignment {
                scope: None,
                hivevar: *hivevar,
                variable: variable.clone(),
                values: values.clone(),
            });
            match plan::plan(&plain) {
                Ok(Plan {
                    stmt: Statement::Set(s),
                    ..
                }) => Ok(Command::SetLocal(s)),
                Ok(_) => Err(text_expr::unsupported("SET LOCAL of this setting")),
                Err(e) => Err(e),
            }
        }
        ast::Statement::Query(q) => return call(q).map(|r| r.map(with_command)),
        _ => return None,
    };
    Some(planned.map(with_command))
}

fn with_command(c: Command) -> Plan {
    with_stmt(Statement::Command(c))
}

fn integer(e: &ast::Expr, what: &str) -> Result<i64, SqlError> {
    let bad = || text_expr::syntax(format!("{what} must be an integer, not {e}"));
    match e {
        ast::Expr::Value(v) => match &v.value {
            ast::Value::Number(n, _) => n.parse().map_err(|_| bad()),
            _ => Err(bad()),
        },
        ast::Expr::UnaryOp {
            op: ast::UnaryOperator::Minus,
            expr,
        } => integer(expr, what)?.checked_neg().ok_or_else(bad),
        _ => Err(bad()),
    }
}

fn create_sequence(
    name: &ast::ObjectName,
    if_not_exists: bool,
    options: &[ast::SequenceOptions],
) -> Result<Command, SqlError> {
    let mut def = SequenceDef::named(&text_expr::object_name(name)?);
    for o in options {
        match o {
            ast::SequenceOptions::IncrementBy(e, _) => def.increment = integer(e, "INCREMENT")?,
            ast::SequenceOptions::MinValue(e) => {
                def.min = e.as_ref().map(|e| integer(e, "MINVALUE")).transpose()?
            }
            ast::SequenceOptions::MaxValue(e) => {
                def.max = e.as_ref().map(|e| integer(e, "MAXVALUE")).transpose()?
            }
            ast::SequenceOptions::StartWith(e, _) => def.start = Some(integer(e, "START")?),
            ast::SequenceOptions::Cycle(no) => def.cycle = !no,
            // CACHE changes which values a session preallocates, not their order for
            // one session; the model hands out one at a time.
            ast::SequenceOptions::Cache(e) => {
                return Err(text_expr::unsupported(format!("CACHE {e}")))
            }
        }
    }
    Ok(Command::CreateSequence { def, if_not_exists })
}

/// `SELECT f(args)` without FROM, of one of the functions of [`CallFunc`].
fn call(q: &ast::Query) -> Option<Result<Command, SqlError>> {
    let SetExpr::Select(s) = q.body.as_ref() else {
        return None;
    };
    if !s.from.is_empty()
        || s.selection.is_some()
        || q.order_by.is_some()
        || q.limit_clause.is_some()
        || q.with.is_some()
    {
        return None;
    }
    let [SelectItem::UnnamedExpr(ast::Expr::Function(f))] = s.projection.as_slice() else {
        return None;
    };
    let name = text_expr::object_name(&f.name).ok()?;
    let func = CallFunc::by_name(&name)?;
    let args = match &f.args {
        ast::FunctionArguments::None => Vec::new(),
        ast::FunctionArguments::List(l)
            if l.duplicate_treatment.is_none() && l.clauses.is_empty() =>
        {
            let mut out = Vec::new();
            for a in &l.args {
                let ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(e)) = a else {
                    return Some(Err(text_expr::unsupported(format!("the argument {a}"))));
                };
                match text_expr::expr(e, Place::Scalar) {
                    Ok(e) => out.push(e),
                    Err(err) => return Some(Err(err)),
                }
            }
            out
        }
        other => return Some(Err(text_expr::unsupported(format!("{name}{other}")))),
    };
    Some(Ok(Command::Call { func, args }))
}
