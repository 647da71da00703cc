//! Lua scripts: EVAL, EVALSHA and SCRIPT LOAD with real Lua 5.1, as Redis 7 runs them.
//!
//! A service's own scripts run unchanged: [`LuaVm`] is the reference Lua 5.1 interpreter
//! (vendored through `mlua`) set up the way Redis 7.0 sets up its scripting engine:
//! - `KEYS` and `ARGV`, `redis.call` (raises on an error reply), `redis.pcall` (returns
//!   it as `{err = ...}`), `redis.error_reply`, `redis.status_reply`, `redis.sha1hex`,
//!   `redis.log` and its levels, and the `base`, `table`, `string` and `math` libraries;
//! - the globals table is read-only, and reading an undefined global is an error, with
//!   Redis's messages;
//! - replies convert both ways by Redis's rules (an integer reply is a number, a nil bulk
//!   is `false`, a status is `{ok = ...}`; a Lua number becomes an integer by truncation,
//!   `true` is 1, a table is an array up to its first nil);
//! - an error carries Redis's suffix `script: <sha1>, on @user_script:<line>.`.
//!
//! The script cache is per VM, and each server's engine owns one VM, so EVALSHA sees what
//! that server loaded (by EVAL or SCRIPT LOAD) until SCRIPT FLUSH or a restart, as in
//! Redis.
//!
//! Differences from Redis, on purpose: `math.random` restarts its sequence at every
//! script run (Redis 7 continues one sequence per server; a run that depended on it would
//! depend on which scripts ran before), `redis.log` writes nothing, and the `cjson`,
//! `cmsgpack`, `struct` and `bit` libraries are absent. Values are UTF-8 strings, as
//! everywhere in this model. A script that never returns is not stopped by a
//! `busy-script` timeout: the runtime's watchdog reports it.
//!
//! Commands reach the dataset through a dispatch function, which the engine provides; this
//! module only knows the Lua side.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::fmt;
use std::rc::Rc;

use mlua::{Function, Lua, LuaOptions, MultiValue, StdLib, Table, Value};

use super::command::Reply;

/// The chunk name Redis gives every script: errors say `@user_script:<line>`.
const CHUNK_NAME: &str = "@user_script";

/// Most compiled scripts a VM keeps; Redis keeps every one, but a simulation that
/// generates scripts should not grow without bound. Past it, the cache is emptied, as
/// SCRIPT FLUSH would.
const CACHE_LIMIT: usize = 4096;

/// Lua set-up run once per VM, before the globals are locked. `redis.call` and
/// `redis.pcall` are set on each run, to functions that reach that run's dispatcher.
const PRELUDE: &str = r#"
local type, rawset, xpcall, setmetatable, error, select =
  type, rawset, xpcall, setmetatable, error, select
loadfile = nil
dofile = nil
print = function() end

local randomseed = math.randomseed
local sha1 = hidden_sha1hex

-- Runs f with KEYS and ARGV set, the handler noting where an error happened. Each run
-- restarts math.random's sequence, so a script's draws depend only on the script, never
-- on what ran before it in this process.
local function run(f, keys, argv, handler)
  rawset(_G, "KEYS", keys)
  rawset(_G, "ARGV", argv)
  randomseed(0)
  return xpcall(f, handler)
end

redis = {
  LOG_DEBUG = 0, LOG_VERBOSE = 1, LOG_NOTICE = 2, LOG_WARNING = 3,
  REPL_NONE = 0, REPL_AOF = 1, REPL_SLAVE = 2, REPL_REPLICA = 2, REPL_ALL = 3,
  error_reply = function(msg)
    if type(msg) ~= "string" then error("wrong number or type of arguments", 2) end
    -- As Redis 7.0's luaPushErrorBuff: a leading '-' goes, and a message without a
    -- space (so without an error code) gets the generic ERR code.
    if string.sub(msg, 1, 1) == "-" then msg = string.sub(msg, 2) end
    if not string.find(msg, " ", 1, true) then msg = "ERR " .. msg end
    return { err = msg }
  end,
  status_reply = function(msg)
    if type(msg) ~= "string" then error("wrong number or type of arguments", 2) end
    return { ok = msg }
  end,
  sha1hex = function(...)
    if select('#', ...) ~= 1 then error("wrong number of arguments", 2) end
    local s = ...
    -- Redis reads the argument with lua_tolstring: a number as its text, anything else
    -- that is no string (nil, a boolean, a table) as no bytes at all.
    if type(s) ~= "string" and type(s) ~= "number" then s = "" end
    return sha1(s)
  end,
  log = function() end,
  setresp = function() error("RESP3 is not supported by this model", 2) end,
  set_repl = function() end,
  replicate_commands = function() return true end,
}
rawset(_G, "hidden_sha1hex", nil)

