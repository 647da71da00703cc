//! The session settings the model honours (`statement_timeout`, `lock_timeout`,
//! `default_transaction_isolation`, and `transaction_isolation` to read): `SET`,
//! `SET LOCAL`, `RESET` and `SHOW` with PostgreSQL's transactional behaviour. A `SET`
//! inside a transaction that rolls back is undone; a `SET LOCAL` lasts until the end of
//! its transaction, whichever way it ends; a `SET LOCAL` outside a transaction block does
//! nothing (PostgreSQL warns).

use std::collections::BTreeMap;

use sim_runtime::time::Duration;

use super::engine::Settings;
use super::error::SqlError;
use super::mvcc::Xid;
use super::stmt::{IsolationLevel, Setting};

/// Applies `s` to `settings`.
pub fn apply(settings: &mut Settings, s: &Setting) {
    match *s {
        Setting::StatementTimeout(d) => settings.statement_timeout = d,
        Setting::LockTimeout(d) => settings.lock_timeout = d,
        Setting::DefaultIsolation(i) => settings.default_isolation = i,
    }
}

fn unrecognized(name: &str) -> SqlError {
    SqlError::UndefinedObject {
        message: format!("unrecognized configuration parameter \"{name}\""),
    }
}

/// `RESET name`: the setting back to the server's default; `None` for `RESET ALL`.
pub fn reset(name: Option<&str>, defaults: &Settings) -> Result<Vec<Setting>, SqlError> {
    let all = [
        Setting::StatementTimeout(defaults.statement_timeout),
        Setting::LockTimeout(defaults.lock_timeout),
        Setting::DefaultIsolation(defaults.default_isolation),
    ];
    Ok(match name {
        None => all.to_vec(),
        Some("statement_timeout") => vec![all[0].clone()],
        Some("lock_timeout") => vec![all[1].clone()],
        Some("default_transaction_isolation") => vec![all[2].clone()],
        // Resetting it inside a transaction does not change the running one's level.
        Some("transaction_isolation") => Vec::new(),
        Some(other) => return Err(unrecognized(other)),
    })
}

/// `SHOW name`: the value as PostgreSQL prints it; `running` is the isolation of the
/// session's transaction, if it has one.
pub fn show(
    name: &str,
    settings: &Settings,
    running: Option<IsolationLevel>,
) -> Result<String, SqlError> {
    let iso = |i: IsolationLevel| i.name().to_lowercase();
    match name {
        "statement_timeout" => Ok(duration_text(settings.statement_timeout)),
        "lock_timeout" => Ok(duration_text(settings.lock_timeout)),
        "default_transaction_isolation" => Ok(iso(settings.default_isolation)),
        "transaction_isolation" => Ok(iso(running.unwrap_or(settings.default_isolation))),
        other => Err(unrecognized(other)),
    }
}

/// A millisecond setting as PostgreSQL prints it: the largest unit that divides it
/// exactly (`1500ms`, `2s`, `1min`), `0` when off.
pub fn duration_text(d: Option<Duration>) -> String {
    let ms = d.map_or(0, |d| d.as_millis());
    if ms == 0 {
        return "0".into();
    }
    let units = [
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("min", 60_000),
        ("s", 1_000),
    ];
    for (unit, size) in units {
        if ms % size == 0 {
            return format!("{}{unit}", ms / size);
        }
    }
    format!("{ms}ms")
}

/// Settings changed inside a transaction: what to restore when it ends.
#[derive(Clone, Debug)]
struct Frame {
    session: u64,
    /// The settings before the transaction's first change: restored on rollback.
    before: Settings,
    /// The session-level values as the transaction's `SET`s left them: kept on commit
    /// (its `SET LOCAL`s are not in them).
    session_level: Settings,
}

/// The transactions that changed their session's settings.
#[derive(Clone, Debug, Default)]
pub struct SettingFrames {
    frames: BTreeMap<Xid, Frame>,
}

impl SettingFrames {
    /// `SET` (local or not) by `session`, whose settings are `current`, inside
    /// transaction `xid`.
    pub fn set_in_transaction(
        &mut self,
        xid: Xid,
        session: u64,
        current: &mut Settings,
        s: &Setting,
        local: bool,
    ) {
        let frame = self.frames.entry(xid).or_insert_with(|| Frame {
            session,
            before: current.clone(),
            session_level: current.clone(),
        });
        if !local {
            apply(&mut frame.session_level, s);
        }
        apply(current, s);
    }

    /// Transaction `xid` ended: the session and the settings it must have now.
    pub fn end(&mut self, xid: Xid, committed: bool) -> Option<(u64, Settings)> {
        let f = self.frames.remove(&xid)?;
        Some((
            f.session,
            if committed { f.session_level } else { f.before },
        ))
    }

    pub fn clear(&mut self) {
        self.frames.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defaults() -> Settings {
        Settings {
            statement_timeout: None,
            lock_timeout: None,
            default_isolation: IsolationLevel::ReadCommitted,
        }
    }

    #[test]
    fn durations_print_in_their_largest_exact_unit() {
        let ms = |n| Some(Duration::from_millis(n));
        let cases = [
            (None, "0"),
            (ms(1500), "1500ms"),
            (ms(2000), "2s"),
            (ms(90_000), "90s"),
            (ms(120_000), "2min"),
            (ms(7_200_000), "2h"),
        ];
        for (d, text) in cases {
            assert_eq!(duration_text(d), text);
        }
    }

    #[test]
    fn local_settings_end_with_the_transaction_and_rollback_undoes_set() {
        let timeout = |n| Setting::LockTimeout(Some(Duration::from_millis(n)));
        for committed in [true, false] {
            let mut frames = SettingFrames::default();
            let mut s = defaults();
            frames.set_in_transaction(7, 1, &mut s, &timeout(100), false);
            frames.set_in_transaction(7, 1, &mut s, &timeout(200), true);
            assert_eq!(show("lock_timeout", &s, None).unwrap(), "200ms");
            let (session, after) = frames.end(7, committed).unwrap();
            assert_eq!(session, 1);
            let expect = if committed { "100ms" } else { "0" };
            assert_eq!(show("lock_timeout", &after, None).unwrap(), expect);
        }
    }

    #[test]
    fn unknown_names_are_42704() {
        let e = show("work_mem", &defaults(), None).unwrap_err();
        assert_eq!(e.sqlstate(), Some("42704"));
        assert_eq!(
            reset(Some("nope"), &defaults()).unwrap_err().sqlstate(),
            Some("42704")
        );
        assert_eq!(
            show(
                "transaction_isolation",
                &defaults(),
                Some(IsolationLevel::Serializable)
            )
            .unwrap(),
            "serializable"
        );
    }
}