-- Redis 7's protection of the globals: no new globals, no reads of undefined ones.
setmetatable(_G, {
  __newindex = function() error("Attempt to modify a readonly table", 2) end,
  __index = function(_, name)
    error("Script attempted to access nonexistent global variable '" .. tostring(name) .. "'", 2)
  end,
})
return run, redis
"#;

/// What a script's `redis.call` hands the engine: one command's arguments.
pub type Dispatch<'a> = dyn FnMut(&[String]) -> Reply + 'a;

/// One server's Lua interpreter and script cache.
pub struct LuaVm {
    lua: Lua,
    /// The prelude's `run(f, keys, argv, handler)`.
    run: Function,
    /// The `redis` table, where each run sets `call` and `pcall`.
    redis: Table,
    /// The error handler: notes the user script's line where an error was raised.
    handler: Function,
    error_line: Rc<Cell<i64>>,
    /// Compiled scripts by the SHA1 of their source.
    scripts: BTreeMap<String, Function>,
}

impl fmt::Debug for LuaVm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LuaVm({} scripts)", self.scripts.len())
    }
}

/// The SHA1 of a script's source, in lowercase hex: its EVALSHA name.
pub fn sha1_hex(source: &str) -> String {
    sha1_smol::Sha1::from(source).digest().to_string()
}

impl Default for LuaVm {
    fn default() -> Self {
        LuaVm::new()
    }
}

impl LuaVm {
    /// A fresh interpreter with Redis's libraries and protections.
    ///
    /// # Panics
    /// If the embedded prelude does not run, which would be a bug in this module.
    pub fn new() -> Self {
        let libs = StdLib::TABLE | StdLib::STRING | StdLib::MATH;
        let lua = Lua::new_with(libs, LuaOptions::default()).expect("Lua 5.1 starts");
        let error_line = Rc::new(Cell::new(0));
        let (run, redis, handler) =
            Self::prelude(&lua, Rc::clone(&error_line)).expect("the scripting prelude runs");
        LuaVm {
            lua,
            run,
            redis,
            handler,
            error_line,
            scripts: BTreeMap::new(),
        }
    }

    fn prelude(lua: &Lua, error_line: Rc<Cell<i64>>) -> mlua::Result<(Function, Table, Function)> {
        lua.globals().set(
            "hidden_sha1hex",
            lua.create_function(|_, s: mlua::LuaString| Ok(sha1_hex(&s.to_string_lossy())))?,
        )?;
        let (run, redis): (Function, Table) = lua.load(PRELUDE).set_name("=prelude").call(())?;
        let handler = lua.create_function(move |lua, e: Value| {
            // `return redis.call(...)` leaves no frame of the script to find (the
            // call is a tail call): then the line redis.call noted stands.
            if let Some(line) = user_line(lua) {
                error_line.set(line);
            }
            Ok(e)
        })?;
        Ok((run, redis, handler))
    }

    /// SCRIPT LOAD: compiles `source` and keeps it; returns its SHA1, or the compile
    /// error as Redis words it.
    pub fn load(&mut self, source: &str) -> Result<String, Reply> {
        let sha = sha1_hex(source);
        if !self.scripts.contains_key(&sha) {
            let f = self
                .lua
                .load(source)
                .set_name(CHUNK_NAME)
                .into_function()
                .map_err(|e| {
                    Reply::error(format!(
                        "ERR Error compiling script (new function): {}",
                        first_line(&e)
                    ))
                })?;
            if self.scripts.len() >= CACHE_LIMIT {
                self.scripts.clear();
            }
            self.scripts.insert(sha.clone(), f);
        }
        Ok(sha)
    }

    /// SCRIPT EXISTS for one SHA1.
    pub fn exists(&self, sha: &str) -> bool {
        self.scripts.contains_key(&sha.to_ascii_lowercase())
    }

    /// SCRIPT FLUSH.
    pub fn flush(&mut self) {
        self.scripts.clear();
    }

    /// EVAL: loads `source` (compiling it once) and runs it.
    pub fn eval(
        &mut self,
        source: &str,
        keys: &[String],
        args: &[String],
        dispatch: &mut Dispatch<'_>,
    ) -> Reply {
        match self.load(source) {
            Ok(sha) => self.eval_sha(&sha, keys, args, dispatch),
            Err(e) => e,
        }
    }

    /// EVALSHA: runs a script this VM has loaded, or answers NOSCRIPT.
    pub fn eval_sha(
        &mut self,
        sha: &str,
        keys: &[String],
        args: &[String],
        dispatch: &mut Dispatch<'_>,
    ) -> Reply {
        let sha = sha.to_ascii_lowercase();
        let Some(f) = self.scripts.get(&sha).cloned() else {
            return Reply::error("NOSCRIPT No matching script. Please use EVAL.");
        };
        match self.eval_function(&f, keys, args, dispatch) {
            Ok(Outcome::Returned(reply)) => reply,
            Ok(Outcome::Raised { message, line }) => {
                Reply::error(format!("{message} script: {sha}, on @user_script:{line}."))
            }
            Err(e) => Reply::error(format!(
                "ERR {} script: {sha}, on @user_script:0.",
                first_line(&e)
            )),
        }
    }

    fn eval_function(
        &self,
        f: &Function,
        keys: &[String],
        args: &[String],
        dispatch: &mut Dispatch<'_>,
    ) -> mlua::Result<Outcome> {
        let lua = &self.lua;
        let keys = lua.create_sequence_from(keys.iter().map(String::as_str))?;
        let argv = lua.create_sequence_from(args.iter().map(String::as_str))?;
        self.error_line.set(0);
        let dispatch = RefCell::new(dispatch);
        let run_command = |lua: &Lua, argv: &MultiValue| -> Reply {
            let reply = match command_args(argv) {
                Ok(argv) => (*dispatch.borrow_mut())(&argv),
                Err(e) => e,
            };
            if reply.is_error() {
                // Redis names the line of the failing call.
                self.error_line.set(caller_line(lua));
            }
            reply
        };
        let outcome = lua.scope(|scope| {
            // Scoped functions may borrow the dispatcher: they stop working when the
            // scope ends, so a script cannot keep them past its run.
            let call =
                scope.create_function(|lua, argv: MultiValue| match run_command(lua, &argv) {
                    Reply::Error(e) => Err(mlua::Error::runtime(e)),
                    reply => to_lua(lua, &reply),
                })?;
            let pcall = scope
                .create_function(|lua, argv: MultiValue| to_lua(lua, &run_command(lua, &argv)))?;
            self.redis.raw_set("call", call)?;
            self.redis.raw_set("pcall", pcall)?;
            let (ok, result): (bool, Value) =
                self.run
                    .call((f.clone(), keys, argv, self.handler.clone()))?;
            if ok {
                return Ok(Outcome::Returned(from_lua(&result)));
            }
            Ok(Outcome::Raised {
                message: raised_message(&result),
                line: self.error_line.get(),
            })
        });
        self.redis.raw_set("call", Value::Nil)?;
        self.redis.raw_set("pcall", Value::Nil)?;
        outcome
    }
}

/// How a script run ended.
enum Outcome {
    Returned(Reply),
    Raised { message: String, line: i64 },
}

/// The line of the innermost frame of the user's script on the stack, if there is one.
fn user_line(lua: &Lua) -> Option<i64> {
    for level in 0..64 {
        let found = lua.inspect_stack(level, |frame| {
            let source = frame.source();
            (source.source.as_deref() == Some(CHUNK_NAME)).then(|| frame.current_line())
        });
        match found {
            None => break,
            Some(Some(line)) => return line.map(|l| l as i64),
            Some(None) => {}
        }
    }
    None
}

/// The line of the script that called the running Rust function (`redis.call`).
fn caller_line(lua: &Lua) -> i64 {
    lua.inspect_stack(1, |frame| frame.current_line())
        .flatten()
        .map_or(0, |l| l as i64)
}

/// A `redis.call` argument list as strings: Lua strings and numbers (numbers as Lua
/// prints them), anything else refused with Redis's error.
fn command_args(argv: &MultiValue) -> Result<Vec<String>, Reply> {
    if argv.is_empty() {
        return Err(Reply::error(
            "ERR Please specify at least one argument for this redis lib call",
        ));
    }
    argv.iter()
        .map(|v| match v {
            Value::String(s) => Ok(s.to_string_lossy()),
            Value::Integer(i) => Ok(i.to_string()),
            Value::Number(n) => Ok(lua_number(*n)),
            _ => Err(Reply::error(
                "ERR Lua redis lib command arguments must be strings or integers",
            )),
        })
        .collect()
}

/// A Lua number as `tostring` prints it (`%.14g`).
fn lua_number(n: f64) -> String {
    if n.is_finite() && n == n.trunc() && n.abs() < 1e15 {
        return format!("{}", n as i64);
    }
    if n.is_nan() {
        return "nan".into();
    }
    if n.is_infinite() {
        return if n > 0.0 { "inf" } else { "-inf" }.into();
    }
    // %.14g: 14 significant digits, trailing zeros dropped, exponent when needed.
    let exp = n.abs().log10().floor() as i32;
    if (-5..14).contains(&exp) {
        let decimals = (13 - exp).max(0) as usize;
        let s = format!("{n:.decimals$}");
        let s = s.trim_end_matches('0').trim_end_matches('.');
        s.to_string()
    } else {
        let s = format!("{n:.13e}");
        let (mantissa, e) = s.split_once('e').unwrap_or((&s, "0"));
        let mantissa = mantissa.trim_end_matches('0').trim_end_matches('.');
        let e: i32 = e.parse().unwrap_or(0);
        format!("{mantissa}e{}{:02}", if e < 0 { '-' } else { '+' }, e.abs())
    }
}

/// A reply as Lua sees it (Redis's RESP2 to Lua rules).
fn to_lua(lua: &Lua, reply: &Reply) -> mlua::Result<Value> {
    Ok(match reply {
        Reply::Nil => Value::Boolean(false),
        Reply::Int(i) => Value::Integer(*i),
        Reply::Bulk(s) => Value::String(lua.create_string(s)?),
        Reply::Status(s) => {
            let t = lua.create_table()?;
            t.set("ok", s.as_str())?;
            Value::Table(t)
        }
        Reply::Error(e) => {
            let t = lua.create_table()?;
            t.set("err", e.as_str())?;
            Value::Table(t)
        }
        Reply::Array(items) => {
            let t = lua.create_table_with_capacity(items.len(), 0)?;
            for (i, item) in items.iter().enumerate() {
                t.raw_set(i + 1, to_lua(lua, item)?)?;
            }
            Value::Table(t)
        }
    })
}

/// A script's return value as a reply (Redis's Lua to RESP2 rules).
fn from_lua(value: &Value) -> Reply {
    match value {
        Value::Nil | Value::Boolean(false) => Reply::Nil,
        Value::Boolean(true) => Reply::Int(1),
        Value::Integer(i) => Reply::Int(*i),
        // Truncation toward zero, as Redis's (long long) cast does.
        Value::Number(n) => Reply::Int(c_long_long(*n)),
        Value::String(s) => Reply::Bulk(s.to_string_lossy()),
        Value::Table(t) => {
            if let Ok(Value::String(e)) = t.raw_get::<Value>("err") {
                return Reply::Error(e.to_string_lossy());
            }
            if let Ok(Value::String(s)) = t.raw_get::<Value>("ok") {
                return Reply::Status(s.to_string_lossy());
            }
            let mut items = Vec::new();
            for i in 1.. {
                match t.raw_get::<Value>(i) {
                    Ok(Value::Nil) | Err(_) => break,
                    Ok(v) => items.push(from_lua(&v)),
                }
            }
            Reply::Array(items)
        }
        _ => Reply::Nil,
    }
}

/// The message of an error a script raised: an error table's `err` as it is, a string
/// with Redis's `ERR ` in front.
fn raised_message(error: &Value) -> String {
    match error {
        // What redis.call raised: the command's error reply, prefix included.
        Value::Error(e) => first_line(e),
        Value::Table(t) => match t.raw_get::<Value>("err") {
            Ok(Value::String(e)) => e.to_string_lossy(),
            _ => "ERR unknown error".into(),
        },
        Value::String(s) => format!("ERR {}", s.to_string_lossy()),
        other => format!("ERR {}", other.type_name()),
    }
}

/// The first line of an mlua error: the Lua message, without mlua's traceback.
fn first_line(e: &mlua::Error) -> String {
    let text = match e {
        mlua::Error::SyntaxError { message, .. } => message.clone(),
        mlua::Error::RuntimeError(m) => m.clone(),
        mlua::Error::CallbackError { cause, .. } => return first_line(cause),
        other => other.to_string(),
    };
    text.lines().next().unwrap_or_default().to_string()
}

/// `redis.call`'s view of a command error: the messages Redis gives a script for an
/// unknown command and a wrong argument count, which differ from a client's.
pub fn script_error(reply: Reply) -> Reply {
    match &reply {
        Reply::Error(e) if e.starts_with("ERR unknown command") => {
            Reply::error("ERR Unknown Redis command called from script")
        }
        Reply::Error(e) if e.starts_with("ERR wrong number of arguments") => {
            Reply::error("ERR Wrong number of args calling Redis command from script")
        }
        _ => reply,
    }
}

/// C's `(long long)` of a double on x86-64 (`cvttsd2si`): truncation, and
/// 0x8000000000000000 for NaN or anything out of range, where Rust's `as` saturates.
fn c_long_long(n: f64) -> i64 {
    if !(-9_223_372_036_854_775_808.0..9_223_372_036_854_775_808.0).contains(&n) {
        i64::MIN
    } else {
        n as i64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv::command::errors;

    /// A dispatcher over a tiny string store: GET, SET, INCR, and the errors the
    /// engine would give.
    fn store() -> impl FnMut(&[String]) -> Reply {
        let mut data: BTreeMap<String, String> = BTreeMap::new();
        move |argv: &[String]| match argv[0].to_ascii_lowercase().as_str() {
            "get" if argv.len() == 2 => Reply::opt_bulk(data.get(&argv[1]).cloned()),
            "set" if argv.len() == 3 => {
                data.insert(argv[1].clone(), argv[2].clone());
                Reply::ok()
            }
            "incr" if argv.len() == 2 => {
                let v = data
                    .get(&argv[1])
                    .map_or(Some(0), |v| v.parse::<i64>().ok());
                match v {
                    Some(v) => {
                        data.insert(argv[1].clone(), (v + 1).to_string());
                        Reply::Int(v + 1)
                    }
                    None => Reply::error(errors::NOT_INTEGER),
                }
            }
            "get" | "set" | "incr" => script_error(Reply::error(
                "ERR wrong number of arguments for 'x' command",
            )),
            _ => script_error(Reply::error("ERR unknown command 'x'")),
        }
    }

    fn eval(vm: &mut LuaVm, src: &str, keys: &[&str], args: &[&str]) -> Reply {
        let keys: Vec<String> = keys.iter().map(|s| s.to_string()).collect();
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let mut d = store();
        vm.eval(src, &keys, &args, &mut d)
    }

    #[test]
    fn replies_convert_as_redis_converts_them() {
        let mut vm = LuaVm::new();
        assert_eq!(
            eval(&mut vm, "return {1, 2, 3.7, 'x', false, nil, 5}", &[], &[]),
            Reply::Array(vec![
                Reply::Int(1),
                Reply::Int(2),
                Reply::Int(3),
                Reply::bulk("x"),
                Reply::Nil
            ])
        );
        assert_eq!(eval(&mut vm, "return -3.99", &[], &[]), Reply::Int(-3));
        assert_eq!(eval(&mut vm, "return true", &[], &[]), Reply::Int(1));
        assert_eq!(eval(&mut vm, "return", &[], &[]), Reply::Nil);
        assert_eq!(
            eval(&mut vm, "return {ok = 'fine'}", &[], &[]),
            Reply::Status("fine".into())
        );
        assert_eq!(
            eval(&mut vm, "return redis.error_reply('My Error')", &[], &[]),
            Reply::error("My Error")
        );
        assert_eq!(
            eval(
                &mut vm,
                "return type(redis.call('get', KEYS[1]))",
                &["nokey"],
                &[]
            ),
            Reply::bulk("boolean")
        );
    }

    #[test]
    fn keys_and_argv_reach_the_commands() {
        let mut vm = LuaVm::new();
        let src = "redis.call('set', KEYS[1], ARGV[1]); return redis.call('incr', KEYS[1])";
        assert_eq!(eval(&mut vm, src, &["n"], &["41"]), Reply::Int(42));
        assert_eq!(
            eval(&mut vm, "return redis.call('set', 'n', 3.5)", &[], &[]),
            Reply::ok()
        );
    }

    #[test]
    fn errors_carry_redis_suffix_and_line() {
        let mut vm = LuaVm::new();
        let src = "redis.call('set', 'a', 'x')\nreturn redis.call('incr', 'a')";
        let sha = sha1_hex(src);
        assert_eq!(
            eval(&mut vm, src, &[], &[]),
            Reply::error(format!(
                "ERR value is not an integer or out of range script: {sha}, on @user_script:2."
            ))
        );
        let src = "error('boom')";
        assert_eq!(
            eval(&mut vm, src, &[], &[]),
            Reply::error(format!(
                "ERR user_script:1: boom script: {}, on @user_script:1.",
                sha1_hex(src)
            ))
        );
        // pcall hands the error back instead of raising it.
        assert_eq!(
            eval(
                &mut vm,
                "redis.call('set','a','x'); return redis.pcall('incr', 'a')",
                &[],
                &[]
            ),
            Reply::error(errors::NOT_INTEGER)
        );
        let src = "return redis.call('nosuch')";
        assert_eq!(
            eval(&mut vm, src, &[], &[]),
            Reply::error(format!(
                "ERR Unknown Redis command called from script script: {}, on @user_script:1.",
                sha1_hex(src)
            ))
        );
        let src = "return redis.call('get', {})";
        assert_eq!(
            eval(&mut vm, src, &[], &[]),
            Reply::error(format!(
                "ERR Lua redis lib command arguments must be strings or integers script: {}, on @user_script:1.",
                sha1_hex(src)
            ))
        );
    }

    #[test]
    fn globals_are_read_only_and_the_sandbox_is_closed() {
        let mut vm = LuaVm::new();
        let src = "x = 5";
        assert_eq!(
            eval(&mut vm, src, &[], &[]),
            Reply::error(format!(
                "ERR user_script:1: Attempt to modify a readonly table script: {}, on @user_script:1.",
                sha1_hex(src)
            ))
        );
        let src = "return os.time()";
        assert_eq!(
            eval(&mut vm, src, &[], &[]),
            Reply::error(format!(
                "ERR user_script:1: Script attempted to access nonexistent global variable 'os' script: {}, on @user_script:1.",
                sha1_hex(src)
            ))
        );
        for gone in ["debug", "io", "loadfile", "dofile"] {
            let src = format!("return {gone}");
            assert!(eval(&mut vm, &src, &[], &[]).is_error(), "{gone}");
        }
        assert_eq!(
            eval(&mut vm, "local t = {} t.x = 1 return t.x", &[], &[]),
            Reply::Int(1),
            "locals are free"
        );
    }

    #[test]
    fn scripts_are_cached_by_sha1_until_flushed() {
        let mut vm = LuaVm::new();
        let sha = vm.load("return 1").unwrap();
        assert_eq!(sha, "e0e1f9fabfc9d4800c877a703b823ac0578ff8db");
        assert!(vm.exists(&sha.to_uppercase()));
        let mut d = store();
        assert_eq!(vm.eval_sha(&sha, &[], &[], &mut d), Reply::Int(1));
        vm.flush();
        assert_eq!(
            vm.eval_sha(&sha, &[], &[], &mut d),
            Reply::error("NOSCRIPT No matching script. Please use EVAL.")
        );
        assert_eq!(
            vm.load("syntax error here"),
            Err(Reply::error(
                "ERR Error compiling script (new function): user_script:1: '=' expected near 'error'"
            ))
        );
        assert_eq!(
            eval(&mut vm, "return redis.sha1hex('')", &[], &[]),
            Reply::bulk("da39a3ee5e6b4b0d3255bfef95601890afd80709")
        );
    }

    #[test]
    fn math_random_restarts_at_every_run() {
        let mut vm = LuaVm::new();
        let a = eval(&mut vm, "return math.random(1000000)", &[], &[]);
        let b = eval(&mut vm, "return math.random(1000000)", &[], &[]);
        assert_eq!(a, b);
    }

    #[test]
    fn lua_numbers_print_as_lua_prints_them() {
        assert_eq!(lua_number(3.5), "3.5");
        assert_eq!(lua_number(3.0), "3");
        assert_eq!(lua_number(0.1), "0.1");
        assert_eq!(lua_number(1e20), "1e+20");
        assert_eq!(lua_number(1.0 / 3.0), "0.33333333333333");
        assert_eq!(lua_number(-2.5e-7), "-2.5e-07");
    }
}
